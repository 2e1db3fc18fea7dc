"""Per-host politeness: how many requests at once, how far apart, and when to stay away.

A host is keyed by "name:port". Its entry holds a semaphore (`per_host_concurrency`),
the earliest time the next request may start (`per_host_delay`, raised by a robots.txt
Crawl-delay), and the time a 429 or 503 with Retry-After asked us to wait until. Entries
outlive the requests (the delay and the wait must be remembered), so the table is an LRU
of at most `max_hosts` entries, and only idle hosts are evicted.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingest.errors import FetchError

MAX_WAIT = timedelta(hours=1)  # the longest Retry-After we honour: a day would be a DoS
MAX_CRAWL_DELAY = 30.0  # seconds; a robots.txt asking for more gets this
MAX_HOSTS = 1024


def parse_retry_after(
    value: str | None, *, now: datetime, cap: timedelta = MAX_WAIT
) -> datetime | None:
    """Until when a Retry-After header (RFC 9110 §10.2.3) asks us to wait.

    Seconds or an HTTP-date, capped at `cap` from `now`; None when absent,
    unparsable or already past.
    """
    value = (value or "").strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone accepts "²"
        seconds = min(int(value), int(cap.total_seconds()))
        until = now + timedelta(seconds=seconds)
    else:
        try:
            until = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if until.tzinfo is None:  # "-0000": HTTP-dates are always GMT
            until = until.replace(tzinfo=UTC)
    if until <= now:
        return None
    return min(until, now + cap)


@dataclass(slots=True, eq=False)
class _Host:
    semaphore: asyncio.Semaphore
    users: int = 0  # requests holding or awaiting the semaphore
    next_start: float = -math.inf  # loop time before which no request may start
    crawl_delay: float = 0.0
    wait_until: datetime | None = None
    wait_status: int = 0


class Hosts:
    """The per-host table; every method is quick and never touches the network."""

    def __init__(
        self,
        *,
        concurrency: int,
        delay: float,
        now: Callable[[], datetime],
        max_hosts: int = MAX_HOSTS,
    ) -> None:
        self._concurrency = concurrency
        self._delay = delay
        self._now = now
        self._max_hosts = max_hosts
        self._table: OrderedDict[str, _Host] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def busy(self) -> int:
        """How many requests hold or await a slot (for tests and diagnostics)."""
        return sum(host.users for host in self._table.values())

    def refuse_if_waiting(self, key: str, *, url: str) -> None:
        """Raise FetchError if `key` asked us to wait and that time has not come."""
        host = self._table.get(key)
        if host is None or host.wait_until is None:
            return
        now = self._now()
        if now >= host.wait_until:
            host.wait_until = None
            return
        until = host.wait_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        seconds = math.ceil((host.wait_until - now).total_seconds())
        raise FetchError(
            f"host asked to wait until {until} (HTTP {host.wait_status})",
            url=url,
            status=host.wait_status,
            retry_after=str(seconds),
        )

    def wait(self, key: str, until: datetime, *, status: int) -> None:
        """Remember that `key` asked us (with `status`) to stay away until `until`."""
        host = self._entry(key)
        if host.wait_until is None or until > host.wait_until:
            host.wait_until, host.wait_status = until, status

    def set_crawl_delay(self, key: str, seconds: float) -> None:
        """Space requests to `key` at least `seconds` apart (capped at MAX_CRAWL_DELAY)."""
        self._entry(key).crawl_delay = min(max(seconds, 0.0), MAX_CRAWL_DELAY)

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Hold one of `key`'s slots, started no sooner than its delay allows."""
        host = self._entry(key)
        host.users += 1
        try:
            async with host.semaphore:
                loop = asyncio.get_running_loop()
                start = max(loop.time(), host.next_start)
                # Reserved before sleeping, so the requests queued behind take the
                # following turns instead of all waking at once.
                host.next_start = start + max(self._delay, host.crawl_delay)
                if start > loop.time():
                    await asyncio.sleep(start - loop.time())
                yield
        finally:
            host.users -= 1

    def _entry(self, key: str) -> _Host:
        host = self._table.get(key)
        if host is None:
            host = self._table[key] = _Host(asyncio.Semaphore(self._concurrency))
        self._table.move_to_end(key)
        self._evict(keep=key)
        return host

    def _evict(self, *, keep: str) -> None:
        """Forget the least recently used idle hosts beyond `max_hosts`.

        Hosts with requests in flight stay, so the table can exceed the bound only by
        the requests in flight. Forgetting a host loses its delay and its wait: at worst
        one request too early, which the host can refuse again.
        """
        excess = len(self._table) - self._max_hosts
        if excess <= 0:
            return
        idle = [k for k, host in self._table.items() if host.users == 0 and k != keep]
        for key in idle[:excess]:
            del self._table[key]
