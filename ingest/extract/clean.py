"""Boilerplate removal: tags that are never content, hidden blocks, and blocks whose
class or id names them as chrome (share bars, newsletter boxes, related lists, comments,
consent banners, ads, navigation), in the spirit of trafilatura's class/id pruning.

All removals go through ``decompose_all`` in reverse document order, so a node is never
touched after an ancestor's removal freed it; every nested ``text()`` measurement is
bounded by a ``TextBudget`` so that pathological nesting stays near-linear.
"""

from __future__ import annotations

import re
from functools import lru_cache

from selectolax.lexbor import LexborNode

# The protected walk goes at most this many levels up from each marker.
_MAX_MARKER_LEVELS = 96

# Never content, removed with everything inside them. <form> is handled apart: some CMSes
# (ASP.NET WebForms) wrap the whole page in one. Photo captions (figcaption) go too: both
# benchmarks' annotators leave them out of the body (removing them raised Scrapinghub
# precision from 0.90 to 0.93 at no cost in recall).
_JUNK = (
    "script, style, noscript, template, iframe, frame, frameset, object, embed, applet, svg, "
    "canvas, math, button, input, select, textarea, option, label, nav, aside, footer, "
    "dialog, menu, link, meta, audio, video, map, area, figcaption"
)
# Hidden or landmark-marked blocks are usually menus, modals and off-canvas panels, but
# some pages hide the whole page until a script reveals it ("body > div[hidden]",
# style="display:none" on the wrapper): those are kept when they hold the headline or
# the article element *and* most of the text (a hidden mobile header has an h1 too).
_HIDDEN_MAX_SHARE = 0.5
_HIDDEN = (
    "[hidden], [aria-hidden='true'], [role='navigation'], [role='complementary'], "
    "[role='contentinfo'], [role='banner'], [role='dialog'], [role='alert'], "
    "[style*='display:none' i], [style*='display: none' i]"
)

# Words in class/id values that mark boilerplate blocks. A value is split into words at
# separators and camelCase humps ("shareButtons" -> share, buttons) and a block goes if any
# word is here, so "article" never matches "art" and "header" never matches "head".
_BOILERPLATE_WORDS = frozenset(
    {
        # sharing and social widgets
        "share",
        "shares",
        "sharing",
        "sharebar",
        "social",
        "socials",
        "sharethis",
        "addthis",
        # newsletter and subscription boxes, paywall prompts
        "newsletter",
        "newsletters",
        "subscribe",
        "subscription",
        "signup",
        "paywall",
        "registration",
        "regwall",
        # donation and membership appeals
        "donate",
        "donation",
        "donations",
        "contribute",
        "contribution",
        "membership",
        "support",
        "patreon",
        # related / recommended / most-read lists, recirculation
        "related",
        "recommended",
        "recommendations",
        "recommendation",
        "recirc",
        "recirculation",
        "popular",
        "trending",
        "mostread",
        "most",
        "outbrain",
        "taboola",
        "readmore",
        "more",
        "next",
        "prev",
        "previous",
        "upnext",
        # comments
        "comment",
        "comments",
        "disqus",
        "respond",
        "discussion",
        "replies",
        # consent banners
        "cookie",
        "cookies",
        "consent",
        "gdpr",
        # advertising and promotion
        "ad",
        "ads",
        "adv",
        "advert",
        "adverts",
        "advertisement",
        "advertising",
        "adslot",
        "adunit",
        "dfp",
        "gpt",
        "sponsor",
        "sponsored",
        "promo",
        "promotion",
        "promoted",
        "affiliate",
        "banner",
        # photo captions and credits: the benchmarks' human annotators leave them out
        "caption",
        "captions",
        "credit",
        "credits",
        "figcaption",
        # navigation, chrome and page furniture
        "nav",
        "navbar",
        "navigation",
        "menu",
        "breadcrumb",
        "breadcrumbs",
        "pagination",
        "pager",
        "sidebar",
        "footer",
        "masthead",
        "toolbar",
        "skip",
        "modal",
        "popup",
        "overlay",
        "tags",
        "tagcloud",
        "topics",
        "keywords",
        "author",
        "bio",
        "byline",
        "meta",
        "dateline",
        "timestamp",
        "rating",
        "jump",
        "toc",
        "offscreen",
    }
)
# Deliberately absent: "cmp" (Adobe AEM prefixes every component with it, not only
# consent banners), "hidden" and "print" (Tailwind's "hidden lg:block" and "print:hidden"
# show content on desktop screens).
# Words that also turn up on wrappers of real content ("post-meta-wrap", "author-page",
# "more-content", "support-article"): such a block goes only if it is small next to the
# page's text.
_WEAK_WORDS = frozenset(
    {
        "author",
        "bio",
        "meta",
        "more",
        "next",
        "prev",
        "previous",
        "banner",
        "toc",
        "jump",
        "rating",
        "popup",
        "modal",
        "overlay",
        "menu",
        "tags",
        "topics",
        "keywords",
        "skip",
        "promo",
        "promotion",
        "most",
        "popular",
        "trending",
        "registration",
        "timestamp",
        "dateline",
        "byline",
    }
)
_WEAK_SHARE = 0.25
# A class that also names content ("content-with-sidebar", "post has-comments") is a
# wrapper first: its boilerplate word is treated as weak, i.e. guarded by size.
_CONTENT_WORDS = frozenset(
    {
        "content",
        "article",
        "body",
        "main",
        "post",
        "entry",
        "story",
        "text",
        "wrapper",
        "wrap",
        "wrp",
        "container",
        "layout",
        "column",
        "single",
        "page",
    }
)
_BOILERPLATE_EXACT = frozenset(
    {"sr-only", "visually-hidden", "screen-reader-text", "visuallyhidden"}
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z0-9]+(?![a-z])")
_LOWER_WORD = re.compile(r"[a-z0-9]+")


