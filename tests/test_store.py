"""The SQLite store: documents on disk, catalog, dedup keys, crash recovery."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import document
from ingest.dedup import classify, lookup_keys
from ingest.errors import StoreError
from ingest.models import Article, Entry, SourceState, Validators
from ingest.store import files
from ingest.store.sqlite import CATALOG, MIGRATIONS, SQLiteStore

WHEN = datetime(2025, 5, 21, 11, 32, tzinfo=UTC)


def make_article(n: int = 1, **changes: object) -> Article:
    article = Article(
        id=f"id{n}",
        url=f"https://news.example/{n}",
        canonical_url=f"https://news.example/{n}",
        source="news",
        title=f"Story number {n}",
        authors=("A. Writer",),
        published=WHEN,
        modified=None,
        language="en",
        site_name="News",
        description=None,
        image=None,
        tags=("x",),
        text=f"Body of story {n} about the harbour bridge.",
        html=f"<p>Body of story {n}</p>",
        markdown=f"Body of story {n}",
        fetched_at=WHEN,
        fingerprint=f"fp{n}",
    )
    return replace(article, **changes)  # type: ignore[arg-type]


async def unseen(store: SQLiteStore, entries: list[Entry], *, source: str) -> list[Entry]:
    """The entries the pipeline would fetch as new, decided as it decides (no fetch)."""
    records = await store.entry_records(lookup_keys(entries, source=source))
    trusted = await store.guids_trusted(source)
    judged = classify(entries, source=source, trust_guid=trusted, records=records)
    return [c.entry for c in judged if c.state == "new"]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_store_writes_document_and_catalog(tmp_path: Path) -> None:
    """An article becomes a JSON document at a dated path and a catalog row."""
    store = SQLiteStore.open(tmp_path)
    outcome = run(store.add_article(make_article(), keys=("url:https://news.example/1",)))
    assert outcome.status == "stored"
    assert outcome.path == "articles/2025/05/21/id1.json"
    doc = json.loads((tmp_path / outcome.path).read_text(encoding="utf-8"))
    assert doc["id"] == "id1"
    assert doc["schema_version"] == document.SCHEMA_VERSION
    assert doc["published"] == "2025-05-21T11:32:00+00:00"
    assert run(store.get_article("id1")) == make_article()
    rows = run(store.articles())
    assert [(r.seq, r.id) for r in rows] == [(1, "id1")]
    run(store.close())


def test_same_fingerprint_is_a_duplicate(tmp_path: Path) -> None:
    """The same text under another id is linked, not stored again."""
    store = SQLiteStore.open(tmp_path)
    run(store.add_article(make_article(1), keys=("url:a",)))
    outcome = run(store.add_article(make_article(2, fingerprint="fp1"), keys=("url:b",)))
    assert outcome.status == "duplicate"
    assert outcome.article_id == "id1"
    assert len(run(store.articles())) == 1
    assert not (tmp_path / "articles/2025/05/21/id2.json").exists()
    assert run(unseen(store, [Entry(guid=None, url="b")], source="news")) == []
    run(store.close())


def test_unseen_by_guid_or_url(tmp_path: Path) -> None:
    """An entry is seen if its source-scoped GUID or its normalized URL is known."""
    store = SQLiteStore.open(tmp_path)
    run(
        store.mark_entry(
            ("guid:s:1", "url:https://x.org/a"), source="s", status="skipped", reason="not HTML"
        )
    )
    entries = [
        Entry(guid="1", url="https://x.org/other"),  # same guid, same source
        Entry(guid="9", url="https://X.org/a#frag"),  # same URL, normalized
        Entry(guid="1", url="https://x.org/new"),  # same guid but another source below
    ]
    assert run(unseen(store, entries[:2], source="s")) == []
    assert run(unseen(store, entries[2:], source="t")) == entries[2:]
    run(store.close())


def test_sequence_and_search(tmp_path: Path) -> None:
    """Sequence numbers grow; 'after N' and full-text search find the right rows."""
    store = SQLiteStore.open(tmp_path)
    for n in range(1, 4):
        run(store.add_article(make_article(n, text=f"story {n} word{n}"), keys=(f"url:{n}",)))
    assert [r.id for r in run(store.articles(after=1))] == ["id2", "id3"]
    assert [r.id for r in run(store.articles(limit=1, newest_first=True))] == ["id3"]
    assert [r.id for r in run(store.search("word2"))] == ["id2"]
    assert run(store.search('"unbalanced')) == []  # user input is never FTS syntax
    run(store.close())


def test_source_state_round_trip(tmp_path: Path) -> None:
    """Source state is saved and read back unchanged."""
    store = SQLiteStore.open(tmp_path)
    state = SourceState(
        name="s",
        url="https://x.org/feed",
        validators=Validators('"e"', "Wed"),
        last_polled_at=WHEN,
        last_status="ok",
        next_poll_at=WHEN,
        entries_seen=3,
        articles_stored=2,
    )
    run(store.save_source_state(state))
    assert run(store.source_state("s")) == state
    assert run(store.source_states()) == [state]
    run(store.close())


def test_concurrent_state_saves_are_all_committed(tmp_path: Path) -> None:
    """States saved at once (grouped into few commits) are each saved, the newest last."""
    store = SQLiteStore.open(tmp_path)
    states = [SourceState(name=f"s{i:02}", url=f"https://x.org/{i}") for i in range(40)]
    newer = replace(states[0], last_status="ok")

    async def go() -> list[SourceState]:
        await asyncio.gather(*(store.save_source_state(s) for s in states))
        await asyncio.gather(store.save_source_state(states[0]), store.save_source_state(newer))
        return await store.source_states()

    assert run(go()) == [newer, *states[1:]]
    run(store.close())


def test_a_failed_state_commit_fails_every_save_in_it(tmp_path: Path) -> None:
    """Saves committed together fail together, and none of them is kept."""
    store = SQLiteStore.open(tmp_path)
    good = [SourceState(name=f"s{i}", url="https://x.org/") for i in range(5)]
    bad = SourceState(name="bad", url=None)  # type: ignore[arg-type]  # NOT NULL in SQL

    async def go() -> list[BaseException | None]:
        saves = [store.save_source_state(s) for s in [*good, bad]]
        return await asyncio.gather(*saves, return_exceptions=True)

    outcomes = run(go())
    assert all(isinstance(outcome, StoreError) for outcome in outcomes)
    assert run(store.source_states()) == []
    run(store.close())


def test_migrations_are_recorded(tmp_path: Path) -> None:
    """The schema version is recorded and reopening does not migrate again."""
    run(SQLiteStore.open(tmp_path).close())
    store = SQLiteStore.open(tmp_path)
    assert store.schema_version == len(MIGRATIONS)  # was 1 before migration 2 (dedup)
    run(store.close())
    conn = sqlite3.connect(tmp_path / CATALOG)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(MIGRATIONS),)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A catalog written by a newer ingest is not touched."""
    run(SQLiteStore.open(tmp_path).close())
    conn = sqlite3.connect(tmp_path / CATALOG)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore.open(tmp_path)


