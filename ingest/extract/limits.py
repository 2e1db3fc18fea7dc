"""Bounds that keep pathological pages from costing quadratic time.

At every start tag of a block element (div, section, p, ul, ...) the HTML tree builder
asks "is there a <p> in button scope?", walking the stack of open elements, so n nested
elements cost O(n²): 20,000 nested <div>s take Lexbor seconds, 50,000 most of a minute.
The stack holds every open element, so 40,000 levels of ``<span><p>x</p>`` (or of <b>,
or of a custom element) cost about 5 s as well. Browsers bound this the same way we do:
Blink stops nesting at 512 levels. Before parsing, tags nested deeper than
``MAX_DEPTH`` are dropped (their text stays); depth counts every element that stays
open, i.e. all but void elements and those the parser closes by itself (``_FLAT``).

Measuring depth exactly costs a regex pass, so pages are first screened with C-level
substring counts: a page with fewer ``<div`` tags than ``_SCREEN_BLOCKS`` (div is what
nests deep in practice) and fewer tags of any kind than ``_SCREEN_TAGS`` (which bounds
the worst case at a fraction of a second) is not scanned.
"""

from __future__ import annotations

import re
from itertools import accumulate
from operator import sub

MAX_DEPTH = 512
_SCREEN_BLOCKS = 1200
_SCREEN_TAGS = 6000
# "<div" and "<DIV" in one pass: two bytes.count() calls scan the page twice, and cost
# more than the pattern (whose literal "<" is found with a fast search).
_DIV = re.compile(rb"<(?:div|DIV)")
_TAG = re.compile(rb"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^>]*?(/?)>")
# Elements that never nest: void elements, and elements the parser closes implicitly
# when a sibling starts (so "<p><p><p>" is three siblings, not depth three).
_FLAT = frozenset(
    {
        b"area",
        b"base",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"link",
        b"meta",
        b"param",
        b"source",
        b"track",
        b"wbr",
        b"keygen",
        b"p",
        b"li",
        b"dt",
        b"dd",
        b"tr",
        b"td",
        b"th",
        b"option",
        b"optgroup",
        b"rb",
        b"rt",
        b"rp",
        b"tbody",
        b"thead",
        b"tfoot",
        b"colgroup",
        b"caption",
        b"html",
        b"head",
        b"body",
    }
)

# A start or end tag of an element that nests, matched against the lower-cased page (an
# IGNORECASE pattern costs a third more time). The lookahead leaves out ``_FLAT``: "<p>"
# and "<p " are a paragraph, "<param" and "<pre" are not. The name must end at a space,
# "/" or ">", so "i<n;" and "a<b)" in minified scripts are not tags. A "<path/>" counts
# as open (in HTML "/>" closes only SVG and MathML elements): that can overstate depth.
_NESTING_TAG = re.compile(
    rb"<(/?)(?!(?:" + b"|".join(sorted(_FLAT)) + rb")[\s/>])[a-z][a-z0-9:-]*[\s/>]"
)


def flatten_deep_nesting(html: bytes) -> bytes:
    """``html`` with start and end tags nested deeper than MAX_DEPTH removed."""
    if not _may_be_deep(html) or _max_depth(html) <= MAX_DEPTH:
        return html
    depth = 0
    pieces: list[bytes] = []
    position = 0
    for match in _TAG.finditer(html):
        closing, name, self_closing = match.groups()
        if self_closing or name.lower() in _FLAT:
            continue
        deep = depth >= MAX_DEPTH if closing else depth + 1 > MAX_DEPTH
        depth = max(0, depth - 1) if closing else depth + 1
        if deep:
            pieces.append(html[position : match.start()])
            position = match.end()
    pieces.append(html[position:])
    return b"".join(pieces)


def _may_be_deep(html: bytes) -> bool:
    tags = html.count(b"<")
    if tags >= _SCREEN_TAGS:
        return True
    # Fewer tags than the <div> threshold cannot hold that many <div>s: a third of the
    # benchmark pages skip the two (slower) substring counts this way.
    if tags < _SCREEN_BLOCKS:
        return False
    return len(_DIV.findall(html)) >= _SCREEN_BLOCKS


def _max_depth(html: bytes) -> int:
    """Maximum nesting of elements (``_NESTING_TAG``), with C-level loops only.

    Depth is the running sum of +1/-1 per tag; stray end tags make the sum dip, so the
    depth at a point is the running sum minus the lowest sum seen before it. Unclosed
    inline tags (``<font>`` soup) count as open, so this may overstate the parser's
    depth, never understate it; overstating costs only the exact pass of
    ``flatten_deep_nesting``.
    """
    deltas: list[int] = [-1 if closing else 1 for closing in _NESTING_TAG.findall(html.lower())]
    sums = list(accumulate(deltas, initial=0))
    depths: list[int] = list(map(sub, sums, accumulate(sums, min)))
    return max(depths)
