"""What an article says: exact fingerprints and near-duplicate sketches of its text.

Exact: ``fingerprint`` hashes the normalized words (case, accents, punctuation and
layout ignored), so the same text under two URLs is one article.

Near: the same story under another wrapper, lightly edited, truncated or with its
paragraphs re-ordered shares most of its word shingles (Broder 1997, "On the
resemblance and containment of documents"). We estimate resemblance with MinHash and
find candidates with banded locality-sensitive hashing, so a lookup costs a fixed number
of index probes however large the catalog grows; then every candidate is verified
exactly on the shingle sets before anything is linked.

* Shingles: ``SHINGLE_WORDS`` = 5 consecutive normalized words within one block
  (paragraph, heading, list item), each window hashed once to 64 bits. Five words rarely
  recur across different stories on one topic, a changed word breaks only five
  shingles, and since no window spans two blocks, re-ordering paragraphs or adding a
  block of chrome leaves every other shingle as it was.
* Signature: one-permutation hashing (Li, Owen, Zhang 2012, "One Permutation Hashing"):
  a shingle's hash modulo ``BINS`` = 96 picks its bin, the quotient is its value, and
  each bin keeps its minimum: one hash per shingle instead of one per bin. Empty bins
  (short texts) are filled by optimal densification (Shrivastava 2017, "Optimal
  Densification for Fast and Accurate Minwise Hashing"): bin i borrows from the first
  non-empty bin of its own pseudo-random probe sequence, which keeps P(equal bin) ≈ J.
* Bands: ``BANDS`` = 32 bands of ``ROWS`` = 3 bins. Two texts with Jaccard J become
  candidates with P = 1 - (1 - J^3)^32 (the S-curve):
      J = 0.80 → 1.0000   J = 0.60 → 0.9996   J = 0.50 → 0.9861   J = 0.40 → 0.8795
      J = 0.30 → 0.5835   J = 0.20 → 0.2267   J = 0.10 → 0.0315   J = 0.05 → 0.0040
  Light edits keep J ≥ 0.8 and truncation to 60% gives J = 0.6: found with
  P ≥ 0.999. (32 × 4 of 128 bins gives only 0.988 at J = 0.6, which the benchmark
  showed as missed truncations.) Unrelated stories have J ≈ 0 on 5-word shingles,
  and even stories on one topic rarely exceed 0.05, so a lookup in a catalog of a
  million articles meets almost no false candidates; the few are verified away.
* Verification: ``resemblance`` on the exact shingle sets. A pair is a near duplicate
  when the shorter text's shingles are at least ``CONTAINMENT`` = 0.7 inside the other
  (containment, not Jaccard, so a truncated copy still counts), both texts have at least
  ``MIN_SHINGLES`` shingles (shorter texts are left to the exact fingerprint), and their
  lengths differ at most ``MAX_LENGTH_RATIO``-fold (a teaser is not the story). See
  BENCHMARKS.md (bench/dedup.py) for where same-story and different-story pairs fall.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

SHINGLE_WORDS = 5
BINS = 96
BANDS = 32
ROWS = BINS // BANDS
CONTAINMENT = 0.7
MIN_SHINGLES = 10
MAX_LENGTH_RATIO = 4.0
_EMPTY = 1 << 64  # larger than any bin value
_BUCKET_MASK = (1 << 63) - 1  # SQLite integers are signed 64-bit
_T = TypeVar("_T", bound=np.generic)
_WORD = re.compile(r"\w+")
_WORD_OR_BREAK = re.compile(r"\w+|\n")
_ASCII_WORD_OR_BREAK = re.compile(r"[0-9A-Za-z_]+|\n")
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")
# What str.splitlines() splits on besides "\n" (and "\r\n").
_OTHER_ASCII_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e"
_OTHER_BREAKS = frozenset("\x85\u2028\u2029")
_MASK64 = (1 << 64) - 1
_K1, _K2, _K3, _K4 = (  # odd 64-bit constants (digits of pi, e, sqrt 2, golden ratio)
    0x243F6A8885A308D3,
    0xB7E151628AED2A6B,
    0x6A09E667F3BCC909,
    0x9E3779B97F4A7C15,
)
_KS = (1, _K1, _K2, _K3, _K4)


def words(text: str) -> list[str]:
    """The words of ``text``: case-folded, accents removed, punctuation and spacing gone."""
    return _WORD.findall(_fold(text))


def _fold(text: str) -> str:
    """``text`` lower-cased (case-folded), with accents removed: NFKD, then its combining
    marks dropped, so "Café" and "cafe" are one word; line breaks stay where they were."""
    return _fold_and_others(text)[0]


def _fold_and_others(text: str) -> tuple[str, set[str]]:
    """``_fold(text)``, and the non-ASCII characters left in it."""
    if text.isascii():  # the common case, ten times faster; the same result
        return text.lower(), set()
    folded = unicodedata.normalize("NFKD", text).casefold()
    others = set(_ASCII_RUNS.sub("", folded))
    # Only the marks this text holds: a class of every combining mark of Unicode makes
    # the regex engine several times slower than NFKD itself.
    marks = {c for c in others if unicodedata.combining(c)}
    if not marks:
        return folded, others
    return re.sub(_class_of(marks), "", folded), others - marks


def _class_of(chars: set[str]) -> str:
    return "[" + re.escape("".join(sorted(chars))) + "]"


@dataclass(frozen=True, slots=True)
class _Words:
    """The words of a text in order, and how many each non-empty line (block) holds."""

    words: list[str]
    blocks: list[int]


def _read_words(text: str) -> _Words:
    """The words of ``text`` and its blocks, found with one regex pass over the folded
    text that also yields each line break, instead of one pass per line.

    Most texts are ASCII once folded, but for their typographic punctuation (curly
    quotes, dashes, no-break spaces): those characters end words wherever they are, as
    a space does, so they are turned into spaces and the words matched with an ASCII
    class, twice as fast as Unicode's ``\\w`` (the same words: in ASCII, ``\\w`` is that
    class). Line breaks other than "\\n" (rare: extraction writes "\\n") go by
    ``splitlines``, line by line.
    """
    folded, others = _fold_and_others(text)
    if any(c in folded for c in _OTHER_ASCII_BREAKS) or not others.isdisjoint(_OTHER_BREAKS):
        return _read_lines(folded)
    pattern = _ASCII_WORD_OR_BREAK
    if any(c.isalnum() for c in others):  # (\w is alnum or "_", which is ASCII)
        pattern = _WORD_OR_BREAK
    elif others:
        folded = re.sub(_class_of(others), " ", folded)
    tokens = pattern.findall(folded)
    tokens.append("\n")
    words: list[str] = []
    blocks: list[int] = []
    start, last = 0, len(tokens) - 1
    while start <= last:
        end = tokens.index("\n", start)  # a word is never "\n"
        if end > start:
            words += tokens[start:end]
            blocks.append(end - start)
        start = end + 1
    return _Words(words, blocks)


def _read_lines(folded: str) -> _Words:
    words: list[str] = []
    blocks: list[int] = []
    find, extend, count = _WORD.findall, words.extend, blocks.append
    for line in folded.splitlines():
        if found := find(line):
            extend(found)
            count(len(found))
    return _Words(words, blocks)


def fingerprint(text: str) -> str:
    """A hash of the words of ``text``: case, punctuation, spacing and accents ignored."""
    return _fingerprint(_read_words(text))


def _fingerprint(read: _Words) -> str:
    # A word never spans a line, so these are the words of the whole text, in order.
    return hashlib.sha256(" ".join(read.words).encode()).hexdigest()


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


# word -> its 64-bit hash: a memo of a pure function, shared by every text this process
# reads. Words are Zipf-distributed, so a few thousand entries serve most lookups; the
# bound keeps it at about a megabyte.
_WORD_HASHES: dict[str, int] = {}
_WORD_HASHES_MAX = 1 << 14


def _word_hashes(words: list[str]) -> list[int]:
    """The hash of each word, hashing only those the memo does not hold yet."""
    table = _WORD_HASHES
    distinct = set(words)
    missing = distinct.difference(table)
    if len(table) + len(missing) > _WORD_HASHES_MAX:
        table.clear()
        missing = distinct
    for word in missing:
        table[word] = _hash64(word.encode())
    return list(map(table.__getitem__, words))


def shingles(text: str) -> frozenset[int]:
    """The 64-bit hashes of every ``SHINGLE_WORDS``-word window within each block of
    ``text`` (blocks: its lines); a block shorter than a window is one shingle.

    Windows never cross a block boundary, so re-ordered paragraphs, and page chrome
    that ends up as blocks of its own, change nothing of the rest.
    """
    return frozenset(_shingle_array(_read_words(text)).tolist())


# numpy's uint64 arithmetic wraps modulo 2**64: the same values as Python ints & _MASK64.
_U_KS = tuple(np.uint64(k) for k in (_K1, _K2, _K3, _K4))
_U_MIX = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27))
_U_MIX2 = (np.uint64(0x94D049BB133111EB), np.uint64(31))


def _shingle_array(read: _Words) -> npt.NDArray[np.uint64]:
    """The shingles of a text, sorted and distinct.

    Each distinct word is hashed once (blake2b); a window's hash mixes its words'
    hashes with odd multipliers (order matters) and the splitmix64 finalizer (``_mix``):
    as well spread as hashing every window's text, and done for all the windows of the
    text at once as uint64 array arithmetic, several times faster than a loop.
    """
    ids = _word_hashes(read.words)
    h = np.array(ids, dtype=np.uint64)
    short: list[int] = []  # one shingle per block shorter than a window
    start = 0
    for length in read.blocks:
        if length < SHINGLE_WORDS:
            block = ids[start : start + length]
            short.append(_mix(sum(i * k for i, k in zip(block, _KS, strict=False))))
        start += length
    n = len(h) - SHINGLE_WORDS + 1  # window starts
    if n <= 0:
        return _distinct(np.sort(np.array(short, dtype=np.uint64)))
    k1, k2, k3, k4 = _U_KS
    z = h[:n] ^ (h[1 : n + 1] * k1) ^ (h[2 : n + 2] * k2) ^ (h[3 : n + 3] * k3)
    z ^= h[4 : n + 4] * k4
    # A window is kept when it ends within the block it starts in.
    ends = np.repeat(np.cumsum(read.blocks), read.blocks)[:n]
    z = z[np.arange(SHINGLE_WORDS, n + SHINGLE_WORDS) <= ends]
    s30, c1, s27 = _U_MIX
    c2, s31 = _U_MIX2
    z ^= z >> s30
    z *= c1
    z ^= z >> s27
    z *= c2
    z ^= z >> s31
    every = np.concatenate((z, np.array(short, dtype=np.uint64)))
    every.sort()
    return _distinct(every)


def _distinct(ordered: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """The distinct values of a sorted array: ``np.unique`` without its hashing pass,
    which took most of its time on these arrays of a few thousand values."""
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _mix(z: int) -> int:
    """splitmix64's finalizer (Steele, Lea, Flood 2014): every input bit moves every output bit."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _signature(hashes: npt.NDArray[np.uint64]) -> tuple[int, ...]:
    """The densified one-permutation MinHash of a shingle set: ``BINS`` values."""
    empty = np.iinfo(np.uint64).max  # above any value: values are below 2**64 / BINS
    bins = np.full(BINS, empty, dtype=np.uint64)
    np.minimum.at(bins, (hashes % np.uint64(BINS)).astype(np.intp), hashes // np.uint64(BINS))
    values = [_EMPTY if v == empty else v for v in bins.tolist()]
    if not len(hashes) or _EMPTY not in values:
        return tuple(values)
    return tuple(_densify(values))


def _densify(bins: list[int]) -> list[int]:
    """Fill each empty bin from the first non-empty one on its own probe sequence."""
    filled = list(bins)
    for i, value in enumerate(bins):
        attempt = 0
        while value == _EMPTY:
            attempt += 1
            probe = _hash64(struct.pack("<II", i, attempt)) % BINS
            value = bins[probe]
        filled[i] = value
    return filled


def buckets(sig: tuple[int, ...]) -> tuple[int, ...]:
    """One LSH bucket per band: a 63-bit hash of the band's index and its ``ROWS`` values."""
    return tuple(
        _hash64(struct.pack(f"<I{ROWS}Q", band, *sig[band * ROWS : (band + 1) * ROWS]))
        & _BUCKET_MASK
        for band in range(BANDS)
    )


@dataclass(frozen=True, slots=True, eq=False)
class Sketch:
    """What near-duplicate detection needs of one text.

    The shingles are kept as the sorted array they are computed as: a sketch travels
    from the extraction process to the store's, and a set of a thousand Python ints
    cost more to build, pickle and unpickle (in the busy main process) than the array
    (bench/e2e.py's cold ingest). ``shingles`` gives them as a set when needed.
    """

    array: npt.NDArray[np.uint64]  # the distinct shingle hashes, sorted
    buckets: tuple[int, ...]  # empty when the text is too short to compare
    packed: bytes = b""  # the shingles as the store keeps them (``_pack``), to verify candidates

    @property
    def shingles(self) -> frozenset[int]:
        return frozenset(self.array.tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        same = (self.buckets, self.packed) == (other.buckets, other.packed)
        return same and np.array_equal(self.array, other.array)

    __hash__ = None  # type: ignore[assignment]  # mutable array inside: no hash

    @property
    def comparable(self) -> bool:
        return bool(self.buckets)


def sketch(text: str) -> Sketch:
    """Shingles and LSH buckets of ``text``."""
    return _sketch(_read_words(text))


def fingerprint_and_sketch(text: str) -> tuple[str, Sketch]:
    """``fingerprint(text)`` and ``sketch(text)``, reading the words once."""
    read = _read_words(text)
    return _fingerprint(read), _sketch(read)


def _sketch(read: _Words) -> Sketch:
    array = _shingle_array(read)
    if len(array) < MIN_SHINGLES:
        return Sketch(array, ())
    return Sketch(array, buckets(_signature(array)), _pack(array))


def _pack(array: npt.NDArray[np.uint64]) -> bytes:
    """A shingle set as the store keeps it: the distinct top 32 bits of each hash,
    sorted, as little-endian uint32 (4 bytes a shingle, where the text takes about 6
    bytes a word). Two different shingles share their top 32 bits with probability
    2**-32: between two 2,000-shingle texts, 0.001 false common shingles are expected,
    so resemblance on packed sets is exact for every practical purpose."""
    return _distinct((array >> np.uint64(32)).astype("<u4")).tobytes()  # sorted still


def packed_resemblance(a: bytes, b: bytes) -> Resemblance:
    """``resemblance`` of two packed shingle sets (``_pack``): no text to read again."""
    left, right = np.frombuffer(a, dtype="<u4"), np.frombuffer(b, dtype="<u4")
    common = np.intersect1d(left, right, assume_unique=True).size
    return _resemblance(left.size, right.size, common)


@dataclass(frozen=True, slots=True)
class Resemblance:
    """How much two shingle sets overlap (Broder 1997)."""

    jaccard: float  # |A ∩ B| / |A ∪ B|
    containment: float  # |A ∩ B| / min(|A|, |B|)
    length_ratio: float  # max(|A|, |B|) / min(|A|, |B|)

    @property
    def near_duplicate(self) -> bool:
        return self.containment >= CONTAINMENT and self.length_ratio <= MAX_LENGTH_RATIO


def resemblance(a: frozenset[int], b: frozenset[int]) -> Resemblance:
    """Exact resemblance of two shingle sets; zero when either is too small to judge."""
    return _resemblance(len(a), len(b), len(a & b))


def _resemblance(size_a: int, size_b: int, common: int) -> Resemblance:
    small, large = sorted((size_a, size_b))
    if small < MIN_SHINGLES:
        return Resemblance(0.0, 0.0, float("inf"))
    return Resemblance(common / (size_a + size_b - common), common / small, large / small)
