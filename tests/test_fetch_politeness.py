"""Per-host politeness: delay, concurrency, Retry-After, robots.txt and the User-Agent."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.config import Settings, load_settings
from ingest.errors import ConfigError, FetchError
from ingest.fetch import Fetcher, parse_retry_after, user_agent
from ingest.fetch.hosts import Hosts
from ingest.fetch.robots import MAX_ROBOTS_BYTES, _parse
from ingest.models import Page
from tests.faults import LOOPBACK, FaultServer, reply, run

CLOCK = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    """A fault-injecting server on 127.0.0.1 and an ephemeral port."""
    with FaultServer() as srv:
        yield srv


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = CLOCK

    def __call__(self) -> datetime:
        return self.now


async def loopback_names(host: str, port: int) -> list[str]:
    """Every name is 127.0.0.1, so one server plays several hosts."""
    return ["127.0.0.1"]


def session(
    settings: Settings, calls: list[tuple[str, dict[str, Any]]], *, clock: Clock | None = None
) -> list[Page | FetchError]:
    """Run `calls` (url, kwargs) one after another through one Fetcher: page or error each."""

    async def go() -> list[Page | FetchError]:
        outcomes: list[Page | FetchError] = []
        async with Fetcher(settings, resolver=loopback_names, now=clock or Clock()) as fetcher:
            for url, kwargs in calls:
                try:
                    outcomes.append(await fetcher.get(url, **kwargs))
                except FetchError as error:
                    outcomes.append(error)
        return outcomes

    return run(go())


def gathered(settings: Settings, urls: list[str], **kwargs: Any) -> list[Page]:
    """Fetch `urls` concurrently through one Fetcher."""

    async def go() -> list[Page]:
        async with Fetcher(settings, resolver=loopback_names) as fetcher:
            return list(await asyncio.gather(*(fetcher.get(url, **kwargs) for url in urls)))

    return run(go())


# --- per-host delay and concurrency ----------------------------------------------------


def test_per_host_delay_spaces_request_starts(faults: FaultServer) -> None:
    """Four concurrent requests to one host arrive at least per_host_delay apart."""
    urls = [faults.add(f"/p{i}", reply(b"ok")) for i in range(4)]
    gathered(replace(LOOPBACK, per_host_delay=0.3, per_host_concurrency=4), urls)
    arrivals = sorted(hit.at for hit in faults.hits)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 3
    assert min(gaps) > 0.25  # 0.3 s, less the scheduling noise between client and server


def test_per_host_delay_does_not_hold_up_other_hosts(faults: FaultServer) -> None:
    """While one host waits out its delay, a request to another host goes first."""
    faults.add("/x", reply(b"ok"))
    port = faults.port
    urls = [f"http://a.test:{port}/x", f"http://a.test:{port}/x?2", f"http://b.test:{port}/x"]
    faults.add("/x?2", reply(b"ok"))
    gathered(replace(LOOPBACK, per_host_delay=1.0), urls)
    order = [hit.headers["host"].split(":")[0] + hit.path for hit in faults.hits]
    assert order.index("b.test/x") < order.index("a.test/x?2")


def test_per_host_delay_is_not_counted_against_the_total_timeout(faults: FaultServer) -> None:
    """Waiting out a 1 s delay inside a 0.5 s total timeout is not a timeout."""
    url = faults.add("/t", reply(b"ok"))
    settings = replace(LOOPBACK, per_host_delay=1.0, total_timeout=0.5)
    outcomes = session(settings, [(url, {}), (url, {})])
    assert all(isinstance(outcome, Page) for outcome in outcomes)
    first, second = faults.hits
    assert second.at - first.at > 0.9


def test_host_table_stays_bounded_and_keeps_busy_hosts() -> None:
    """Beyond max_hosts the least recently used idle hosts go; hosts in use never do."""

    async def go() -> tuple[int, int]:
        hosts = Hosts(concurrency=1, delay=0, now=Clock(), max_hosts=3)
        async with hosts.slot("busy:80"):
            for i in range(10):
                async with hosts.slot(f"h{i}:80"):
                    pass
            return len(hosts), hosts.busy()

    assert run(go()) == (3, 1)


# --- Retry-After ------------------------------------------------------------------------


def test_429_retry_after_is_remembered_per_host(faults: FaultServer) -> None:
    """After a 429 with Retry-After: 120, the host's next request fails without the network."""
    limited = faults.add("/limited", reply(status=429, retry_after="120"))
    other = faults.add("/other", reply(b"ok"))
    clock = Clock()
    first, second = session(LOOPBACK, [(limited, {}), (other, {})], clock=clock)
    assert isinstance(first, FetchError)
    assert (first.status, first.retry_after) == (429, "120")
    assert isinstance(second, FetchError)
    assert str(second) == (
        f"fetch: host asked to wait until 2024-05-01T12:02:00Z (HTTP 429): {other}"
    )
    assert (second.status, second.retry_after) == (429, "120")
    assert [hit.path for hit in faults.hits] == ["/limited"]  # /other never went out


