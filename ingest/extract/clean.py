"""Boilerplate removal: tags that are never content, hidden blocks, and blocks whose
class or id names them as chrome (share bars, newsletter boxes, related lists, comments,
consent banners, ads, navigation), in the spirit of trafilatura's class/id pruning.

Removals are recorded on the page's ``Blocks`` index and applied to the tree once, after
the content is chosen; sizes come from the index, so no text is read twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from selectolax.lexbor import LexborNode

from ingest.extract.blocks import Blocks, count_words, has_words

# The protected walk goes at most this many levels up from each marker.
_MAX_MARKER_LEVELS = 96
_MARKERS = "h1, [itemprop='articleBody'], article"
_MAX_MARKERS = 8

# Never content, removed with everything inside them. <form> is handled apart: some CMSes
# (ASP.NET WebForms) wrap the whole page in one. Photo captions (figcaption) go too: both
# benchmarks' annotators leave them out of the body (removing them raised Scrapinghub
# precision from 0.90 to 0.93 at no cost in recall).
# Each tag in a CSS query costs a test per element, so only the common ones are removed
# in C before indexing (svg drawings, form controls); the rare ones are dropped from the
# index by tag. Rare here is by elements, subtrees included: <template>, <iframe>,
# <link> and <meta> are under two a page on the benchmark sets and hold no elements, so
# indexing them costs less than four more selectors over every element (0.5% of the
# extraction's instructions). <option> is all but always inside a <select>, and
# <script> and <style> are out of the tree before this runs (``read_metadata`` takes
# them out): three selectors fewer, 0.02 ms a page.
_JUNK = "noscript, svg, button, input, select, label, figcaption"
_RARE_JUNK = frozenset(
    [
        "script",
        "style",
        "option",
        "template",
        "iframe",
        "link",
        "meta",
        "textarea",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "canvas",
        "math",
        "audio",
        "video",
        "map",
        "area",
        "xmp",
        "noembed",
        "noframes",
        "plaintext",
    ]
)
# Page furniture by tag. Removed too, unless one holds most of the page's text: an
# unclosed <aside> near the top of a page swallows the article (the parser nests the
# rest of the page inside it). Only landmarks of this many words are measured further.
_LANDMARKS = "nav, aside, footer, dialog, menu"
_LANDMARK_MAX_SHARE = 0.5
_LANDMARK_SUSPECT_WORDS = 200
# Hidden or landmark-marked blocks are usually menus and off-canvas panels, but some
# pages hide the whole page until a script reveals it ("body > div[hidden]",
# style="display:none" on the wrapper, React's streamed <div hidden id="S:1">): those are
# kept when they hold most of the text.
_HIDDEN_MAX_SHARE = 0.5
_HIDDEN = (
    "[hidden], [aria-hidden='true'], [role='navigation'], [role='complementary'], "
    "[role='contentinfo'], [role='banner'], [style*='display:none' i], "
    "[style*='display: none' i]"
)
# Modals (cookie settings, sign-up prompts) go whatever their size: one cookie dialog
# holds half the words of a short review page.
_DIALOGS = "[role='dialog'], [role='alertdialog'], [role='alert'], [aria-modal='true']"
# The three are found with one query (each query walks the whole page, and the matches
# are few), then told apart in Python by the same tests; see ``marked_blocks``. Lexbor
# tests every element against every selector of a query, so the query asks for a little
# more than it needs with fewer selectors, and the Python tests keep the rest out: the
# seven role values are one test, "[role]" (few elements have a role at all), and the two
# spellings of "display: none" are one, "display" (-7% for this pass).
_MARKED = (
    "[role], [aria-modal='true'], [hidden], [aria-hidden='true'], [style*='display' i], " + _MARKERS
)
_DIALOG_ROLES = frozenset({"dialog", "alertdialog", "alert"})
_LANDMARK_ROLES = frozenset({"navigation", "complementary", "contentinfo", "banner"})

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
        "cta",  # call-to-action boxes: "Join us", "Become a member"
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
        "cta",  # "above-cta" wraps a whole article on one CMS
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
    """Remove never-content elements (``_JUNK``), landmarks and forms, before the page is
    indexed.

    Together they are half the elements of a typical page (svg paths, menus, footers), so
    removing them in C first halves the work of every later pass.
    """
    decompose_all(body.css(_JUNK))
    # Landmarks and forms come from one query (each query walks the whole page); forms
    # are handled after the landmarks go, and one inside a landmark is out of the page
    # by then, so what is done to it changes nothing.
    landmarks: list[tuple[LexborNode, int]] = []
    forms: list[LexborNode] = []
    for node in body.css(_LANDMARKS + ", form"):
        if node.tag == "form":
            forms.append(node)
        else:
            landmarks.append((node, count_words(node.text())))
    if any(words >= _LANDMARK_SUSPECT_WORDS for _, words in landmarks):
        # A landmark stays only if it holds more than half the page's words, so the
        # page's words need counting only up to twice the largest landmark's: past
        # that, every landmark goes. (Splitting all of a long page's text into words
        # was 0.9% of an extraction.)
        text = body.text()
        most = 2 * max(words for _, words in landmarks) + 1
        total = most if has_words(text, most) else count_words(text)
        limit = _LANDMARK_MAX_SHARE * total
        landmarks = [(node, words) for node, words in landmarks if words <= limit]
    decompose_all([node for node, _ in landmarks])
    for form in reversed(forms):
        # A form that holds paragraphs is a page-wrapping form: keep what is inside.
        if form.css_first("p") is not None:
            form.unwrap()
        else:
            form.decompose()


@dataclass(frozen=True, slots=True)
class Marked:
    """Elements that their markup marks: as dialogs (``_DIALOGS``), as hidden or page
    landmarks (``_HIDDEN``), and as the article (``_MARKERS``; an element that matches
    two of those selectors is listed twice, as the query returned it)."""

    dialogs: list[int]
    hidden: list[int]
    markers: list[int]


def marked_blocks(blocks: Blocks, body: LexborNode) -> Marked:
    """The dialogs, hidden blocks and article markers of the page, in document order."""
    marked = Marked([], [], [])
    index, previous = blocks.index, -1
    for node in body.css(_MARKED):
        i = index.get(node.mem_id, -1)
        # The query returns an element once per selector it matches, one after the other.
        if i < 0 or i == previous:
            continue
        previous = i
        attrs = node.attributes
        if attrs.get("role") in _DIALOG_ROLES or attrs.get("aria-modal") == "true":
            marked.dialogs.append(i)
        if _is_hidden(attrs):
            marked.hidden.append(i)
        tag = blocks.tags[i]
        count = (tag == "h1" or tag == "article") + (attrs.get("itemprop") == "articleBody")
        marked.markers.extend([i] * count)
    return marked


def _is_hidden(attrs: dict[str, str | None]) -> bool:
    """Does the element match ``_HIDDEN``?"""
    if "hidden" in attrs or attrs.get("aria-hidden") == "true":
        return True
    if attrs.get("role") in _LANDMARK_ROLES:
        return True
    style = (attrs.get("style") or "").lower()
    return "display:none" in style or "display: none" in style


def remove_hidden(blocks: Blocks, marked: Marked) -> None:
    """Remove rare never-content elements, dialogs, and hidden and landmark-marked blocks
    (``_HIDDEN``) unless they hold the page."""
    if not _RARE_JUNK.isdisjoint(blocks.tags):  # (in C: most pages have none)
        for i, tag in enumerate(blocks.tags):
            if tag in _RARE_JUNK:
                blocks.remove(i)
    for i in marked.dialogs:
        blocks.remove(i)
    if marked.hidden:
        words, _ = blocks.sums()
        limit = _HIDDEN_MAX_SHARE * words[0]
        for i in marked.hidden:
            if words[i] <= limit:
                blocks.remove(i)


def protected_blocks(blocks: Blocks, marked: Marked) -> set[int]:
    """Elements never removed as boilerplate: the article markers and their ancestors.

    A page wrapper with class "has-sidebar" or "post author-12" must not take the article
    with it. Markers already removed (an h1 in a nav) do not count.
    """
    keep: set[int] = {0}
    dead = blocks.dead()
    markers = [i for i in marked.markers if not dead[i]]
    for marker in markers[:_MAX_MARKERS]:
        keep.update(blocks.ancestors(marker)[:_MAX_MARKER_LEVELS])
    return keep


def remove_boilerplate(blocks: Blocks, root: int, *, protected: set[int]) -> None:
    """Remove the blocks under ``root`` whose class or id names them as boilerplate."""
    words, _ = blocks.sums()
    weak_limit = _WEAK_SHARE * words[root]
    index, dead = blocks.index, blocks.dead()
    skip = protected | {root}
    # This loop runs for a third of the page's elements, so it works on the matched
    # nodes themselves (no list of their numbers, no second lookup of each node):
    # 0.30 -> 0.20 ms a page on the benchmark sets. Lexbor lists an element once per
    # selector it matches; with ":not([class])" each comes once, and the query costs
    # 0.028 instead of 0.045 ms a page.
    for node in blocks.nodes[root].css("[class], [id]:not([class])"):
        i = index.get(node.mem_id, -1)
        if i < 0 or dead[i] or i in skip:
            continue  # (dead: inside a block removed already, nothing to decide)
        # The class and the id alone: a dict of all the attributes (styles, data-*,
        # srcset) costs more to build. Most elements have no id: their class is the
        # value judged as it is, with no string built to join the two.
        value = node.attrs.get("class") or ""
        ident = node.id
        verdict = _boilerplate(f"{value} {ident}" if ident else value)
        if verdict == "strong" or (verdict == "weak" and words[i] <= weak_limit):
            blocks.remove(i)


@lru_cache(maxsize=16384)
def _boilerplate(value: str) -> str:
    """ "strong" or "weak" if a class/id value names boilerplate, else ""."""
    marks = 0
    for token in value.split():
        marks |= _token(token)
    if marks & _EXACT_MARK:
        return "strong"
    found = marks & _ALL_WORD_MARKS
    if not found:
        return ""
    if not found & ~_WEAK_MARKS or marks & _CONTENT_MARK:
        return "weak"
    return "strong"


# What a token says, as bits of one int: a bit per boilerplate word it holds, one for an
# exact marker ("sr-only") and one for a word that names content. An int, rather than a
# tuple holding a frozenset of the words, because the token cache keeps what it is
# given for the life of the worker: tuples and sets are objects the garbage collector
# must track, ints are not, and the cache entries were nearly all the objects an
# extraction left behind (108 a page on the benchmark pages), which made the collector
# run every seven pages, 1.7% of the extraction time.
_WORD_MARKS = {word: 1 << bit for bit, word in enumerate(sorted(_BOILERPLATE_WORDS))}
_ALL_WORD_MARKS = (1 << len(_WORD_MARKS)) - 1
_WEAK_MARKS = sum(_WORD_MARKS[word] for word in _WEAK_WORDS)
_EXACT_MARK = 1 << len(_WORD_MARKS)
_CONTENT_MARK = _EXACT_MARK << 1


@lru_cache(maxsize=65536)
def _token(token: str) -> int:
    """The marks (see ``_WORD_MARKS``) of one class/id token.

    Tokens repeat across pages ("container", "col-md-8"), whole class values much less,
    so this is the level worth caching.
    """
    lowered = token.lower()
    if lowered in _BOILERPLATE_EXACT:
        return _EXACT_MARK
    if lowered == token:  # no capitals, so no camelCase humps to split at
        words = set(_LOWER_WORD.findall(lowered))
    else:
        words = {w.lower() for w in _WORD.findall(token)}
    marks = 0
    for word in _BOILERPLATE_WORDS & words:
        marks |= _WORD_MARKS[word]
    if not _CONTENT_WORDS.isdisjoint(words):
        marks |= _CONTENT_MARK
    return marks
