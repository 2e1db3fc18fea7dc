"""Allowlist HTML of the main content: safe to show, links absolute.

The output is rebuilt from the tree rather than filtered in place: only allowlisted tags
and attributes are written, every text and attribute is escaped, URLs are made absolute
and kept only for http(s) (and mailto for links). Disallowed wrapper tags (``span``,
``font``, custom elements) are unwrapped; dangerous or useless ones (scripts, frames,
forms, styles, media players) are dropped with their content. Event handlers and
``style`` attributes never survive because no attribute outside the allowlist does.

``html_tags`` is that policy for one element; ``text.render`` applies it in the walk that
also writes the text and Markdown, and ``sanitize`` is the same walk for the HTML alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborNode

_ALLOWED = frozenset(
    {
        "a",
        "abbr",
        "article",
        "b",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "dd",
        "del",
        "details",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "section",
        "small",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "u",
        "ul",
        "var",
    }
)
_DROPPED = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "canvas",
        "form",
        "input",
        "button",
        "select",
        "textarea",
        "option",
        "label",
        "link",
        "meta",
        "base",
        "head",
        "title",
        "audio",
        "video",
        "source",
        "track",
        "map",
        "area",
        "dialog",
        "portal",
    }
)
_VOID = frozenset({"br", "hr", "img"})
_ATTRIBUTES = {
    "a": ("href", "title"),
    "img": ("src", "alt", "title", "width", "height"),
    "td": ("colspan", "rowspan"),
    "th": ("colspan", "rowspan", "scope"),
    "ol": ("start",),
    "time": ("datetime",),
    "abbr": ("title",),
    "blockquote": ("cite",),
    "q": ("cite",),
}
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
# Lazy-loading scripts keep the real image URL here and a placeholder in src.
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-url", "data-hi-res-src")
# Browsers ignore ASCII whitespace and control characters inside a URL scheme, so
# "java\tscript:" is javascript: to them; strip them before looking at the scheme.
_URL_JUNK = re.compile(r"[\x00-\x20\x7f]+")
_SAFE_SCHEMES = frozenset({"http", "https"})


# A URL urljoin gives back unchanged (an absolute http(s) URL with a host), or as the
# base's origin plus itself (a path from the root), as long as it has no params or
# brackets for urljoin to rebuild or reject, and no empty query or fragment ("x?",
# "x#"), which urljoin drops. Most links and images on a page are one of the two, and
# urljoin + urlsplit (pure Python) were a fifth of the cost of rendering a page; a
# query is common on images ("?w=800"). tests/test_extract_render.py checks the
# shortcut against urljoin.
_PLAIN_URL = re.compile(r"(?:https?://[^/;?#\[\]]|/(?!/))[^;?#\[\]]*(?:\?[^#\[\]]+)?(?:#[^\[\]]+)?")


def safe_url(value: str | None, *, base: str | None, allow_mailto: bool = False) -> str | None:
    """``value`` made absolute against ``base``, or None unless it is http(s)."""
    if not value:
        return None
    joined = _join(value, base)
    if joined is None:
        return None
    absolute, scheme = joined
    if scheme in _SAFE_SCHEMES or (allow_mailto and scheme == "mailto"):
        return absolute
    # Without a base a relative URL stays relative: harmless, and better than nothing.
    return absolute if not scheme and not base and not absolute.startswith("//") else None


def _join(value: str, base: str | None) -> tuple[str, str] | None:
    """``value`` cleaned and made absolute, with its lower-cased scheme; None if empty,
    a fragment or unparseable."""
    # Cached: a page repeats the same few URLs, and text and HTML both ask for each. Not
    # a long value (an inline data: image can be megabytes): a worker lives for days.
    if len(value) > _CACHED_URL_CHARS:
        return _join_uncached(value, base)
    return _join_cached(value, base)


_CACHED_URL_CHARS = 2048


@lru_cache(maxsize=4096)
def _join_cached(value: str, base: str | None) -> tuple[str, str] | None:
    return _join_uncached(value, base)


def _join_uncached(value: str, base: str | None) -> tuple[str, str] | None:
    if not value.isascii():
        cleaned = value.strip()
    elif value.isprintable() and " " not in value:  # (no ASCII control character)
        cleaned = value
    else:
        cleaned = _URL_JUNK.sub("", value)
    if not cleaned or cleaned.startswith("#"):
        return None
    return _join_plain(cleaned, base) or _join_slowly(cleaned, base)


def resolve(value: str, base: str) -> str:
    """``urljoin(base, value)``, without urljoin for plain URLs (see ``_PLAIN_URL``).

    For metadata URLs (canonical, lead image): urljoin and urlsplit were 1% of an
    extraction. Raises ValueError where urljoin does.
    """
    # The shortcut is checked against urljoin on URLs without spaces or controls.
    if value.isprintable() and " " not in value:
        plain = _join_plain(value, base)
        if plain is not None:
            return plain[0]
    return urljoin(base, value)


def _join_plain(cleaned: str, base: str | None) -> tuple[str, str] | None:
    """``cleaned`` made absolute with its scheme, if it is a plain URL; else None."""
    if base and cleaned.isascii() and _PLAIN_URL.fullmatch(cleaned):
        origin = _origin(base)
        if origin is not None:
            if cleaned[0] != "/":
                return cleaned, cleaned[: cleaned.index(":")]
            if "/." not in cleaned:  # "." and ".." segments need urljoin to resolve
                return origin + cleaned, origin[: origin.index(":")]
    return None


def _join_slowly(cleaned: str, base: str | None) -> tuple[str, str] | None:
    try:
        absolute = urljoin(base, cleaned) if base else cleaned
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:
        return None
    return absolute, scheme


@lru_cache(maxsize=64)
def _origin(base: str) -> str | None:
    """``scheme://host`` of an http(s) ``base`` that urljoin can parse, else None."""
    try:
        parts = urlsplit(base)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in _SAFE_SCHEMES else None


