"""The daemon: APScheduler runs one job per source; a heartbeat file says we are alive.

APScheduler is imported here and nowhere else. Each source is an interval job with
``max_instances=1`` (a slow poll is never overlapped by the next) and ``coalesce=True``
(polls missed while busy or asleep collapse into one), with a little jitter so sources
sharing an interval do not all fire in the same second. The first run of each source
honours the next-poll time saved by its previous poll, so a restart does not hammer
every source at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingest.config import Settings
from ingest.errors import IngestError
from ingest.metrics import Metrics
from ingest.models import RunReport, Source, SourceState
from ingest.pipeline import Context, poll_source
from ingest.status import Probe, StatusServer
from ingest.store import files

logger = logging.getLogger(__name__)

HEARTBEAT_FILE = "heartbeat.json"


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    reason: str


async def run_daemon(settings: Settings, ctx: Context, *, stop: asyncio.Event) -> None:
    """Poll every enabled source when it is due until ``stop`` is set, then drain."""
    daemon = _Daemon(settings, ctx)
    await daemon.start()
    try:
        await stop.wait()
    finally:
        await daemon.stop()


class _Daemon:
    """The scheduler, its jobs, the heartbeat and the status endpoints, started and
    stopped together."""

    def __init__(self, settings: Settings, ctx: Context) -> None:
        self.settings = settings
        self.ctx = ctx
        self.metrics = ctx.metrics or Metrics()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.inflight: set[asyncio.Task[None]] = set()
        self.ready = False
        self.status: StatusServer | None = None
        self.heartbeat = settings.storage_dir / HEARTBEAT_FILE

    async def start(self) -> None:
        # A daemon killed while writing its heartbeat leaves the temp file beside it:
        # remove both (the heartbeat is written afresh at once).
        files.remove_leftovers(self.settings.storage_dir, HEARTBEAT_FILE)
        sources = [s for s in self.settings.sources if s.enabled]
        states = {state.name: state for state in await self.ctx.store.source_states()}
        for source in sources:
            self._schedule(source, _first_run(source, states.get(source.name), self.ctx.now()))
        self.scheduler.add_job(
            write_heartbeat,
            "interval",
            seconds=self.settings.heartbeat_interval.total_seconds(),
            args=(self.heartbeat, self.settings.heartbeat_interval),
            id="heartbeat",
            next_run_time=datetime.now(UTC),
        )
        self.metrics.sample("ingest_due_sources", self._due)
        self.metrics.set("ingest_sources", len(sources), state="enabled")
        self.metrics.set(
            "ingest_sources", len(self.settings.sources) - len(sources), state="disabled"
        )
        if self.settings.status_port:
            self.status = StatusServer(self.metrics, health=self._health, ready=self._ready)
            await self.status.start(self.settings.status_host, self.settings.status_port)
        self.scheduler.start()
        self.ready = True
        logger.info("daemon: started sources=%d pid=%d", len(sources), os.getpid())

    async def stop(self) -> None:
        # Not ready any more; pause (no new polls), drain, and only then shut down:
        # APScheduler's asyncio executor cancels the jobs still running at shutdown.
        self.ready = False
        self.scheduler.pause()
        await _drain(self.inflight, grace=self.settings.shutdown_grace)
        self.scheduler.shutdown(wait=False)
        if self.status is not None:
            await self.status.close()
        self.heartbeat.unlink(missing_ok=True)
        logger.info("daemon: stopped")

    def _schedule(self, source: Source, when: datetime) -> None:
        """(Re)schedule the one job of ``source`` to run once at ``when`` (plus jitter)."""
        jitter = random.uniform(0, self.settings.jitter.total_seconds())
        self.scheduler.add_job(
            self._poll,
            "date",
            run_date=when + timedelta(seconds=jitter),
            args=(source,),
            id=f"source:{source.name}",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,  # a late poll is still worth doing
        )

    async def _poll(self, source: Source) -> None:
        """The job: one poll, then the next one is booked from what the poll planned."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        report: RunReport | None = None
        try:
            report = await poll_source(self.ctx, source)
            observe_report(self.metrics, report)
        except IngestError as exc:
            logger.error("daemon: poll failed: source=%s error=%s", source.name, exc)
        except Exception:  # the outer boundary: one broken source never stops the others
            logger.exception("daemon: unexpected error: source=%s", source.name)
        finally:
            if task is not None:
                self.inflight.discard(task)
        if not self.ready:
            return
        if report is not None and report.status == "gone":
            logger.warning("daemon: source is gone (HTTP 410), not polled: source=%s", source.name)
            return
        planned = report.next_poll_at if report is not None else None
        self._schedule(source, planned or self.ctx.now() + source.interval)

    def _due(self) -> float:
        now = datetime.now(UTC)
        return float(
            sum(
                1
                for job in self.scheduler.get_jobs()
                if job.id.startswith("source:") and job.next_run_time and job.next_run_time <= now
            )
            + sum(1 for _ in self.inflight)
        )

    def _health(self) -> Probe:
        health = check_health(self.settings.storage_dir)
        return Probe(health.healthy, health.reason)

    def _ready(self) -> Probe:
        return Probe(self.ready, "ready" if self.ready else "starting or stopping")