def _write_pending(root: Path, article: Article) -> str:
    """A write of ``article`` after its pending row and document, before its catalog
    commit; returns the document's path."""
    rel = files.relative_path(article)
    conn = sqlite3.connect(root / CATALOG)
    conn.execute("INSERT INTO pending_files VALUES (?, 'x')", (rel,))
    conn.commit()
    conn.close()
    files.write_article(root, article)
    return rel


def test_crash_between_file_and_catalog_is_undone(tmp_path: Path) -> None:
    """A document written but never committed (a crash) is removed on the next open."""
    store = SQLiteStore.open(tmp_path)
    article = make_article()
    # What a process killed between steps 2 and 3 of the write leaves behind:
    rel = _write_pending(tmp_path, article)
    (tmp_path / rel).with_name(".tmp-half.json").write_bytes(b'{"id": "id1", "te')
    run(store.close())

    store = SQLiteStore.open(tmp_path)
    assert not (tmp_path / rel).exists()
    assert list((tmp_path / rel).parent.iterdir()) == []
    assert run(unseen(store, [Entry(guid=None, url="https://news.example/1")], source="news"))
    # ... and the retry stores it normally.
    assert run(store.add_article(article, keys=("url:https://news.example/1",))).status == "stored"
    run(store.close())


def test_stored_documents_are_never_overwritten(tmp_path: Path) -> None:
    """Adding an article whose id exists leaves the stored document as it was."""
    store = SQLiteStore.open(tmp_path)
    first = run(store.add_article(make_article(), keys=("url:1",)))
    before = (tmp_path / str(first.path)).read_bytes()
    again = run(store.add_article(make_article(text="changed", fingerprint="fpX"), keys=()))
    assert again.status == "duplicate"
    assert (tmp_path / str(first.path)).read_bytes() == before
    run(store.close())


