"""The store: where articles, dedup keys and source state live.

The pipeline talks to the small ``Store`` protocol below and nothing else, so the
embedded SQLite store (``ingest.store.sqlite``) and a PostgreSQL one can be swapped.
Every write is idempotent and enforced by unique constraints: running the same work
twice, or after a crash, never stores an article twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ingest.models import Article, CatalogRow, Entry, SourceState, StoreOutcome


class Store(Protocol):
    async def unseen(self, entries: list[Entry], *, source: str) -> list[Entry]:
        """The entries none of whose identity keys is known yet."""
        ...

    async def add_article(self, article: Article, *, keys: tuple[str, ...]) -> StoreOutcome:
        """Store ``article`` and its entry ``keys``, or link them to the article it duplicates."""
        ...

    async def mark_entry(
        self, keys: tuple[str, ...], *, source: str, status: str, reason: str
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

    async def get_article(self, article_id: str) -> Article | None: ...

    async def close(self) -> None: ...


def open_store(storage_dir: Path) -> Store:
    """The default store: JSON documents plus a SQLite catalog under ``storage_dir``."""
    from ingest.store.sqlite import SQLiteStore

    return SQLiteStore.open(storage_dir)