def test_wait_ends_when_its_time_comes(faults: FaultServer) -> None:
    """Once the clock passes the Retry-After time, the host is asked again."""
    limited = faults.add("/limited", reply(status=503, retry_after="60"))
    other = faults.add("/other", reply(b"ok"))
    clock = Clock()

    async def go() -> Page:
        async with Fetcher(LOOPBACK, now=clock) as fetcher:
            with pytest.raises(FetchError):
                await fetcher.get(limited)
            with pytest.raises(FetchError, match="host asked to wait"):
                await fetcher.get(other)
            clock.now += timedelta(seconds=61)
            return await fetcher.get(other)

    assert run(go()).body == b"ok"


def test_wait_is_per_host(faults: FaultServer) -> None:
    """A 429 from one host does not stop requests to another."""
    faults.add("/limited", reply(status=429, retry_after="120"))
    faults.add("/ok", reply(b"ok"))
    port = faults.port
    outcomes = session(
        LOOPBACK, [(f"http://a.test:{port}/limited", {}), (f"http://b.test:{port}/ok", {})]
    )
    assert isinstance(outcomes[1], Page)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", CLOCK + timedelta(seconds=120)),
        ("Wed, 01 May 2024 12:30:00 GMT", CLOCK + timedelta(minutes=30)),
        ("86400", CLOCK + timedelta(hours=1)),  # capped
        ("Thu, 02 May 2024 12:00:00 GMT", CLOCK + timedelta(hours=1)),  # capped
        ("9" * 400, CLOCK + timedelta(hours=1)),  # absurd, capped, no overflow
        ("0", None),
        ("Wed, 01 May 2024 11:00:00 GMT", None),  # already past
        ("soon", None),
        ("-5", None),
        ("²", None),  # a digit to str.isdigit, not to int()
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    """Seconds or HTTP-date, capped at one hour; past, absent or garbage mean no wait."""
    assert parse_retry_after(value, now=CLOCK) == expected


@given(st.text(max_size=60))
def test_parse_retry_after_never_crashes(value: str) -> None:
    """Any header value gives a time within the hour, or None."""
    until = parse_retry_after(value, now=CLOCK)
    assert until is None or CLOCK < until <= CLOCK + timedelta(hours=1)


# --- robots.txt -------------------------------------------------------------------------

ROBOTS = b"""User-agent: *
Disallow: /private/

User-agent: ingest
Disallow: /no-ingest/
Crawl-delay: 0.4
"""


def test_robots_disallow_refuses_without_fetching_the_page(faults: FaultServer) -> None:
    """A page our group disallows raises 'disallowed by robots.txt'; it is never requested."""
    faults.add("/robots.txt", reply(ROBOTS, content_type="text/plain"))
    url = faults.add("/no-ingest/a", reply(b"<p>a</p>"))
    (outcome,) = session(LOOPBACK, [(url, {"robots": True})])
    assert isinstance(outcome, FetchError)
    assert str(outcome) == f"fetch: disallowed by robots.txt: {url}"
    assert [hit.path for hit in faults.hits] == ["/robots.txt"]


def test_robots_group_is_matched_by_our_product_token(faults: FaultServer) -> None:
    """Our own group applies instead of '*', and another agent's token gets '*'."""
    faults.add("/robots.txt", reply(ROBOTS, content_type="text/plain"))
    private = faults.add("/private/a", reply(b"ok"))
    no_ingest = faults.add("/no-ingest/a", reply(b"ok"))
    ours = session(LOOPBACK, [(private, {"robots": True}), (no_ingest, {"robots": True})])
    assert [type(o).__name__ for o in ours] == ["Page", "RobotsDisallowedError"]
    other = replace(LOOPBACK, user_agent="OtherBot/2.0 (+https://example.org)")
    theirs = session(other, [(private, {"robots": True}), (no_ingest, {"robots": True})])
    assert [type(o).__name__ for o in theirs] == ["RobotsDisallowedError", "Page"]