STORY = "\n\n".join(
    f"Paragraph {n}: the harbour bridge reopened on Tuesday after engineers replaced "
    f"forty-two steel hangers, and commuters in block {n} crossed it again at dawn."
    for n in range(12)
)


def test_new_version_keeps_every_document(tmp_path: Path) -> None:
    """Changed text under a stored id becomes version 2 with a new seq; v1 stays on disk."""
    store = SQLiteStore.open(tmp_path)
    first = run(store.add_article(make_article(), keys=("url:1",)))
    before = (tmp_path / str(first.path)).read_bytes()
    changed = make_article(text="Corrected body of story 1.", fingerprint="fp1b")
    outcome = run(store.add_version(changed, keys=("url:1",)))
    assert (outcome.status, outcome.version) == ("updated", 2)
    assert outcome.path == "articles/2025/05/21/id1.v2.json"
    assert outcome.seq is not None
    assert first.seq is not None
    assert outcome.seq > first.seq
    assert [r.id for r in run(store.articles(after=first.seq))] == ["id1"]
    assert (tmp_path / str(first.path)).read_bytes() == before
    assert run(store.get_article("id1", version=1)) == make_article()
    latest = run(store.get_article("id1"))
    assert latest is not None
    assert (latest.text, latest.version) == ("Corrected body of story 1.", 2)
    assert [v.version for v in run(store.versions("id1"))] == [1, 2]
    assert [r.id for r in run(store.search("corrected"))] == ["id1"]
    # The old text is still a known fingerprint: a copy of it elsewhere is a duplicate.
    again = run(store.add_article(make_article(7, fingerprint="fp1"), keys=("url:7",)))
    assert (again.status, again.article_id) == ("duplicate", "id1")
    run(store.close())


def test_unchanged_refetch_changes_nothing(tmp_path: Path) -> None:
    """The same text refetched leaves the catalog row, its seq and the files alone."""
    store = SQLiteStore.open(tmp_path)
    first = run(store.add_article(make_article(), keys=("url:1",)))
    outcome = run(store.add_version(make_article(), keys=("url:1",)))
    assert (outcome.status, outcome.version) == ("unchanged", 1)
    assert [(r.seq, r.version) for r in run(store.articles())] == [(first.seq, 1)]
    assert len(list((tmp_path / "articles").rglob("*.json"))) == 1
    run(store.close())


def test_near_copy_is_linked_to_its_cluster(tmp_path: Path) -> None:
    """A lightly edited copy is stored with duplicate_of the first article."""
    store = SQLiteStore.open(tmp_path)
    run(store.add_article(make_article(1, text=STORY), keys=("url:1",)))
    copy = make_article(2, text=STORY.replace("Tuesday", "Wednesday", 1) + "\n\nUpdated.")
    outcome = run(store.add_article(copy, keys=("url:2",)))
    assert (outcome.status, outcome.duplicate_of) == ("stored", "id1")
    assert outcome.similarity is not None
    assert outcome.similarity > 0.9
    stored = run(store.get_article("id2"))
    assert stored is not None
    assert stored.duplicate_of == "id1"
    third = make_article(3, text=STORY.replace("dawn", "dusk"))
    assert run(store.add_article(third, keys=("url:3",))).duplicate_of == "id1"
    assert [r.id for r in run(store.cluster("id3"))] == ["id1", "id2", "id3"]
    assert [r.duplicate_of for r in run(store.articles())] == [None, "id1", "id1"]
    run(store.close())


