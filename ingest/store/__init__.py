"""The store: where articles, dedup keys and source state live.

The pipeline talks to the small ``Store`` protocol below and nothing else, so the
embedded SQLite store (``ingest.store.sqlite``) and a PostgreSQL one can be swapped.
Every write is idempotent and enforced by unique constraints: running the same work
twice, or after a crash, never stores an article twice.

The store also owns what dedup needs to remember: every entry key with the entry as
last seen (``entry_records``), whether a source's GUIDs can be trusted, the exact
fingerprints of every version, and the near-duplicate (LSH) index that ``add_article``
consults before storing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ingest.dedup.neardup import Sketch
from ingest.models import (
    Article,
    ArticleVersion,
    CatalogRow,
    Entry,
    EntryRecord,
    SourceState,
    StoreOutcome,
)


class Store(Protocol):
    async def entry_records(self, keys: list[str]) -> dict[str, EntryRecord]:
        """What is recorded under each of ``keys`` that is known."""
        ...

    async def guids_trusted(self, source: str) -> bool:
        """Whether ``source``'s GUIDs still identify its entries (true until distrusted)."""
        ...

    async def distrust_guids(self, source: str, *, reason: str) -> None:
        """Identify ``source``'s entries by URL from now on, and remember why."""
        ...

    async def add_article(
        self,
        article: Article,
        *,
        keys: tuple[str, ...],
        entry: Entry | None = None,
        near_duplicates: str = "link",
        sketch: Sketch | None = None,
    ) -> StoreOutcome:
        """Store ``article`` and its entry ``keys``, or link them to the article it duplicates.

        ``sketch``: the text's near-duplicate sketch, if the caller computed it already
        (the pipeline does, in the extraction process); else the store computes it.

        Exact duplicates (same id, or the fingerprint of any stored version) are never
        stored. A verified near-copy of a stored article is stored with ``duplicate_of``
        (``near_duplicates="link"``) or recorded as a duplicate and not stored ("skip").
        """
        ...

    async def add_version(
        self,
        article: Article,
        *,
        keys: tuple[str, ...],
        entry: Entry | None = None,
        sketch: Sketch | None = None,
    ) -> StoreOutcome:
        """A refetched article (``article.id`` is stored): a new version ("updated") if its
        text changed, else "unchanged" and only the entry's last-seen state is kept."""
        ...

    async def mark_entry(
        self,
        keys: tuple[str, ...],
        *,
        source: str,
        status: str,
        reason: str,
        entry: Entry | None = None,
    ) -> None:
        """Remember an entry that was deliberately not stored (``status`` "skipped")."""
        ...

    async def source_state(self, name: str) -> SourceState | None: ...

    async def save_source_state(self, state: SourceState) -> None: ...

    async def source_states(self) -> list[SourceState]: ...

    async def articles(
        self, *, after: int = 0, limit: int = 50, newest_first: bool = False
    ) -> list[CatalogRow]: ...

    async def search(self, query: str, *, limit: int = 20) -> list[CatalogRow]: ...

    async def get_article(self, article_id: str, *, version: int | None = None) -> Article | None:
        """The article's newest document, or the given ``version`` of it."""
        ...

    async def versions(self, article_id: str) -> list[ArticleVersion]: ...

    async def cluster(self, article_id: str) -> list[CatalogRow]:
        """Every article of ``article_id``'s near-duplicate cluster, its first article first."""
        ...

    async def close(self) -> None: ...


def open_store(storage_dir: Path) -> Store:
    """The default store: JSON documents plus a SQLite catalog under ``storage_dir``."""
    from ingest.store.sqlite import SQLiteStore

    return SQLiteStore.open(storage_dir)
