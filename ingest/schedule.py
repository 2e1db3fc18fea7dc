"""When to poll a source next: adaptive, bounded, polite, and patient with failures.

Pure functions of what the last poll saw; the daemon and ``ingest poll`` store the result
in the source's state, so next-poll times survive restarts.

* Success: the interval follows how often the source publishes, aiming at about one new
  entry per poll (no new entry: wait 1.5× longer; n new entries: wait n× shorter, at
  most 4× at once so one burst does not swing it to the minimum).
* A fixed per-source interval overrides the adaptation.
* The result is clamped to the source's and the global minimum and maximum, then raised
  to what the server asks: RSS ``<ttl>``, ``sy:updatePeriod``, ``Cache-Control:
  max-age``, ``Expires``, ``Retry-After``. A server's ask beyond ``SERVER_HINT_CEILING``
  is read as a misconfigured cache header (a CDN's "max-age one year"), not a schedule.
* Failure: exponential backoff from the current interval (×2 per consecutive failure)
  with jitter, up to the maximum interval, then polling continues at that pace: a
  source is never switched off silently. (miniflux #879: feeds that stop for good.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from ingest.fetch import parse_retry_after

SERVER_HINT_CEILING = timedelta(days=1)
MAX_SPEEDUP = 4.0
SLOWDOWN = 1.5


@dataclass(frozen=True, slots=True)
class Bounds:
    """The interval limits that apply to one source."""

    minimum: timedelta
    maximum: timedelta


@dataclass(frozen=True, slots=True)
class ServerHints:
    """What the server said about when to come back; None where it said nothing."""

    ttl: timedelta | None = None  # RSS <ttl> or sy:updatePeriod/sy:updateFrequency
    max_age: timedelta | None = None  # Cache-Control max-age
    expires_in: timedelta | None = None  # Expires minus now
    retry_after: timedelta | None = None  # Retry-After (429, 503, 3xx)

    def floor(self) -> timedelta:
        """The shortest wait the server asks for, capped at SERVER_HINT_CEILING."""
        asks = [h for h in (self.ttl, self.max_age, self.expires_in, self.retry_after) if h]
        return min(max(asks, default=timedelta(0)), SERVER_HINT_CEILING)


def after_success(
    interval: timedelta,
    *,
    new_entries: int,
    fixed: timedelta | None,
    bounds: Bounds,
    hints: ServerHints,
) -> timedelta:
    """The interval after a poll that worked (a 304 counts as "no new entry")."""
    if fixed is not None:  # the user's explicit choice: no adaptation, no clamping
        return max(fixed, hints.floor())
    if new_entries == 0:
        proposed = interval * SLOWDOWN
    else:
        proposed = interval / min(float(new_entries), MAX_SPEEDUP)
    return max(_clamp(proposed, bounds), hints.floor())


def after_failure(
    interval: timedelta,
    *,
    failures: int,
    bounds: Bounds,
    hints: ServerHints,
    rng: random.Random | None = None,
) -> timedelta:
    """The wait after the ``failures``-th consecutive failure: backoff with jitter.

    Jitter is "equal jitter" (half fixed, half random) so sources that failed together
    (one host down) do not all retry in the same second, yet each waits at least half
    its backoff.
    """
    base = _clamp(interval, bounds)
    backoff = min(base * (1 << min(failures, 30)), bounds.maximum)
    spread = (rng or random).uniform(0.5, 1.0)
    return max(backoff * spread, bounds.minimum, hints.floor())


def _clamp(value: timedelta, bounds: Bounds) -> timedelta:
    return min(max(value, bounds.minimum), bounds.maximum)


def parse_hints(headers: dict[str, str], *, ttl: timedelta | None, now: datetime) -> ServerHints:
    """ServerHints from response headers (lower-cased names) and the feed's own TTL."""
    return ServerHints(
        ttl=ttl,
        max_age=_max_age(headers.get("cache-control")),
        expires_in=_until(headers.get("expires"), now=now),
        retry_after=_retry_after(headers.get("retry-after"), now=now),
    )


def _retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    # The fetcher stops asking the host for at most an hour; a poll schedule may wait
    # as long as any server hint (SERVER_HINT_CEILING).
    until = parse_retry_after(value, now=now, cap=SERVER_HINT_CEILING)
    return None if until is None else until - now


def _max_age(cache_control: str | None) -> timedelta | None:
    if not cache_control:
        return None
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "max-age" and value.strip().strip('"').isdigit():
            seconds = int(value.strip().strip('"'))
            return timedelta(seconds=seconds) if seconds > 0 else None
    return None


def _until(http_date: str | None, *, now: datetime) -> timedelta | None:
    if not http_date:
        return None
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None  # "Expires: 0" and other junk mean "already expired"
    if when.tzinfo is None:
        return None
    left = when - now
    return left if left > timedelta(0) else None


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of scheduling: the interval now in force and the next poll time.

    ``next_poll_at`` is None for a source that is gone (HTTP 410): it is not polled
    until its URL changes in the config or it is reset.
    """

    interval: timedelta
    next_poll_at: datetime | None


def plan(
    *,
    interval: timedelta,
    fixed: timedelta | None,
    bounds: Bounds,
    status: str,
    new_entries: int,
    failures: int,
    hints: ServerHints,
    finished: datetime,
) -> Plan:
    """When to poll next, from the last poll's outcome (``status`` of its RunReport).

    ``interval`` is the one in force before this poll; on failure it is kept (the
    backoff is computed from it), so a recovered source resumes its usual pace.
    """
    if status == "gone":
        return Plan(interval, None)
    if status == "failed":
        wait = after_failure(interval, failures=failures, bounds=bounds, hints=hints)
        return Plan(interval, finished + wait)
    new = after_success(interval, new_entries=new_entries, fixed=fixed, bounds=bounds, hints=hints)
    return Plan(new, finished + new)