# What to write around an element's content: (start tag, end tag). An end of None means
# the content is not written either (void and dropped elements); ("", "") unwraps.
Tags = tuple[str, str | None]
_UNWRAP: Tags = ("", "")
_DROP: Tags = ("", None)
# Every tag whose output needs no look at its attributes, looked up once per element.
_FIXED: dict[str, Tags] = {
    **dict.fromkeys(_DROPPED, _DROP),
    **{
        tag: (f"<{tag}>", None if tag in _VOID else f"</{tag}>")
        for tag in _ALLOWED
        if tag not in _ATTRIBUTES
    },
}


# The tags this policy names (the rest are unwrapped).
KNOWN_TAGS = _ALLOWED | _DROPPED


def fixed_tags(tag: str) -> Tags | None:
    """``html_tags`` of every element ``tag`` names, or None if attributes decide it."""
    return None if tag in _ATTRIBUTES else _FIXED.get(tag, _UNWRAP)


def html_tags(node: LexborNode, tag: str, base: str | None) -> Tags:
    """The start and end tags to write around ``node``'s content (see ``Tags``)."""
    fixed = _FIXED.get(tag)
    if fixed is not None:
        return fixed
    if tag not in _ATTRIBUTES:  # span, font, custom elements: keep the content only
        return _UNWRAP
    start = _start_tag(node, tag, base)
    if start is None:
        return _DROP
    return start, None if tag in _VOID else f"</{tag}>"


def sanitize(root: LexborNode, *, base: str | None) -> str:
    """The allowlisted HTML of ``root`` and its descendants."""
    out: list[str] = []
    # One frame per open element: its children still to visit and its end tag. As in
    # text.render, the child generator is consumed in place and text children are
    # handled in the inner loop, since the Python work per node is what this costs.
    stack: list[tuple[Iterator[LexborNode], str]] = []
    tag = root.tag or ""
    if tag == "-text":
        out.append(escape_text(root.text_content or ""))
    elif tag[:1] != "-" and tag not in _DROPPED:
        stack.append((root.iter(include_text=True), ""))  # the root itself is not written
    while stack:
        for node in stack[-1][0]:
            tag = node.tag or ""
            if tag == "-text":
                out.append(escape_text(node.text_content or ""))
                continue
            # Comments and doctypes ("-comment", "-doctype") are dropped; other
            # non-elements (tag None) have no children, so unwrapping them adds nothing.
            if tag[:1] == "-":
                continue
            start, end = html_tags(node, tag, base)
            if start:
                out.append(start)
            if end is None:
                continue
            stack.append((node.iter(include_text=True), end))
            break
        else:
            end = stack.pop()[1]
            if end:
                out.append(end)
    return "".join(out).strip()


def escape_text(text: str) -> str:
    """``text`` escaped for HTML content (as ``html.escape(text, quote=False)``)."""
    # Most text holds none of the three: testing for them in one expression first skips
    # the loop of replace_present (0.7% of the extractor's instructions, by callgrind).
    if "&" in text or "<" in text or ">" in text:
        return replace_present(text, _HTML_ESCAPES)
    return text


_HTML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def replace_present(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """``text`` with each ``old`` of ``pairs`` replaced by its ``new``, in order.

    The characters escaped in text are rare, and "in" (a memchr) is far cheaper than a
    replace that finds nothing (a char-by-char count), so each is looked for first.
    """
    for old, new in pairs:
        if old in text:
            text = text.replace(old, new)
    return text


def _start_tag(node: LexborNode, tag: str, base: str | None) -> str | None:
    """``<tag attr="...">`` with safe attributes only; None drops the element (an image
    without a usable source)."""
    # One dict of all attributes: each lookup of a missing name through ``node.attrs``
    # raises and catches a KeyError inside selectolax, which costs more than the dict.
    attrs = node.attributes
    parts = [tag]
    for name in _ATTRIBUTES[tag]:
        value = attrs.get(name)
        if tag == "img" and name == "src":
            value = image_source(attrs, value)
        if value is None:
            continue
        if name in _URL_ATTRIBUTES:
            value = safe_url(value, base=base, allow_mailto=tag == "a")
            if value is None:
                continue
        parts.append(f'{name}="{_escape_attribute(value)}"')
    if tag == "img" and not any(p.startswith("src=") for p in parts):
        return None
    return "<" + " ".join(parts) + ">"


def _escape_attribute(value: str) -> str:
    """``value`` escaped for a double-quoted attribute (as ``html.escape(value)``)."""
    # As in escape_text: each character is looked for before it is replaced, since most
    # values (a width, an alt text, a URL without a query) hold none of the five, and
    # escape() runs five replaces over the whole value regardless.
    return replace_present(value, _ATTRIBUTE_ESCAPES)


_ATTRIBUTE_ESCAPES = (*_HTML_ESCAPES, ('"', "&quot;"), ("'", "&#x27;"))


def image_source(attrs: dict[str, str | None], src: str | None) -> str | None:
    """An image's real source: ``src``, unless it is missing or an inline placeholder
    (``data:``) and a lazy-loading attribute holds the URL."""
    if src and not src.startswith("data:"):
        return src
    return next((v for name in _LAZY_SRC if (v := attrs.get(name))), None)
