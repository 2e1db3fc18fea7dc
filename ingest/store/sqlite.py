"""The embedded store: article JSON files plus a SQLite catalog (WAL) beside them.

Write order, so that a crash at any instant leaves nothing half-written:
1. commit a ``pending_files`` row naming the document about to be written;
2. write the document atomically (temp file, fsync, link, fsync of the directory);
3. in one transaction, insert the article, its entry keys and its full-text row, and
   delete the pending row; or, if it turns out to repeat a stored article, remove the
   document and delete the pending row.
On open, any pending row left by a crash is undone (file and temp files removed), so the
entry is simply fetched again on the next poll. Unique constraints on the article id,
the fingerprint, the path and every entry key make a double insert impossible.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from ingest import document
from ingest.dedup.identity import entry_keys
from ingest.dedup.neardup import (
    Resemblance,
    Sketch,
    packed_resemblance,
    resemblance,
    shingles,
)
from ingest.dedup.neardup import sketch as text_sketch
from ingest.errors import StoreError
from ingest.models import (
    Article,
    ArticleVersion,
    CatalogRow,
    Entry,
    EntryRecord,
    SourceState,
    StoreOutcome,
    Validators,
)
from ingest.store import files

CATALOG = "catalog.sqlite3"
LOCK_FILE = ".lock"
NEAR_DUPLICATE_MODES = ("link", "skip")
# Candidates verified per lookup, most shared LSH buckets first. A true copy shares
# most of the 32 bands; this only bounds the work when a text matches many articles
# (a boilerplate-only page), where the first few are as good a cluster as any.
MAX_CANDIDATES = 8
# A document linked this recently, and not in the catalog, may be another process's
# write between its link and its commit (seconds at most, or the busy timeout); an
# older one was left by a crash (a commit lost to a power cut) and may be replaced.
_IN_FLIGHT = 300.0
_OPEN_WAIT = 30.0  # seconds to wait for a catalog another connection holds (busy timeout)
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
    (
        "versions, near-duplicate clusters, entry state and guid trust",
        """
        ALTER TABLE articles ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE articles ADD COLUMN duplicate_of TEXT;
        ALTER TABLE articles ADD COLUMN similarity REAL;
        CREATE INDEX articles_cluster ON articles (duplicate_of) WHERE duplicate_of IS NOT NULL;
        CREATE TABLE article_versions (
            article_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            stored_at TEXT NOT NULL,
            PRIMARY KEY (article_id, version)
        ) WITHOUT ROWID;
        CREATE INDEX article_versions_fingerprint ON article_versions (fingerprint);
        INSERT INTO article_versions (article_id, version, fingerprint, path, stored_at)
            SELECT id, 1, fingerprint, path, stored_at FROM articles;
        ALTER TABLE entry_keys ADD COLUMN guid TEXT;
        ALTER TABLE entry_keys ADD COLUMN url TEXT;
        ALTER TABLE entry_keys ADD COLUMN published_at TEXT;
        ALTER TABLE entry_keys ADD COLUMN updated_at TEXT;
        ALTER TABLE entry_keys ADD COLUMN title TEXT;
        CREATE TABLE source_guids (
            source TEXT PRIMARY KEY,
            trusted INTEGER NOT NULL,
            reason TEXT,
            decided_at TEXT NOT NULL
        );
        CREATE TABLE neardup_docs (num INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE);
        CREATE TABLE neardup_buckets (
            bucket INTEGER NOT NULL,
            num INTEGER NOT NULL,
            PRIMARY KEY (bucket, num)
        ) WITHOUT ROWID
        """,
    ),
    (
        "adaptive schedule and moved sources",
        """
        ALTER TABLE sources ADD COLUMN interval_seconds REAL;
        ALTER TABLE sources ADD COLUMN current_url TEXT;
        ALTER TABLE sources ADD COLUMN redirect_target TEXT;
        ALTER TABLE sources ADD COLUMN redirect_count INTEGER NOT NULL DEFAULT 0
        """,
    ),
    (
        "packed shingles for near-duplicate verification",
        # Sketch.packed of each indexed text (dedup.neardup): a candidate is verified without
        # reading its document back and hashing its text again. NULL for articles
        # indexed before this migration; their text is read instead.
        "ALTER TABLE neardup_docs ADD COLUMN shingles BLOB",
    ),
)


class SQLiteStore:
    """``Store`` on one SQLite connection, used from worker threads one call at a time."""

    def __init__(self, root: Path, conn: sqlite3.Connection, *, now: Callable[[], datetime]):
        self.root = root
        self._conn = conn
        self._lock = threading.Lock()  # guards the connection
        self._write_lock = threading.Lock()  # one article write at a time
        self._claims: set[str] = set()  # document paths being written by some thread
        self._claimed = threading.Condition()
        self._now = now
        self._states = _StateCommits(self._save_states)
        self._lock_fd: int | None = None  # .lock, held shared while open (`_hold_lock`)

    @classmethod
    def open(cls, root: Path, *, now: Callable[[], datetime] | None = None) -> SQLiteStore:
        """Open (creating and migrating if needed) the store under ``root``."""
        try:
            root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                root / CATALOG,
                isolation_level=None,
                check_same_thread=False,
                timeout=_OPEN_WAIT,
            )
            _wal_mode(conn)
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable on commit
            # Checkpoint every 10,000 WAL pages (40 MB), not SQLite's 1,000: an article
            # rewrites about 75 pages scattered over the LSH and key indexes and the
            # full-text index, and a page rewritten several times between checkpoints
            # is copied back once (1,500 bench articles into a new store: 9% fewer page
            # writes, 38 syncs of the database instead of 311, 13% less time over three
            # runs each).
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            # 64 MiB of page cache (the default is 2 MiB): keeps the interior pages of the
            # key and LSH indexes in memory, so a lookup at a million articles reads about
            # one page per probe instead of a whole B-tree path (bench/dedup.py).
            conn.execute("PRAGMA cache_size = -65536")
            # Read through a memory map (SQLite still writes with write(), so durability
            # is unchanged): at a million articles an LSH lookup takes half the time,
            # because its 32 random leaf reads need no system call each.
            conn.execute("PRAGMA mmap_size = 2147483648")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"store: cannot open catalog in {root}: {exc}") from exc
        store = cls(root, conn, now=now or (lambda: datetime.now(UTC)))
        store._migrate()
        store._hold_lock()
        return store

    def _hold_lock(self) -> None:
        """Hold ``.lock`` shared while the store is open; the opener that finds no other
        one holding it takes it alone first, and only then undoes crashed writes.

        Undoing a write that has its pending row but no catalog row is right after a
        crash, and wrong while another process is between the two: it would delete a
        document that process is about to record (two ``ingest poll`` processes on one
        store, started one after the other).
        """
        try:
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"store: cannot open {self.root / LOCK_FILE}: {exc}") from exc
        self._lock_fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process has the store open: not ours to undo
            fcntl.flock(fd, fcntl.LOCK_SH)
            return
        try:
            self._recover()
        finally:
            fcntl.flock(fd, fcntl.LOCK_SH)

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
            # Checked again inside the write transaction: another process (or store)
            # opening the same new catalog at the same moment may have applied it.
            with self._transaction() as conn:
                done = "SELECT 1 FROM schema_migrations WHERE version = ?"
                if conn.execute(done, (version,)).fetchone():
                    continue
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
            if not self._read("SELECT 1 FROM article_versions WHERE path = ?", (rel,)):
                files.remove_leftovers(self.root, rel)
            with self._transaction() as conn:
                conn.execute("DELETE FROM pending_files WHERE path = ?", (rel,))

    @property
    def schema_version(self) -> int:
        return int(self._read("SELECT max(version) FROM schema_migrations")[0][0])

    # -- entries ----------------------------------------------------------------------

    async def entry_records(self, keys: list[str]) -> dict[str, EntryRecord]:
        rows = await self._run(lambda: self._key_rows(keys))
        return {row["key"]: _entry_record(row) for row in rows}

    def _key_rows(self, keys: list[str]) -> list[sqlite3.Row]:
        found: list[sqlite3.Row] = []
        for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += self._read(f"SELECT * FROM entry_keys WHERE key IN ({marks})", tuple(chunk))
        return found

    async def guids_trusted(self, source: str) -> bool:
        rows = await self._run(
            lambda: self._read("SELECT trusted FROM source_guids WHERE source = ?", (source,))
        )
        return not rows or bool(rows[0]["trusted"])

    async def distrust_guids(self, source: str, *, reason: str) -> None:
        def save() -> None:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO source_guids VALUES (?, 0, ?, ?)",
                    (source, reason, self._now().isoformat()),
                )

        await self._run(save)

    async def mark_entry(
        self,
        keys: tuple[str, ...],
        *,
        source: str,
        status: str,
        reason: str,
        entry: Entry | None = None,
    ) -> None:
        def mark() -> None:
            with self._transaction() as conn:
                self._insert_keys(
                    conn, keys, source=source, status=status, reason=reason, entry=entry
                )
                if entry is not None:  # a refetched entry: do not refetch this state again
                    self._refresh_entry(conn, entry, source=source)

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
        entry: Entry | None = None,
    ) -> None:
        """Record ``keys`` (known ones keep what they say); the entry as seen goes on the
        entry's own keys, not on keys learnt from its page."""
        if not keys:
            return
        own = set(entry_keys(entry, source=source)) if entry else set()
        now = self._now().isoformat()
        rows = [
            (k, source, status, article_id, reason, now, *_entry_fields(entry, k in own))
            for k in keys
        ]
        conn.execute(
            "INSERT OR IGNORE INTO entry_keys (key, source, status, article_id, reason, seen_at,"
            " guid, url, published_at, updated_at, title) VALUES " + _rows(len(keys), 11),
            [value for row in rows for value in row],
        )

    def _refresh_entry(self, conn: sqlite3.Connection, entry: Entry, *, source: str) -> None:
        """Remember the entry as now seen on its keys, so the same state is not refetched."""
        conn.executemany(
            "UPDATE entry_keys SET guid = ?, url = ?, published_at = ?, updated_at = ?, title = ?"
            " WHERE key = ? AND source = ?",
            [(*_entry_fields(entry, True), k, source) for k in entry_keys(entry, source=source)],
        )

    # -- articles ---------------------------------------------------------------------

    async def add_article(
        self,
        article: Article,
        *,
        keys: tuple[str, ...],
        entry: Entry | None = None,
        near_duplicates: str = "link",
        sketch: Sketch | None = None,
    ) -> StoreOutcome:
        if near_duplicates not in NEAR_DUPLICATE_MODES:
            raise ValueError(f"near_duplicates must be one of {NEAR_DUPLICATE_MODES}")
        return await self._run(
            lambda: self._add_article(article, keys, entry, near_duplicates, sketch)
        )

    def _add_article(
        self,
        article: Article,
        keys: tuple[str, ...],
        entry: Entry | None,
        near: str,
        sk: Sketch | None = None,
    ) -> StoreOutcome:
        sk = sk or text_sketch(article.text)  # CPU work outside the write lock
        # The near-copy lookup comes first, outside the lock too, so that the document
        # is written once, naming its cluster; under the lock it is looked up again
        # (index probes, with the comparisons already made reused) in case a copy was
        # stored meanwhile.
        compared: dict[str, Resemblance] = {}
        match = self._near_match(sk, compared)
        if match is not None and near == "link":
            article = replace(article, duplicate_of=match[0])
        rel = files.relative_path(article)
        # The document is written, synced and linked into place before the write lock
        # is taken, so that articles wait for the disk side by side rather than in turn
        # (the directory syncs of concurrent writes overlap instead of queueing); the
        # lock then only checks for copies and records it. Its pending row comes first, as for any
        # write: a crash anywhere after leaves the file to be undone on open. Two writes
        # of one path in this process would share a pending row: in turn.
        with self._claim(rel):
            self._begin_pending(rel)
            try:
                tmp = files.prepare(self.root / rel, files.document_bytes(article))
                published = self._publish(tmp, rel)
            except OSError as exc:  # nothing of ours at rel
                self._forget_pending(rel)
                raise StoreError(f"store: cannot write {rel}: {exc}") from exc
            prepared = _Prepared(rel, published, sk, compared)
            # One writer at a time within this process; the unique constraints (and
            # the no-overwrite link) settle races with other processes.
            with self._write_lock:
                return self._add_prepared(article, keys, entry, near, prepared)

    def _publish(self, tmp: Path, rel: str) -> bool:
        """Link the prepared ``tmp`` at ``rel``; False when a file is there already."""
        try:
            files.publish(tmp, self.root / rel, replace=False)
        except FileExistsError:  # (publish removed tmp)
            return False
        return True

    @contextmanager
    def _claim(self, rel: str) -> Iterator[None]:
        """Hold ``rel`` for this thread's write; another thread's wait for it ends first."""
        with self._claimed:
            while rel in self._claims:
                self._claimed.wait()
            self._claims.add(rel)
        try:
            yield
        finally:
            with self._claimed:
                self._claims.discard(rel)
                self._claimed.notify_all()

    def _add_prepared(
        self,
        article: Article,
        keys: tuple[str, ...],
        entry: Entry | None,
        near: str,
        prepared: _Prepared,
    ) -> StoreOutcome:
        """Under the write lock: a duplicate, or the prepared document (at
        ``prepared.rel`` if ``prepared.published``, pending) stored."""
        rel, sk = prepared.rel, prepared.sketch
        # Not stored after all: our linked file goes (a file found there stays).
        undo = self._abandon if prepared.published else self._forget_pending
        existing = self._existing(article)
        if existing is not None:
            undo(rel)
            return self._duplicate(existing, article, keys, entry)
        match = self._near_match(sk, prepared.compared)
        if match is not None and near == "skip":
            undo(rel)
            return self._duplicate(match[0], article, keys, entry, similarity=match[1])
        similarity = match[1] if match is not None else None
        cluster = match[0] if match is not None else None
        try:
            if not prepared.published:
                if self._known_path(rel):  # another process stored this id just now
                    self._forget_pending(rel)
                    return self._duplicate(article.id, article, keys, entry)
                if files.age(self.root / rel) < _IN_FLIGHT:
                    # Another process's write in progress (its catalog row comes next):
                    # not ours to replace. The entry is tried again on the next poll.
                    self._forget_pending(rel)
                    raise StoreError(f"store: {rel} is being written by another process")
                # A file the catalog never recorded: a write whose catalog commit was
                # lost (power cut under synchronous=NORMAL). Ours to replace.
                article = replace(article, duplicate_of=cluster)
                files.write_article(self.root, article, replace=True)
            elif cluster != article.duplicate_of:  # a copy stored meanwhile (or gone): rare
                article = replace(article, duplicate_of=cluster)
                files.write_article(self.root, article, replace=True)
        except OSError as exc:
            self._abandon(rel)
            raise StoreError(f"store: cannot write {rel}: {exc}") from exc
        try:
            with self._transaction() as conn:
                seq = self._insert_article(conn, article, rel, similarity=similarity)
                self._insert_version(conn, article, rel)
                self._index_buckets(conn, article.id, sk)
                self._insert_keys(
                    conn,
                    keys,
                    source=article.source or "",
                    status="stored",
                    article_id=article.id,
                    entry=entry,
                )
                conn.execute("DELETE FROM pending_files WHERE path = ?", (rel,))
        except StoreError as exc:
            self._abandon(rel)  # ours: linked exclusively above
            existing = self._existing(article)
            if existing is not None and isinstance(exc.__cause__, sqlite3.IntegrityError):
                return self._duplicate(existing, article, keys, entry)
            raise
        return StoreOutcome(
            "stored",
            article.id,
            seq=seq,
            path=rel,
            duplicate_of=article.duplicate_of,
            similarity=similarity,
            version=1,
        )

    def _duplicate(
        self,
        existing: str,
        article: Article,
        keys: tuple[str, ...],
        entry: Entry | None,
        *,
        similarity: float | None = None,
    ) -> StoreOutcome:
        near = similarity is not None
        reason = f"near duplicate (containment {similarity:.2f})" if near else None
        with self._transaction() as conn:
            self._insert_keys(
                conn,
                keys,
                source=article.source or "",
                status="duplicate",
                article_id=existing,
                reason=reason,
                entry=entry,
            )
        if near:
            return StoreOutcome(
                "near_duplicate", existing, duplicate_of=existing, similarity=similarity
            )
        return StoreOutcome("duplicate", existing)

    def _existing(self, article: Article) -> str | None:
        """The id of a stored article this one repeats (same identity, or the same text as
        any version of it)."""
        rows = self._read(
            "SELECT id FROM articles WHERE id = ? OR fingerprint = ?"
            " UNION ALL SELECT article_id FROM article_versions WHERE fingerprint = ? LIMIT 1",
            (article.id, article.fingerprint, article.fingerprint),
        )
        return str(rows[0][0]) if rows else None

    def _near_match(self, sk: Sketch, compared: dict[str, Resemblance]) -> tuple[str, float] | None:
        """The cluster (its first article) of a verified near-copy, if any.

        Candidates come most shared buckets first (the best MinHash estimate of
        resemblance), so the first one verified is taken: usually one comparison.
        ``compared`` holds the comparisons made, by candidate id, for the next call.
        """
        for row in self.near_candidates(sk.buckets):
            found = compared.get(row["id"])
            if found is None:
                found = compared[row["id"]] = self._compare(sk, row)
            if found.near_duplicate:
                return (row["duplicate_of"] or row["id"], round(found.containment, 4))
        return None

    def _compare(self, sk: Sketch, candidate: sqlite3.Row) -> Resemblance:
        if sk.packed and candidate["shingles"] is not None:
            return packed_resemblance(sk.packed, candidate["shingles"])
        # Indexed before the catalog kept packed shingles: its text, read back.
        return resemblance(sk.shingles, shingles(self._document_text(candidate["path"])))

    def near_candidates(self, buckets: tuple[int, ...]) -> list[sqlite3.Row]:
        """Stored articles sharing at least one LSH bucket, most shared first (at most
        ``MAX_CANDIDATES``): one index probe per band, whatever the catalog's size."""
        if not buckets:
            return []
        marks = ",".join("?" * len(buckets))
        return self._read(
            "SELECT a.id, a.path, a.duplicate_of, d.shingles, c.shared FROM ("
            f" SELECT num, count(*) AS shared FROM neardup_buckets WHERE bucket IN ({marks})"
            " GROUP BY num ORDER BY shared DESC LIMIT ?) AS c"
            " JOIN neardup_docs d ON d.num = c.num JOIN articles a ON a.id = d.article_id"
            " ORDER BY c.shared DESC",
            (*buckets, MAX_CANDIDATES),
        )

    def _index_buckets(self, conn: sqlite3.Connection, article_id: str, sk: Sketch | None) -> int:
        """Index ``sk`` (its buckets and packed shingles) for ``article_id``; with None,
        only make sure the article has its number. Returns that number."""
        (num,) = conn.execute(
            "INSERT INTO neardup_docs (article_id, shingles) VALUES (?, ?)"
            " ON CONFLICT (article_id) DO UPDATE SET shingles = coalesce(excluded.shingles,"
            " shingles) RETURNING num",
            (article_id, (sk.packed or None) if sk is not None else None),
        ).fetchone()
        if sk is not None and sk.buckets:
            conn.execute(
                "INSERT OR IGNORE INTO neardup_buckets VALUES " + _rows(len(sk.buckets), 2),
                [v for b in sk.buckets for v in (b, num)],
            )
        return int(num)

    def _begin_pending(self, rel: str) -> None:
        """Step 1 of every document write: journal it before the file exists."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pending_files VALUES (?, ?)", (rel, self._now().isoformat())
            )

    def _abandon(self, rel: str) -> None:
        """Undo our own write of ``rel`` (other writers' temp files beside it stay)."""
        files.discard(self.root / rel)
        self._forget_pending(rel)

    def _known_path(self, rel: str) -> bool:
        return bool(self._read("SELECT 1 FROM articles WHERE path = ?", (rel,)))

    def _forget_pending(self, rel: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM pending_files WHERE path = ?", (rel,))

    def _insert_article(
        self,
        conn: sqlite3.Connection,
        article: Article,
        rel: str,
        *,
        similarity: float | None = None,
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO articles (id, fingerprint, path, url, canonical_url, source, title,"
            " published_at, fetched_at, stored_at, version, duplicate_of, similarity)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                article.version,
                article.duplicate_of,
                similarity,
            ),
        )
        seq = int(cursor.lastrowid or 0)
        conn.execute(
            "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
            (seq, article.title or "", article.text),
        )
        return seq

    def _insert_version(self, conn: sqlite3.Connection, article: Article, rel: str) -> None:
        conn.execute(
            "INSERT INTO article_versions (article_id, version, fingerprint, path, stored_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (article.id, article.version, article.fingerprint, rel, self._now().isoformat()),
        )

    # -- versions ---------------------------------------------------------------------

    async def add_version(
        self,
        article: Article,
        *,
        keys: tuple[str, ...],
        entry: Entry | None = None,
        sketch: Sketch | None = None,
    ) -> StoreOutcome:
        return await self._run(lambda: self._add_version(article, keys, entry, sketch))

    def _add_version(
        self, article: Article, keys: tuple[str, ...], entry: Entry | None, sk: Sketch | None
    ) -> StoreOutcome:
        """A refetched article: a new version if its text changed, else only the entry's
        last-seen state is refreshed. Earlier documents stay where they are."""
        if not self._read("SELECT 1 FROM articles WHERE id = ?", (article.id,)):
            return self._add_article(article, keys, entry, "link", sk)  # never stored: a first
        sk = sk or text_sketch(article.text)
        with self._write_lock:
            current = self._read("SELECT * FROM articles WHERE id = ?", (article.id,))[0]
            clash = self._existing(replace(article, id=""))
            if current["fingerprint"] == article.fingerprint or clash not in (None, article.id):
                # Unchanged (or now the text of another article): nothing new to keep.
                with self._transaction() as conn:
                    self._insert_keys(
                        conn,
                        keys,
                        source=article.source or "",
                        status="duplicate",
                        article_id=article.id,
                        entry=entry,
                    )
                    if entry is not None:
                        self._refresh_entry(conn, entry, source=current["source"] or "")
                return StoreOutcome("unchanged", article.id, version=current["version"])
            version = int(current["version"]) + 1
            article = replace(article, version=version, duplicate_of=current["duplicate_of"])
            first = self._read(
                "SELECT path FROM article_versions WHERE article_id = ? AND version = 1",
                (article.id,),
            )
            rel = files.version_path(str(first[0]["path"] if first else current["path"]), version)
            old_text = self._document_text(str(current["path"]))
            self._begin_pending(rel)
            try:
                files.write_document(self.root, rel, article)
            except OSError as exc:
                self._abandon(rel)
                raise StoreError(f"store: cannot write {rel}: {exc}") from exc
            try:
                with self._transaction() as conn:
                    seq = self._move_to_version(conn, current, article, rel)
                    self._insert_version(conn, article, rel)
                    self._reindex_buckets(conn, article.id, old_text, sk)
                    self._insert_keys(
                        conn,
                        keys,
                        source=current["source"] or "",
                        status="stored",
                        article_id=article.id,
                        entry=entry,
                    )
                    if entry is not None:
                        self._refresh_entry(conn, entry, source=current["source"] or "")
                    conn.execute("DELETE FROM pending_files WHERE path = ?", (rel,))
            except StoreError:
                self._abandon(rel)
                raise
            return StoreOutcome("updated", article.id, seq=seq, path=rel, version=version)

    def _move_to_version(
        self, conn: sqlite3.Connection, current: sqlite3.Row, article: Article, rel: str
    ) -> int:
        """Point the catalog row at the new version and give it a new ``seq``, so that a
        consumer reading "everything after N" sees the article again."""
        (top,) = conn.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'articles'), 0),"
            " (SELECT coalesce(max(seq), 0) FROM articles))"
        ).fetchone()
        seq = int(top) + 1
        conn.execute(
            "UPDATE articles SET seq = ?, fingerprint = ?, path = ?, url = ?, canonical_url = ?,"
            " title = ?, published_at = ?, fetched_at = ?, stored_at = ?, version = ?"
            " WHERE id = ?",
            (
                seq,
                article.fingerprint,
                rel,
                article.url,
                article.canonical_url,
                article.title,
                _iso(article.published),
                _iso(article.fetched_at or self._now()),
                self._now().isoformat(),
                article.version,
                article.id,
            ),
        )
        conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'articles'", (seq,))
        conn.execute("DELETE FROM articles_fts WHERE rowid = ?", (current["seq"],))
        conn.execute(
            "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
            (seq, article.title or "", article.text),
        )
        return seq

    def _reindex_buckets(
        self, conn: sqlite3.Connection, article_id: str, old_text: str, new: Sketch
    ) -> None:
        num = self._index_buckets(conn, article_id, None)
        old = text_sketch(old_text).buckets
        conn.executemany(
            "DELETE FROM neardup_buckets WHERE bucket = ? AND num = ?", [(b, num) for b in old]
        )
        self._index_buckets(conn, article_id, new)

    def _document_text(self, rel: str) -> str:
        try:
            doc = json.loads((self.root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"store: cannot read {rel}: {exc}") from exc
        return str(doc.get("text") or "")

    async def versions(self, article_id: str) -> list[ArticleVersion]:
        rows = await self._run(
            lambda: self._read(
                "SELECT * FROM article_versions WHERE article_id = ? ORDER BY version",
                (article_id,),
            )
        )
        return [
            ArticleVersion(
                article_id=row["article_id"],
                version=row["version"],
                fingerprint=row["fingerprint"],
                path=row["path"],
                stored_at=_dt(row["stored_at"]) or datetime.fromtimestamp(0, UTC),
            )
            for row in rows
        ]

    async def cluster(self, article_id: str) -> list[CatalogRow]:
        sql = (
            "SELECT * FROM articles WHERE id = ?1 OR duplicate_of = ?1 OR id = (SELECT"
            " duplicate_of FROM articles WHERE id = ?1) OR duplicate_of = (SELECT"
            " duplicate_of FROM articles WHERE id = ?1) ORDER BY duplicate_of IS NOT NULL, seq"
        )
        rows = await self._run(lambda: self._read(sql, (article_id,)))
        return [_catalog_row(row) for row in rows]

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

    async def get_article(self, article_id: str, *, version: int | None = None) -> Article | None:
        if version is None:
            sql, params = "SELECT path FROM articles WHERE id = ?", (article_id,)
        else:
            sql = "SELECT path FROM article_versions WHERE article_id = ? AND version = ?"
            params = (article_id, version)  # type: ignore[assignment]
        rows = await self._run(lambda: self._read(sql, params))
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
        await self._states.save(state)

    def _save_states(self, states: list[SourceState]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO sources ({', '.join(_SOURCE_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_SOURCE_COLUMNS))})",
                [_source_values(state) for state in states],
            )

    async def close(self) -> None:
        await self._states.drain()
        with self._lock:
            self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the shared lock
            self._lock_fd = None


