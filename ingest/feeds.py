"""Reading feeds: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed 1.0/1.1 here.

feedparser is imported by this module only, and only ever given bytes we already
fetched: never a URL or a string it could take for a file name, so it never touches the
network or the disk. Its results are turned into plain dicts in one place
(``_run_feedparser``); everything after that reads typed values out of them.

Decisions worth knowing before changing anything here:

- Links are made absolute against ``page.final_url`` (after feedparser applied any
  ``xml:base``) and kept only when they are http(s). An entry without a link takes its
  guid as its URL only when the guid is a permalink (RSS ``isPermaLink``, the default)
  and already an absolute http(s) URL; otherwise its ``url`` is None and the pipeline
  records it as skipped.
- Dates are UTC. A date more than a day after the fetch is dropped (None), see
  ``_FUTURE_SLACK``.
- Malformed XML: if feedparser's lenient parser still recovered entries we keep them and
  log a warning; if it recovered none, FeedError. HTML and empty bodies are FeedError.
- ``Entry.summary`` and titles are plain text: the article itself comes from the page,
  so markup in a summary is noise.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import feedparser
from selectolax.lexbor import LexborHTMLParser

from ingest import charsets
from ingest.errors import FeedError
from ingest.models import Entry, Feed, Page

logger = logging.getLogger(__name__)

# A feed's root element is at most a long comment or DOCTYPE away from the start.
_SNIFF_BYTES = 64 * 1024
_PROLOG = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)", re.S | re.I)
_ROOT = re.compile(r"\s*<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_HTML_DOCTYPE = re.compile(r"<!DOCTYPE\s+html\b", re.I)
_FEED_ROOTS = frozenset({"rss", "feed", "rdf"})  # rdf:RDF is RSS 0.90 and 1.0
# Trusted only when the first bytes cannot tell (e.g. a prolog longer than _SNIFF_BYTES).
_FEED_MEDIA_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/xml",
        "text/xml",
    }
)
_JSON_FEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/(1(?:\.\d+)?)/?")

# Feeds that date posts in the future are wrong (a bad year, local time labelled UTC)
# or announce events; either way the date is not when the post appeared. A day of slack
# absorbs clock skew and time zones; past that we keep None rather than clamp to "now",
# which would invent a date and sort the entry as brand new.
_FUTURE_SLACK = timedelta(days=1)

# sy:updatePeriod values (RSS 1.0 Syndication module), divided by sy:updateFrequency.
_SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_MAX_TTL_MINUTES = 365 * 24 * 60
# feedparser has no error of its own for bytes it cannot cope with: on some garbage it
# lets these escape (found by the property test: a lone surrogate in a character
# reference, a NUL or a non-ASCII byte in the encoding declaration, a namespace URI that
# is not text). Catching them here, around the call, is translating them once.
_FEEDPARSER_CRASHES = (ValueError,)  # UnicodeError is a ValueError
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_BLOCK_TAGS = "p,div,br,li,ul,ol,dd,dt,h1,h2,h3,h4,h5,h6,blockquote,pre,tr,td,th,hr,figure"


def looks_like_feed(page: Page) -> bool:
    """Whether the body is a feed, judged by its first bytes, else by the content type.

    The bytes win when they are conclusive: an HTML page served as text/xml is not a
    feed, and an RSS document served as text/html is one.
    """
    root = _sniff(page.body)
    if root in _FEED_ROOTS:
        return True
    if root == "{":
        return _json_feed_format(_load_json(page.body)) is not None
    if root == "?":
        return page.content_type in _FEED_MEDIA_TYPES
    return False


def parse_feed(page: Page) -> Feed:
    """The feed in ``page``; FeedError if the bytes are not a feed we can read."""
    root = _sniff(page.body)
    if root == "":
        raise FeedError(f"feeds: empty body: {page.final_url}")
    if root == "html":
        raise FeedError(f"feeds: not a feed (HTML page): {page.final_url}")
    if root in ("{", "[") or (root == "#text" and "json" in page.content_type):
        return _parse_json_feed(page)
    return _parse_xml_feed(page)


def _sniff(body: bytes) -> str:
    """The lower-cased local name of the root element, or a marker.

    Markers: "" empty body, "{" / "[" JSON, "?" markup whose root is not in the first
    _SNIFF_BYTES, "#text" anything else.
    """
    text = _decode_head(body[:_SNIFF_BYTES]).lstrip("\ufeff \t\r\n")
    if not text:
        return ""
    if text[0] in "{[":
        return text[0]
    if text[0] != "<":
        return "#text"
    pos = 0
    while match := _PROLOG.match(text, pos):
        if _HTML_DOCTYPE.match(match.group().lstrip()):
            return "html"
        pos = match.end()
    root = _ROOT.match(text, pos)
    if root is None:
        return "?"
    name = root.group(1).lower()
    return "html" if name in ("html", "head", "body") else name


def _decode_head(head: bytes) -> str:
    """Enough of the body as text to find the root element (markup is ASCII)."""
    if head.startswith((b"\xff\xfe", b"<\x00")):
        return head.decode("utf-16-le", "ignore")
    if head.startswith((b"\xfe\xff", b"\x00<")):
        return head.decode("utf-16-be", "ignore")
    return head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")


# --- RSS and Atom, through feedparser -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    """feedparser's result as plain data: no FeedParserDict escapes _run_feedparser."""

    version: str
    problem: Exception | None  # feedparser's bozo_exception
    feed: dict[str, object]
    entries: list[dict[str, object]]


