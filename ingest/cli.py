"""The ``ingest`` command: a thin layer over the library functions.

Exit codes: 0 success; 1 something failed (a source, a URL, a file, an unhealthy
daemon); 2 bad usage or invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ingest import __version__, dedup, document, logs
from ingest.config import Settings, config_path, load_settings
from ingest.errors import ConfigError, ExtractError, IngestError
from ingest.extract import extract
from ingest.fetch import Fetcher
from ingest.metrics import Metrics
from ingest.models import Article, CatalogRow, RunReport, Source, SourceState
from ingest.pipeline import Context, build_article, extraction_pool, ingest_url, poll_source
from ingest.schedule import Bounds
from ingest.scheduler import check_health, install_signal_handlers, run_daemon
from ingest.store import Store, open_store

logger = logging.getLogger("ingest.cli")

DESCRIPTION = """\
Poll RSS, Atom, RDF and JSON feeds, fetch each new article, extract it (title, authors,
dates, clean text and HTML), drop duplicates, and store one JSON document per article
plus a SQLite catalog under the storage directory.

Settings come from config/ingest.toml (or --config PATH, or INGEST_CONFIG), then from
INGEST_* environment variables (INGEST_STORAGE_DIR, INGEST_ALLOW_PRIVATE_NETWORKS, ...).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="settings file (default: $INGEST_CONFIG, else config/ingest.toml if present)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="override the log_level setting",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], help="override the log_format setting"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser(
        "run",
        help="run the daemon: poll every source on its interval until SIGTERM/SIGINT",
        description="Run the daemon. Each enabled source is polled on its interval; a "
        "heartbeat file lets 'ingest health' check it. SIGTERM or SIGINT stops taking new "
        "work, lets in-flight polls finish (up to shutdown_grace, 20 s by default) and exits.",
    )
    commands.add_parser(
        "poll",
        help="poll every enabled source once and exit (for cron)",
        description="Poll every enabled source once. Shows a progress bar on a terminal, "
        "one summary line per source otherwise. Exits 1 if any source failed.",
    )

    fetch = commands.add_parser(
        "fetch",
        help="ingest URLs now: a feed's entries, or one article page",
        description="Fetch each URL (it need not be configured). A feed ingests its entries; "
        "any other page is ingested as an article. What is stored goes to the store as usual.",
    )
    fetch.add_argument("urls", nargs="+", metavar="URL")
    fetch.add_argument(
        "--json",
        action="store_true",
        help="print each newly stored article as one JSON line on stdout",
    )

    ext = commands.add_parser(
        "extract",
        help="extract articles from saved HTML files; nothing is stored",
        description="Extract each saved HTML page and print one JSON document per input "
        "(the same document 'ingest fetch --json' prints). A directory means every "
        "*.html/*.htm file under it; '-' (or no argument) reads standard input.",
    )
    ext.add_argument("inputs", nargs="*", metavar="FILE|DIR|-")
    ext.add_argument("--url", help="the page's URL, to resolve relative links and images")

    commands.add_parser(
        "sources",
        help="list the configured sources and their state",
        description="List every configured source with its last poll, status, error and counts.",
    ).add_argument("--json", action="store_true", help="one JSON object per source")

    arts = commands.add_parser(
        "articles",
        help="list stored articles, search them, or show one",
        description="Without ID: list stored articles (newest first, or after a sequence "
        "number); near-copies are marked [copy of ID], updated articles [vN]. With ID: "
        "print that article's newest JSON document, with its cluster's other articles "
        "(copies) and its versions from the catalog.",
    )
    arts.add_argument("id", nargs="?", help="show this article's document")
    arts.add_argument(
        "--version", type=int, metavar="N", help="with ID: show version N of the document"
    )
    arts.add_argument(
        "--versions", action="store_true", help="with ID: list the article's versions"
    )
    arts.add_argument("--limit", type=int, default=20, help="how many to list (default 20)")
    arts.add_argument(
        "--after",
        type=int,
        metavar="SEQ",
        help="list articles stored after sequence number SEQ, oldest first",
    )
    arts.add_argument("--search", metavar="WORDS", help="full-text search in titles and text")
    arts.add_argument("--json", action="store_true", help="one JSON object per article")

    commands.add_parser(
        "health",
        help="exit 0 if the daemon's heartbeat is fresh, 1 if not",
        description="Check the daemon's heartbeat file in the storage directory (for Docker "
        "and monitoring): exit 0 when healthy, 1 when not.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ingest`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(config_path(args.config, os.environ), os.environ)
    except ConfigError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    logs.configure(args.log_level or settings.log_level, args.log_format or settings.log_format)
    handler = COMMANDS[args.command]
    try:
        return handler(settings, args)
    except IngestError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:  # the outer boundary: log the traceback, exit non-zero
        logger.exception("ingest: unexpected error")
        return 1


@asynccontextmanager
async def _context(
    settings: Settings, *, pool: bool = True, metrics: Metrics | None = None
) -> AsyncIterator[Context]:
    """Store, fetcher and (for batch work) the extraction process pool, closed on exit."""
    store = open_store(settings.storage_dir)
    executor = extraction_pool(settings.extract_workers) if pool else None
    try:
        async with Fetcher(settings) as fetcher:
            yield Context(
                fetcher=fetcher,
                store=store,
                extract_pool=executor,
                near_duplicates=settings.near_duplicates,
                metrics=metrics,
                bounds=Bounds(settings.min_interval, settings.max_interval),
            )
    finally:
        if executor is not None:
            await executor.aclose()
        await store.close()


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        async with _context(settings, metrics=Metrics()) as ctx:
            await run_daemon(settings, ctx, stop=stop)

    if not any(s.enabled for s in settings.sources):
        logger.warning("daemon: no enabled sources configured; only the heartbeat runs")
    asyncio.run(run())
    return 0


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    sources = [s for s in settings.sources if s.enabled]
    if not sources:
        print("ingest: no enabled sources configured", file=sys.stderr)
        return 1
    progress = _Progress(len(sources)) if sys.stderr.isatty() else None

    async def run() -> list[RunReport]:
        async with _context(settings) as ctx:
            states = {state.name: state for state in await ctx.store.source_states()}

            async def one(source: Source) -> RunReport:
                report = await poll_source(ctx, source, state=states.get(source.name))
                if progress:
                    progress.advance(report)
                else:
                    print(_summary(report), flush=True)
                return report

            return await asyncio.gather(*(one(s) for s in sources))

    reports = asyncio.run(run())
    if progress:
        progress.finish()
        for report in reports:
            print(_summary(report))
    return 0 if all(r.ok for r in reports) else 1


def cmd_fetch(settings: Settings, args: argparse.Namespace) -> int:
    configured = {dedup.normalize_url(s.url): s for s in settings.sources}

    def emit(article: Article) -> None:
        if args.json:
            print(document.dumps(article), flush=True)

    async def run() -> list[RunReport]:
        async with _context(settings, pool=False) as ctx:
            reports = []
            for url in args.urls:
                source = configured.get(dedup.normalize_url(url))
                reports.append(await ingest_url(ctx, url, source=source, on_stored=emit))
            return reports

    reports = asyncio.run(run())
    for report in reports:
        print(_summary(report), file=sys.stderr)
    return 0 if all(r.ok and r.errors == 0 for r in reports) else 1


def cmd_extract(settings: Settings, args: argparse.Namespace) -> int:
    failed = 0
    for label, read in _inputs(args.inputs or ["-"]):
        try:
            body = read()
            article = _offline_article(body, url=args.url)
        except (OSError, ExtractError) as exc:
            print(f"ingest: extract: {label}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(document.dumps(article), flush=True)
    return 1 if failed else 0


def _inputs(names: list[str]) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Each input as (label, reader): files, the HTML files under directories, stdin."""
    for name in names:
        if name == "-":
            yield "<stdin>", sys.stdin.buffer.read
            continue
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in {".html", ".htm"})
            for file in found:
                yield str(file), file.read_bytes
        else:
            yield str(path), path.read_bytes


def _offline_article(body: bytes, *, url: str | None) -> Article:
    """An Article from saved bytes: the same document as a fetch, minus fetch facts."""
    extraction = extract(body, url=url)
    key = f"url:{dedup.normalize_url(url)}" if url else f"text:{dedup.fingerprint(extraction.text)}"
    return build_article(
        extraction, article_id=dedup.article_id(key), url=url or "", source=None, fetched_at=None
    )


def cmd_sources(settings: Settings, args: argparse.Namespace) -> int:
    async def states() -> dict[str, SourceState]:
        store = open_store(settings.storage_dir)
        try:
            return {s.name: s for s in await store.source_states()}
        finally:
            await store.close()

    known = asyncio.run(states())
    if not settings.sources:
        print("no sources configured", file=sys.stderr)
    for source in settings.sources:
        state = known.get(source.name)
        row = _source_row(source, state)
        print(json.dumps(row, ensure_ascii=False) if args.json else _source_line(row))
    return 0


def _source_row(source: Source, state: SourceState | None) -> dict[str, Any]:
    state = state if state is not None and state.url == source.url else None
    interval = state.interval if state and state.interval else source.interval
    return {
        "name": source.name,
        "url": source.url,
        "polled_url": state.poll_url if state else source.url,  # differs once it moved
        "enabled": source.enabled,
        "schedule": "fixed" if source.fixed_interval else "adaptive",
        "interval_seconds": interval.total_seconds(),
        "last_polled_at": _iso(state.last_polled_at) if state else None,
        "last_status": state.last_status if state else None,
        "last_error": state.last_error if state else None,
        "consecutive_failures": state.consecutive_failures if state else 0,
        "next_poll_at": _iso(state.next_poll_at) if state else None,
        "redirect_target": state.redirect_target if state else None,
        "entries_seen": state.entries_seen if state else 0,
        "articles_stored": state.articles_stored if state else 0,
    }


def _source_line(row: dict[str, Any]) -> str:
    status = row["last_status"] or "never polled"
    if not row["enabled"]:
        status = "disabled"
    every = _duration(row["interval_seconds"])
    line = (
        f"{row['name']:<20} {status:<13} every {every:<6} ({row['schedule']}) "
        f"stored={row['articles_stored']:<6} failures={row['consecutive_failures']:<3} "
        f"last={row['last_polled_at'] or '-'} next={row['next_poll_at'] or '-'}  {row['url']}"
    )
    notes = []
    if row["polled_url"] != row["url"]:
        notes.append(f"moved permanently to {row['polled_url']} (polled there)")
    elif row["redirect_target"]:
        notes.append(f"permanently redirected to {row['redirect_target']} (not yet moved)")
    if status == "gone":
        notes.append("gone (HTTP 410): not polled until its URL changes in the config")
    if row["last_error"]:
        notes.append(f"error: {row['last_error']}")
    return "\n".join([line, *(f"{'':<20} {note}" for note in notes)])


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def cmd_articles(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> int:
        store: Store = open_store(settings.storage_dir)
        try:
            if args.id:
                return await _show_article(store, args)
            if args.search:
                rows = await store.search(args.search, limit=args.limit)
            elif args.after is not None:
                rows = await store.articles(after=args.after, limit=args.limit)
            else:
                rows = await store.articles(limit=args.limit, newest_first=True)
            for row in rows:
                print(_row_json(row) if args.json else _row_line(row))
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


async def _show_article(store: Store, args: argparse.Namespace) -> int:
    """One article's document (newest, or ``--version N``), or its versions."""
    article = await store.get_article(args.id, version=args.version)
    if article is None:
        which = f" version {args.version}" if args.version else ""
        print(f"ingest: no article with id {args.id}{which}", file=sys.stderr)
        return 1
    stored = await store.versions(args.id)
    versions = [
        {
            "version": v.version,
            "fingerprint": v.fingerprint,
            "path": v.path,
            "stored_at": _iso(v.stored_at),
        }
        for v in stored
    ]
    if args.versions:
        for v, line in zip(stored, versions, strict=True):
            text = f"v{v.version:<3} {_iso(v.stored_at)} {v.fingerprint[:12]} {v.path}"
            print(json.dumps(line) if args.json else text)
        return 0
    doc = document.to_document(article)
    doc["copies"] = [row.id for row in await store.cluster(args.id) if row.id != args.id]
    doc["versions"] = versions
    print(json.dumps(doc, ensure_ascii=False, indent=2))
    return 0


def _row_json(row: CatalogRow) -> str:
    return json.dumps(
        {
            "seq": row.seq,
            "id": row.id,
            "path": row.path,
            "url": row.url,
            "source": row.source,
            "title": row.title,
            "published": _iso(row.published),
            "fetched_at": _iso(row.fetched_at),
            "version": row.version,
            "duplicate_of": row.duplicate_of,
        },
        ensure_ascii=False,
    )


def _row_line(row: CatalogRow) -> str:
    day = row.published.date().isoformat() if row.published else "-"
    marks = (f" [v{row.version}]" if row.version > 1 else "") + (
        f" [copy of {row.duplicate_of}]" if row.duplicate_of else ""
    )
    return f"{row.seq:>6} {row.id} {day:<10} {row.source or '-':<16} {row.title}{marks}"


def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    health = check_health(settings.storage_dir)
    print(("healthy: " if health.healthy else "unhealthy: ") + health.reason)
    return 0 if health.healthy else 1


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": cmd_run,
    "poll": cmd_poll,
    "fetch": cmd_fetch,
    "extract": cmd_extract,
    "sources": cmd_sources,
    "articles": cmd_articles,
    "health": cmd_health,
}


def _summary(report: RunReport) -> str:
    line = (
        f"{report.source}: {report.status} entries={report.entries} new={report.new} "
        f"stored={report.stored} duplicates={report.duplicates} skipped={report.skipped} "
        f"errors={report.errors} in {report.elapsed.total_seconds():.1f}s"
    )
    return line + (f" error: {report.error}" if report.error else "")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


class _Progress:
    """A one-line progress bar on stderr, for polls run from a terminal."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.done, self.failed, self.stored = total, 0, 0, 0
        self.stream = stream
        self._draw()

    def advance(self, report: RunReport) -> None:
        self.done += 1
        self.failed += 0 if report.ok else 1
        self.stored += report.stored
        self._draw()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self) -> None:
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(
            f"\r[{bar}] {self.done}/{self.total} sources, {self.stored} stored, "
            f"{self.failed} failed"
        )
        self.stream.flush()