@dataclass(slots=True)
class _Prepared:
    """A document written and synced, waiting for the write lock."""

    rel: str  # where it goes
    published: bool  # linked at rel; False: a file was there already
    sketch: Sketch
    compared: dict[str, Resemblance]  # near-copy candidates compared, by article id


class _StateCommits:
    """Group commit of source states: the states saved while one commit runs are
    committed together by the next, in one transaction and one thread hop, and each
    ``save`` returns once its own state is committed (or raises what the commit raised).

    An idle cycle saves a state per source, tens at a time: one transaction each was
    a seventh of its CPU (bench/PROPOSALS.md item 3).
    """

    def __init__(self, commit: Callable[[list[SourceState]], None]) -> None:
        self._commit = commit
        self._pending: dict[str, SourceState] = {}  # the next commit's, by source name
        self._next: asyncio.Future[None] | None = None  # done when they are committed
        self._committer: asyncio.Task[None] | None = None

    async def save(self, state: SourceState) -> None:
        loop = asyncio.get_running_loop()
        self._pending[state.name] = state  # a newer state of the same source replaces it
        if self._next is None:
            self._next = loop.create_future()
        committed = self._next
        if self._committer is None:
            self._committer = loop.create_task(self._commit_pending())
        await asyncio.shield(committed)  # a cancelled caller must not cancel the others'

    async def _commit_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = list(self._pending.values()), {}
                committed, self._next = self._next, None
                assert committed is not None
                try:
                    await asyncio.to_thread(self._commit, batch)
                except Exception as exc:  # handed to every caller of the batch
                    committed.set_exception(exc)
                except BaseException:  # cancelled (the loop is closing): so are the callers
                    committed.cancel()
                    raise
                else:
                    committed.set_result(None)
        finally:
            if self._next is not None and self._pending:  # only if cancelled
                self._next.cancel()
                self._pending, self._next = {}, None
            self._committer = None

    async def drain(self) -> None:
        """Wait for the commits under way (the store is closing)."""
        if self._committer is not None:
            await asyncio.shield(self._committer)


