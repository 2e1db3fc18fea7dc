"""Bounds that keep pathological pages from costing quadratic time.

At every start tag of a block element (div, section, p, ul, ...) the HTML tree builder
asks "is there a <p> in button scope?", walking the stack of open elements, so n nested
elements cost O(n²): 20,000 nested <div>s take Lexbor seconds, 50,000 most of a minute.
The stack holds every open element, so 40,000 levels of ``<span><p>x</p>`` (or of <b>,
or of a custom element) cost about 5 s as well. Browsers bound this the same way we do:
Blink stops nesting at 512 levels. Before parsing, tags nested deeper than
``MAX_DEPTH`` are dropped (their text stays); depth counts every element that stays
open, i.e. all but void elements and those the parser closes by itself (``_FLAT``).

Measuring depth exactly costs a regex pass, so pages are first screened with a C-level
count: a page with fewer than ``_SCREEN_TAGS`` "<" is not scanned. That bounds what it
can cost the parser at about 0.07 s (6,000 tags make at most 6,000 levels; 5,000 nested
<div> parse in 0.05 s). A second screen, on the count of "<div", used to let only
pages with 1,200 of them through; it scanned most pages a second time, 2% of the
extraction's instructions, to shave a few hundredths of a second off a worst case.

The count itself is numpy's (a vectorised compare), not ``bytes.count``, whose
one-byte loop goes a byte at a time: 0.068 against 0.014 ms a page on the benchmark
pages, about 1.4% of an extraction. numpy is the near-duplicate stage's library; it is
imported here too for this one count, and both run in the same extraction processes.
"""

from __future__ import annotations

import re

import numpy as np

MAX_DEPTH = 512
_SCREEN_TAGS = 6000
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
# The group is the name's first letter, after a "/" in an end tag: one byte for a start
# tag and two for an end tag, so the groups joined say in order which tag was which.
_NESTING_TAG = re.compile(
    rb"<(/?(?!(?:" + b"|".join(sorted(_FLAT)) + rb")[\s/>])[a-z])[a-z0-9:-]*[\s/>]"
)


def flatten_deep_nesting(html: bytes) -> bytes:
    """``html`` with start and end tags nested deeper than MAX_DEPTH removed."""
    if _count_lt(html) < _SCREEN_TAGS or _max_depth(html) <= MAX_DEPTH:
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


def _count_lt(html: bytes) -> int:
    """How many "<" ``html`` holds (as ``html.count(b"<")``)."""
    return int(np.count_nonzero(np.frombuffer(html, dtype=np.uint8) == ord("<")))


def _max_depth(html: bytes) -> int:
    """Maximum nesting of elements (``_NESTING_TAG``), with C-level loops only.

    Depth is the running sum of +1/-1 per tag; stray end tags make the sum dip, so the
    depth at a point is the running sum minus the lowest sum seen before it. Unclosed
    inline tags (``<font>`` soup) count as open, so this may overstate the parser's
    depth, never understate it; overstating costs only the exact pass of
    ``flatten_deep_nesting``. The sums are numpy's: a page held to this count has
    thousands of tags, and summing them in Python took a third of the time (1.6 -> 1.0
    ms on a 194 KB page of 5,900 nesting tags).
    """
    marks = np.frombuffer(b"".join(_NESTING_TAG.findall(html.lower())), dtype=np.uint8)
    slashes = marks == ord("/")
    closing = np.concatenate(([False], slashes[:-1]))[~slashes]  # per tag: an end tag?
    sums = np.concatenate(([0], np.cumsum(np.where(closing, -1, 1))))
    return int((sums - np.minimum.accumulate(sums)).max())