def test_near_copy_of_an_article_indexed_before_packed_shingles(tmp_path: Path) -> None:
    """An article indexed without packed shingles (before migration 3) is still found:
    its text is read back and compared."""
    store = SQLiteStore.open(tmp_path)
    run(store.add_article(make_article(1, text=STORY), keys=("url:1",)))
    run(store.close())
    conn = sqlite3.connect(tmp_path / CATALOG)
    conn.execute("UPDATE neardup_docs SET shingles = NULL")
    conn.commit()
    conn.close()
    store = SQLiteStore.open(tmp_path)
    copy = make_article(2, text=STORY.replace("Tuesday", "Wednesday", 1))
    outcome = run(store.add_article(copy, keys=("url:2",)))
    assert (outcome.status, outcome.duplicate_of) == ("stored", "id1")
    run(store.close())


def test_a_near_copy_document_is_written_once(tmp_path: Path) -> None:
    """The document of a near copy names its cluster and is the only file written: no
    leftover temporary file, one document per article."""
    store = SQLiteStore.open(tmp_path)
    run(store.add_article(make_article(1, text=STORY), keys=("url:1",)))
    copy = make_article(2, text=STORY.replace("Tuesday", "Wednesday", 1))
    outcome = run(store.add_article(copy, keys=("url:2",)))
    doc = json.loads((tmp_path / str(outcome.path)).read_text(encoding="utf-8"))
    assert (doc["duplicate_of"], doc["cluster"]) == ("id1", "id1")
    assert sorted(p.name for p in (tmp_path / "articles").rglob("*") if p.is_file()) == [
        "id1.json",
        "id2.json",
    ]
    run(store.close())


def test_near_copy_is_skipped_when_asked(tmp_path: Path) -> None:
    """With near_duplicates="skip" a near copy is recorded as a duplicate, not stored."""
    store = SQLiteStore.open(tmp_path)
    run(store.add_article(make_article(1, text=STORY), keys=("url:1",)))
    copy = make_article(2, text=STORY.replace("Tuesday", "Wednesday"))
    outcome = run(store.add_article(copy, keys=("url:2",), near_duplicates="skip"))
    assert (outcome.status, outcome.article_id) == ("near_duplicate", "id1")
    assert len(run(store.articles())) == 1
    (rec,) = run(store.entry_records(["url:2"])).values()
    assert (rec.status, rec.article_id) == ("duplicate", "id1")
    assert sorted(p.name for p in (tmp_path / "articles").rglob("*") if p.is_file()) == ["id1.json"]
    run(store.close())
    with closing(sqlite3.connect(tmp_path / "catalog.sqlite3")) as conn:
        assert conn.execute("SELECT count(*) FROM pending_files").fetchone() == (0,)


def test_crash_during_a_version_write_is_undone(tmp_path: Path) -> None:
    """A version document written but never committed is removed; version 1 stays."""
    store = SQLiteStore.open(tmp_path)
    first = run(store.add_article(make_article(), keys=("url:1",)))
    rel = files.version_path(str(first.path), 2)
    conn = sqlite3.connect(tmp_path / CATALOG)
    conn.execute("INSERT INTO pending_files VALUES (?, 'x')", (rel,))
    conn.commit()
    conn.close()
    files.write_document(tmp_path, rel, make_article(text="half", version=2))
    run(store.close())
    store = SQLiteStore.open(tmp_path)
    assert not (tmp_path / rel).exists()
    assert (tmp_path / str(first.path)).exists()
    assert [v.version for v in run(store.versions("id1"))] == [1]
    run(store.close())


def test_catalog_from_before_versions_is_migrated(tmp_path: Path) -> None:
    """An article stored under schema 1 becomes version 1 in article_versions."""
    conn = sqlite3.connect(tmp_path / CATALOG)
    conn.executescript(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL);" + MIGRATIONS[0][1]
    )
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'initial catalog', 'x')")
    conn.execute(
        "INSERT INTO articles (id, fingerprint, path, url, fetched_at, stored_at)"
        " VALUES ('id1', 'fp1', 'articles/2025/05/21/id1.json', 'u', ?, ?)",
        (WHEN.isoformat(), WHEN.isoformat()),
    )
    conn.commit()
    conn.close()
    store = SQLiteStore.open(tmp_path)
    assert [(v.version, v.fingerprint) for v in run(store.versions("id1"))] == [(1, "fp1")]
    assert [(r.version, r.duplicate_of) for r in run(store.articles())] == [(1, None)]
    run(store.close())


