"""Find the main content of a page: after ``clean`` removed boilerplate, pick the best
container and prune what inside it is not article (title, link lists, teaser tails).

The approach combines ideas from readability (score paragraphs, credit their ancestors,
penalise link-heavy blocks) and trafilatura (prune boilerplate by tag and by class/id
vocabulary before looking for content), with one change of our own: a container's score
is the article-like text it holds *minus a share of everything else it holds*. The best
container is then the one that captures the most paragraph text while dragging in the
least surrounding clutter, so content split across sibling blocks is recovered by their
common parent whenever the clutter between them is small.

Every pass is a C-level CSS query plus Python work per matched node, never a recursive
Python walk, so deep nesting cannot overflow the stack and the cost stays near-linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from ingest.errors import ExtractError
from ingest.extract.clean import (
    TextBudget,
    decompose_all,
    protected_nodes,
    remove_boilerplate,
    remove_junk,
)
from ingest.models import ExtractRules

# Text units: elements whose text is scored. <p>-like units take their whole text; the
# containers take only their own direct text (text written straight into a <div>, often
# with <br> between lines, is article text on older sites).
_UNIT_DEEP = frozenset({"p", "pre", "h2", "h3", "h4", "h5", "h6", "li", "dd", "td", "blockquote"})
_UNITS = (
    "p, pre, h2, h3, h4, h5, h6, li, dd, td, blockquote, div, section, article, main, span, font"
)
# Semantic containers that say "this is the article"; they get a bonus, not a free pass.
_ARTICLE_HINT = (
    "article, main, [itemprop='articleBody'], [itemprop='text'], [role='main'], "
    "[class*='article-body' i], [class*='articlebody' i], [class*='article__body' i], "
    "[class*='entry-content' i], [class*='post-content' i], [class*='post-body' i], "
    "[class*='story-body' i], [class*='article-content' i], [class*='content-body' i]"
)
# A paragraph shorter than this (in words) is not evidence of an article by itself:
# datelines, captions, button labels and menu items are short. Readability uses 25 chars.
_MIN_UNIT_WORDS = 7
# Link text share above which a unit is navigation, not prose (readability: 0.5-ish).
_MAX_LINK_DENSITY = 0.5
# How much clutter costs against article text when comparing containers. Tuned on the
# two benchmark sets: lower picks too-large containers (sidebars and footers creep in),
# higher picks one paragraph-group of a split article.
_CLUTTER_WEIGHT = 0.7
# Propagation stops this many levels above a unit; articles nest 5-15 levels below the
# common container, and the cap bounds the work on pathological nesting.
_MAX_LEVELS = 24
# Bonus multiplier for semantic article containers.
_HINT_BONUS = 1.15
# Blocks inside the chosen content that are mostly links are navigation (related lists,
# tag clouds, "next article" boxes) unless they are long.
_BLOCK_LINK_DENSITY = 0.55
# Blocks judged by link density inside the content. Headings are here because a heading
# that is all link is a teaser headline ("Carlos Ghosn and the dark side of ..."), and
# <article> because teaser cards for other stories are often marked up as articles.
_TAIL_HEADINGS = "h2, h3, h4, h5, h6, strong, b, p, div, span"
_TAIL_HEADING_MAX_CHARS = 60
_TAIL_MAX_SHARE = 0.3
# Headings that open recirculation blocks, in the languages we have seen them in.
_RELATED_HEADING = re.compile(
    r"^\W*(related( articles| stories| posts| content| news| reading)?|"
    r"(you|we think you) (may|might|will) (also )?(like|enjoy)|more (from|stories|on|in) .{0,30}|"
    r"recommended( for you| reading| stories)?|read (more|next|also)|most (read|popular|viewed)|"
    r"(latest|popular|trending|top) (stories|news|posts|articles)|our latest stories|"
    r"see also|also read|don.t miss|keep reading|up next|"
    r"você (também )?pode gostar|leia (também|mais)|veja também|"
    r"te puede interesar|también te puede interesar|lee también|relacionad[oa]s|"
    r"à lire aussi|sur le même sujet|lire aussi|mehr zum thema|das könnte sie auch interessieren|"
    r"leggi anche|potrebbe interessarti)\W*$",
    re.IGNORECASE,
)
_LINK_LIST_TAGS = frozenset(
    {
        "ul",
        "ol",
        "dl",
        "table",
        "div",
        "section",
        "header",
        "p",
        "li",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "article",
        "span",
    }
)
_LINK_LIST_MAX_WORDS = 80
# No block of fewer than 80 words is longer than this (indentation included, generously).
_LINK_LIST_MAX_CHARS = 4000
_SHORT_BOILERPLATE = re.compile(
    r"^\W*(advertisement|advertising|ad|sponsored|"
    r"share( this( article| story| post)?)?( on \w+)?|tweet|"
    r"email|print|read more|more|related( articles| stories| posts| content)?|see also|"
    r"recommended( for you)?|most (read|popular|viewed)|sign up|subscribe( now)?|"
    r"continue reading|click here.*|follow us.*|comments?|leave a (comment|reply)|"
    r"skip to (main )?content|loading\W*|image|photo|video|listen|copy link|"
    r"share (via|on) .*)\W*$",
    re.IGNORECASE,
)
_SHORT_WORDS = 8


@dataclass(frozen=True, slots=True)
class _Unit:
    node: LexborNode
    words: int
    good: float  # words of article-like prose credited to its ancestors


def find_content(
    tree: LexborHTMLParser, *, rules: ExtractRules | None, title: str | None, url: str | None
) -> LexborNode:
    """Return the node holding the article, with boilerplate removed from the tree."""
    body = tree.body
    if body is None:
        raise ExtractError(f"extract: no article body found: {url or '<no url>'}")
    if rules is not None:
        decompose_all(
            _select(body, ", ".join(rules.drop_selectors), url) if rules.drop_selectors else []
        )
    remove_junk(body)
    if rules is not None and rules.content_selector:
        chosen = _select(body, rules.content_selector, url)
        if chosen:
            remove_boilerplate(chosen[0], protected=set())
            return chosen[0]
    remove_boilerplate(body, protected=protected_nodes(body))
    root = _best_container(body, url)
    _prune(root, title)
    return root


def _select(node: LexborNode, selector: str, url: str | None) -> list[LexborNode]:
    try:
        return node.css(selector)
    except SelectolaxError as exc:
        raise ExtractError(f"extract: invalid selector {selector!r}: {url or '<no url>'}") from exc


def _units(body: LexborNode) -> Iterable[_Unit]:
    budget = TextBudget(body)
    for node in body.css(_UNITS):
        tag = node.tag or ""
        # Nested deep units (lists in lists) would re-read the same text at every level;
        # the budget turns that quadratic case into shallow reads.
        text = node.text(deep=tag in _UNIT_DEEP and budget.left())
        budget.spend(text)
        words = len(text.split())
        if words == 0:
            continue
        good = 0.0
        if words >= _MIN_UNIT_WORDS or (tag == "li" and words >= 3):
            links = _link_words(node) if tag in _UNIT_DEEP else 0
            if links <= _MAX_LINK_DENSITY * words:
                good = float(words - links)
        yield _Unit(node, words, good)


def _link_words(node: LexborNode) -> int:
    return sum(len(a.text().split()) for a in node.css("a"))


def _best_container(body: LexborNode, url: str | None) -> LexborNode:
    credit: dict[int, float] = {}
    nodes: dict[int, LexborNode] = {}
    for unit in _units(body):
        if unit.good <= 0:
            continue
        node: LexborNode | None = unit.node
        levels = 0
        while node is not None and levels < _MAX_LEVELS:
            key = node.mem_id
            credit[key] = credit.get(key, 0.0) + unit.good
            nodes.setdefault(key, node)
            if node.tag == "body":
                break
            node = node.parent
            levels += 1
    if not credit:
        raise ExtractError(f"extract: no article body found: {url or '<no url>'}")
    top = max(credit.values())
    hinted = {n.mem_id for n in body.css(_ARTICLE_HINT)}
    best, best_score = None, float("-inf")
    # Only containers holding a fair share of all prose can be the article; this bounds
    # the number of (C-level) full-text measurements below.
    for key, good in credit.items():
        if good < 0.4 * top:
            continue
        node = nodes[key]
        total = len(node.text().split())
        score = good - _CLUTTER_WEIGHT * max(0.0, total - good)
        if key in hinted:
            score *= _HINT_BONUS
        if score > best_score:
            best, best_score = node, score
    assert best is not None
    return best


def _cut_related_tail(root: LexborNode) -> None:
    """Remove a "Related stories" / "You may also like" heading and what follows it.

    Recirculation blocks sit at the end of the article container, introduced by a short
    heading; their teasers are prose, so link density alone misses them (trafilatura
    cuts at such headings too). Only the first such heading counts, and only when what
    follows it is a small part of the content, so an inline "Related:" box in the middle
    of an article cannot take the rest of the article with it.
    """
    budget = TextBudget(root)
    for node in root.css(_TAIL_HEADINGS):
        if not budget.left():
            return
        text = node.text()
        budget.spend(text)
        if len(text) > _TAIL_HEADING_MAX_CHARS or not _RELATED_HEADING.match(text.strip()):
            continue
        tail = [node]
        sibling = node.next
        while sibling is not None:
            tail.append(sibling)
            sibling = sibling.next
        tail_words = sum(len(n.text().split()) for n in tail)
        if tail_words <= _TAIL_MAX_SHARE * len(root.text().split()):
            decompose_all(tail)
        return


def _prune(root: LexborNode, title: str | None) -> None:
    """Remove what is inside the article container but not article: title, link lists."""
    _cut_related_tail(root)
    title_key = _key(title) if title else None
    doomed: list[LexborNode] = []
    budget = TextBudget(root)
    for node in root.css(
        "h1, ul, ol, dl, table, div, section, p, span, li, h2, h3, h4, h5, h6, header, figure, "
        "article"
    ):
        if node.mem_id == root.mem_id:
            continue
        if not budget.left():
            break  # pathological nesting: the rest stays as it is
        text = node.text()
        budget.spend(text)
        if _is_clutter(node, text, title_key):
            doomed.append(node)
    decompose_all(doomed)


def _is_clutter(node: LexborNode, text: str, title_key: str | None) -> bool:
    """The title heading, a short "Share"/"Advertisement" label, or a link list."""
    tag = node.tag
    if len(text) > _LINK_LIST_MAX_CHARS and tag != "h1":
        return False  # too long to be any of these; skip counting its words
    words = len(text.split())
    if tag == "h1":
        # The headline is metadata, not body; an h1 that is not the headline but is
        # short is a section label of the page template.
        return title_key is None or _key(text) == title_key or words < 25
    if words <= _SHORT_WORDS and _SHORT_BOILERPLATE.match(text.strip()):
        return True
    if tag in _LINK_LIST_TAGS and 0 < words < _LINK_LIST_MAX_WORDS:
        return _link_words(node) > _BLOCK_LINK_DENSITY * words
    return False


def _key(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())
