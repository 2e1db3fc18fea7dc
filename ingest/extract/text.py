"""Block-aware plain text and Markdown of the main content.

One iterative walk over the content subtree (no recursion, so 50,000 nested elements
cannot overflow the stack). Inline elements add no characters of their own, so
``wor<b>ld</b>`` reads "world"; block elements end the current line; whitespace inside a
block collapses to single spaces as a browser renders it, except in ``<pre>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from selectolax.lexbor import LexborNode

from ingest.extract.sanitize import safe_url

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
_MD_ESCAPES = str.maketrans({c: "\\" + c for c in "\\`*_[]#"})
# Stands for <br> until whitespace is collapsed; the parser never leaves NUL in text.
_BR = "\x00"


def _lines(raw: str, newline: str) -> str:
    if _BR not in raw:
        return " ".join(raw.split())
    lines = (" ".join(line.split()) for line in raw.split(_BR))
    return newline.join(line for line in lines if line)


@dataclass(slots=True)
class _Block:
    kind: str  # "p", "h2".."h6", "li", "pre"
    text: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    prefix: str = ""  # Markdown prefix: "## ", "- ", "1. ", "> "


@dataclass(frozen=True, slots=True)
class Rendered:
    """The content as plain text and as Markdown."""

    text: str
    markdown: str


class _Walker:
    """State of one walk: the open block, list nesting, quote depth, finished blocks."""

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.blocks: list[tuple[str, str, str]] = []  # (kind, text, markdown)
        self.current = _Block("p")
        self.lists: list[list[int]] = []  # per open list: [next number] or [] if bulleted
        self.quote = 0
        self.pre = 0

    def flush(self) -> None:
        block = self.current
        if not block.text:  # most block boundaries close nothing
            if block.kind != "p" or block.md:
                self.current = _Block("p")
            return
        self.current = _Block("p")
        raw = "".join(block.text)
        if self.pre:
            text = raw.strip("\n")
            md = "```\n" + text + "\n```" if text.strip() else ""
        else:
            text = _lines(raw, "\n")
            md = _lines("".join(block.md), "  \n")
        if not text.strip():
            return
        quote = "> " * self.quote
        self.blocks.append((block.kind, text, quote + block.prefix + md))

    def open_block(self, tag: str) -> None:
        self.flush()
        if tag in _HEADINGS:
            self.current = _Block(tag, prefix="#" * _HEADINGS[tag] + " ")
        elif tag == "li":
            indent = "  " * max(0, len(self.lists) - 1)
            numbering = self.lists[-1] if self.lists else []
            if numbering:
                marker = f"{numbering[0]}. "
                numbering[0] += 1
            else:
                marker = "- "
            self.current = _Block("li", prefix=indent + marker)

    def text(self, value: str) -> None:
        self.current.text.append(value)
        self.current.md.append(value if self.pre else value.translate(_MD_ESCAPES))

    def markup(self, value: str) -> None:
        self.current.md.append(value)


def render(root: LexborNode, *, base: str | None) -> Rendered:
    """Plain text (blank line between blocks) and Markdown of ``root``."""
    walker = _Walker(base)
    # Stack items: a node to enter, or a string: the tag being closed, prefixed "/".
    stack: list[LexborNode | tuple[str, str]] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            _close(walker, *item)
            continue
        if item.is_text_node:
            walker.text(item.text_content or "")
            continue
        tag = item.tag or ""
        if tag in SKIP_TAGS or not item.is_element_node:
            continue
        closing = _open(walker, item, tag)
        stack.append((tag, closing))
        children = list(item.iter(include_text=True))
        stack.extend(reversed(children))
    walker.flush()
    return Rendered(text=_join_text(walker.blocks), markdown=_join_md(walker.blocks))


def _open(walker: _Walker, node: LexborNode, tag: str) -> str:
    """Handle an element's start; return the Markdown to write at its end."""
    if tag in BLOCK_TAGS:
        walker.open_block(tag)
        if tag in ("ul", "ol"):
            walker.lists.append([_start(node)] if tag == "ol" else [])
        elif tag == "blockquote":
            walker.quote += 1
        elif tag == "pre":
            walker.pre += 1
        return ""
    if tag == "br":
        if walker.pre:
            walker.text("\n")
        else:
            walker.current.text.append(_BR)
            walker.current.md.append(_BR)
        return ""
    if tag == "img":
        src = safe_url(node.attrs.get("src"), base=walker.base)
        if src:
            alt = (node.attrs.get("alt") or "").translate(_MD_ESCAPES)
            walker.markup(f"![{alt}]({src})")
        return ""
    if tag == "a" and not walker.pre:
        href = safe_url(node.attrs.get("href"), base=walker.base)
        if href:
            walker.markup("[")
            return f"]({href})"
    marker = _EMPHASIS.get(tag)
    if marker and not walker.pre:
        walker.markup(marker)
        return marker
    return ""


def _close(walker: _Walker, tag: str, closing: str) -> None:
    if tag in BLOCK_TAGS:
        walker.flush()
        if tag in ("ul", "ol") and walker.lists:
            walker.lists.pop()
        elif tag == "blockquote":
            walker.quote = max(0, walker.quote - 1)
        elif tag == "pre":
            walker.pre = max(0, walker.pre - 1)
    elif closing:
        walker.markup(closing)


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
