"""Block-aware plain text and Markdown of the main content, and its sanitized HTML.

One iterative walk over the content subtree (no recursion, so 50,000 nested elements
cannot overflow the stack) writes all three; what the HTML may hold is decided in
``sanitize``. Inline elements add no characters of their own, so
``wor<b>ld</b>`` reads "world"; block elements end the current line; whitespace inside a
block collapses to single spaces as a browser renders it, except in ``<pre>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from selectolax.lexbor import LexborNode

from ingest.extract.sanitize import (
    KNOWN_TAGS,
    Tags,
    escape_text,
    fixed_tags,
    html_tags,
    image_source,
    replace_present,
    safe_url,
)

BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
SKIP_TAGS = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "object",
        "embed",
        "svg",
        "head",
        "button",
        "input",
        "select",
        "textarea",
        "canvas",
        "math",
    }
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_EMPHASIS = {"b": "**", "strong": "**", "i": "*", "em": "*", "code": "`"}
# Stands for <br> until whitespace is collapsed; the parser never leaves NUL in text.
_BR = "\x00"

# What an element does, looked up once per element: one dict lookup replaces a chain of
# set tests, which matters because rendering costs a couple of microseconds per node.
# Of the block elements, _SHAPE ones also change how the blocks inside are written
# (headings, list items, lists, quotes, preformatted text); the rest only end the open
# block, which the walk does without a call.
_INLINE, _BLOCK, _SHAPE, _SKIP, _LINE_BREAK, _IMAGE, _LINK, _EMPH = range(8)
_SHAPING = frozenset({*_HEADINGS, "li", "ul", "ol", "blockquote", "pre"})
_ACTION = {
    **dict.fromkeys(BLOCK_TAGS, _BLOCK),
    **dict.fromkeys(_SHAPING, _SHAPE),
    **dict.fromkeys(SKIP_TAGS, _SKIP),
    **dict.fromkeys(_EMPHASIS, _EMPH),
    "br": _LINE_BREAK,
    "img": _IMAGE,
    "a": _LINK,
}
# Per tag, what it does and its HTML tags when no attribute plays a part (None: see
# sanitize.html_tags): one lookup per element instead of two and a call.
_PLANS: dict[str, tuple[int, Tags | None]] = {
    tag: (_ACTION.get(tag, _INLINE), fixed_tags(tag)) for tag in _ACTION.keys() | KNOWN_TAGS
}
_UNKNOWN: tuple[int, Tags | None] = (_INLINE, ("", ""))  # span, font, custom elements


def _md_escape(text: str) -> str:
    # As in sanitize.escape_text: one expression of tests first, as most text has none.
    if (
        "\\" in text
        or "`" in text
        or "*" in text
        or "_" in text
        or "[" in text
        or "]" in text
        or "#" in text
    ):
        return replace_present(text, _MD_ESCAPES)
    return text


_MD_ESCAPES = tuple((char, "\\" + char) for char in "\\`*_[]#")


def _lines(raw: str, newline: str) -> str:
    if _BR not in raw:
        return _collapse(raw)
    lines = (_collapse(line) for line in raw.split(_BR))
    return newline.join(line for line in lines if line)


def _collapse(raw: str) -> str:
    """Whitespace runs as single spaces, none at the ends (as a browser shows text)."""
    # Most text is already like that, and saying so is 2-3x cheaper than splitting it
    # into words and joining them again. Every whitespace character except " " is
    # non-printable (checked over all of Unicode), so a printable string has no other.
    if raw.isprintable() and "  " not in raw and raw[:1] != " " and raw[-1:] != " ":
        return raw
    return " ".join(raw.split())


@dataclass(frozen=True, slots=True)
class Rendered:
    """The content as plain text, as Markdown and as allowlisted HTML."""

    text: str
    markdown: str
    html: str


class _Walker:
    """State of one walk: the open block, list nesting, quote depth, finished blocks.

    The open block's text is kept once, unescaped; its Markdown is only built piece by
    piece (``md``) once the block gets markup (a link, emphasis, an image). Most blocks
    never do, and their Markdown is then their collapsed text escaped in one go.
    """

    __slots__ = ("base", "blocks", "kind", "lists", "md", "pre", "prefix", "quote", "text")

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.blocks: list[tuple[str, str, str]] = []  # (kind, text, markdown)
        self.kind = "p"  # "p", "h1".."h6", "li"
        self.prefix = ""  # Markdown prefix: "## ", "- ", "1. "
        self.text: list[str] = []
        self.md: list[str] | None = None
        self.lists: list[list[int]] = []  # per open list: [next number] or [] if bulleted
        self.quote = 0
        self.pre = 0

    def flush(self) -> None:
        """End the open block: append it to ``blocks`` if it holds any text."""
        parts, md_parts = self.text, self.md
        kind, prefix = self.kind, self.prefix
        self.kind, self.prefix, self.md = "p", "", None
        if not parts:
            return
        raw = "".join(parts)
        parts.clear()  # in place: render() holds on to this list's append
        if self.pre:
            text = raw.strip("\n")
            if not text.strip():
                return
            md = "```\n" + text + "\n```"
        else:
            text = _lines(raw, "\n")
            if not text:
                return
            if md_parts is None:  # no markup: the Markdown is the escaped text
                md = _md_escape(text)
                if _BR in raw:
                    md = md.replace("\n", "  \n")
            else:
                md = _lines("".join(md_parts), "  \n")
        if self.quote or prefix:  # (most blocks have neither: no copy of their Markdown)
            md = "> " * self.quote + prefix + md
        self.blocks.append((kind, text, md))

    def open_block(self, tag: str, node: LexborNode) -> None:
        self.flush()
        if tag in _HEADINGS:
            self.kind, self.prefix = tag, "#" * _HEADINGS[tag] + " "
        elif tag == "li":
            indent = "  " * max(0, len(self.lists) - 1)
            numbering = self.lists[-1] if self.lists else []
            if numbering:
                marker = f"{numbering[0]}. "
                numbering[0] += 1
            else:
                marker = "- "
            self.kind, self.prefix = "li", indent + marker
        elif tag == "ul" or tag == "ol":
            self.lists.append([_start(node)] if tag == "ol" else [])
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1

    def close_block(self, tag: str) -> None:
        self.flush()
        if (tag == "ul" or tag == "ol") and self.lists:
            self.lists.pop()
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def markup(self, value: str) -> None:
        if self.pre:  # a <pre> block is rendered from its text alone
            return
        if self.md is None:
            self.md = [_md_escape(part) for part in self.text]
        self.md.append(value)


def render(root: LexborNode, *, base: str | None) -> Rendered:
    """Plain text (blank line between blocks), Markdown and sanitized HTML of ``root``."""
    walker = _Walker(base)
    parts = walker.text  # (cleared in place by flush, so this stays the open block's)
    add_text = parts.append
    html: list[str] = []
    add_html = html.append
    hidden = 0  # how many open elements keep their content out of the HTML
    # One frame per open element: its children still to visit, what it does, its tag,
    # the Markdown to write when it closes and its HTML end tag (None: it hid its
    # content from the HTML). Iterating selectolax's child generator in place (no list
    # per element) and handling text children inside the inner loop keep the Python
    # work per node small: that work, not the calls into Lexbor, is most of the cost.
    # One walk serves all three outputs: a second walk for the HTML alone cost ~17% of
    # the instructions of the two (callgrind, 40 benchmark pages).
    stack: list[tuple[Iterator[LexborNode], int, str, str, str | None]] = []
    tag = root.tag or ""
    if tag == "-text":
        value = root.text_content or ""
        add_text(value)
        add_html(escape_text(value))
    elif tag[:1] != "-" and (action := _ACTION.get(tag, _INLINE)) != _SKIP:
        end = None if html_tags(root, tag, base)[1] is None else ""  # root: content only
        hidden += end is None
        closing = _open(walker, root, tag, action) if action else ""
        stack.append((root.iter(include_text=True), action, tag, closing, end))
    while stack:
        for node in stack[-1][0]:
            tag = node.tag or ""
            if tag == "-text":
                value = node.text_content or ""
                # Whitespace that opens a block is collapsed away when the block ends,
                # so it is left out of the text unless it already has Markdown (where
                # it would follow a "[") or is preformatted. Half the text nodes are
                # such indentation between block tags, and without them most blocks
                # that hold nothing end without a flush. (Whitespace needs no escaping
                # either.)
                if not value.isspace():
                    add_text(value)
                    if walker.md is not None:
                        walker.md.append(_md_escape(value))
                    if not hidden:
                        add_html(escape_text(value))
                    continue
                if parts or walker.md is not None or walker.pre:
                    add_text(value)
                    if walker.md is not None:
                        walker.md.append(value)  # (whitespace: nothing to escape)
                if not hidden:
                    add_html(value)
                continue
            # Comments and doctypes ("-comment", "-doctype") hold nothing to render;
            # other non-elements (tag None) have no children, so they render nothing.
            if tag[:1] == "-":
                continue
            action, fixed = _PLANS.get(tag, _UNKNOWN)
            if action == _SKIP:  # every skipped tag is dropped from the HTML too
                continue
            if hidden:
                end = ""
            else:
                start, end = fixed or html_tags(node, tag, base)
                if start:
                    add_html(start)
                if end is None:
                    hidden += 1
            if action == _BLOCK:
                # walker.flush(), without the call when the open block holds nothing
                # (most block boundaries): then it only resets these.
                if parts:
                    walker.flush()
                else:
                    walker.kind, walker.prefix, walker.md = "p", "", None
                closing = ""
            else:
                closing = _open(walker, node, tag, action) if action else ""
            stack.append((node.iter(include_text=True), action, tag, closing, end))
            break
        else:
            _, action, tag, closing, end = stack.pop()
            if action == _BLOCK:
                if parts:  # (walker.flush(), as above)
                    walker.flush()
                else:
                    walker.kind, walker.prefix, walker.md = "p", "", None
            elif action == _SHAPE:
                walker.close_block(tag)
            elif closing:
                walker.markup(closing)
            if end is None:
                hidden -= 1
            elif end:
                add_html(end)
    walker.flush()
    return Rendered(
        text=_join_text(walker.blocks),
        markdown=_join_md(walker.blocks),
        html="".join(html).strip(),
    )


def _open(walker: _Walker, node: LexborNode, tag: str, action: int) -> str:
    """Handle the start of an element; return the Markdown to write at its end."""
    if action in (_BLOCK, _SHAPE):
        walker.open_block(tag, node)
        return ""
    if action == _LINE_BREAK:
        walker.text.append("\n" if walker.pre else _BR)
        if walker.md is not None and not walker.pre:
            walker.md.append(_BR)
        return ""
    if action == _IMAGE:
        attrs = node.attributes  # one dict: a missing name costs a KeyError in .attrs
        # As in the HTML: a lazy-loaded image's URL is in data-src or the like.
        src = safe_url(image_source(attrs, attrs.get("src")), base=walker.base)
        if src:
            alt = _md_escape(attrs.get("alt") or "")
            walker.markup(f"![{alt}]({src})")
        return ""
    if walker.pre:
        return ""
    if action == _LINK:
        href = safe_url(node.attrs.get("href"), base=walker.base)
        if href:
            walker.markup("[")
            return f"]({href})"
        return ""
    marker = _EMPHASIS[tag]
    walker.markup(marker)
    return marker


def _start(node: LexborNode) -> int:
    value = node.attrs.get("start") or "1"
    return int(value) if value.isdigit() and len(value) < 7 else 1


def _join_text(blocks: list[tuple[str, str, str]]) -> str:
    parts: list[str] = []
    previous = ""
    for kind, text, _ in blocks:
        if parts:
            # List items stay on consecutive lines; every other block is a paragraph.
            parts.append("\n" if kind == "li" and previous == "li" else "\n\n")
        parts.append(text)
        previous = kind
    return "".join(parts)


def _join_md(blocks: list[tuple[str, str, str]]) -> str:
    parts: list[str] = []
    previous = ""
    for kind, _, md in blocks:
        if not md.strip():
            continue
        if parts:
            parts.append("\n" if kind == "li" and previous == "li" else "\n\n")
        parts.append(md)
        previous = kind
    return "".join(parts)