def _parse_xml_feed(page: Page) -> Feed:
    parsed = _run_feedparser(page)
    url = page.final_url
    malformed = _malformation(parsed.problem, url=url)
    if not parsed.version:
        reason = f"malformed XML ({malformed})" if malformed else "no RSS or Atom root element"
        raise FeedError(f"feeds: not a feed, {reason}: {url}")
    inherited = _names(parsed.feed) if parsed.version.startswith("atom") else ()
    entries = _unique(
        _xml_entry(raw, base=url, now=page.fetched_at, feed_authors=inherited)
        for raw in parsed.entries
    )
    if malformed and not entries:
        raise FeedError(f"feeds: malformed XML ({malformed}): {url}")
    if malformed:
        logger.warning(
            "feeds: recovered %d entries from malformed XML (%s): url=%s",
            len(entries),
            malformed,
            url,
        )
    return Feed(
        title=_text_of(parsed.feed, "title"),
        link=_http_url(_str(parsed.feed, "link"), base=url),
        format=parsed.version,
        entries=entries,
        ttl=_ttl(parsed.feed),
    )


def _run_feedparser(page: Page) -> _Parsed:
    """feedparser on the bytes alone: no URL, no file name, so no I/O of its own."""
    try:
        page = _mend_encoding(page)
        result = feedparser.parse(
            io.BytesIO(page.body),  # a bytes value could be taken for a file name
            response_headers=_xml_headers(page),
            resolve_relative_uris=False,  # summaries become plain text; their links go
            sanitize_html=True,
        )
    except _FEEDPARSER_CRASHES as exc:
        raise FeedError(f"feeds: unreadable XML ({exc!r}): {page.final_url}") from exc
    problem = result.get("bozo_exception")
    return _Parsed(
        version=str(result.get("version") or ""),
        problem=problem if isinstance(problem, Exception) else None,
        feed=_plain(result.get("feed")) or {},
        entries=[entry for entry in map(_plain, result.get("entries") or []) if entry],
    )


def _mend_encoding(page: Page) -> Page:
    """A feed that claims UTF-8 (or nothing, which means UTF-8 for XML) but is not valid
    UTF-8: re-encoded from what its bytes look like (windows-1251, latin-1, ...), so that
    feedparser does not fall back to windows-1252 and garble every non-Latin letter."""
    body = page.body
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return page
    match = _XML_ENCODING.search(body, 0, 200)
    declared = page.charset or (match.group(2).decode("ascii") if match else "utf-8")
    if declared.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        return page
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        guess = charsets.detect(body)
    else:
        return page
    if guess is None or guess == "utf-8":
        return page
    text = body.decode(guess, errors="replace").encode("utf-8")
    if match:  # the declaration must now say what the bytes are
        text = _XML_ENCODING.sub(rb"\1utf-8\3", text, count=1)
    logger.info("feeds: declared UTF-8 but is %s; re-encoded: url=%s", guess, page.final_url)
    return replace(page, body=text, charset="utf-8")


_XML_ENCODING = re.compile(
    rb"""(<\?xml[^>]{0,100}?encoding\s*=\s*["'])([A-Za-z0-9._-]{1,40})(["'])"""
)


def _xml_headers(page: Page) -> dict[str, str]:
    """The headers feedparser sees: the media type is always application/xml.

    We already know the bytes are XML, and application/xml makes feedparser follow the
    XML rules for the encoding (HTTP charset, else BOM or declaration, else UTF-8)
    instead of RFC 3023's us-ascii default for text/*. A BOM beats the HTTP charset
    (RFC 7303 §3). No Content-Location on purpose: feedparser resolves RSS guids against
    it, turning a guid like "12345" into "https://host/feed/12345"; we resolve links
    against page.final_url ourselves.
    """
    boms = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
    if page.charset and not page.body.startswith(boms):
        return {"content-type": f"application/xml; charset={page.charset}"}
    return {"content-type": "application/xml"}