def test_robots_is_fetched_once_per_origin_and_crawl_delay_applies(faults: FaultServer) -> None:
    """Concurrent pages share one robots.txt fetch; its Crawl-delay spaces the requests."""
    faults.add("/robots.txt", reply(ROBOTS, content_type="text/plain"))
    urls = [faults.add(f"/a{i}", reply(b"ok")) for i in range(3)]
    gathered(replace(LOOPBACK, per_host_concurrency=3), urls, robots=True)
    assert [hit.path for hit in faults.hits].count("/robots.txt") == 1
    arrivals = [hit.at for hit in faults.hits if hit.path != "/robots.txt"]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 2
    assert min(gaps) > 0.35  # Crawl-delay 0.4 with per_host_delay 0


def test_feeds_and_robots_false_never_ask_robots_txt(faults: FaultServer) -> None:
    """The default (feeds) and robots=False skip robots.txt even where it disallows all."""
    faults.add("/robots.txt", reply(b"User-agent: *\nDisallow: /\n", content_type="text/plain"))
    url = faults.add("/feed.xml", reply(b"<rss/>", content_type="application/rss+xml"))
    outcomes = session(LOOPBACK, [(url, {}), (url, {"robots": False})])
    assert all(isinstance(o, Page) for o in outcomes)
    assert [hit.path for hit in faults.hits] == ["/feed.xml", "/feed.xml"]


@pytest.mark.parametrize(
    ("respect", "robots", "checked"),
    [(True, None, True), (False, None, False), (False, True, True), (True, False, False)],
)
def test_respect_robots_setting_and_per_call_override(
    faults: FaultServer, respect: bool, robots: bool | None, checked: bool
) -> None:
    """robots=None follows respect_robots; True and False override it (per source)."""
    faults.add("/robots.txt", reply(b"User-agent: *\nDisallow: /\n", content_type="text/plain"))
    url = faults.add("/a", reply(b"ok"))
    settings = replace(LOOPBACK, respect_robots=respect)
    (outcome,) = session(settings, [(url, {"robots": robots})])
    assert isinstance(outcome, FetchError if checked else Page)


@pytest.mark.parametrize("status", [404, 401, 403, 410])
def test_robots_4xx_allows_everything(faults: FaultServer, status: int) -> None:
    """A robots.txt answered with 4xx is 'unavailable': everything allowed (RFC 9309)."""
    faults.add("/robots.txt", reply(b"nope", status=status))
    url = faults.add("/a", reply(b"ok"))
    (outcome,) = session(LOOPBACK, [(url, {"robots": True})])
    assert isinstance(outcome, Page)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_robots_5xx_or_429_disallows_for_a_while(faults: FaultServer, status: int) -> None:
    """An unreachable robots.txt disallows all for 10 minutes, then it is asked again."""
    faults.add("/robots.txt", reply(b"down", status=status))
    url = faults.add("/a", reply(b"ok"))
    clock = Clock()

    async def go() -> list[str]:
        messages = []
        async with Fetcher(LOOPBACK, now=clock) as fetcher:
            for minutes in (0, 5, 11):
                clock.now = CLOCK + timedelta(minutes=minutes)
                with pytest.raises(FetchError) as caught:
                    await fetcher.get(url, robots=True)
                messages.append(str(caught.value))
        return messages

    messages = run(go())
    assert messages == [f"fetch: robots.txt unreachable (HTTP {status}): {url}"] * 3
    assert [hit.path for hit in faults.hits] == ["/robots.txt", "/robots.txt"]


