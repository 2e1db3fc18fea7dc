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

SHINGLE_WORDS = 5
BINS = 96
BANDS = 32
ROWS = BINS // BANDS
CONTAINMENT = 0.7
MIN_SHINGLES = 10
MAX_LENGTH_RATIO = 4.0
_EMPTY = 1 << 64  # larger than any bin value
_BUCKET_MASK = (1 << 63) - 1  # SQLite integers are signed 64-bit
_WORD = re.compile(r"\w+")
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
    if text.isascii():  # the common case, ten times faster; the same result
        return text.lower()
    folded = unicodedata.normalize("NFKD", text).casefold()
    # Only the marks this text holds: a class of every combining mark of Unicode makes
    # the regex engine several times slower than NFKD itself.
    marks = {c for c in set(folded) if c > "\x7f" and unicodedata.combining(c)}
    if not marks:
        return folded
    return re.sub("[" + re.escape("".join(sorted(marks))) + "]", "", folded)


def _blocks(text: str) -> list[list[str]]:
    """The words of each non-empty line (block) of ``text``, as ``words`` reads them."""
    find = _WORD.findall
    return [found for line in _fold(text).splitlines() if (found := find(line))]


def fingerprint(text: str) -> str:
    """A hash of the words of ``text``: case, punctuation, spacing and accents ignored."""
    return _fingerprint(_blocks(text))


def _fingerprint(blocks: list[list[str]]) -> str:
    # A word never spans a line, so these are the words of the whole text, in order.
    return hashlib.sha256(" ".join(w for block in blocks for w in block).encode()).hexdigest()


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


# word -> (its hash, and that hash times each window position's multiplier): a memo of
# a pure function, shared by every text this process reads. Words are Zipf-distributed,
# so a few thousand entries serve most lookups; the bound keeps it at a few MB.
_WORD_ROWS: dict[str, tuple[int, int, int, int, int]] = {}
_WORD_ROWS_MAX = 1 << 14


def _word_row(word: str) -> tuple[int, int, int, int, int]:
    h = _hash64(word.encode())
    if len(_WORD_ROWS) >= _WORD_ROWS_MAX:
        _WORD_ROWS.clear()
    row = _WORD_ROWS[word] = (
        h,
        h * _K1 & _MASK64,
        h * _K2 & _MASK64,
        h * _K3 & _MASK64,
        h * _K4 & _MASK64,
    )
    return row


def shingles(text: str) -> frozenset[int]:
    """The 64-bit hashes of every ``SHINGLE_WORDS``-word window within each block of
    ``text`` (blocks: its lines); a block shorter than a window is one shingle.

    Windows never cross a block boundary, so re-ordered paragraphs, and page chrome
    that ends up as blocks of its own, change nothing of the rest.
    """
    return _shingles(_blocks(text))


def _shingles(blocks: list[list[str]]) -> frozenset[int]:
    """Each distinct word is hashed once (blake2b); a window's hash mixes its words'
    hashes with odd multipliers (order matters) and the splitmix64 finalizer: five
    times faster than hashing every window's text, and as well spread. The
    multiplications are done once per word (``_word_row``), so a window costs the
    finalizer's few operations; the finalizer is inlined (``_mix``) for the same reason.
    """
    result: set[int] = set()
    add, get, m = result.add, _WORD_ROWS.get, _MASK64
    for block in blocks:
        rows = [get(w) or _word_row(w) for w in block]
        if len(rows) < SHINGLE_WORDS:
            add(_mix(sum(row[0] * k for row, k in zip(rows, _KS, strict=False))))
            continue
        for (a, _, _, _, _), (_, b, _, _, _), (_, _, c, _, _), (_, _, _, d, _), (
            _,
            _,
            _,
            _,
            e,
        ) in zip(rows, rows[1:], rows[2:], rows[3:], rows[4:], strict=False):
            z = a ^ b ^ c ^ d ^ e
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
            add(z ^ (z >> 31))
    return frozenset(result)


def _mix(z: int) -> int:
    """splitmix64's finalizer (Steele, Lea, Flood 2014): every input bit moves every output bit."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def signature(hashes: frozenset[int]) -> tuple[int, ...]:
    """The densified one-permutation MinHash of a shingle set: ``BINS`` values."""
    bins = [_EMPTY] * BINS
    for h in hashes:
        index, value = h % BINS, h // BINS
        if value < bins[index]:
            bins[index] = value
    if not hashes or _EMPTY not in bins:
        return tuple(bins)
    return tuple(_densify(bins))


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


@dataclass(frozen=True, slots=True)
class Sketch:
    """What near-duplicate detection needs of one text."""

    shingles: frozenset[int]
    buckets: tuple[int, ...]  # empty when the text is too short to compare

    @property
    def comparable(self) -> bool:
        return bool(self.buckets)


def sketch(text: str) -> Sketch:
    """Shingles and LSH buckets of ``text``."""
    return _sketch(_blocks(text))


def fingerprint_and_sketch(text: str) -> tuple[str, Sketch]:
    """``fingerprint(text)`` and ``sketch(text)``, reading the words once."""
    blocks = _blocks(text)
    return _fingerprint(blocks), _sketch(blocks)


def _sketch(blocks: list[list[str]]) -> Sketch:
    hashes = _shingles(blocks)
    if len(hashes) < MIN_SHINGLES:
        return Sketch(hashes, ())
    return Sketch(hashes, buckets(signature(hashes)))


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
    small, large = sorted((len(a), len(b)))
    if small < MIN_SHINGLES:
        return Resemblance(0.0, 0.0, float("inf"))
    common = len(a & b)
    return Resemblance(common / (len(a) + len(b) - common), common / small, large / small)
