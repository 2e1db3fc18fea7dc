"""The adaptive schedule: publishing rate, bounds, server hints and backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingest.schedule import (
    SERVER_HINT_CEILING,
    Bounds,
    Plan,
    ServerHints,
    after_failure,
    after_success,
    parse_hints,
    plan,
)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
BOUNDS = Bounds(minimum=timedelta(minutes=5), maximum=timedelta(hours=12))
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_interval_follows_publishing_rate() -> None:
    """Quiet feeds are polled less often, busy ones more, about one new entry a poll."""
    quiet = after_success(HOUR, new_entries=0, fixed=None, bounds=BOUNDS, hints=ServerHints())
    steady = after_success(HOUR, new_entries=1, fixed=None, bounds=BOUNDS, hints=ServerHints())
    busy = after_success(HOUR, new_entries=3, fixed=None, bounds=BOUNDS, hints=ServerHints())
    burst = after_success(HOUR, new_entries=50, fixed=None, bounds=BOUNDS, hints=ServerHints())
    assert (quiet, steady, busy, burst) == (90 * MIN, HOUR, 20 * MIN, 15 * MIN)


def test_bounds_and_fixed_interval() -> None:
    """The interval stays within the bounds; a fixed interval ignores the rate."""
    top = after_success(
        BOUNDS.maximum, new_entries=0, fixed=None, bounds=BOUNDS, hints=ServerHints()
    )
    bottom = after_success(
        BOUNDS.minimum, new_entries=9, fixed=None, bounds=BOUNDS, hints=ServerHints()
    )
    fixed = after_success(HOUR, new_entries=9, fixed=2 * HOUR, bounds=BOUNDS, hints=ServerHints())
    assert (top, bottom, fixed) == (BOUNDS.maximum, BOUNDS.minimum, 2 * HOUR)


def test_never_shorter_than_the_server_asks() -> None:
    """TTL, max-age, Expires and Retry-After each raise the interval; absurd asks are capped."""
    for hints in (
        ServerHints(ttl=3 * HOUR),
        ServerHints(max_age=3 * HOUR),
        ServerHints(expires_in=3 * HOUR),
        ServerHints(retry_after=3 * HOUR),
    ):
        assert (
            after_success(HOUR, new_entries=5, fixed=None, bounds=BOUNDS, hints=hints) == 3 * HOUR
        )
    year = ServerHints(max_age=timedelta(days=365))
    assert after_success(HOUR, new_entries=1, fixed=None, bounds=BOUNDS, hints=year) == (
        SERVER_HINT_CEILING
    )


def test_backoff_grows_then_holds_at_the_maximum() -> None:
    """Failures double the wait (with jitter) up to the maximum, and polling goes on there."""
    rng = random.Random(7)
    waits = [
        after_failure(HOUR, failures=n, bounds=BOUNDS, hints=ServerHints(), rng=rng)
        for n in range(1, 12)
    ]
    assert waits[0] >= HOUR  # at least half of 2h
    assert all(w <= BOUNDS.maximum for w in waits)
    assert waits[-1] >= BOUNDS.maximum / 2
    assert (
        after_failure(
            HOUR, failures=1, bounds=BOUNDS, hints=ServerHints(retry_after=10 * HOUR), rng=rng
        )
        == 10 * HOUR
    )


@given(st.integers(1, 10_000), st.integers(0, 500), st.integers(1, 100))
def test_success_interval_always_within_bounds(minutes: int, new: int, failures: int) -> None:
    """Whatever the inputs, intervals stay within the bounds (no server hint given)."""
    interval = timedelta(minutes=minutes)
    ok = after_success(interval, new_entries=new, fixed=None, bounds=BOUNDS, hints=ServerHints())
    bad = after_failure(interval, failures=failures, bounds=BOUNDS, hints=ServerHints())
    assert BOUNDS.minimum <= ok <= BOUNDS.maximum
    assert BOUNDS.minimum <= bad <= BOUNDS.maximum


def test_parse_hints_from_headers() -> None:
    """Cache-Control, Expires and Retry-After are read as the RFCs define them."""
    hints = parse_hints(
        {
            "cache-control": "public, max-age=600",
            "expires": "Thu, 01 Jan 2026 13:00:00 GMT",
            "retry-after": "120",
        },
        ttl=timedelta(minutes=30),
        now=NOW,
    )
    assert hints == ServerHints(
        ttl=30 * MIN, max_age=10 * MIN, expires_in=HOUR, retry_after=2 * MIN
    )
    date = parse_hints({"retry-after": "Thu, 01 Jan 2026 12:30:00 GMT"}, ttl=None, now=NOW)
    assert date.retry_after == 30 * MIN
    assert parse_hints({"retry-after": "soon"}, ttl=None, now=NOW).retry_after is None
    assert parse_hints({"expires": "0", "cache-control": "no-cache"}, ttl=None, now=NOW) == (
        ServerHints()
    )


def test_plan_by_outcome() -> None:
    """Gone sources are not planned; failures back off; successes adapt."""
    common = {
        "interval": HOUR,
        "fixed": None,
        "bounds": BOUNDS,
        "hints": ServerHints(),
        "finished": NOW,
    }
    assert plan(status="gone", new_entries=0, failures=0, **common).next_poll_at is None
    failed = plan(status="failed", new_entries=0, failures=2, **common)
    assert failed.interval == HOUR
    assert failed.next_poll_at is not None
    assert NOW + 2 * HOUR <= failed.next_poll_at <= NOW + 4 * HOUR
    ok = plan(status="ok", new_entries=2, failures=0, **common)
    assert ok == Plan(30 * MIN, NOW + 30 * MIN)
    assert plan(status="not_modified", new_entries=0, failures=0, **common).interval == 90 * MIN