def test_robots_unreachable_keeps_the_last_good_copy(faults: FaultServer) -> None:
    """Read once, then failing after its 24 h: the old rules stand in."""
    faults.add("/robots.txt", reply(ROBOTS, content_type="text/plain"))
    allowed = faults.add("/a", reply(b"ok"))
    clock = Clock()

    async def go() -> Page:
        async with Fetcher(LOOPBACK, now=clock) as fetcher:
            await fetcher.get(allowed, robots=True)
            faults.add("/robots.txt", reply(b"down", status=500))
            clock.now += timedelta(hours=25)
            page = await fetcher.get(allowed, robots=True)
            with pytest.raises(FetchError, match=r"disallowed by robots\.txt"):
                await fetcher.get(faults.url("/no-ingest/x"), robots=True)
            return page

    assert run(go()).body == b"ok"
    assert [hit.path for hit in faults.hits].count("/robots.txt") == 2


def test_robots_unreachable_for_30_days_counts_as_unavailable(faults: FaultServer) -> None:
    """After 30 days of failures in a row, a missing robots.txt allows everything."""
    faults.add("/robots.txt", reply(b"down", status=500))
    url = faults.add("/a", reply(b"ok"))
    clock = Clock()

    async def go() -> Page:
        async with Fetcher(LOOPBACK, now=clock) as fetcher:
            with pytest.raises(FetchError, match="unreachable"):
                await fetcher.get(url, robots=True)
            clock.now += timedelta(days=31)
            return await fetcher.get(url, robots=True)

    assert run(go()).body == b"ok"


def test_robots_503_with_retry_after_is_the_hosts_wait(faults: FaultServer) -> None:
    """robots.txt answering 503 + Retry-After makes the page fail with the host's wait."""
    faults.add("/robots.txt", reply(b"busy", status=503, retry_after="30"))
    url = faults.add("/a", reply(b"ok"))
    (outcome,) = session(LOOPBACK, [(url, {"robots": True})])
    assert str(outcome) == f"fetch: host asked to wait until 2024-05-01T12:00:30Z (HTTP 503): {url}"


def test_robots_over_500_kib_is_cut_not_refused(faults: FaultServer) -> None:
    """A huge robots.txt is read up to 500 KiB (RFC 9309 §2.5) and its rules still apply."""
    body = b"User-agent: *\nDisallow: /private/\n" + b"# padding\n" * (MAX_ROBOTS_BYTES // 5)
    faults.add("/robots.txt", reply(body, content_type="text/plain"))
    url = faults.add("/private/a", reply(b"ok"))
    (outcome,) = session(LOOPBACK, [(url, {"robots": True})])
    assert str(outcome) == f"fetch: disallowed by robots.txt: {url}"


@given(st.binary(max_size=2000), st.sampled_from(["/", "/a/b?c=d", "/%E2%82%AC"]))
def test_any_robots_bytes_parse_without_crashing(body: bytes, path: str) -> None:
    """Whatever a server sends as robots.txt, matching answers True or False."""
    rules = _parse(body)
    assert rules.can_fetch(f"https://example.com{path}", "ingest") in (True, False)


# --- User-Agent ------------------------------------------------------------------------


def test_user_agent_is_built_from_contact_url_unless_set() -> None:
    """Left at its default, user_agent becomes ingest/<version> (+<contact_url>)."""
    built = Settings(contact_url="https://example.org/bot")
    assert user_agent(built) == "ingest/0.1.0 (+https://example.org/bot)"
    explicit = replace(built, user_agent="Custom/1.0")
    assert user_agent(explicit) == "Custom/1.0"


def test_user_agent_goes_over_the_wire(faults: FaultServer) -> None:
    """Every request, robots.txt included, carries the built User-Agent."""
    faults.add("/robots.txt", reply(b"", content_type="text/plain"))
    url = faults.add("/a", reply(b"ok"))
    settings = replace(LOOPBACK, contact_url="https://example.org/bot")
    session(settings, [(url, {"robots": True})])
    agents = {hit.headers["user-agent"] for hit in faults.hits}
    assert agents == {"ingest/0.1.0 (+https://example.org/bot)"}


def test_new_settings_are_validated() -> None:
    """contact_url must be an http(s) URL and per_host_delay zero or more."""
    environ = {"INGEST_CONTACT_URL": "mailto:me@example.org", "INGEST_PER_HOST_DELAY": "-1"}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ)
    assert len(caught.value.problems) == 2
    ok = load_settings(None, {"INGEST_PER_HOST_DELAY": "0", "INGEST_RESPECT_ROBOTS": "false"})
    assert (ok.per_host_delay, ok.respect_robots) == (0.0, False)
