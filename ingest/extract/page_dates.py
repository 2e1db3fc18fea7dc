"""When a page says it was published and last modified.

The sources of the publication date, in the order they are trusted (htmldate,
trafilatura's date finder, showed the value of most of them; the code here is our own):

1. Dates declared for machines in ISO 8601: JSON-LD ``datePublished``,
   ``article:published_time`` and other meta tags (the caller collects them).
2. A full date in the URL path (/2025/05/21/): CMSes write the publication day there
   and never change it.
3. An "Originally published on ..." note anywhere on the page.
4. The byline: dates printed around the headline, ``<time>`` elements first (they carry
   the time and offset), each read with the label before it, so that "Updated 3 May"
   is taken as the modified date and never as the published one.
5. Declared dates that are not ISO 8601 ("Jun 24, 2025" in JSON-LD): a template filled
   in with a display date, often the last time the page was re-published, so the byline
   outranks them.
6. Publication dates in the page's script data (``"publishedAt": "2025-..."``), which
   client-rendered sites carry even when they print nothing.
7. Date-named elements (``.post-date``, ``<time>``) anywhere, when labelled published.
8. The modified date, when the page gives no other (see find_dates).
9. Unlabelled dates in date-named elements anywhere.

The modified date comes from declared dates, then "Updated"-labelled dates in the byline
and in date-named elements, then a "Last updated: ..." note anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.extract.dates import (
    LABEL_REACH,
    date_from_url,
    date_label,
    is_iso_date,
    parse_date,
    text_dates,
)

# How far above the headline to look for a printed date, and how much text to read:
# beyond a few levels or a few thousand characters we are reading the article itself.
_DATE_LEVELS = 4
_DATE_TEXT_LIMIT = 3000
# Otherwise, how much text around the headline to read: a byline runs to a line or two
# after it (after a standfirst, sometimes), a dateline or kicker a little before it.
_AFTER_HEADLINE = 450
_BEFORE_HEADLINE = 120
# Headings to compare with the title when looking for the headline.
_HEADINGS = 20
# Share of the title's words a heading must hold to be taken for the headline.
_TITLE_OVERLAP = 0.7
_WORD = re.compile(r"\w+")
# (Matches come in document order; "[class*='date' i]" also stands for .date, .post-date,
# .entry-date and .dateline.)
_DATE_SELECTOR = (
    "time, .published, .byline, .meta, [class*='date' i], [class*='time' i], "
    "[itemprop='datePublished']"
)
# Date-named elements to read at most, and the longest text one may hold: beyond that
# it is a container of many things, not a date line.
_DATE_NODES = 36
_DATE_NODE_TEXT = 200
# Class, id and itemprop words that say which date an element holds.
_MODIFIED_NAME = re.compile(r"modif|updat|revis|edited", re.IGNORECASE)
_PUBLISHED_NAME = re.compile(r"publish|pubdate|posted|entry-date|post-date|created", re.IGNORECASE)
_INVISIBLE = frozenset({"script", "style", "noscript", "template"})
_INVISIBLE_SELECTOR = ", ".join(sorted(_INVISIBLE))
# Publication-date keys in script data (Next.js, Nuxt, Apollo state), with an ISO value.
_SCRIPT_DATE = re.compile(
    r'"(?:datePublished|publishedAt|published_at|publishDate|publish_date|date_published'
    r'|firstPublishedAt|first_published_at|postedAt|datePosted|publicationDate)"\s*:\s*'
    r'"((?:19|20)\d\d-\d\d-\d\d[^"]{0,30})"'
)
_SCRIPT_TEXT_LIMIT = 2_000_000
# Notes that date the page wherever they stand, in the page's footer as often as in its
# header. "Originally published on 26 Sep 2019" keeps the first date of an evergreen guide
# re-dated on every update; "Last updated: November 13, 2025" dates pages with no byline.
# Plain phrases, found with str.find: a regular expression over a whole page's text
# costs tens of milliseconds.
_ORIGINALLY = (
    "originally published",
    "originally posted",
    "first published",
    "first posted",
    "ursprünglich veröffentlicht",
    "publié à l'origine",
    "publié initialement",
    "publicado originalmente",
)
_LAST_UPDATED = (
    "last updated",
    "last modified",
    "last reviewed",
    "page updated",
    "zuletzt aktualisiert",
    "dernière mise à jour",
    "última actualización",
    "ultimo aggiornamento",
)
# The characters outside ASCII whose lower case holds a letter of those phrases (from a
# scan of all of Unicode; a test checks it): "É" for "publié", the Kelvin sign for "k".
_FOLDS_INTO_NOTES = "ÀÈÉÓÖÚÜ\u0130\u212a"
# Published and modified times this close are one edit: the page was (re-)published then.
_SAME_EDIT = timedelta(minutes=10)
# Occurrences of a phrase to try before giving up on it.
_NOTE_TRIES = 5


@dataclass(frozen=True, slots=True)
class Declared:
    """Date strings a page declares for machines (JSON-LD, meta), most trusted first."""

    published: tuple[str, ...]
    modified: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PageDates:
    """The page's publication and last-modification times, each with the page's offset."""

    published: datetime | None
    modified: datetime | None


@dataclass(frozen=True, slots=True)
class _Seen:
    """A date seen in the page and what it was labelled as."""

    when: datetime
    kind: str | None  # "published", "modified" or None


def find_dates(
    tree: LexborHTMLParser,
    declared: Declared,
    *,
    title: str | None,
    url: str | None,
    h1: list[LexborNode],
    scripts: list[LexborNode],
) -> PageDates:
    """The published and modified times of the page, from the sources in order.

    ``h1`` holds the page's <h1> elements in document order (the metadata query finds
    them along with the <meta> tags, saving a walk over the page), and ``scripts`` its
    <script> elements, in document order, which the caller took out of the tree.
    """
    page = _Page(tree, title, h1)
    declared_modified = _first(parse_date(v) for v in declared.modified)
    modified = (
        declared_modified
        or _pick(page.byline, "modified")
        or _pick(page.named, "modified")
        or _note(page, _LAST_UPDATED)
    )
    published = (
        _declared_published(declared, declared_modified, page)
        or date_from_url(url)
        or _note(page, _ORIGINALLY)
        or _pick(page.byline, "published")
        or _first(parse_date(v) for v in declared.published if not is_iso_date(v))
        or _script_date(scripts)
        or _pick(page.named, "published", unlabelled=False)
        # A page that states only when it was last updated: that is when the version
        # the reader gets was published, and the best date it offers (htmldate falls
        # back the same way). It outranks unlabelled dates away from the headline,
        # which may belong to anything.
        or modified
        or _pick(page.named, "published")
    )
    return PageDates(published, modified)


def _declared_published(
    declared: Declared, modified: datetime | None, page: _Page
) -> datetime | None:
    """The first ISO 8601 declared publication date, unless it is a re-publish stamp.

    Some CMSes (Webflow among them) declare as "published" the last time the page was
    re-published: then it equals the modified time to the minute, and the byline still
    prints the original, earlier day, which is the one to believe.
    """
    found = _first(parse_date(v) for v in declared.published if is_iso_date(v))
    if found is None or modified is None or abs(found - modified) > _SAME_EDIT:
        return found
    printed = _pick(page.byline, "published")
    # Earlier as a day and as an instant: a <time> of the same instant in another
    # offset may print the day before.
    if printed is not None and printed.date() < found.date() and printed < found - _SAME_EDIT:
        return printed
    return found


class _Page:
    """The page's visible date sources, each read once and only when asked for."""

    def __init__(self, tree: LexborHTMLParser, title: str | None, h1: list[LexborNode]) -> None:
        self._tree = tree
        self._title = title
        self._h1 = h1

    @cached_property
    def byline(self) -> list[_Seen]:
        return _byline(self._tree, self._title, self._h1)

    @cached_property
    def named(self) -> list[_Seen]:
        return list(_named_dates(self._tree))

    @cached_property
    def text(self) -> str:
        """The body's text (text nodes joined by spaces).

        Scripts and styles are out of the tree by now, so the text holds none of their
        contents: a note is something the reader sees, and a script's data is not
        ("Last updated" as a label in a translation table).
        """
        body = self._tree.body
        return body.text(separator=" ") if body is not None else ""

    @cached_property
    def lowered(self) -> str:
        return self.text.lower()

    @cached_property
    def ascii_lowered(self) -> bytes:
        return self.text.encode("utf-8", "surrogatepass").lower()

    @cached_property
    def folds_into_notes(self) -> bool:
        """Whether the text holds a character whose lower case an ASCII search misses.

        Kept: both note searches ask, and each answer reads the whole text again.
        """
        text = self.text
        return any(char in text for char in _FOLDS_INTO_NOTES)

    def may_hold(self, phrases: tuple[str, ...]) -> bool:
        """Could the lower-cased text hold one of ``phrases``? Decided without it.

        Lower-casing text that is not all ASCII goes a character at a time, and most
        pages hold no note: lowering the ASCII letters of the UTF-8 bytes is several
        times cheaper, and finds every phrase the lower-cased text holds unless the text
        has a character of ``_FOLDS_INTO_NOTES``.
        """
        return self.folds_into_notes or any(
            phrase.encode() in self.ascii_lowered for phrase in phrases
        )


