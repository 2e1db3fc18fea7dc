"""Teaser lists: runs of cards (a headline link and a short excerpt) for other stories.

Recirculation blocks ("More in Sports", "Latest news", the right rail, "Você pode
gostar") are made of cards whose excerpts are real prose, so paragraph scoring credits
them like article text, and link density misses them because the excerpt outweighs the
headline. Their shape gives them away: several sibling blocks, each short, each opening
with a link of a few words to another page of the same site. An article's paragraphs
rarely open with a link, and a list of products or sources links to other sites.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

from ingest.extract.blocks import Blocks

# A card: a block of 4-120 words (a headline, perhaps a byline, an excerpt of a sentence
# or two) whose first text is a link of at least 3 words.
_CARD_MIN_WORDS = 4
_CARD_MAX_WORDS = 120
_HEADLINE_MIN_WORDS = 3
# A teaser list: at least 3 sibling cards holding most of their parent's text.
_MIN_CARDS = 3
_CARDS_SHARE = 0.6
# Paragraph-level elements are text, not cards (a paragraph may open with a link).
_TEXT_TAGS = frozenset({"p", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "a"})


def remove_teasers(blocks: Blocks, *, url: str | None) -> None:
    """Remove the cards of every teaser list in the page."""
    words, _ = blocks.sums()
    dead = blocks.dead()
    site = _site(url) if url else None
    doomed: list[int] = []
    tags = blocks.tags
    # (A comprehension picks the few parents with enough children: cheaper than testing
    # every parent in the loop.)
    parents = [p for p, n in Counter(blocks.parents).items() if n >= _MIN_CARDS and p >= 0]
    for parent in parents:
        # Three cards hold at least 3 x 4 words, all of them the parent's: a parent with
        # fewer words holds no teaser list (27% of the parents of three or more children
        # on the benchmark pages).
        if dead[parent] or words[parent] < _MIN_CARDS * _CARD_MIN_WORDS:
            continue
        kids = [parent + 1, *blocks.following_siblings(parent + 1)]
        # Most parents have too few children of a card's kind and size, or too little of
        # their text in them, to hold a teaser list; only those that do are worth the
        # (costlier) look for headline links. (The size test is spelled out here, not
        # called per child: it runs for most of the page's elements.)
        sized = [
            k
            for k in kids
            if _CARD_MIN_WORDS <= words[k] <= _CARD_MAX_WORDS and tags[k] not in _TEXT_TAGS
        ]
        if len(sized) < _MIN_CARDS or sum(words[k] for k in sized) < _CARDS_SHARE * words[parent]:
            continue
        cards = [k for k in sized if _is_card(blocks, k, site)]
        if (
            len(cards) >= _MIN_CARDS
            and sum(words[k] for k in cards) >= _CARDS_SHARE * words[parent]
        ):
            doomed.extend(cards)
    for card in doomed:
        blocks.remove(card)


def _is_card(blocks: Blocks, i: int, site: str | None) -> bool:
    """Does the block (of a card's kind and size) open with a headline link to the site?"""
    headline = _first_text_link(blocks, i)
    if headline < 0:
        return False
    return site is None or _same_site(blocks.nodes[headline].attributes.get("href"), site)


def _first_text_link(blocks: Blocks, i: int) -> int:
    """The headline link of element ``i``'s subtree, or -1.

    That is the first link of at least ``_HEADLINE_MIN_WORDS`` words, with no text
    before it but shorter links (a section label such as "White House" above the
    headline, a "Video" badge).
    """
    own, removed, ends, linked, tags, parents = (
        blocks.own,
        blocks.removed,
        blocks.ends,
        blocks.linked,
        blocks.tags,
        blocks.parents,
    )
    words, _ = blocks.sums()
    j = i
    while j < ends[i]:
        if removed[j]:
            j = ends[j]
            continue
        if own[j]:
            if not linked[j]:
                return -1
            link = j
            while tags[link] != "a":
                link = parents[link]
            if words[link] >= _HEADLINE_MIN_WORDS:
                return link
            j = ends[link]
            continue
        j += 1
    return -1


def _site(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return ".".join(host.split(".")[-2:])


def _same_site(href: str | None, site: str) -> bool:
    if not href:
        return False
    href = href.strip()
    if href[:1] == "/" and href[1:2] != "/":  # a path: this site (urlsplit has no host)
        return True
    try:
        host = urlsplit(href).hostname
    except ValueError:
        return False
    return host is None or host == site or host.endswith("." + site)