def _plain(value: object) -> dict[str, object] | None:
    """A FeedParserDict as nested plain dicts and lists (its .get warns on some keys)."""
    if not isinstance(value, dict):
        return None
    return {str(key): _plain_value(item) for key, item in dict.items(value)}


def _plain_value(value: object) -> object:
    if isinstance(value, dict):
        return _plain(value)
    if isinstance(value, list):
        return [_plain_value(item) for item in value]
    return value


def _malformation(problem: Exception | None, *, url: str) -> str | None:
    """Why the XML is malformed, or None if it is not.

    feedparser also reports, as "bozo", header and charset mismatches it worked around
    (a charset that did not decode the bytes, say): those are logged, not malformations.
    """
    if problem is None:
        return None
    if isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
        logger.info("feeds: %s: url=%s", problem, url)
        return None
    return str(problem).removeprefix("<unknown>:") or type(problem).__name__


def _xml_entry(
    raw: dict[str, object], *, base: str, now: datetime, feed_authors: tuple[str, ...]
) -> Entry:
    guid = _clean(_str(raw, "id"))
    return Entry(
        guid=guid,
        url=_entry_url(raw, guid=guid, base=base),
        title=_text_of(raw, "title"),
        published=_struct_date(raw.get("published_parsed"), now=now),
        updated=_struct_date(raw.get("updated_parsed"), now=now),
        summary=_xml_summary(raw),
        authors=_names(raw) or feed_authors,
        tags=_distinct(_str(tag, "label") or _str(tag, "term") for tag in _dicts(raw, "tags")),
    )


def _entry_url(raw: dict[str, object], *, guid: str | None, base: str) -> str | None:
    """The entry's link element, else its guid if that is a permalink and a URL.

    feedparser copies a permalink guid into ``link`` when no link element came before
    it; such a link is taken as written (a relative guid is an id, not a path).
    """
    link = _str(raw, "link")
    hrefs = {_str(item, "href") for item in _dicts(raw, "links")}
    if link and link in hrefs:
        url = _http_url(link, base=base)
        if url:
            return url
    if raw.get("guidislink") and guid and _is_absolute_http(guid):
        return guid
    return None


def _xml_summary(raw: dict[str, object]) -> str | None:
    """The description / atom:summary, else the first content:encoded / atom:content.

    A summary without summary_detail is feedparser's copy of the content, kept raw.
    """
    if "summary_detail" in raw:
        summary = _text_of(raw, "summary")
        if summary:
            return summary
    for content in _dicts(raw, "content"):
        text = _as_text(_str(content, "value"), _str(content, "type"))
        if text:
            return text
    return None


def _text_of(raw: dict[str, object], key: str) -> str | None:
    """A text construct (title, summary) as plain text, whatever type it was."""
    detail = raw.get(f"{key}_detail")
    kind = _str(detail, "type") if isinstance(detail, dict) else None
    return _as_text(_str(raw, key), kind)


def _names(raw: dict[str, object]) -> tuple[str, ...]:
    """Author names; RSS emails without a name are not names, so they are left out."""
    return _distinct(_str(author, "name") for author in _dicts(raw, "authors"))


def _struct_date(value: object, *, now: datetime) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        parsed = datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return _not_future(parsed, now=now)


def _ttl(raw: dict[str, object]) -> timedelta | None:
    """RSS <ttl> in minutes, else sy:updatePeriod / sy:updateFrequency."""
    minutes = _positive_int(_str(raw, "ttl"))
    if minutes is not None:  # a ttl past a year is a typo, not a schedule
        return timedelta(minutes=minutes) if minutes <= _MAX_TTL_MINUTES else None
    period = _SY_PERIODS.get((_str(raw, "sy_updateperiod") or "").strip().lower())
    if period is None:
        return None
    frequency = _positive_int(_str(raw, "sy_updatefrequency")) or 1
    return period / frequency


# --- JSON Feed ------------------------------------------------------------------------


