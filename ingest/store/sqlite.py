"""The embedded store: article JSON files plus a SQLite catalog (WAL) beside them.

Write order, so that a crash at any instant leaves nothing half-written:
1. commit a ``pending_files`` row naming the document about to be written;
2. write the document atomically (temp file, fsync, rename);
3. in one transaction, insert the article, its entry keys and its full-text row, and
   delete the pending row.
On open, any pending row left by a crash is undone (file and temp files removed), so the
entry is simply fetched again on the next poll. Unique constraints on the article id,
the fingerprint, the path and every entry key make a double insert impossible.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from ingest import document
from ingest.errors import StoreError
from ingest.models import Article, CatalogRow, Entry, SourceState, StoreOutcome, Validators
from ingest.store import files

CATALOG = "catalog.sqlite3"
T = TypeVar("T")

# Each migration runs once, in order, in its own transaction; the applied ones are
# recorded in schema_migrations. Append new ones; never edit an applied one.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "initial catalog",
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            last_polled_at TEXT,
            last_status TEXT,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            next_poll_at TEXT,
            entries_seen INTEGER NOT NULL DEFAULT 0,
            articles_stored INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE articles (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            fingerprint TEXT NOT NULL UNIQUE,
            path TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            canonical_url TEXT,
            source TEXT,
            title TEXT,
            published_at TEXT,
            fetched_at TEXT NOT NULL,
            stored_at TEXT NOT NULL
        );
        CREATE INDEX articles_source ON articles (source, seq);
        CREATE TABLE entry_keys (
            key TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('stored', 'duplicate', 'skipped')),
            article_id TEXT REFERENCES articles (id),
            reason TEXT,
            seen_at TEXT NOT NULL
        );
        CREATE TABLE pending_files (path TEXT PRIMARY KEY, created_at TEXT NOT NULL);
        CREATE VIRTUAL TABLE articles_fts USING fts5 (title, text, tokenize = 'unicode61');
        """,
    ),
)


