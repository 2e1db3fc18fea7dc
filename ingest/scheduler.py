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
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingest.config import Settings
from ingest.errors import IngestError
from ingest.models import Source
from ingest.pipeline import Context, poll_source
from ingest.store import files

logger = logging.getLogger(__name__)

HEARTBEAT_FILE = "heartbeat.json"
# How long in-flight polls may run after SIGTERM before they are cancelled. Cancelling
# is safe (the store never leaves a half-written article), it only costs a refetch.
SHUTDOWN_GRACE = timedelta(seconds=20)


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    reason: str


async def run_daemon(settings: Settings, ctx: Context, *, stop: asyncio.Event) -> None:
    """Poll every enabled source on its interval until ``stop`` is set, then drain."""
    inflight: set[asyncio.Task[None]] = set()
    scheduler = AsyncIOScheduler(timezone=UTC)
    sources = [s for s in settings.sources if s.enabled]
    for source in sources:
        first = await _first_run(ctx, source)
        scheduler.add_job(
            _poll_job,
            "interval",
            seconds=source.interval.total_seconds(),
            jitter=settings.jitter.total_seconds(),
            args=(ctx, source, inflight),
            id=f"source:{source.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,  # a late poll is still worth doing
            next_run_time=first,
        )
    heartbeat = settings.storage_dir / HEARTBEAT_FILE
    scheduler.add_job(
        write_heartbeat,
        "interval",
        seconds=settings.heartbeat_interval.total_seconds(),
        args=(heartbeat, settings.heartbeat_interval),
        id="heartbeat",
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    logger.info("daemon: started sources=%d pid=%d", len(sources), os.getpid())
    try:
        await stop.wait()
    finally:
        # Pause first (no new polls), drain, and only then shut down: APScheduler's
        # asyncio executor cancels the jobs still running when it shuts down.
        scheduler.pause()
        await _drain(inflight)
        scheduler.shutdown(wait=False)
        heartbeat.unlink(missing_ok=True)
        logger.info("daemon: stopped")


async def _first_run(ctx: Context, source: Source) -> datetime:
    now = ctx.now()
    state = await ctx.store.source_state(source.name)
    if state is None or state.url != source.url or state.next_poll_at is None:
        return now
    return max(now, state.next_poll_at)


async def _poll_job(ctx: Context, source: Source, inflight: set[asyncio.Task[None]]) -> None:
    """The scheduler's job: one poll, and the outer boundary where any error is logged."""
    task = asyncio.current_task()
    if task is not None:
        inflight.add(task)
    try:
        await poll_source(ctx, source)
    except IngestError as exc:
        logger.error("daemon: poll failed: source=%s error=%s", source.name, exc)
    except Exception:  # the outer boundary: one broken source never stops the others
        logger.exception("daemon: unexpected error: source=%s", source.name)
    finally:
        if task is not None:
            inflight.discard(task)


async def _drain(inflight: set[asyncio.Task[None]]) -> None:
    """Let in-flight polls finish within the grace period, then cancel the rest."""
    if not inflight:
        return
    logger.info("daemon: waiting for %d in-flight polls", len(inflight))
    _, pending = await asyncio.wait(set(inflight), timeout=SHUTDOWN_GRACE.total_seconds())
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
