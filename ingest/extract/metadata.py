"""Page metadata: title, authors, dates, language, site, description, image, tags, URL.

Sources are tried from most to least deliberate: JSON-LD (schema.org, written for search
engines and usually right), then OpenGraph / ``article:*`` / Dublin Core meta tags, then
visible markup (``<time>``, bylines, ``<h1>``, ``<title>``), then the URL. This runs
before boilerplate removal; the one change it makes to the tree is to take the scripts and
styles out (see ``read_metadata``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.extract.page_dates import Declared, find_dates
from ingest.extract.sanitize import resolve

_ARTICLE_TYPES = frozenset(
    {
        "article",
        "newsarticle",
        "blogposting",
        "reportagenewsarticle",
        "analysisnewsarticle",
        "opinionnewsarticle",
        "reviewnewsarticle",
        "backgroundnewsarticle",
        "report",
        "scholarlyarticle",
        "techarticle",
        "socialmediaposting",
        "liveblogposting",
        "posting",
        "review",
        "medicalwebpage",
        "howto",
        "recipe",
    }
)
_NESTED_TYPES = frozenset(t for t in _ARTICLE_TYPES if "article" in t or "posting" in t)
_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "article.published",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "published_date",
    "published_time",
    "publication_date",
    "date_published",
    "parsely-pub-date",
    "sailthru.date",
    "citation_publication_date",
    "citation_date",
    "citation_online_date",
    "dc.date.issued",
    "dcterms.issued",
    "dcterms.created",
    "dc.date.created",
    "dc.date",
    "dcterms.date",
    "date",
    "og:published_time",
    "article:published",
    "cxenseparse:recs:publishtime",
)
# Other meta names that hold a publication date ("w-published-date", "published"),
# tried after the known ones; "publisher" names an organisation, not a date.
_PUBLISHED_KEY = re.compile(r"publish|pubdate|issued|release_?date")
_NOT_PUBLISHED = re.compile(r"publisher|modif|updat")
_MODIFIED_META = (
    "article:modified_time",
    "og:updated_time",
    "og:article:modified_time",
    "datemodified",
    "dcterms.modified",
    "dc.modified",
    "modified_time",
    "last-modified",
)
_AUTHOR_META = (
    "author",
    "article:author",
    "parsely-author",
    "sailthru.author",
    "dc.creator",
    "byl",
)
# Byline elements, most specific first; [class*=author] catches the many CMS variants
# ("authorDateBlock_authorName__N6j3Y", "post-author-name").
# Matches come in document order whatever the selector order, so the class substrings
# "author" and "byline" also stand for .author-name, .byline__name, .post-author and the
# like (one substring test per element is what costs here).
_BYLINE_SELECTOR = (
    '[rel="author"], [itemprop="author"], a[href*="/author/"], '
    "[class*='author' i], [class*='byline' i]"
)
_ROLE_SUFFIX = re.compile(r"\s+[-|•·–—]\s+")
# Labels that byline markup holds when the name itself is elsewhere.
_NOT_NAMES = frozenset(
    {"by", "author", "authors", "the author", "admin", "written by", "posted by"}
)
# A byline candidate holding a number is a date line or a "3 min read", not a name.
_DIGITS = re.compile(r"\d")
# Separators sites put between the headline and their name in <title>.
_TITLE_SPLIT = re.compile(r"\s+(?:[|\-–—:·•»«]|::)\s+")
_BY_PREFIX = re.compile(
    r"^\s*(?:(?:written|posted|reviewed|published)\s+by|author|by|von|par|por|di|door|av|af)"
    r"\s*[:\-]?\s+",
    re.IGNORECASE,
)
_MAX_AUTHOR_LEN = 80
# The elements most metadata comes from (``_elements``), the <h1> headings that the
# title and the dates fall back on, and the scripts and styles to take out of the tree.
# The attribute value is matched as HTML does: ``rel`` ignoring case (and so is ``type``
# in ``_is_json_ld``).
_ELEMENTS = 'meta, script, style, link[rel="canonical"], title, h1'
_JSON_LD = "application/ld+json"
_LD_WRAPPER = re.compile(r"^(?://\s*)?(?:<!\[CDATA\[|<!--)|(?://\s*)?(?:\]\]>|-->)$")
_LD_WRAPPER_ENDS = ("]]>", "-->")


@dataclass(frozen=True, slots=True)
class Metadata:
    """Everything about the page except its body."""

    canonical_url: str | None
    title: str | None
    authors: tuple[str, ...]
    published: datetime | None
    modified: datetime | None
    language: str | None
    site_name: str | None
    description: str | None
    image: str | None
    tags: tuple[str, ...]


def read_metadata(tree: LexborHTMLParser, *, url: str | None) -> Metadata:
    """Collect the page's metadata from JSON-LD, meta tags, visible markup and the URL.

    The page's scripts and styles are taken out of the tree first, each detached whole
    (its contents stay readable from the node), and their contents are read from the
    nodes. They are data, never text, and they were most of the page's text (62% of the
    body text of the benchmark pages): out of the tree, every text read and query after
    this, here and in the content search, has that much less to go through.
    """
    elements = _elements(tree)
    scripts = elements.get("script", [])
    for node in (*scripts, *elements.get("style", [])):
        node.decompose(recursive=False)  # (unlinked only: the subtree stays whole)
    meta = _meta_tags(elements.get("meta", []))
    ld = _json_ld_article([node for node in scripts if _is_json_ld(node)], meta)
    site_name = _first(
        meta.get("og:site_name"), _ld_name(ld.get("publisher")), meta.get("application-name")
    )
    base = url or ""
    h1 = elements.get("h1", [])
    title = _title(meta, ld, site_name, elements.get("title", [None])[0], h1)
    dates = find_dates(tree, _declared(meta, ld), title=title, url=url, h1=h1, scripts=scripts)
    return Metadata(
        canonical_url=_canonical(elements.get("link", [None])[0], meta, base) or url,
        title=title,
        authors=_authors(tree, meta, ld),
        published=dates.published,
        modified=dates.modified,
        language=_language(tree, meta, ld),
        site_name=_clean(site_name),
        description=_clean(
            _first(
                meta.get("og:description"),
                meta.get("description"),
                meta.get("twitter:description"),
                _ld_str(ld.get("description")),
            )
        ),
        image=_absolute(
            _first(
                meta.get("og:image"),
                meta.get("og:image:url"),
                meta.get("og:image:secure_url"),
                meta.get("twitter:image"),
                meta.get("twitter:image:src"),
                _ld_image(ld.get("image")),
            ),
            base,
        ),
        tags=_tags(meta, ld),
    )


def _elements(tree: LexborHTMLParser) -> dict[str, list[LexborNode]]:
    """The page's <meta>, <script>, <style>, canonical <link>, <title> and <h1>
    elements, by tag, in document order.

    One query finds them all: each query walks the whole page, and five cost about
    twice as much as one.
    """
    found: dict[str, list[LexborNode]] = {}
    for node in tree.css(_ELEMENTS):
        found.setdefault(node.tag or "", []).append(node)
    return found


def _is_json_ld(script: LexborNode) -> bool:
    """Does the <script> hold JSON-LD (its type compared ignoring ASCII case, as HTML
    matches ``type`` in selectors)?"""
    kind = script.attributes.get("type")
    return kind is not None and kind.lower() == _JSON_LD


class _Meta(dict[str, str]):
    """Meta tag values by lower-cased name/property; ``article:tag`` keeps all values;
    ``ld_json`` holds the JSON-LD that some frameworks write into a meta tag."""

    tags: list[str]
    ld_json: list[str]


def _meta_tags(nodes: list[LexborNode]) -> _Meta:
    found = _Meta()
    found.tags = []
    found.ld_json = []
    for node in nodes:
        attrs = node.attributes
        if attrs.get("name") == "script:ld+json":
            found.ld_json.append(attrs.get("content") or "")
        key = (
            attrs.get("property")
            or attrs.get("name")
            or attrs.get("itemprop")
            or attrs.get("http-equiv")
        )
        content = attrs.get("content")
        if not key or content is None or not content.strip():
            continue
        key = key.strip().lower()
        if key in ("article:tag", "og:article:tag"):
            found.tags.append(content.strip())
        # The first occurrence wins: later duplicates are usually from embedded widgets.
        found.setdefault(key, content.strip())
    return found


def _json_ld_article(scripts: list[LexborNode], meta: _Meta) -> dict[str, Any]:
    """The first schema.org article-like object of the page's JSON-LD, or {}.

    Objects at the top, in lists, in @graph and in mainEntity come first; failing those,
    an article or post nested in any other property (a Blog's ``blogPost``) will do,
    but not a nested Review, which is a customer's review of a business.
    """
    fallback: dict[str, Any] = {}
    documents: list[Any] = []
    for nested in (False, True):
        for document in documents if nested else _ld_documents(scripts, meta, documents):
            for item in _ld_items(document, nested=nested):
                types = item.get("@type")
                names = {str(t).lower() for t in (types if isinstance(types, list) else [types])}
                if names & (_NESTED_TYPES if nested else _ARTICLE_TYPES):
                    return item
                if not fallback and names & {"webpage", "itempage"}:
                    fallback = item
    return fallback


def _ld_documents(scripts: list[LexborNode], meta: _Meta, seen: list[Any]) -> Iterator[Any]:
    """The page's JSON-LD documents, parsed one at a time and kept in ``seen``."""
    # Some frameworks write their JSON-LD into a meta tag instead of a script; scripts
    # are read first.
    for text in (*(s.text() for s in scripts), *meta.ld_json):
        seen.append(_load_json(text))
        yield seen[-1]


def _load_json(text: str) -> Any:
    text = text.strip()
    # CMSes wrap JSON-LD in CDATA or HTML comments, or leave trailing semicolons. The
    # wrapper pattern can only match text that starts or ends like one, and searching
    # it through a long document that does not costs more than parsing the JSON.
    if text.startswith(("//", "<!")) or text.endswith(_LD_WRAPPER_ENDS):
        text = _LD_WRAPPER.sub("", text).strip()
    text = text.rstrip(";")
    try:
        return json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return None


def _ld_items(data: Any, depth: int = 0, *, nested: bool = False) -> Iterator[dict[str, Any]]:
    """Objects of a JSON-LD document: top level, lists, @graph and mainEntity, depth
    first; with ``nested``, also the objects held by any other property."""
    if depth > 4:
        return
    if isinstance(data, list):
        for item in data:
            yield from _ld_items(item, depth + 1, nested=nested)
    elif isinstance(data, dict):
        yield data
        keys = data if nested else ("@graph", "mainEntity")
        for key in keys:
            value = data.get(key)
            if isinstance(value, dict | list):
                yield from _ld_items(value, depth + 1, nested=nested)


def _ld_str(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _ld_name(value: Any) -> str | None:
    if isinstance(value, dict):
        return _ld_str(value.get("name"))
    return _ld_str(value)


def _ld_image(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or value.get("@id")
    return value if isinstance(value, str) else None


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v and v.strip()), None)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def _absolute(value: str | None, base: str) -> str | None:
    if not value:
        return None
    try:
        absolute = resolve(value.strip(), base)
    except ValueError:
        return None
    return absolute if absolute.startswith(("http://", "https://")) else None


def _canonical(link: LexborNode | None, meta: _Meta, base: str) -> str | None:
    href = link.attributes.get("href") if link is not None else None
    return _absolute(href, base) or _absolute(meta.get("og:url"), base)


def _title(
    meta: _Meta,
    ld: dict[str, Any],
    site: str | None,
    title: LexborNode | None,
    h1: list[LexborNode],
) -> str | None:
    for candidate in (meta.get("og:title"), _ld_str(ld.get("headline")), meta.get("twitter:title")):
        cleaned = _clean(candidate)
        if cleaned:
            return _strip_site(cleaned, site)
    if len(h1) == 1:
        text = _clean(h1[0].text())
        if text:
            return text
    text = _clean(title.text()) if title is not None else None
    return _strip_site(text, site) if text else None


def _strip_site(title: str, site: str | None) -> str:
    """Drop a "Headline - Site" suffix (or "Site | Headline" prefix) from a title."""
    parts = _TITLE_SPLIT.split(title)
    if len(parts) < 2:
        return title
    site_key = _key(site) if site else ""
    if site_key:
        kept = [p for p in parts if _key(p) != site_key and site_key not in _key(p)]
        if kept and len(kept) < len(parts):
            return " - ".join(kept) if len(kept) > 1 else kept[0]
    # No known site name: the last part is the site if it is short and the rest is long.
    if len(parts[-1]) <= 30 and len(" ".join(parts[:-1])) >= 2 * len(parts[-1]):
        return title[: title.rfind(parts[-1])].rstrip(" |-–—:·•»«")
    return title


def _key(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())


def _authors(tree: LexborHTMLParser, meta: _Meta, ld: dict[str, Any]) -> tuple[str, ...]:
    """Authors in order of trust: JSON-LD people, the visible byline, meta tags, then
    JSON-LD organisations (a publisher named as author is a fallback, not a byline)."""
    people, organisations = _ld_authors(ld.get("author"))
    if people:
        return _dedupe(n for name in people if (n := _clean_author(name)))
    meta_names = [v for k in _AUTHOR_META if (v := meta.get(k)) and not _is_url(v)][:1]
    # A meta author without a space is usually a CMS user name ("jsmith", "andrew.k").
    named = [n for n in meta_names if " " in n.strip()]
    # Left a generator, the byline's query over the whole page runs only when no named
    # meta author was kept: on 450 of the 892 benchmark pages rather than 602.
    for names in (named, _byline_authors(tree), organisations, meta_names):
        cleaned = _dedupe(n for name in names if (n := _clean_author(name)))
        if cleaned:
            return cleaned
    return ()


def _ld_authors(value: Any) -> tuple[list[str], list[str]]:
    """Names of JSON-LD authors, split into (people, organisations)."""
    people: list[str] = []
    organisations: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        name = _ld_name(item)
        if not name or _is_url(name):
            continue
        kind = item.get("@type") if isinstance(item, dict) else None
        is_org = isinstance(kind, str) and kind.lower() in ("organization", "newsmediaorganization")
        (organisations if is_org else people).append(name)
    return people, organisations


def _byline_authors(tree: LexborHTMLParser) -> Iterator[str]:
    """The name in the first of the page's first dozen byline elements that holds one.

    The first one usually does, and ``css_first`` stops its walk over the page there:
    the whole list is asked for only when the first one fails.
    """
    body = tree.body
    first = body.css_first(_BYLINE_SELECTOR) if body is not None else None
    if body is None or first is None:
        return
    name = _byline_name(first)
    if name is None:
        names = (_byline_name(node) for node in body.css(_BYLINE_SELECTOR)[1:12])
        name = next((n for n in names if n is not None), None)
    if name is not None:
        yield name


def _byline_name(node: LexborNode) -> str | None:
    inner = node.css_first('[itemprop="name"]')
    text = _clean((inner or node).text(separator=" "))
    if text and len(text) <= _MAX_AUTHOR_LEN and not _DIGITS.search(text):
        return text
    return None


def _clean_author(name: str) -> str | None:
    name = _BY_PREFIX.sub("", " ".join(name.split())).strip(" ,|")
    # "Jane Roe - Staff Writer", "Jane Roe | Editor": the name comes first.
    name = _ROLE_SUFFIX.split(name, maxsplit=1)[0]
    if not name or len(name) > _MAX_AUTHOR_LEN or not re.search(r"[^\W\d_]", name):
        return None
    return None if name.casefold() in _NOT_NAMES else name


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "/"))