def observe_report(metrics: Metrics, report: RunReport) -> None:
    """Count one poll's outcome in the metrics."""
    metrics.inc("ingest_polls_total", status=report.status)
    metrics.observe("ingest_poll_seconds", report.elapsed.total_seconds())
    if report.error_kind:
        metrics.inc("ingest_poll_errors_total", kind=report.error_kind)
    for outcome, count in (
        ("new", report.new),
        ("stored", report.stored),
        ("duplicate", report.duplicates),
        ("skipped", report.skipped),
        ("error", report.errors),
    ):
        if count:
            metrics.inc("ingest_entries_total", count, outcome=outcome)
    if report.stored:
        metrics.inc("ingest_articles_stored_total", report.stored)
    if report.duplicates:
        metrics.inc("ingest_duplicates_total", report.duplicates)


def _first_run(source: Source, state: SourceState | None, now: datetime) -> datetime:
    if state is None or state.url != source.url or state.next_poll_at is None:
        return now
    return max(now, state.next_poll_at)


async def _drain(inflight: set[asyncio.Task[None]], *, grace: timedelta) -> None:
    """Let in-flight polls finish within the grace period, then cancel the rest."""
    if not inflight:
        return
    logger.info("daemon: waiting for %d in-flight polls", len(inflight))
    _, pending = await asyncio.wait(set(inflight), timeout=grace.total_seconds())
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        logger.warning(
            "daemon: cancelled %d polls; their entries are retried next run", len(pending)
        )


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop``: the daemon drains and exits cleanly."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def write_heartbeat(path: Path, interval: timedelta) -> None:
    """Record that the daemon is alive now, and how often it promises to say so."""
    payload = {
        "pid": os.getpid(),
        "updated_at": datetime.now(UTC).isoformat(),
        "interval_seconds": interval.total_seconds(),
    }
    files.write_atomic(path, json.dumps(payload).encode())


def check_health(storage_dir: Path, *, now: datetime | None = None) -> Health:
    """Healthy when the heartbeat is younger than three of its intervals."""
    path = storage_dir / HEARTBEAT_FILE
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
        updated = datetime.fromisoformat(beat["updated_at"])
        interval = timedelta(seconds=float(beat["interval_seconds"]))
    except FileNotFoundError:
        return Health(False, f"no heartbeat at {path}: the daemon is not running")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Health(False, f"unreadable heartbeat at {path}: {exc}")
    age = (now or datetime.now(UTC)) - updated
    if age > 3 * interval:
        return Health(False, f"heartbeat is {age.total_seconds():.0f}s old (pid {beat.get('pid')})")
    return Health(True, f"heartbeat {age.total_seconds():.0f}s old (pid {beat.get('pid')})")