class SQLiteStore:
    """``Store`` on one SQLite connection, used from worker threads one call at a time."""

    def __init__(self, root: Path, conn: sqlite3.Connection, *, now: Callable[[], datetime]):
        self.root = root
        self._conn = conn
        self._lock = threading.Lock()  # guards the connection
        self._write_lock = threading.Lock()  # one article write at a time
        self._now = now

    @classmethod
    def open(cls, root: Path, *, now: Callable[[], datetime] | None = None) -> SQLiteStore:
        """Open (creating and migrating if needed) the store under ``root``."""
        try:
            root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                root / CATALOG, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable on commit
            conn.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"store: cannot open catalog in {root}: {exc}") from exc
        store = cls(root, conn, now=now or (lambda: datetime.now(UTC)))
        store._migrate()
        store._recover()
        return store

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; sqlite errors translated."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"store: catalog error: {exc}") from exc

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"store: catalog error: {exc}") from exc

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        if len(applied) > len(MIGRATIONS):
            raise StoreError(
                f"store: catalog schema version {max(applied)} is newer than this ingest "
                f"understands ({len(MIGRATIONS)}); upgrade ingest"
            )
        for version, (name, sql) in enumerate(MIGRATIONS, start=1):
            if version in applied:
                continue
            with self._transaction() as conn:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (version, name, self._now().isoformat()),
                )

    def _recover(self) -> None:
        """Undo document writes that a crash cut off before their catalog commit."""
        for row in self._read("SELECT path FROM pending_files"):
            rel = row["path"]
            if not self._read("SELECT 1 FROM articles WHERE path = ?", (rel,)):
                files.remove_leftovers(self.root, rel)
            with self._transaction() as conn:
                conn.execute("DELETE FROM pending_files WHERE path = ?", (rel,))

    @property
    def schema_version(self) -> int:
        return int(self._read("SELECT max(version) FROM schema_migrations")[0][0])

    # -- entries ----------------------------------------------------------------------

    async def unseen(self, entries: list[Entry], *, source: str) -> list[Entry]:
        from ingest.dedup import entry_keys

        keyed = [(entry, entry_keys(entry, source=source)) for entry in entries]
        wanted = sorted({key for _, keys in keyed for key in keys})
        known = await self._run(lambda: self._known_keys(wanted))
        return [entry for entry, keys in keyed if not known.intersection(keys)]

    def _known_keys(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._read(f"SELECT key FROM entry_keys WHERE key IN ({marks})", tuple(chunk))
            found.update(row["key"] for row in rows)
        return found

    async def mark_entry(
        self, keys: tuple[str, ...], *, source: str, status: str, reason: str
    ) -> None:
        def mark() -> None:
            with self._transaction() as conn:
                self._insert_keys(conn, keys, source=source, status=status, reason=reason)

        await self._run(mark)

    def _insert_keys(
        self,
        conn: sqlite3.Connection,
        keys: tuple[str, ...],
        *,
        source: str,
        status: str,
        article_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO entry_keys (key, source, status, article_id, reason, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(k, source, status, article_id, reason, self._now().isoformat()) for k in keys],
        )

    # -- articles ---------------------------------------------------------------------

    async def add_article(self, article: Article, *, keys: tuple[str, ...]) -> StoreOutcome:
        return await self._run(lambda: self._add_article(article, keys))

    def _add_article(self, article: Article, keys: tuple[str, ...]) -> StoreOutcome:
        # One writer at a time within this process; the unique constraints (and the
        # no-overwrite file write) settle races with other processes.
        with self._write_lock:
            existing = self._existing(article)
            if existing is not None:
                return self._duplicate(existing, article, keys)
            rel = files.relative_path(article)
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO pending_files VALUES (?, ?)",
                    (rel, self._now().isoformat()),
                )
            try:
                files.write_article(self.root, article)
            except FileExistsError:  # another process stored this id a moment ago
                self._forget_pending(rel)
                return self._duplicate(article.id, article, keys)
            except OSError as exc:
                files.remove_leftovers(self.root, rel)
                self._forget_pending(rel)
                raise StoreError(f"store: cannot write {rel}: {exc}") from exc
            try:
                with self._transaction() as conn:
                    seq = self._insert_article(conn, article, rel)
                    self._insert_keys(
                        conn,
                        keys,
                        source=article.source or "",
                        status="stored",
                        article_id=article.id,
                    )
                    conn.execute("DELETE FROM pending_files WHERE path = ?", (rel,))
            except StoreError as exc:
                files.remove_leftovers(self.root, rel)  # ours: written exclusively above
                self._forget_pending(rel)
                existing = self._existing(article)
                if existing is not None and isinstance(exc.__cause__, sqlite3.IntegrityError):
                    return self._duplicate(existing, article, keys)
                raise
            return StoreOutcome("stored", article.id, seq=seq, path=rel)

    def _duplicate(self, existing: str, article: Article, keys: tuple[str, ...]) -> StoreOutcome:
        with self._transaction() as conn:
            self._insert_keys(
                conn, keys, source=article.source or "", status="duplicate", article_id=existing
            )
        return StoreOutcome("duplicate", existing)

    def _existing(self, article: Article) -> str | None:
        """The id of a stored article this one repeats (same identity or same text)."""
        rows = self._read(
            "SELECT id FROM articles WHERE id = ? OR fingerprint = ? LIMIT 1",
            (article.id, article.fingerprint),
        )
        return str(rows[0]["id"]) if rows else None

    def _forget_pending(self, rel: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM pending_files WHERE path = ?", (rel,))

    def _insert_article(self, conn: sqlite3.Connection, article: Article, rel: str) -> int:
        cursor = conn.execute(
            "INSERT INTO articles (id, fingerprint, path, url, canonical_url, source, title,"
            " published_at, fetched_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                article.id,
                article.fingerprint,
                rel,
                article.url,
                article.canonical_url,
                article.source,
                article.title,
                _iso(article.published),
                _iso(article.fetched_at or self._now()),
                self._now().isoformat(),
            ),
        )
        seq = int(cursor.lastrowid or 0)
        conn.execute(
            "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
            (seq, article.title or "", article.text),
        )
        return seq

    async def articles(
        self, *, after: int = 0, limit: int = 50, newest_first: bool = False
    ) -> list[CatalogRow]:
        order = "DESC" if newest_first else "ASC"
        rows = await self._run(
            lambda: self._read(
                f"SELECT * FROM articles WHERE seq > ? ORDER BY seq {order} LIMIT ?",
                (after, limit),
            )
        )
        return [_catalog_row(row) for row in rows]

    async def search(self, query: str, *, limit: int = 20) -> list[CatalogRow]:
        sql = (
            "SELECT a.* FROM articles_fts JOIN articles a ON a.seq = articles_fts.rowid"
            " WHERE articles_fts MATCH ? ORDER BY rank LIMIT ?"
        )
        rows = await self._run(lambda: self._read(sql, (_fts_query(query), limit)))
        return [_catalog_row(row) for row in rows]

    async def get_article(self, article_id: str) -> Article | None:
        rows = await self._run(
            lambda: self._read("SELECT path FROM articles WHERE id = ?", (article_id,))
        )
        if not rows:
            return None
        path = self.root / rows[0]["path"]
        try:
            return document.from_document(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"store: cannot read article {article_id} at {path}: {exc}") from exc

    # -- sources ----------------------------------------------------------------------

    async def source_state(self, name: str) -> SourceState | None:
        rows = await self._run(lambda: self._read("SELECT * FROM sources WHERE name = ?", (name,)))
        return _source_state(rows[0]) if rows else None

    async def source_states(self) -> list[SourceState]:
        rows = await self._run(lambda: self._read("SELECT * FROM sources ORDER BY name"))
        return [_source_state(row) for row in rows]

    async def save_source_state(self, state: SourceState) -> None:
        def save() -> None:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        state.name,
                        state.url,
                        state.validators.etag,
                        state.validators.last_modified,
                        _iso(state.last_polled_at),
                        state.last_status,
                        state.last_error,
                        state.consecutive_failures,
                        _iso(state.next_poll_at),
                        state.entries_seen,
                        state.articles_stored,
                    ),
                )

        await self._run(save)

    async def close(self) -> None:
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _fts_query(query: str) -> str:
    """Quote each word so user input is never read as FTS5 syntax."""
    words = [w.replace('"', '""') for w in query.split()]
    return " ".join(f'"{w}"' for w in words) or '""'


def _catalog_row(row: sqlite3.Row) -> CatalogRow:
    return CatalogRow(
        seq=row["seq"],
        id=row["id"],
        path=row["path"],
        url=row["url"],
        source=row["source"],
        title=row["title"],
        published=_dt(row["published_at"]),
        fetched_at=_dt(row["fetched_at"]) or datetime.fromtimestamp(0, UTC),
    )


def _source_state(row: sqlite3.Row) -> SourceState:
    return SourceState(
        name=row["name"],
        url=row["url"],
        validators=Validators(row["etag"], row["last_modified"]),
        last_polled_at=_dt(row["last_polled_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        consecutive_failures=row["consecutive_failures"],
        next_poll_at=_dt(row["next_poll_at"]),
        entries_seen=row["entries_seen"],
        articles_stored=row["articles_stored"],
    )
