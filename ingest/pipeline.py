"""The one orchestrator: the order of the stages, for the daemon, the CLI and later workers.

    poll_source: fetch the feed with its validators (a 304 stops here) → read entries →
    classify them (new / seen / updated) before fetching anything → fetch and extract
    the new and updated ones → dedup by the page's canonical URL, the exact text and
    near-copies → store (an updated entry as a new version of its article) → save
    source state → RunReport.

Every step is idempotent: a rerun, or a rerun after a crash, stores nothing twice,
because the store enforces the entry keys and the fingerprint with unique constraints.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ingest import dedup, extract, feeds, schedule
from ingest.dedup.neardup import Sketch, fingerprint_and_sketch
from ingest.errors import (
    BlockedAddressError,
    ExtractError,
    FeedError,
    FetchError,
    RobotsDisallowedError,
    StoreError,
    UnexpectedContentTypeError,
)
from ingest.fetch import Fetcher
from ingest.metrics import Metrics
from ingest.models import (
    Article,
    Classified,
    Entry,
    Extraction,
    ExtractRules,
    Feed,
    Page,
    RunReport,
    Source,
    SourceState,
    StoreOutcome,
)
from ingest.schedule import Bounds, ServerHints
from ingest.store import Store
from ingest.workers import WorkerError, WorkerPool

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})
HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
# Statuses that will not change by asking again: the entry is recorded as skipped.
PERMANENT_STATUSES = frozenset({404, 410, 451})
DEFAULT_MIN, DEFAULT_MAX = timedelta(minutes=5), timedelta(hours=24)
# A feed answering with the same permanent redirect this many polls in a row has moved:
# its new URL is polled from then on (a single 301 may be a misconfiguration).
MOVED_AFTER = 3
# Pages fetched but not yet extracted, at most: enough to keep the extraction processes
# of a many-core machine busy while others download, few enough to bound memory
# (bench/e2e.py's cold ingest peaked at 1 GB without it).
PAGES_IN_HAND = 32
# Extracted articles waiting for the store, at most: the store writes one at a time, and
# when it is the slowest stage articles (text, HTML and Markdown each) would pile up
# (bench/e2e.py's cold ingest: 712 MB in the main process without this bound).
ARTICLES_IN_HAND = 32

OnStored = Callable[[Article], None]


@dataclass(frozen=True, slots=True)
class Context:
    """What every pipeline call needs, built once by the caller and passed down.

    ``extract_pool``: worker processes for extraction (`ingest.workers`), the
    CPU-heavy stage, so that every core works; None extracts in a thread of this process.
    ``page_slots``: how many pages may be between fetched and extracted at once: when
    fetching outruns extraction, fetched bodies would otherwise pile up in memory.
    ``store_slots``: how many extracted articles may wait for the store, likewise.
    ``bounds``: the global minimum and maximum poll interval (a source may set its own).
    ``near_duplicates``: "link" stores a near-copy of a stored article as a member of
    that article's cluster (``duplicate_of``); "skip" records it as a duplicate only.
    """

    fetcher: Fetcher
    store: Store
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    extract_pool: WorkerPool | None = None
    near_duplicates: str = "link"
    metrics: Metrics | None = None
    bounds: Bounds = field(default_factory=lambda: Bounds(DEFAULT_MIN, DEFAULT_MAX))
    page_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PAGES_IN_HAND))
    store_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(ARTICLES_IN_HAND)
    )


def extraction_pool(workers: int) -> WorkerPool | None:
    """A pool of ``workers`` extraction processes (0: one per core), or None for one core.

    Workers start when the first pages wait (one per page waiting, up to ``workers``):
    an idle cycle, which extracts nothing, starts none (starting them costs 2 CPU-s and
    100 MB: bench/e2e.py's idle cycle measured it).
    """
    count = workers or os.cpu_count() or 1
    if count <= 1:
        return None
    return WorkerPool(count, preload=("ingest.pipeline",))


@dataclass(frozen=True, slots=True)
class _Extracted:
    extraction: Extraction
    fingerprint: str  # dedup.fingerprint of its text
    sketch: Sketch  # its near-duplicate shingles and LSH buckets


def _extract_page(body: bytes, *, url: str, charset: str | None, rules: ExtractRules) -> _Extracted:
    """Run in the extraction process: the fingerprint and the near-duplicate sketch
    (normalizing, hashing and MinHashing the whole text) are CPU work too, kept off the
    event loop and the store's thread."""
    extraction = extract.extract(body, url=url, charset=charset, rules=rules)
    return _Extracted(extraction, *fingerprint_and_sketch(extraction.text))


async def _extract(ctx: Context, page: Page, rules: ExtractRules) -> _Extracted:
    call = functools.partial(
        _extract_page, page.body, url=page.final_url, charset=page.charset, rules=rules
    )
    if ctx.extract_pool is None:
        return await asyncio.to_thread(call)
    return await ctx.extract_pool.run(call)


@dataclass(slots=True)
class _Tally:
    """Counts for one run; turned into a frozen RunReport at the end."""

    entries: int = 0
    new: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    errors: int = 0
    updated: int = 0
    near_duplicates: int = 0


async def poll_source(
    ctx: Context,
    source: Source,
    *,
    state: SourceState | None = None,
    on_stored: OnStored | None = None,
) -> RunReport:
    """Poll one source once: the function the daemon and ``ingest poll`` call.

    ``state``: the source's saved state, if the caller has read it already (``ingest
    poll`` reads every source's in one query); None reads it here.
    """
    started = ctx.now()
    if state is None:
        state = await ctx.store.source_state(source.name)
    if state is None or state.url != source.url:  # new, or its URL changed in the config
        state = SourceState(name=source.name, url=source.url)
    if state.last_status == "gone":  # HTTP 410 earlier: not polled until the config changes
        report = _report(source.name, started, started, "gone", _Tally(), error=None)
        report = replace(report, error=state.last_error, error_kind="http_410")
        _log_report(report)
        return report
    page: Page | None = None
    hints = ServerHints()
    try:
        page = await _fetch(ctx, state.poll_url, kind="feed", validators=state.validators)
        hints = schedule.parse_hints(dict(page.headers), ttl=None, now=ctx.now())
        if page.not_modified:
            report = _report(source.name, started, ctx.now(), "not_modified", _Tally())
        else:
            feed = await asyncio.to_thread(feeds.parse_feed, page)
            hints = replace(hints, ttl=feed.ttl)
            tally = await _ingest_feed(ctx, feed, source=source, on_stored=on_stored)
            report = _report(source.name, started, ctx.now(), "ok", tally)
    except (FetchError, FeedError, StoreError) as exc:
        gone = isinstance(exc, FetchError) and exc.status == 410
        report = _report(
            source.name, started, ctx.now(), "gone" if gone else "failed", _Tally(), error=exc
        )
        if isinstance(exc, FetchError) and exc.retry_after:
            hints = schedule.parse_hints({"retry-after": exc.retry_after}, ttl=None, now=ctx.now())
    state = _next_state(ctx, state, report, page, source, hints)
    await ctx.store.save_source_state(state)
    _log_report(report)
    return replace(report, next_poll_at=state.next_poll_at)


async def _fetch(ctx: Context, url: str, *, kind: str, **options: Any) -> Page:
    """``ctx.fetcher.get`` with its latency recorded in the metrics."""
    started = time.monotonic()
    try:
        return await ctx.fetcher.get(url, **options)
    finally:
        if ctx.metrics is not None:
            ctx.metrics.observe("ingest_fetch_seconds", time.monotonic() - started, kind=kind)


async def ingest_url(
    ctx: Context,
    url: str,
    *,
    source: Source | None = None,
    on_stored: OnStored | None = None,
) -> RunReport:
    """Ingest one URL that need not be configured: a feed's entries, or one article page.

    Which one is decided from the response, not the URL.
    """
    started = ctx.now()
    name = source.name if source else f"url:{urlsplit(url).hostname or url}"
    rules = source.rules if source else ExtractRules()
    try:
        page = await _fetch(ctx, url, kind="url")
        if feeds.looks_like_feed(page):
            feed = await asyncio.to_thread(feeds.parse_feed, page)
            adhoc = source or Source(name=name, url=url, interval=timedelta(0), rules=rules)
            tally = await _ingest_feed(ctx, feed, source=adhoc, on_stored=on_stored)
        else:
            tally = _Tally(entries=1)
            (item,) = await _classify(ctx, [Entry(guid=None, url=url)], source=name)
            if item.state == "new":
                tally.new = 1
                await _ingest_entry(
                    ctx,
                    item,
                    source=name,
                    rules=rules,
                    tally=tally,
                    page=page,
                    on_stored=on_stored,
                )
    except (FetchError, FeedError, StoreError) as exc:
        report = _report(name, started, ctx.now(), "failed", _Tally(), error=exc)
    else:
        report = _report(name, started, ctx.now(), "ok", tally)
    _log_report(report)
    return report


async def _ingest_feed(
    ctx: Context, feed: Feed, *, source: Source, on_stored: OnStored | None
) -> _Tally:
    """Fetch, extract and store the entries of ``feed`` not seen before, and refetch the
    ones the feed says changed, concurrently.

    Concurrency is bounded by the fetcher (overall and per host), not here.
    """
    tally = _Tally(entries=len(feed.entries))
    items = await _classify(ctx, list(feed.entries), source=source.name)
    todo = [item for item in items if item.state != "seen"]
    tally.new = sum(item.state == "new" for item in todo)
    async with asyncio.TaskGroup() as group:
        for item in todo:
            group.create_task(
                _ingest_entry(
                    ctx,
                    item,
                    source=source.name,
                    rules=source.rules,
                    robots=source.robots,
                    tally=tally,
                    on_stored=on_stored,
                )
            )
    return tally


async def _classify(ctx: Context, entries: list[Entry], *, source: str) -> list[Classified]:
    """New, seen or updated, per entry, from the feed and the catalog alone (no fetch).

    A source whose GUIDs prove unreliable (reused or rotating) is switched to URL
    identity here, once and for good.
    """
    records = await ctx.store.entry_records(dedup.lookup_keys(entries, source=source))
    trusted = await ctx.store.guids_trusted(source)
    if trusted and (problem := dedup.guid_problem(entries, source=source, records=records)):
        logger.warning("dedup: guids no longer trusted: source=%s reason=%r", source, problem)
        await ctx.store.distrust_guids(source, reason=problem)
        trusted = False
    return dedup.classify(entries, source=source, trust_guid=trusted, records=records)


async def _ingest_entry(
    ctx: Context,
    item: Classified,
    *,
    source: str,
    rules: ExtractRules,
    tally: _Tally,
    robots: bool | None = None,
    page: Page | None = None,
    on_stored: OnStored | None = None,
) -> None:
    """One entry, start to end. Errors worth retrying leave no trace, so the next poll
    tries again; permanent ones are recorded with their reason and never retried.

    ``robots``: obey robots.txt (None: the global setting); ``page``: already fetched.
    """
    entry = item.entry
    if entry.url is None:
        await _skip(ctx, item, source=source, reason="entry has no link", tally=tally)
        return
    try:
        async with ctx.page_slots:  # a bounded number of page bodies in memory at once
            if page is None:
                page = await _fetch(
                    ctx, entry.url, kind="page", accept=HTML_ACCEPT, expect="html", robots=robots
                )
            if page.content_type not in HTML_TYPES:
                reason = f"not an HTML page ({page.content_type})"
                await _skip(ctx, item, source=source, reason=reason, tally=tally)
                return
            extracted = await _extract(ctx, page, rules)
            page = replace(page, body=b"")  # the body is not needed any more
            # Backpressure: while the store is behind, keep the page slot (so fetching
            # and extraction wait too) until an extracted article may queue for it.
            await ctx.store_slots.acquire()
    except FetchError as exc:
        permanent = isinstance(exc, RobotsDisallowedError | UnexpectedContentTypeError)
        if permanent or exc.status in PERMANENT_STATUSES:
            await _skip(ctx, item, source=source, reason=str(exc), tally=tally)
        else:
            tally.errors += 1
            logger.warning("entry: %s source=%s", exc, source)
        return
    except ExtractError as exc:
        await _skip(ctx, item, source=source, reason=str(exc), tally=tally)
        return
    except WorkerError as exc:  # may be the page, may be the machine: tried again next poll
        tally.errors += 1
        logger.warning("entry: %s source=%s url=%s", exc, source, entry.url)
        return
    try:
        await _store(ctx, item, page, extracted, source=source, tally=tally, on_stored=on_stored)
    except StoreError as exc:  # e.g. disk full: nothing was kept, so the next poll retries
        tally.errors += 1
        logger.error("entry: %s source=%s url=%s", exc, source, entry.url)
    finally:
        ctx.store_slots.release()


async def _store(
    ctx: Context,
    item: Classified,
    page: Page,
    extracted: _Extracted,
    *,
    source: str,
    tally: _Tally,
    on_stored: OnStored | None,
) -> None:
    """Store a fetched entry: a new version of the article it updates or whose page it
    is (same site's canonical URL), else a new article, a near-copy or a duplicate."""
    entry = item.entry
    extraction = extracted.extraction
    page_keys = _page_keys(page, extraction.canonical_url)
    same_page = item.article_id if item.state == "updated" else await _known_page(ctx, page_keys)
    article = build_article(
        extraction,
        article_id=same_page or dedup.article_id(item.keys[-1]),
        url=page.final_url,
        source=source,
        fetched_at=page.fetched_at,
        entry=entry,
        fingerprint=extracted.fingerprint,
    )
    keys = item.keys + page_keys
    if same_page is not None:
        outcome = await ctx.store.add_version(
            article, keys=keys, entry=entry, sketch=extracted.sketch
        )
    else:
        outcome = await ctx.store.add_article(
            article,
            keys=keys,
            entry=entry,
            near_duplicates=ctx.near_duplicates,
            sketch=extracted.sketch,
        )
    _count(outcome, item, tally, source=source, url=article.url)
    if outcome.status in ("stored", "updated") and on_stored is not None:
        on_stored(replace(article, version=outcome.version or 1, duplicate_of=outcome.duplicate_of))


async def _known_page(ctx: Context, page_keys: tuple[str, ...]) -> str | None:
    """The stored article already at the page's final or canonical URL, if any."""
    records = await ctx.store.entry_records(list(page_keys))
    return next((r.article_id for r in records.values() if r.status == "stored"), None)


def _count(
    outcome: StoreOutcome, item: Classified, tally: _Tally, *, source: str, url: str
) -> None:
    status, of = outcome.status, outcome.article_id
    if status == "stored" and outcome.duplicate_of:
        tally.stored += 1
        tally.near_duplicates += 1
        logger.info(
            "stored: source=%s id=%s near_copy_of=%s url=%s", source, of, outcome.duplicate_of, url
        )
    elif status == "stored":
        tally.stored += 1
        logger.info("stored: source=%s id=%s url=%s", source, of, url)
    elif status == "updated":
        tally.updated += 1
        logger.info("updated: source=%s id=%s version=%s url=%s", source, of, outcome.version, url)
    elif status == "unchanged" and item.state == "updated":
        logger.info("unchanged: source=%s id=%s url=%s", source, of, url)
    elif status == "near_duplicate":
        tally.duplicates += 1
        tally.near_duplicates += 1
        logger.info("duplicate: source=%s near_copy_of=%s url=%s", source, of, url)
    else:  # "duplicate", or a new entry whose page is a stored article, unchanged
        tally.duplicates += 1
        logger.info("duplicate: source=%s of=%s url=%s", source, of, url)


async def _skip(ctx: Context, item: Classified, *, source: str, reason: str, tally: _Tally) -> None:
    tally.skipped += 1
    keys = item.keys
    logger.info("skipped: source=%s reason=%r key=%s", source, reason, keys[-1] if keys else "")
    if keys:  # an updated entry keeps its stored version; only its state is refreshed
        await ctx.store.mark_entry(
            keys, source=source, status="skipped", reason=reason, entry=item.entry
        )


def build_article(
    extraction: Extraction,
    *,
    article_id: str,
    url: str,
    source: str | None,
    fetched_at: datetime | None,
    entry: Entry | None = None,
    fingerprint: str | None = None,
) -> Article:
    """The Article of an extraction; what the page says wins over what its feed
    ``entry`` said, which fills the gaps. ``fingerprint``: of the text, if computed
    already."""
    feed = entry or Entry(guid=None, url=None)
    return Article(
        id=article_id,
        url=url,
        canonical_url=extraction.canonical_url,
        source=source,
        title=extraction.title or feed.title,
        authors=extraction.authors or feed.authors,
        published=extraction.published or feed.published or feed.updated,
        modified=extraction.modified or feed.updated,
        language=extraction.language,
        site_name=extraction.site_name,
        description=extraction.description or feed.summary,
        image=extraction.image,
        tags=extraction.tags or feed.tags,
        text=extraction.text,
        html=extraction.html,
        markdown=extraction.markdown,
        fetched_at=fetched_at,
        fingerprint=fingerprint or dedup.fingerprint(extraction.text),
        entry_guid=feed.guid,
    )


def _page_keys(page: Page, canonical_url: str | None) -> tuple[str, ...]:
    """Keys learnt from the page itself: where redirects ended and its canonical URL, so
    another feed linking there directly is recognised before fetching.

    A canonical URL on another site is ignored: a page must not be able to claim (and
    so suppress) another publisher's URL.
    """
    urls = {page.final_url}
    if canonical_url and dedup.same_site(canonical_url, page.final_url):
        urls.add(canonical_url)
    return tuple(sorted(f"url:{dedup.normalize_url(u)}" for u in urls))


def _report(
    name: str,
    started: datetime,
    finished: datetime,
    status: str,
    tally: _Tally,
    *,
    error: Exception | None = None,
) -> RunReport:
    return RunReport(
        source=name,
        started_at=started,
        finished_at=finished,
        status=status,
        entries=tally.entries,
        new=tally.new,
        stored=tally.stored,
        duplicates=tally.duplicates,
        skipped=tally.skipped,
        errors=tally.errors,
        error=str(error) if error else None,
        error_kind=error_kind(error) if error else None,
        updated=tally.updated,
        near_duplicates=tally.near_duplicates,
    )


def error_kind(error: Exception) -> str:
    """A short, stable label for metrics and state: http_503, network, feed, store ..."""
    if isinstance(error, FetchError):
        if error.status is not None:
            return f"http_{error.status}"
        return "blocked" if isinstance(error, BlockedAddressError) else "network"
    if isinstance(error, FeedError):
        return "feed"
    return "store" if isinstance(error, StoreError) else type(error).__name__.lower()


def _next_state(
    ctx: Context,
    state: SourceState,
    report: RunReport,
    page: Page | None,
    source: Source,
    hints: ServerHints,
) -> SourceState:
    """The source's state after a poll: outcome, validators, schedule and moves.

    New validators are kept only when every new entry was dealt with: if some entry
    failed to fetch, the next poll must get the full feed again (not a 304) to retry it.
    """
    bounds = Bounds(
        source.min_interval or ctx.bounds.minimum, source.max_interval or ctx.bounds.maximum
    )
    failures = 0 if report.ok else state.consecutive_failures + 1
    plan = schedule.plan(
        interval=state.interval or source.interval,
        fixed=source.interval if source.fixed_interval else None,
        bounds=bounds,
        status=report.status,
        new_entries=report.new,
        failures=failures,
        hints=hints,
        finished=report.finished_at,
    )
    state = replace(
        state,
        last_polled_at=report.finished_at,
        last_status=report.status,
        last_error=report.error,
        consecutive_failures=failures,
        interval=plan.interval,
        next_poll_at=plan.next_poll_at,
        entries_seen=state.entries_seen + report.new,
        articles_stored=state.articles_stored + report.stored,
    )
    if page is not None and report.errors == 0:
        state = replace(state, validators=page.validators)  # a 304 carries the old ones
    return _follow_move(state, page)


def _follow_move(state: SourceState, page: Page | None) -> SourceState:
    """Count a permanent redirect; once it has lasted MOVED_AFTER polls, poll its target."""
    target = page.permanent_redirect if page is not None else None
    if target is None:
        return replace(state, redirect_target=None, redirect_count=0)
    count = state.redirect_count + 1 if target == state.redirect_target else 1
    if count < MOVED_AFTER:
        return replace(state, redirect_target=target, redirect_count=count)
    logger.warning(
        "poll: source moved permanently: source=%s from=%s to=%s",
        state.name,
        state.poll_url,
        target,
    )
    return replace(state, current_url=target, redirect_target=None, redirect_count=0)


def _log_report(report: RunReport) -> None:
    # A 304 is the routine outcome of most polls: at INFO it would drown the log (and
    # cost a measurable share of an idle cycle's CPU), so it is a DEBUG line.
    if not report.ok:
        level = logging.WARNING
    elif report.status == "not_modified":
        level = logging.DEBUG
    else:
        level = logging.INFO
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "poll: source=%s status=%s entries=%d new=%d stored=%d duplicates=%d skipped=%d "
        "errors=%d elapsed_ms=%d%s",
        report.source,
        report.status,
        report.entries,
        report.new,
        report.stored,
        report.duplicates,
        report.skipped,
        report.errors,
        report.elapsed.total_seconds() * 1000,
        f" error={report.error!r}" if report.error else "",
    )