def _declared(meta: _Meta, ld: dict[str, Any]) -> Declared:
    """The date strings of JSON-LD and meta tags, most trusted first."""
    published = [
        _ld_str(ld.get("datePublished")),
        *(meta.get(k) for k in _PUBLISHED_META),
        _ld_str(ld.get("dateCreated")),
        *(v for k, v in meta.items() if _PUBLISHED_KEY.search(k) and not _NOT_PUBLISHED.search(k)),
    ]
    modified = [_ld_str(ld.get("dateModified")), *(meta.get(k) for k in _MODIFIED_META)]
    return Declared(
        published=tuple(v for v in published if v), modified=tuple(v for v in modified if v)
    )


def _language(tree: LexborHTMLParser, meta: _Meta, ld: dict[str, Any]) -> str | None:
    root = tree.root
    lang = root.attributes.get("lang") if root is not None else None
    for value in (
        lang,
        meta.get("content-language"),
        meta.get("og:locale"),
        _ld_str(ld.get("inLanguage")),
    ):
        if value:
            # Keep the primary subtag ("en-GB", "en_US" -> "en"): what filtering needs.
            primary = re.split(r"[-_]", value.strip())[0].lower()
            if re.fullmatch(r"[a-z]{2,3}", primary):
                return primary
    return None


def _tags(meta: _Meta, ld: dict[str, Any]) -> tuple[str, ...]:
    if meta.tags:
        return _dedupe(meta.tags)
    keywords = ld.get("keywords")
    if isinstance(keywords, str):
        return _dedupe(keywords.split(","))
    if isinstance(keywords, list):
        return _dedupe(k for k in keywords if isinstance(k, str))
    return _dedupe((meta.get("keywords") or meta.get("news_keywords") or "").split(","))


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        cleaned = " ".join(value.split())
        if cleaned and cleaned.casefold() not in seen:
            seen.add(cleaned.casefold())
            kept.append(cleaned)
    return tuple(kept)
