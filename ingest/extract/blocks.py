"""A flat index of an element tree, built in one traversal, so that scoring is list
arithmetic instead of calls into the parser.

Every ``text()``, ``tag`` or ``parent`` asked of a Lexbor node crosses from Python into C
and builds a new node object; the passes that choose and prune the main content used to
ask per candidate and per ancestor level, re-reading the same text a dozen times (about
9 ms a page on the benchmark sets). The index asks once per node and keeps, per element,
its tag, parent and the words of its own text and of its link text. Elements are stored
in document (pre-)order, so the subtree of element ``i`` is the range ``i .. ends[i]``,
and subtree sums are one backward pass.

Removals are recorded here (``remove``) and applied to the Lexbor tree once, at the end
(``apply``), deepest first, so no node is touched after an ancestor freed it.

Words are counted per text node, so ``wor<b>ld</b>`` counts two: close enough for scores.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

_TEXT = "-text"
# Chinese and Japanese are written without spaces: about two characters make a word.
# (Korean separates words with spaces, so Hangul is not here.)
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Those characters are all U+3040 or above, so their UTF-8 lead byte is 0xE3 or above:
# text whose UTF-8 keeps no byte once these are deleted has none of them, and deleting
# bytes is a fast C loop where the pattern is a slow one.
_BELOW_UNSPACED = bytes(range(0xE3))


class Blocks:
    """Per-element facts of the subtree under ``root`` (element 0).

    ``words`` and ``links`` are live: removing an element subtracts its words from its
    ancestors (a walk up, not a pass over the page), and ``dead`` marks its subtree.
    """

    __slots__ = (
        "_cuts",
        "_dead",
        "_texts",
        "ends",
        "index",
        "linked",
        "links",
        "nodes",
        "own",
        "own_links",
        "parents",
        "removed",
        "tags",
        "words",
    )

    def __init__(self, root: LexborNode) -> None:
        self.nodes: list[LexborNode] = []
        self.tags: list[str] = []
        self.parents: list[int] = []
        self.own: list[int] = []  # words of the element's direct text
        self.own_links: list[int] = []  # of those, words inside a link
        self.index: dict[int, int] = {}  # mem_id -> element number
        self.linked: list[bool] = []  # the element is a link or inside one
        self._cuts: list[LexborNode] = []  # nodes removed with their following siblings
        self._texts: dict[int, str] = {}  # element number -> its text, once read
        self._read(root)
        count = len(self.tags)
        self.removed = [False] * count
        self._dead = [False] * count
        self.ends, self.words, self.links = self._subtrees()

    def _read(self, root: LexborNode) -> None:
        index, tags, parents, own, own_links, nodes = (
            self.index,
            self.tags,
            self.parents,
            self.own,
            self.own_links,
            self.nodes,
        )
        in_link = self.linked
        walk = root.traverse(include_text=True, skip_empty=True)
        next(walk)  # root itself, element 0: recorded here, so the loop has no test for it
        index[root.mem_id] = 0
        nodes.append(root)
        tags.append(root.tag or "")
        parents.append(-1)
        own.append(0)
        own_links.append(0)
        in_link.append(root.tag == "a")
        for node in walk:
            tag = node.tag
            if tag == _TEXT:
                text = node.text_content
                if not text:
                    continue
                words = len(text.split())
                if not text.isascii():
                    words += _unspaced_words(text)
                if words:
                    # A first child comes right after its parent, the last element
                    # indexed: asking whether there is a node before it is cheaper than
                    # asking for its parent (a new node object) and looking that up, and
                    # 86% of the text nodes with words on the benchmark pages are first
                    # children. (A text node always has a parent element here.)
                    if node.prev is None:
                        owner = len(tags) - 1
                    else:
                        owner = index.get(node.parent.mem_id, -1)  # type: ignore[union-attr]
                    if owner >= 0:
                        own[owner] += words
                        if in_link[owner]:
                            own_links[owner] += words
                continue
            if not tag or tag[0] in "-!":  # comments, doctype
                continue
            # Every node here is under root, so its parent is indexed (the default never
            # serves).
            parent = index.get(node.parent.mem_id, 0)  # type: ignore[union-attr]
            index[node.mem_id] = len(tags)
            nodes.append(node)
            tags.append(tag)
            parents.append(parent)
            own.append(0)
            own_links.append(0)
            in_link.append(tag == "a" or in_link[parent])

    def _subtrees(self) -> tuple[list[int], list[int], list[int]]:
        """Per element: where its subtree ends, and the words and link words in it.

        One backward pass (children come after their parent) serves all three.
        """
        ends = list(range(1, len(self.tags) + 1))
        words, links = self.own[:], self.own_links[:]
        parents = self.parents
        for i in range(len(ends) - 1, 0, -1):
            parent = parents[i]
            if ends[i] > ends[parent]:
                ends[parent] = ends[i]
            words[parent] += words[i]
            links[parent] += links[i]
        return ends, words, links

    def text(self, i: int) -> str:
        """The text of element ``i``, removals not applied (read once from the tree).

        Pruning reads the text of short blocks twice (for a recirculation heading, then
        for furniture), and each read crosses into Lexbor and decodes the text anew.
        """
        text = self._texts.get(i)
        if text is None:
            text = self._texts[i] = self.nodes[i].text()
        return text

    def has_parents_text(self, i: int) -> bool:
        """Is all of the text under element ``i``'s parent under ``i``?

        Then the parent's text, as read from the tree, is ``i``'s but for whitespace
        around it: every other text node under the parent is whitespace (one with
        anything else has a word). Removals do not count: they are not applied yet.
        """
        parent, own, ends = self.parents[i], self.own, self.ends
        return parent >= 0 and not any(own[parent:i]) and not any(own[ends[i] : ends[parent]])

    def numbers(self, nodes: list[LexborNode]) -> list[int]:
        """Element numbers of nodes (CSS matches); nodes outside the index are skipped."""
        index = self.index
        return [i for node in nodes if (i := index.get(node.mem_id, -1)) >= 0]

    def ancestors(self, i: int) -> list[int]:
        """``i`` and its ancestors up to element 0, nearest first."""
        chain = []
        parents = self.parents
        while i >= 0:
            chain.append(i)
            i = parents[i]
        return chain

    def dead(self) -> list[bool]:
        """Per element: removed, or inside a removed element (live)."""
        return self._dead

    def sums(self) -> tuple[list[int], list[int]]:
        """Per element: words, and words inside links, of its subtree minus removals (live)."""
        return self.words, self.links

    def following_siblings(self, i: int) -> list[int]:
        """Elements after ``i`` under the same parent (``i`` itself excluded)."""
        parent = self.parents[i]
        if parent < 0:
            return []
        siblings = []
        ends = self.ends
        j = ends[i]
        while j < ends[parent]:
            siblings.append(j)
            j = ends[j]
        return siblings

    def remove(self, i: int) -> None:
        """Record the removal of element ``i`` and its subtree."""
        dead = self._dead
        if dead[i]:
            return
        self.removed[i] = True
        end = self.ends[i]
        dead[i:end] = [True] * (end - i)
        words, links, parents = self.words, self.links, self.parents
        gone, gone_links = words[i], links[i]
        j = parents[i]
        while j >= 0:
            words[j] -= gone
            links[j] -= gone_links
            j = parents[j]

    def cut_from(self, i: int) -> None:
        """Remove ``i`` and everything after it under its parent, bare text included."""
        self.remove(i)
        for j in self.following_siblings(i):
            self.remove(j)
        self._cuts.append(self.nodes[i])

    def apply(self, root: int = 0) -> None:
        """Remove the recorded elements under ``root`` from the Lexbor tree.

        Only the content root's subtree is rendered, so what lies outside it is left as
        it is (removing it would be wasted work).
        """
        dead, parents, removed, nodes = self._dead, self.parents, self.removed, self.nodes
        for node in self._cuts:
            # Bare text after a cut point belongs to the cut too.
            sibling = node.next
            while sibling is not None:
                following = sibling.next
                if sibling.tag == _TEXT:
                    sibling.decompose()
                sibling = following
        for i in range(self.ends[root] - 1, root, -1):
            if removed[i] and not dead[parents[i]]:
                nodes[i].decompose()


def count_words(text: str) -> int:
    """Whitespace-separated words, plus one word per two Chinese or Japanese characters."""
    words = len(text.split())
    if not text.isascii():
        words += _unspaced_words(text)
    return words


def _unspaced_words(text: str) -> int:
    """Words of the Chinese and Japanese characters of ``text`` (two characters each)."""
    if not text.encode("utf-8", "surrogatepass").translate(None, _BELOW_UNSPACED):
        return 0
    return len(_UNSPACED.findall(text)) // 2


def has_words(text: str, count: int) -> bool:
    """Does ``text`` hold at least ``count`` words (as ``count_words`` counts them)?

    Splitting stops after ``count`` words: an article's whole text need not be split
    (and searched for Chinese characters) to learn that it is not a stub.
    """
    return len(text.split(None, count)) >= count or count_words(text) >= count
