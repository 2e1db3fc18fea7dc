"""How the store's cost per article grows with the catalog: one thread, no fetching.

    .venv/bin/python bench/store_growth.py [--articles 4000] [--every 500] [--dir DIR]

The texts are the benchmark pages' extractions (``bench/extraction.py``'s sets), each
stored again and again under new ids with a unique marker in three paragraphs, as
``bench/e2e.py``'s site serves them, so later copies are near duplicates of earlier
ones. Prints CPU and wall milliseconds per article for each ``--every`` articles, then
the time of each SQL statement per article over the last ``--every``. Only
``add_article`` is timed (the sketch is computed by the extraction processes in a run).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from extraction import load_scrapinghub, load_wcxb

from ingest.dedup.neardup import Sketch, fingerprint_and_sketch
from ingest.errors import ExtractError
from ingest.extract import extract
from ingest.models import Article
from ingest.store.sqlite import SQLiteStore

WHEN = datetime(2026, 12, 7, tzinfo=UTC)


class _Timed:
    """A connection whose ``execute`` times each statement (by its first 60 characters)."""

    def __init__(self, conn: sqlite3.Connection, spent: collections.Counter[str]) -> None:
        self._conn, self._spent = conn, spent

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        started = time.perf_counter()
        try:
            return self._conn.execute(sql, *args)
        finally:
            self._spent[sql[:60]] += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def texts() -> list[str]:
    found = []
    for case in load_scrapinghub() + load_wcxb():
        with contextlib.suppress(ExtractError):
            found.append(extract(case.html, url=case.url).text)
    return found


def article(n: int, text: str, rng: random.Random) -> tuple[Article, Sketch]:
    paragraphs = text.split("\n\n")
    for i in rng.sample(range(len(paragraphs)), min(3, len(paragraphs))):
        paragraphs[i] += f" [bench:{n}]"
    text = "\n\n".join(paragraphs)
    fingerprint, sketch = fingerprint_and_sketch(text)
    return Article(
        id=f"{n:020x}",
        url=f"http://bench.test/{n}",
        canonical_url=None,
        source="bench",
        title=f"Story {n}",
        authors=(),
        published=None,
        modified=None,
        language=None,
        site_name=None,
        description=None,
        image=None,
        tags=(),
        text=text,
        html=f"<p>{text}</p>",
        markdown=text,
        fetched_at=WHEN,
        fingerprint=fingerprint,
        entry_guid=None,
    ), sketch


async def run(store: SQLiteStore, pages: list[str], count: int, every: int) -> None:
    rng = random.Random(1)
    spent: collections.Counter[str] = collections.Counter()
    cpu = wall = 0.0
    for n in range(count):
        if n == count - every:
            store._conn = _Timed(store._conn, spent)  # type: ignore[assignment]
        item, sketch = article(n, pages[n % len(pages)], rng)  # not timed: done elsewhere
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await store.add_article(item, keys=(f"url:{item.url}",), sketch=sketch)
        cpu += time.process_time() - cpu0
        wall += time.perf_counter() - wall0
        if (n + 1) % every == 0:
            print(
                f"{n + 1:7d} articles: {cpu / every * 1000:6.2f} ms CPU,"
                f" {wall / every * 1000:6.2f} ms wall per article",
                flush=True,
            )
            cpu = wall = 0.0
    print(f"SQL per article over the last {every}:")
    for sql, seconds in spent.most_common():
        print(f"  {seconds / every * 1000:6.3f} ms  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=4000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None, help="store here (emptied first)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="store-growth-"))
    shutil.rmtree(root, ignore_errors=True)
    pages = texts()
    print(f"store_growth: {len(pages)} texts, store in {root}", flush=True)
    store = SQLiteStore.open(root)
    try:
        asyncio.run(run(store, pages, args.articles, args.every))
    finally:
        asyncio.run(store.close())
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