def _first(values: Iterable[datetime | None]) -> datetime | None:
    return next((v for v in values if v is not None), None)


def _pick(seen: Iterable[_Seen], kind: str, *, unlabelled: bool = True) -> datetime | None:
    """The first date labelled ``kind``; else, for "published", the first unlabelled one
    (a date line without a label is the publication date: updates are announced)."""
    fallback = None
    for item in seen:
        if item.kind == kind:
            return item.when
        if item.kind is None and fallback is None:
            fallback = item.when
    return fallback if kind == "published" and unlabelled else None


def _byline(tree: LexborHTMLParser, title: str | None, h1: list[LexborNode]) -> list[_Seen]:
    """Dates printed around the headline.

    Pages nearly always print their date in the header block around the headline
    ("Published on July 18, 2025", "By Jane Roe - Mar 27, 2024"). The h1's ancestors
    are read a level at a time, stopping at the first level that names a date; when
    the headline sits straight in a large container, the text just before and after
    it is read instead.
    """
    headline = _headline(tree, title, h1)
    if headline is None:
        return []
    node = headline.parent
    seen: list[_Seen] = []
    for _ in range(_DATE_LEVELS):
        if node is None or node.tag in ("body", "html") or len(node.text()) > _DATE_TEXT_LIMIT:
            break
        seen = [*_time_dates(node.css("time")), *_text_dates(_visible_text(node))]
        if any(item.kind != "modified" for item in seen):
            return seen
        node = node.parent
    after, times = _after(headline)
    around = _text_before(headline, _BEFORE_HEADLINE) + " | " + after
    return [*seen, *_time_dates(times), *_text_dates(around)]