def test_guid_distrust_is_remembered(tmp_path: Path) -> None:
    """Once a source's GUIDs are distrusted they stay so after reopening."""
    store = SQLiteStore.open(tmp_path)
    assert run(store.guids_trusted("s"))
    run(store.distrust_guids("s", reason="guid 'x' names two links in one feed"))
    run(store.close())
    store = SQLiteStore.open(tmp_path)
    assert not run(store.guids_trusted("s"))
    assert run(store.guids_trusted("t"))
    run(store.close())


def test_entry_records_remember_the_entry(tmp_path: Path) -> None:
    """An entry's own keys keep its GUID, link, dates and title; page keys do not."""
    store = SQLiteStore.open(tmp_path)
    entry = Entry(guid="g", url="https://news.example/1", title="T", published=WHEN)
    keys = ("guid:news:g", "url:https://news.example/1", "url:https://news.example/canon")
    run(store.add_article(make_article(), keys=keys, entry=entry))
    records = run(store.entry_records(list(keys)))
    own = records["guid:news:g"]
    assert (own.guid, own.url, own.title, own.published) == ("g", entry.url, "T", WHEN)
    assert records["url:https://news.example/canon"].title is None
    assert {r.article_id for r in records.values()} == {"id1"}
    run(store.close())


def test_orphan_document_is_replaced_not_taken_for_a_duplicate(tmp_path: Path) -> None:
    """A document on disk that the catalog never recorded does not block storing it."""
    store = SQLiteStore.open(tmp_path)
    article = make_article()
    rel = files.write_article(tmp_path, replace(article, text="stale half-remembered copy"))
    an_hour_ago = time.time() - 3600  # left by a crash before this start
    os.utime(tmp_path / rel, (an_hour_ago, an_hour_ago))
    outcome = run(store.add_article(article, keys=("url:https://news.example/1",)))
    assert outcome.status == "stored"
    doc = json.loads((tmp_path / str(outcome.path)).read_text(encoding="utf-8"))
    assert doc["text"] == article.text
    run(store.close())


def test_another_process_write_in_progress_is_left_alone(tmp_path: Path) -> None:
    """A document just linked by another process, whose catalog row is still to come, is
    neither replaced nor removed: the entry fails, to be tried again next poll."""
    store = SQLiteStore.open(tmp_path)
    article = make_article()
    theirs = replace(article, text="the other process's copy of this story")
    rel = files.write_article(tmp_path, theirs)
    with pytest.raises(StoreError, match="another process"):
        run(store.add_article(article, keys=("url:https://news.example/1",)))
    doc = json.loads((tmp_path / rel).read_text(encoding="utf-8"))
    assert doc["text"] == theirs.text
    assert run(store.articles()) == []
    run(store.close())


def test_stores_opened_together_on_a_new_catalog_all_open(tmp_path: Path) -> None:
    """Several openers racing on a new catalog all open it, each migration applied once.

    (Two `ingest poll` processes on one new store failed with "database is locked" or a
    migration applied twice; before the fix 6 rounds in 30 of this failed.)
    """
    for round_ in range(20):
        root = tmp_path / f"round{round_}"
        assert _open_together(root, openers=6) == []
        store = SQLiteStore.open(root)
        assert store.schema_version == len(MIGRATIONS)
        run(store.close())


def _open_together(root: Path, *, openers: int) -> list[BaseException]:
    """Open and close a store at ``root`` from ``openers`` threads at once; their errors."""
    barrier = threading.Barrier(openers)
    errors: list[BaseException] = []

    def open_and_close() -> None:
        barrier.wait()
        try:
            run(SQLiteStore.open(root).close())
        except BaseException as exc:  # collected for the caller to assert on
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_a_second_opener_leaves_a_write_in_progress_alone(tmp_path: Path) -> None:
    """While another store has the catalog open, opening it undoes none of its pending
    writes; once no one has it open, the next opener does (a crash's leftovers)."""
    first = SQLiteStore.open(tmp_path)
    # The first store's write between its pending row and its catalog commit:
    rel = _write_pending(tmp_path, make_article())

    second = SQLiteStore.open(tmp_path)
    assert (tmp_path / rel).exists()
    run(second.close())
    run(first.close())  # as if it had died before its commit

    third = SQLiteStore.open(tmp_path)
    assert not (tmp_path / rel).exists()
    run(third.close())
