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

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from ingest.errors import ExtractError
from ingest.extract.blocks import Blocks
from ingest.extract.clean import (
    decompose_all,
    marked_blocks,
    protected_blocks,
    remove_boilerplate,
    remove_hidden,
    remove_junk,
)
from ingest.extract.furniture import FURNITURE_MAX_WORDS, is_furniture, is_related_heading
from ingest.extract.teasers import remove_teasers
from ingest.models import ExtractRules

# Text units: elements whose text is scored. <p>-like units take their whole text; the
# containers take only their own direct text (text written straight into a <div>, often
# with <br> between lines, is article text on older sites).
_UNIT_DEEP = frozenset({"p", "pre", "h2", "h3", "h4", "h5", "h6", "li", "dd", "td", "blockquote"})
_UNIT_TAGS = _UNIT_DEEP | {"div", "section", "article", "main", "span", "font"}
# Semantic containers that say "this is the article"; they get a bonus, not a free pass.
_HINT_TAGS = frozenset({"article", "main"})
_HINT_CLASSES = (
    "article-body",
    "articlebody",
    "article__body",
    "entry-content",
    "post-content",
    "post-body",
    "story-body",
    "article-content",
    "content-body",
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
_TAIL_TAGS = frozenset({"h2", "h3", "h4", "h5", "h6", "strong", "b", "p", "div", "span"})
_TAIL_HEADING_MAX_CHARS = 60
_TAIL_HEADING_MAX_WORDS = 12
_PARAGRAPHS = frozenset({"p", "pre", "blockquote", "h2", "h3", "h4", "h5", "h6", "br", "hr"})
_TAIL_MAX_SHARE = 0.3
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
_PRUNE_TAGS = _LINK_LIST_TAGS | {"h1", "figure"}


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
    blocks = Blocks(body)
    marked = marked_blocks(blocks, body)
    remove_hidden(blocks, marked)
    if rules is not None and rules.content_selector:
        chosen = blocks.numbers(_select(body, rules.content_selector, url))
        if chosen:
            remove_boilerplate(blocks, chosen[0], protected=set())
            blocks.apply(chosen[0])
            return blocks.nodes[chosen[0]]
    remove_boilerplate(blocks, 0, protected=protected_blocks(blocks, marked))
    remove_teasers(blocks, url=url)
    root = _best_container(blocks, url)
    _prune(blocks, root, title)
    blocks.apply(root)
    return blocks.nodes[root]


def _select(node: LexborNode, selector: str, url: str | None) -> list[LexborNode]:
    try:
        return node.css(selector)
    except SelectolaxError as exc:
        raise ExtractError(f"extract: invalid selector {selector!r}: {url or '<no url>'}") from exc


def _credit(blocks: Blocks, words: list[int], links: list[int]) -> tuple[list[float], list[int]]:
    """Article-like words per element: each text unit credits its ancestors.

    Returns the credit of every element and the elements credited, in the order they
    were first credited: ties go to the first (an inner wrapper before an outer one).
    Lists, not a dict: this walk up the tree is the hot loop of the choice.
    """
    credit = [0.0] * len(words)
    credited: list[int] = []
    dead = blocks.dead()
    tags, parents, own = blocks.tags, blocks.parents, blocks.own
    # (A comprehension picks the live text elements, two fifths of all, in less time
    # than the loop's own test of every element took.)
    units = [i for i, tag in enumerate(tags) if tag in _UNIT_TAGS and not dead[i]]
    for i in units:
        tag = tags[i]
        if tag in _UNIT_DEEP:
            count, linked = words[i], links[i]
        else:
            count, linked = own[i], 0
        if count < _MIN_UNIT_WORDS and not (tag == "li" and count >= 3):
            continue
        if linked > _MAX_LINK_DENSITY * count:
            continue
        good = float(count - linked)  # > 0, so a credit of 0.0 means "not credited yet"
        node = i
        for _ in range(_MAX_LEVELS):  # (element 0 has no parent: -1 ends the walk)
            so_far = credit[node]
            if not so_far:
                credited.append(node)
            credit[node] = so_far + good
            node = parents[node]
            if node < 0:
                break
    return credit, credited


def _best_container(blocks: Blocks, url: str | None) -> int:
    words, links = blocks.sums()
    credit, credited = _credit(blocks, words, links)
    if not credited:
        raise ExtractError(f"extract: no article body found: {url or '<no url>'}")
    top = max(credit)
    best, best_score = 0, float("-inf")
    # Only containers holding a fair share of all prose can be the article.
    for i in credited:
        good = credit[i]
        if good < 0.4 * top:
            continue
        score = good - _CLUTTER_WEIGHT * max(0.0, words[i] - good)
        if _hinted(blocks, i):
            score *= _HINT_BONUS
        if score > best_score:
            best, best_score = i, score
    return best


def _hinted(blocks: Blocks, i: int) -> bool:
    """Does the markup say this element is the article (tag, itemprop, role, class)?"""
    if blocks.tags[i] in _HINT_TAGS:
        return True
    attrs = blocks.nodes[i].attributes
    if attrs.get("itemprop") in ("articleBody", "text") or attrs.get("role") == "main":
        return True
    classes = (attrs.get("class") or "").lower()
    return any(hint in classes for hint in _HINT_CLASSES)


def _cut_related_tail(blocks: Blocks, root: int, words: list[int]) -> bool:
    """Remove a "Related stories" / "You may also like" heading and what follows it.

    Recirculation blocks sit at the end of the article container, introduced by a short
    heading; their teasers are prose, so link density alone misses them (trafilatura
    cuts at such headings too). Only the first such heading counts, and only when what
    follows it is a small part of the content, so an inline "Related:" box in the middle
    of an article cannot take the rest of the article with it.
    """
    dead = blocks.dead()
    tags = blocks.tags
    # Nothing is removed before the first related heading, so the short headings can
    # be picked out in one comprehension (a third of the container's elements, for
    # less than a third of a loop's cost) before any text is read.
    headings = [
        i
        for i in range(root + 1, blocks.ends[root])
        if 0 < words[i] <= _TAIL_HEADING_MAX_WORDS and tags[i] in _TAIL_TAGS and not dead[i]
    ]
    # Headings read and found not to open a related block. One that wraps another and
    # nothing else gives it its text, so the same verdict, and its length is no shorter.
    cleared: set[int] = set()
    parents = blocks.parents
    for i in headings:
        if parents[i] in cleared and blocks.has_parents_text(i):
            cleared.add(i)
            continue
        text = blocks.text(i)
        if len(text) > _TAIL_HEADING_MAX_CHARS:
            continue
        if not is_related_heading(text):
            cleared.add(i)
            continue
        siblings = blocks.following_siblings(i)
        tail_words = words[i] + sum(words[j] for j in siblings)
        if tail_words <= _TAIL_MAX_SHARE * words[root] or _repeated(
            blocks, [j for j in siblings if words[j]]
        ):
            blocks.cut_from(i)
            return True
        return False
    return False


def _repeated(blocks: Blocks, siblings: list[int]) -> bool:
    """Are these at least two blocks of one kind (same tag and class), not paragraphs?

    After a "You may also like" heading, a run of look-alike blocks is a list of other
    stories however long their excerpts are; the article's own paragraphs are not alike.
    """
    if len(siblings) < 2 or blocks.tags[siblings[0]] in _PARAGRAPHS:
        return False
    tags = {blocks.tags[j] for j in siblings}
    if tags == {"article"}:
        return True
    classes = {blocks.nodes[j].attributes.get("class") for j in siblings}
    return len(tags) == 1 and len(classes) == 1 and None not in classes


def _prune(blocks: Blocks, root: int, title: str | None) -> None:
    """Remove what is inside the article container but not article: title, link lists."""
    words, links = blocks.sums()
    if _cut_related_tail(blocks, root, words):
        words, links = blocks.sums()
    title_key = _key(title) if title else None
    dead = blocks.dead()
    tags = blocks.tags
    # A removal changes the words of the removed block's ancestors only, and they come
    # before it in document order, so an element's own words and links are final when
    # its turn comes: the blocks too long to prune are left out in advance (in a
    # comprehension, cheaper than the loop's tests). Whether it is dead is known only
    # in its turn, and so is its parent's size (``_worth_reading``).
    candidates = [
        i
        for i in range(root + 1, blocks.ends[root])
        if tags[i] in _PRUNE_TAGS and (0 < words[i] < _LINK_LIST_MAX_WORDS or tags[i] == "h1")
    ]
    # Elements read and found not to be furniture, with the words they had then. A block
    # often wraps one other and nothing else (<p><strong>...</strong></p>): the inner
    # one has the same text and words, so the same verdict (a fifth of the reads on the
    # benchmark pages).
    cleared: dict[int, int] = {}
    parents = blocks.parents
    for i in candidates:
        if dead[i]:
            continue
        tag = tags[i]
        count = words[i]
        if tag == "h1":
            # The headline is metadata, not body; an h1 that is not the headline but is
            # short is a section label of the page template.
            if title_key is None or count < 25 or _key(blocks.text(i)) == title_key:
                blocks.remove(i)
        elif (
            tag in _LINK_LIST_TAGS
            and 0 < count < _LINK_LIST_MAX_WORDS
            and links[i] > _BLOCK_LINK_DENSITY * count
        ):  # (The link test first: it needs no text read from the tree.)
            blocks.remove(i)
        elif _worth_reading(blocks, i, root):
            parent = parents[i]
            if (cleared.get(parent) == count and blocks.has_parents_text(i)) or not is_furniture(
                blocks.text(i), count
            ):
                cleared[i] = count
            else:
                blocks.remove(i)


def _worth_reading(blocks: Blocks, i: int, root: int) -> bool:
    """Could element ``i`` be furniture that its parent is not? (Its text is read if so.)

    Short blocks are tested against the furniture patterns, but many short elements are
    an inline part of a long paragraph (a link, a <strong>): those are prose.
    """
    words = blocks.words
    count = words[i]
    if not 0 < count <= FURNITURE_MAX_WORDS:
        return False
    parent = blocks.parents[i]
    if parent <= root or blocks.tags[parent] not in _PRUNE_TAGS:
        return True
    return not (blocks.tags[parent] in _PARAGRAPHS and words[parent] > FURNITURE_MAX_WORDS)


def _key(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())