def _headline(tree: LexborHTMLParser, title: str | None, h1: list[LexborNode]) -> LexborNode | None:
    """The page's headline: the <h1> that reads as the title, else the first <h1>;
    on pages without an <h1>, the first lower heading that reads as the title."""
    body = tree.body
    if body is None:
        return None
    shown = [h for h in h1[:_HEADINGS] if h.text().strip()]
    if shown:
        return _titled(shown, title) or shown[0]
    return _titled(body.css("h2, h3")[:_HEADINGS], title)


def _titled(headings: Iterable[LexborNode], title: str | None) -> LexborNode | None:
    """The first heading that reads as the title: holding most of its words, as
    headlines do that differ from the <title> by a word or a subtitle."""
    wanted = set(_WORD.findall((title or "").casefold()))
    if not wanted:
        return None
    for heading in headings:
        words = set(_WORD.findall(heading.text().casefold()))
        if len(words & wanted) >= _TITLE_OVERLAP * len(wanted):
            return heading
    return None


def _after(node: LexborNode) -> tuple[str, list[LexborNode]]:
    """Up to _AFTER_HEADLINE characters of visible text after ``node``, in page order,
    and the <time> elements of the blocks that fit in it whole."""
    parts: list[str] = []
    times: list[LexborNode] = []
    size = 0
    current: LexborNode | None = node
    while current is not None and size < _AFTER_HEADLINE:
        following = current.next
        while following is None:
            current = current.parent
            if current is None or current.tag in ("body", "html"):
                return " ".join(parts), times
            following = current.next
        current = following
        if current.tag in _INVISIBLE or current.tag == "-comment":
            continue
        text = _squeezed(current.text(deep=True, separator=" "), _AFTER_HEADLINE - size)
        if size + len(text) <= _AFTER_HEADLINE and current.tag != "-text":
            times.extend(current.css("time") if current.tag != "time" else [current])
        parts.append(text[: _AFTER_HEADLINE - size])
        size += len(text)
    return " ".join(parts), times


def _squeezed(text: str, room: int) -> str:
    """The text with its whitespace runs made single spaces, whole if that fits in
    ``room`` characters, else a longer prefix of it.

    The block after a headline is often the whole article: squeezing all of it to keep
    a few hundred characters was a third of the byline search's time. Squeezing a
    prefix of the text gives a prefix of the squeezed text, so a prefix is squeezed,
    four times longer each time, until it runs past ``room``.
    """
    end = 2 * room + 64
    while True:
        squeezed = " ".join(text[:end].split())
        if len(squeezed) > room or end >= len(text):
            return squeezed
        end *= 4