def _parse_json_feed(page: Page) -> Feed:
    url = page.final_url
    try:
        doc = json.loads(page.body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise FeedError(f"feeds: invalid JSON ({exc}): {url}") from exc
    fmt = _json_feed_format(doc)
    if not isinstance(doc, dict) or fmt is None:
        raise FeedError(f"feeds: not a feed, JSON without a jsonfeed.org version: {url}")
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError(f"feeds: not a feed, JSON Feed without an items list: {url}")
    base = _json_base(doc, page_url=url)
    authors = _json_authors(doc)
    entries = _unique(
        _json_entry(item, base=base, now=page.fetched_at, feed_authors=authors)
        for item in items
        if isinstance(item, dict)
    )
    return Feed(
        title=_clean(_str(doc, "title")),
        link=_http_url(_str(doc, "home_page_url"), base=base),
        format=fmt,
        entries=entries,
    )


def _load_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _json_feed_format(doc: object) -> str | None:
    """The format ("json10", "json11", ...) named by the version URL; None if no JSON Feed."""
    version = doc.get("version") if isinstance(doc, dict) else None
    match = _JSON_FEED_VERSION.fullmatch(version.strip()) if isinstance(version, str) else None
    if match is None:
        return None
    return "json" + match.group(1).replace(".", "").ljust(2, "0")


def _json_base(doc: dict[str, object], *, page_url: str) -> str:
    """The base for relative item URLs: feed_url, else home_page_url, else the page.

    The feed's own statement of where it lives comes first; each candidate is itself
    resolved against the page, since it may be relative too.
    """
    for key in ("feed_url", "home_page_url"):
        url = _http_url(_str(doc, key), base=page_url)
        if url:
            return url
    return page_url


def _json_entry(
    item: dict[str, object], *, base: str, now: datetime, feed_authors: tuple[str, ...]
) -> Entry:
    # external_url is the page an item is about (a link blog's "worth reading"). When
    # the item has no url of its own, that page is the article a reader would open.
    url = _http_url(_str(item, "url"), base=base)
    return Entry(
        guid=_json_id(item.get("id")),
        url=url or _http_url(_str(item, "external_url"), base=base),
        title=_clean(_str(item, "title")),
        published=_iso_date(_str(item, "date_published"), now=now),
        updated=_iso_date(_str(item, "date_modified"), now=now),
        summary=_clean(_str(item, "summary"))
        or _clean(_str(item, "content_text"))
        or _as_text(_str(item, "content_html"), "text/html"),
        # JSON Feed: an item without authors has the feed's authors.
        authors=_json_authors(item) or feed_authors,
        tags=_distinct(_strings(item.get("tags"))),
    )


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _json_id(value: object) -> str | None:
    """Item ids are strings; the spec asks readers to accept numbers too."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _clean(value) if isinstance(value, str) else None


def _json_authors(obj: dict[str, object]) -> tuple[str, ...]:
    """1.1 ``authors`` (a list), else 1.0 ``author`` (one object)."""
    authors = _dicts(obj, "authors")
    single = obj.get("author")
    if not authors and isinstance(single, dict):
        authors = [single]
    return _distinct(_str(author, "name") for author in authors)


def _iso_date(value: str | None, *, now: datetime) -> datetime | None:
    """An RFC 3339 date; one without an offset is taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        utc = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted past it
        return None
    return _not_future(utc, now=now)


# --- small shared helpers -------------------------------------------------------------


def _not_future(value: datetime, *, now: datetime) -> datetime | None:
    return None if value > now + _FUTURE_SLACK else value


def _unique(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """Entries in order, without the later copies of a guid or a URL already seen."""
    kept: list[Entry] = []
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        keys = {
            (kind, value) for kind, value in (("guid", entry.guid), ("url", entry.url)) if value
        }
        if not keys & seen:
            kept.append(entry)
        seen |= keys
    return tuple(kept)


def _http_url(value: str | None, *, base: str) -> str | None:
    """``value`` made absolute against ``base``, if it is then an http(s) URL."""
    value = value.strip() if value else None
    if not value:
        return None
    try:
        url = urljoin(base, value)
    except ValueError:  # e.g. an invalid IPv6 host
        return None
    return url if _is_absolute_http(url) else None


def _is_absolute_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _as_text(value: str | None, kind: str | None) -> str | None:
    """Plain text of a value that may be HTML, whitespace collapsed, None if empty."""
    if value is None or kind not in _HTML_TYPES:
        return _clean(value)
    tree = LexborHTMLParser(value)
    tree.strip_tags(["script", "style", "template", "noscript"])
    for node in tree.css(_BLOCK_TAGS):  # keep "</p><p>" from gluing two words together
        node.insert_before(" ")
        node.insert_after(" ")
    return _clean(tree.body.text(separator="") if tree.body else None)


def _clean(value: str | None) -> str | None:
    """Whitespace runs collapsed to one space; None for nothing but whitespace."""
    return (" ".join(value.split()) or None) if value else None


def _distinct(values: Iterable[str | None]) -> tuple[str, ...]:
    """Cleaned, non-empty values in first-seen order."""
    cleaned = (_clean(value) for value in values)
    return tuple(dict.fromkeys(value for value in cleaned if value))


def _positive_int(value: str | None) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if number > 0 else None


def _str(obj: object, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def _dicts(obj: dict[str, object], key: str) -> list[dict[str, object]]:
    value = obj.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