def _wal_mode(conn: sqlite3.Connection) -> None:
    """Switch the catalog to WAL, waiting for other openers.

    Switching a new catalog's journal mode needs it to itself, and SQLite answers
    "database is locked" at once, without the busy timeout, while another connection
    holds it (two ``ingest poll`` processes started together on a new store did).
    """
    deadline = time.monotonic() + _OPEN_WAIT
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _rows(count: int, width: int) -> str:
    """``count`` rows of ``width`` placeholders for one multi-row INSERT.

    One statement instead of ``executemany``: the sqlite3 module lets go of the GIL
    for every row it steps, and in a busy process getting it back can wait for another
    thread's switch interval, under the store's write lock (32 bucket rows an article).
    """
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


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
        version=row["version"],
        duplicate_of=row["duplicate_of"],
    )


def _entry_fields(entry: Entry | None, own: bool) -> tuple[str | None, ...]:
    """guid, url, published_at, updated_at, title: the entry as seen, on its own keys."""
    if entry is None or not own:
        return (None, None, None, None, None)
    return (entry.guid, entry.url, _iso(entry.published), _iso(entry.updated), entry.title)


def _entry_record(row: sqlite3.Row) -> EntryRecord:
    return EntryRecord(
        key=row["key"],
        source=row["source"],
        status=row["status"],
        article_id=row["article_id"],
        guid=row["guid"],
        url=row["url"],
        published=_dt(row["published_at"]),
        updated=_dt(row["updated_at"]),
        title=row["title"],
    )


_SOURCE_COLUMNS = (
    "name",
    "url",
    "etag",
    "last_modified",
    "last_polled_at",
    "last_status",
    "last_error",
    "consecutive_failures",
    "next_poll_at",
    "entries_seen",
    "articles_stored",
    "interval_seconds",
    "current_url",
    "redirect_target",
    "redirect_count",
)


def _source_values(state: SourceState) -> tuple[object, ...]:
    return (
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
        state.interval.total_seconds() if state.interval else None,
        state.current_url,
        state.redirect_target,
        state.redirect_count,
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
        interval=timedelta(seconds=row["interval_seconds"]) if row["interval_seconds"] else None,
        current_url=row["current_url"],
        redirect_target=row["redirect_target"],
        redirect_count=row["redirect_count"],
    )
