"""robots.txt (RFC 9309) for article pages: the one module that imports protego.

Feeds are never checked: the user subscribed to them explicitly. For an article page the
client asks `Robots.verdict`, which fetches /robots.txt of the page's origin (through the
same client, limits and politeness), caches it per origin and matches our User-Agent's
product token. What a fetch of /robots.txt can come to, and what we do (RFC 9309 §2.3.1):

    2xx                 parse it, at most MAX_ROBOTS_BYTES (§2.5); cached ROBOTS_TTL (§2.4)
    4xx, except 429     "unavailable": everything is allowed; cached ROBOTS_TTL (§2.3.1.3)
    5xx, 429, network   "unreachable": everything is disallowed (§2.3.1.4), for
    error, timeout,     UNREACHABLE_TTL, then we ask again. If we had read the file
    redirect loop       before, that copy stands in instead (§2.4 allows a stale copy
                        while unreachable); after GIVE_UP_AFTER of failures in a row,
                        it counts as unavailable (§2.3.1.4's 30 days).

429 departs from §2.3.1.3 on purpose: a host telling us to slow down has not told us it
has no rules (Google reads it the same way). A blocked address, or a host that asked us
to wait (Retry-After), is not an answer about robots.txt: the client raises those, and
nothing is cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from protego import Protego

logger = logging.getLogger(__name__)

ROBOTS_TTL = timedelta(hours=24)
UNREACHABLE_TTL = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(days=30)
MAX_ROBOTS_BYTES = 500 * 1024
MAX_ORIGINS = 1024


@dataclass(frozen=True, slots=True)
class RobotsAnswer:
    """What fetching one robots.txt gave: a status (None: no response) and a body."""

    status: int | None
    body: bytes = b""
    problem: str | None = None  # why there was no usable response, in the fetcher's words


@dataclass(frozen=True, slots=True)
class Verdict:
    """May our agent fetch a URL; its Crawl-delay; why robots.txt could not be read."""

    allowed: bool
    crawl_delay: float | None = None
    unreachable: str | None = None  # set when allowed is False for want of a robots.txt


@dataclass(frozen=True, slots=True)
class _Entry:
    rules: Protego | None  # None: no rules, everything allowed
    expires: datetime
    unreachable: str | None = None
    failing_since: datetime | None = None


RobotsFetch = Callable[[str], Awaitable[RobotsAnswer]]


class Robots:
    """The robots.txt cache: at most `max_origins` origins, least recently used dropped."""

    def __init__(
        self,
        fetch: RobotsFetch,
        *,
        agent: str,
        now: Callable[[], datetime],
        max_origins: int = MAX_ORIGINS,
    ) -> None:
        self._fetch = fetch
        self._agent = agent
        self._now = now
        self._max_origins = max_origins
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def verdict(self, url: str, *, origin: str) -> Verdict:
        """What robots.txt of `origin` ("https://host:port") says about `url`."""
        entry = await self._entry(origin)
        if entry.unreachable is not None:
            return Verdict(allowed=False, unreachable=entry.unreachable)
        if entry.rules is None:
            return Verdict(allowed=True)
        return Verdict(
            allowed=entry.rules.can_fetch(url, self._agent),
            crawl_delay=entry.rules.crawl_delay(self._agent),
        )

    async def _entry(self, origin: str) -> _Entry:
        entry = self._fresh(origin)
        if entry is not None:
            return entry
        async with self._lock(origin):  # one fetch per origin, however many ask at once
            entry = self._fresh(origin)
            if entry is None:
                entry = await self._load(origin, previous=self._cache.get(origin))
                self._cache[origin] = entry
                self._cache.move_to_end(origin)
                while len(self._cache) > self._max_origins:
                    self._cache.popitem(last=False)
            return entry

    def _fresh(self, origin: str) -> _Entry | None:
        entry = self._cache.get(origin)
        if entry is None or self._now() >= entry.expires:
            return None
        self._cache.move_to_end(origin)
        return entry

    async def _load(self, origin: str, *, previous: _Entry | None) -> _Entry:
        url = f"{origin}/robots.txt"
        answer = await self._fetch(url)
        now = self._now()
        status = answer.status
        if status is not None and 200 <= status < 300:
            outcome, entry = "parsed", _Entry(_parse(answer.body), now + ROBOTS_TTL)
        elif status is not None and 400 <= status < 500 and status != 429:
            outcome, entry = "unavailable", _Entry(None, now + ROBOTS_TTL)
        else:
            problem = answer.problem or f"HTTP {status}"
            outcome, entry = "unreachable", _unreachable(problem, previous, now)
        logger.debug(
            "robots url=%s status=%s outcome=%s error=%s", url, status, outcome, answer.problem
        )
        return entry

    @contextlib.asynccontextmanager
    async def _lock(self, origin: str) -> AsyncIterator[None]:
        """A per-origin lock that exists only while someone holds or awaits it."""
        lock, users = self._locks.get(origin, (asyncio.Lock(), 0))
        self._locks[origin] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[origin]
            if users == 1:
                del self._locks[origin]
            else:
                self._locks[origin] = (lock, users - 1)


def _unreachable(problem: str, previous: _Entry | None, now: datetime) -> _Entry:
    """The entry for a robots.txt we could not read (see the module docstring)."""
    since = previous.failing_since if previous and previous.failing_since else now
    expires = now + UNREACHABLE_TTL
    if now - since >= GIVE_UP_AFTER:
        return _Entry(None, expires, failing_since=since)
    if previous is not None and previous.unreachable is None:  # a copy we read before
        return _Entry(previous.rules, expires, failing_since=since)
    return _Entry(None, expires, unreachable=problem, failing_since=since)


def _parse(body: bytes) -> Protego:
    """Protego's rules from the bytes: UTF-8 (§2.2), a BOM and bad bytes tolerated."""
    text = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace").removeprefix("\ufeff")
    return Protego.parse(text)
