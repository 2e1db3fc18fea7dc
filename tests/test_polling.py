"""Polling over time: adaptive intervals, backoff, gone and moved sources, robots.txt."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ingest.models import Source, SourceState
from tests.loopback import LoopbackServer, Response
from tests.test_pipeline import page, poll, rss, with_ctx


def state_of(tmp_path: Path, name: str = "test") -> SourceState:
    state = with_ctx(tmp_path, lambda ctx: ctx.store.source_state(name))
    assert state is not None
    return state


def adaptive(server: LoopbackServer, path: str = "/feed.xml") -> Source:
    return Source(name="test", url=server.url(path), interval=timedelta(hours=1))


def test_interval_adapts_to_publishing(tmp_path: Path, server: LoopbackServer) -> None:
    """Two new entries halve the interval; a quiet poll lengthens it; both are saved."""
    server.add("/a1", page("article.html"))
    server.add("/a2", page("second-article.html"))
    server.add(
        "/feed.xml",
        Response(rss(server, [("1", "/a1"), ("2", "/a2")]), content_type="application/rss+xml"),
    )
    report = poll(tmp_path, adaptive(server))
    state = state_of(tmp_path)
    assert state.interval == timedelta(minutes=30)
    assert state.next_poll_at == report.finished_at + timedelta(minutes=30)
    assert report.next_poll_at == state.next_poll_at  # what the daemon books next
    poll(tmp_path, adaptive(server))  # nothing new
    assert state_of(tmp_path).interval == timedelta(minutes=45)


def test_fixed_interval_and_server_ttl(tmp_path: Path, server: LoopbackServer) -> None:
    """A fixed interval does not adapt, yet the feed's <ttl> still sets the floor."""
    items = rss(server, []).replace(b"<channel>", b"<channel><ttl>180</ttl>")
    server.add("/feed.xml", Response(items, content_type="application/rss+xml"))
    fixed = Source(
        name="test",
        url=server.url("/feed.xml"),
        interval=timedelta(minutes=10),
        fixed_interval=True,
    )
    poll(tmp_path, fixed)
    assert state_of(tmp_path).interval == timedelta(hours=3)


def test_failures_back_off_and_retry_after_is_honoured(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """Each failure waits longer; a 503's Retry-After is the least it waits."""
    server.add(
        "/feed.xml",
        Response(b"busy", status=503, content_type="text/plain", headers={"Retry-After": "7200"}),
    )
    report = poll(tmp_path, adaptive(server))
    state = state_of(tmp_path)
    assert (report.status, state.consecutive_failures) == ("failed", 1)
    assert state.next_poll_at is not None
    assert state.next_poll_at - report.finished_at >= timedelta(hours=2) - timedelta(seconds=5)
    server.add("/feed.xml", Response(b"down", status=500, content_type="text/plain"))
    waits = []
    for _ in range(4):
        report = poll(tmp_path, adaptive(server))
        state = state_of(tmp_path)
        assert state.next_poll_at is not None
        waits.append(state.next_poll_at - report.finished_at)
    assert state.consecutive_failures == 5
    assert waits[-1] > waits[0]
    assert all(w <= timedelta(hours=24) for w in waits)  # never beyond max_interval
    assert state.interval == timedelta(hours=1)  # the pace to resume once it works


def test_gone_source_is_not_polled_again(tmp_path: Path, server: LoopbackServer) -> None:
    """HTTP 410 marks the source gone: it is reported, and not requested again."""
    server.add("/feed.xml", Response(b"gone", status=410, content_type="text/plain"))
    first = poll(tmp_path, adaptive(server))
    second = poll(tmp_path, adaptive(server))
    assert (first.status, second.status, second.ok) == ("gone", "gone", False)
    assert len(server.hits("/feed.xml")) == 1
    state = state_of(tmp_path)
    assert (state.last_status, state.next_poll_at) == ("gone", None)
    moved = Source(name="test", url=server.url("/new.xml"), interval=timedelta(hours=1))
    server.add("/new.xml", Response(rss(server, []), content_type="application/rss+xml"))
    assert poll(tmp_path, moved).status == "ok"  # a new URL in the config revives it


def test_lasting_permanent_redirect_moves_the_source(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """After three polls answered by the same 301, the new URL is polled directly."""
    server.add("/feed.xml", Response(status=301, headers={"Location": "/moved.xml"}))
    server.add("/moved.xml", Response(rss(server, []), content_type="application/rss+xml"))
    for _ in range(3):
        assert poll(tmp_path, adaptive(server)).status == "ok"
    state = state_of(tmp_path)
    assert state.current_url == server.url("/moved.xml")
    poll(tmp_path, adaptive(server))
    assert len(server.hits("/feed.xml")) == 3
    assert len(server.hits("/moved.xml")) == 4


def test_temporary_redirect_never_moves(tmp_path: Path, server: LoopbackServer) -> None:
    """A 302, however lasting, keeps the configured URL."""
    server.add("/feed.xml", Response(status=302, headers={"Location": "/moved.xml"}))
    server.add("/moved.xml", Response(rss(server, []), content_type="application/rss+xml"))
    for _ in range(4):
        poll(tmp_path, adaptive(server))
    assert state_of(tmp_path).current_url is None
    assert len(server.hits("/feed.xml")) == 4


def test_robots_disallow_skips_the_entry(tmp_path: Path, server: LoopbackServer) -> None:
    """An article page robots.txt disallows is recorded as skipped, never requested."""
    server.add(
        "/robots.txt", Response(b"User-agent: *\nDisallow: /private/", content_type="text/plain")
    )
    server.add("/private/a1", page("article.html"))
    server.add("/a2", page("second-article.html"))
    server.add(
        "/feed.xml",
        Response(
            rss(server, [("1", "/private/a1"), ("2", "/a2")]), content_type="application/rss+xml"
        ),
    )
    report = poll(tmp_path, adaptive(server))
    assert (report.stored, report.skipped, report.errors) == (1, 1, 0)
    assert server.hits("/private/a1") == []
    assert len(server.hits("/robots.txt")) == 1
    assert poll(tmp_path, adaptive(server)).new == 0  # skipped for good, not retried
