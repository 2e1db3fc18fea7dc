"""Near-duplicate sketches: shingles, MinHash/LSH buckets and exact verification."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given
from hypothesis import strategies as st

from ingest.dedup import fingerprint, resemblance, sketch
from ingest.dedup.neardup import (
    _KS,
    BANDS,
    MIN_SHINGLES,
    _hash64,
    _mix,
    fingerprint_and_sketch,
    shingles,
    words,
)

WORDS = [
    "harbour",
    "bridge",
    "council",
    "engineers",
    "steel",
    "cable",
    "repair",
    "traffic",
    "ferry",
    "minister",
    "budget",
    "river",
    "city",
    "tunnel",
    "workers",
    "spring",
    "summer",
    "winter",
    "opened",
    "closed",
    "said",
    "report",
    "week",
    "million",
    "tonnes",
    "crossing",
    "commuters",
    "delays",
    "inspection",
    "safety",
    "rust",
    "paint",
]


def story(seed: int, paragraphs: int = 8, words: int = 40) -> str:
    rng = random.Random(seed)
    return "\n\n".join(
        " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."
        for _ in range(paragraphs)
    )


def shared_bucket(a: str, b: str) -> bool:
    return bool(set(sketch(a).buckets) & set(sketch(b).buckets))


def test_light_edit_is_a_verified_candidate() -> None:
    """A few changed words keep the pair an LSH candidate and a verified near copy."""
    text = story(1)
    words = text.split(" ")
    for i in (5, 60, 150, 230):
        words[i] = "corrected"
    edited = " ".join(words)
    assert fingerprint(edited) != fingerprint(text)
    assert shared_bucket(text, edited)
    assert resemblance(shingles(text), shingles(edited)).near_duplicate


def test_reordered_paragraphs_change_no_shingle() -> None:
    """Shingles never span two blocks, so paragraph order does not matter."""
    text = story(2)
    blocks = text.split("\n\n")
    assert shingles("\n\n".join(reversed(blocks))) == shingles(text)


def test_truncated_copy_is_contained() -> None:
    """The first 60% of a story is found and verified by containment."""
    text = story(3)
    cut = text[: int(len(text) * 0.6)]
    found = resemblance(shingles(text), shingles(cut))
    assert found.containment > 0.95
    assert found.near_duplicate
    assert shared_bucket(text, cut)


def test_different_stories_are_kept_apart() -> None:
    """Two stories from the same vocabulary share no verified near-copy relation."""
    a, b = story(4), story(5)
    assert not resemblance(shingles(a), shingles(b)).near_duplicate
    assert not shared_bucket(a, b)


def test_short_texts_are_left_to_the_fingerprint() -> None:
    """A text too short to judge gets no LSH buckets and never verifies."""
    short = "Bridge closed for the day."
    assert not sketch(short).comparable
    assert len(shingles(short)) < MIN_SHINGLES
    assert not resemblance(shingles(short), shingles(short)).near_duplicate


def test_a_teaser_is_not_the_story() -> None:
    """A contained text many times shorter is not linked as a copy."""
    text = story(6, paragraphs=20)
    teaser = text.split("\n\n")[0]
    assert not resemblance(shingles(text), shingles(teaser)).near_duplicate


@given(st.text(max_size=400))
def test_sketch_never_crashes_and_is_stable(text: str) -> None:
    """Any text gives a sketch, the same one twice, with one bucket per band or none."""
    first = sketch(text)
    assert first == sketch(text)
    assert len(first.buckets) in (0, BANDS)


@given(st.text(max_size=200))
def test_fingerprint_ignores_case_and_spacing(text: str) -> None:
    """Upper-casing and re-spacing a text keep its fingerprint."""
    assert fingerprint(text) == fingerprint("  " + " ".join(text.split()) + " ")


def test_hashes_are_the_ones_stored_catalogs_hold() -> None:
    """Shingles, buckets and fingerprint of a fixed text keep the values of earlier
    releases: catalogs store the buckets, so a change would hide every stored copy."""
    text = (
        "Café owners in Zürich said the new rules take effect in March.\nShort line\n\n"
        "The council voted 7-2 on Tuesday evening after a long debate about parking.\n"
        "Été ﬁnal naïve résumé coöperate"
    )
    found = sketch(text)
    digest = hashlib.sha256(repr(sorted(found.shingles)).encode()).hexdigest()
    assert (len(found.shingles), digest[:16]) == (20, "9675700b41dcdf7f")
    assert hashlib.sha256(repr(found.buckets).encode()).hexdigest()[:16] == "65108c4b86cfd5b3"
    assert fingerprint(text)[:16] == "6f989db962e35de5"
    assert (fingerprint(text), found) == fingerprint_and_sketch(text)


# Mostly ASCII with typographic punctuation, no-break spaces and the odd accent, as
# article text is: the shapes the word reader has fast paths for.
ARTICLE_LIKE = st.text(
    alphabet="aBc dE\n\n\u2019\u201c\u201d\u2014\u00a0\u2026\u00e9_9.", max_size=400
)


@given(st.one_of(st.text(max_size=400), ARTICLE_LIKE))
def test_sketch_of_any_text_matches_the_word_by_word_definition(text: str) -> None:
    """The vectorized shingles equal a plain loop over each line's 5-word windows, and
    the fingerprint hashes the words read line by line."""
    every = [w for line in text.splitlines() for w in words(line)]
    assert fingerprint(text) == hashlib.sha256(" ".join(every).encode()).hexdigest()
    expected = set()
    for line in text.splitlines():
        ids = [_hash64(w.encode()) for w in words(line)]
        if 0 < len(ids) < 5:
            expected.add(_mix(sum(i * k for i, k in zip(ids, _KS, strict=False))))
        for at in range(len(ids) - 4):
            a, b, c, d, e = ids[at : at + 5]
            expected.add(_mix(a ^ (b * _KS[1]) ^ (c * _KS[2]) ^ (d * _KS[3]) ^ (e * _KS[4])))
    assert shingles(text) == expected
