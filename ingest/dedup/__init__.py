"""Deduplication: who an entry is before we fetch it, and what an article says after.

* ``urls``: URL canonicalization (the dedup form of a link) and "same site";
* ``identity``: layered entry identity (GUID while trustworthy, canonical URL, a
  fallback), GUID-trust detection, and the new / seen / updated decision, all before
  any page is fetched;
* ``neardup``: the exact text fingerprint and the MinHash/LSH sketch that finds the same
  story under another wrapper, lightly edited, truncated or re-ordered.

The store enforces the keys and the fingerprint with unique constraints and holds the
LSH index; the pipeline decides what to fetch from ``identity.classify``.
"""

from ingest.dedup.identity import (
    article_id,
    classify,
    entry_keys,
    guid_problem,
    lookup_keys,
)
from ingest.dedup.neardup import Resemblance, Sketch, fingerprint, resemblance, sketch, words
from ingest.dedup.urls import normalize_url, registrable_domain, same_site

__all__ = [
    "Resemblance",
    "Sketch",
    "article_id",
    "classify",
    "entry_keys",
    "fingerprint",
    "guid_problem",
    "lookup_keys",
    "normalize_url",
    "registrable_domain",
    "resemblance",
    "same_site",
    "sketch",
    "words",
]