def _text_before(node: LexborNode, limit: int) -> str:
    """Up to ``limit`` characters of visible text before ``node``, in page order."""
    parts: list[str] = []
    size = 0
    current: LexborNode | None = node
    for _ in range(_DATE_LEVELS):
        if current is None:
            break
        sibling = current.prev
        while sibling is not None and size < limit:
            if sibling.tag not in _INVISIBLE:
                text = " ".join(sibling.text(deep=True, separator=" ").split())
                parts.append(text[-(limit - size) :])
                size += len(text)
            sibling = sibling.prev
        if size >= limit:
            break
        current = current.parent
        if current is None or current.tag in ("body", "html"):
            break
    return " ".join(reversed(parts))


def _time_dates(nodes: Iterable[LexborNode]) -> Iterator[_Seen]:
    """Dates of <time> elements, labelled by their own names or the text before them."""
    for node in nodes:
        attrs = node.attributes
        when = parse_date(attrs.get("datetime") or attrs.get("content") or node.text())
        if when is not None:
            yield _Seen(when, _named_kind(attrs) or _label_before(node))


def _text_dates(text: str) -> Iterator[_Seen]:
    for found in text_dates(text):
        yield _Seen(found.when, found.kind)


def _named_dates(tree: LexborHTMLParser) -> Iterator[_Seen]:
    """Dates in date-named elements anywhere on the page.

    Leaving out those inside sidebars, footers or lists of other articles was tried
    and lost more than it saved: many templates put the article's own date in an
    <aside>, a <footer> or a "post-sidebar", and those come before the other lists.
    """
    body = tree.body
    if body is None:
        return
    for node in body.css(_DATE_SELECTOR)[:_DATE_NODES]:
        attrs = node.attributes
        machine = parse_date(attrs.get("datetime") or attrs.get("content"))
        kind = _named_kind(attrs)
        if machine is not None:
            yield _Seen(machine, kind or _label_before(node))
            continue
        text = node.text(separator=" ")
        if len(text) < _DATE_NODE_TEXT:
            for found in text_dates(text):
                yield _Seen(found.when, found.kind or kind or _label_before(node))


def _named_kind(attrs: dict[str, str | None]) -> str | None:
    """What an element's class, id, itemprop or pubdate attribute (of ``attrs``, its
    attributes) say its date is."""
    if "pubdate" in attrs:
        return "published"
    names = " ".join(attrs.get(k) or "" for k in ("itemprop", "class", "id"))
    if _MODIFIED_NAME.search(names):
        return "modified"
    if _PUBLISHED_NAME.search(names):
        return "published"
    return None


def _label_before(node: LexborNode) -> str | None:
    """The label in the text just before a node ("Updated on" <time>), if any."""
    return date_label(_text_before(node, LABEL_REACH))


def _visible_text(node: LexborNode) -> str:
    """The node's text without script and style contents (text nodes joined by spaces,
    those of whitespace only left out)."""
    # Most blocks around a headline hold no script or style: their text is then read
    # in C, where the walk below takes a Python step per node.
    if node.css_first(_INVISIBLE_SELECTOR) is None:
        return node.text(separator=" ", skip_empty=True)
    # (Each ``parent`` asked of a node builds a new node object: ask once.)
    return " ".join(
        text
        for child in node.traverse(include_text=True, skip_empty=True)
        if child.tag == "-text"
        and ((parent := child.parent) is None or parent.tag not in _INVISIBLE)
        and (text := child.text(deep=False))
    )


def _note(page: _Page, phrases: tuple[str, ...]) -> datetime | None:
    """The date right after one of ``phrases`` anywhere in the page's lower-cased text.

    One search per phrase over the lower-cased text, rather than one per spelling
    ("Last updated", "Last Updated", "LAST UPDATED") over the text as written: each
    search reads the whole page. Dates are read case-insensitively, so the lower-cased
    text gives the same date.
    """
    if not page.may_hold(phrases):
        return None
    text = page.lowered
    for phrase in phrases:
        at = text.find(phrase)
        for _ in range(_NOTE_TRIES):
            if at < 0:
                break
            end = at + len(phrase)
            found = text_dates(text[end : end + LABEL_REACH])
            if found:
                return found[0].when
            at = text.find(phrase, end)
    return None


def _script_date(scripts: list[LexborNode]) -> datetime | None:
    """A publication date in the page's script data, the first in document order."""
    size = 0
    for script in scripts:
        text = script.text()
        size += len(text)
        if size > _SCRIPT_TEXT_LIMIT:
            return None
        for match in _SCRIPT_DATE.finditer(text.replace('\\"', '"')):
            found = parse_date(match.group(1))
            if found is not None:
                return found
    return None