def decompose_all(nodes: list[LexborNode]) -> None:
    # Reverse document order: a descendant goes before its ancestor, so no node is
    # touched after an ancestor's removal freed it.
    for node in reversed(nodes):
        node.decompose()


def remove_junk(body: LexborNode) -> None:
    decompose_all(body.css(_JUNK))
    hidden = body.css(_HIDDEN)
    if hidden:
        keep = protected_nodes(body)
        limit = _HIDDEN_MAX_SHARE * len(body.text().split())
        # Only protected nodes (the h1's ancestors, a few dozen) have their text measured.
        decompose_all([n for n in hidden if n.mem_id not in keep or len(n.text().split()) <= limit])
    for form in reversed(body.css("form")):
        # A form that holds paragraphs is a page-wrapping form: keep what is inside.
        if form.css_first("p") is not None:
            form.unwrap()
        else:
            form.decompose()


def protected_nodes(body: LexborNode) -> set[int]:
    """Nodes never removed as boilerplate: the article marker and all its ancestors.

    A page wrapper with class "has-sidebar" or "post author-12" must not take the article
    with it.
    """
    keep: set[int] = {body.mem_id}
    for marker in body.css("h1, [itemprop='articleBody'], article")[:8]:
        node: LexborNode | None = marker
        levels = 0
        while node is not None and levels < _MAX_MARKER_LEVELS and node.mem_id not in keep:
            keep.add(node.mem_id)
            node = node.parent
            levels += 1
    return keep


def remove_boilerplate(root: LexborNode, *, protected: set[int]) -> None:
    # LexborNode equality compares serialisations (slow): compare mem_id instead.
    protected = protected | {root.mem_id}
    doomed = []
    page_words = 0
    budget = TextBudget(root)
    for node in root.css("[class], [id]"):
        attrs = node.attrs
        value = f"{attrs.sget('class')} {attrs.sget('id')}"
        if node.mem_id in protected:
            continue
        verdict = _boilerplate(value)
        if verdict == "weak":
            page_words = page_words or len(root.text().split())
            if not budget.left():
                continue  # pathological nesting: keep the rest rather than measure it
            text = node.text()
            budget.spend(text)
            if len(text.split()) > _WEAK_SHARE * page_words:
                continue
        if verdict:
            doomed.append(node)
    decompose_all(doomed)


@lru_cache(maxsize=8192)
def _boilerplate(value: str) -> str:
    """ "strong" or "weak" if a class/id value names boilerplate, else ""."""
    lowered = value.lower()
    if not _BOILERPLATE_EXACT.isdisjoint(lowered.split()):
        return "strong"
    if lowered == value:  # no capitals, so no camelCase humps to split at
        all_words = set(_LOWER_WORD.findall(lowered))
    else:
        all_words = {w.lower() for w in _WORD.findall(value)}
    words = _BOILERPLATE_WORDS & all_words
    if not words:
        return ""
    if words <= _WEAK_WORDS or not _CONTENT_WORDS.isdisjoint(all_words):
        return "weak"
    return "strong"


class TextBudget:
    """Bounds the text re-read by nested ``text()`` calls to a multiple of the page text.

    Normal pages nest a paragraph a dozen levels deep, so each character is read about
    that many times; 50,000 nested divs would read it 50,000 times.
    """

    __slots__ = ("_left",)

    def __init__(self, root: LexborNode) -> None:
        self._left = 40 * len(root.text()) + 100_000

    def left(self) -> bool:
        return self._left > 0

    def spend(self, text: str) -> None:
        self._left -= len(text)
