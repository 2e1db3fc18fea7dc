"""The daemon as a real subprocess: it polls, beats, and stops cleanly on a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.scheduler import HEARTBEAT_FILE, check_health, write_heartbeat
from tests.conftest import FIXTURES, ROOT
from tests.loopback import LoopbackServer, Request, Response


def feed_for(server: LoopbackServer, paths: list[str]) -> Response:
    items = "".join(f"<item><guid>{p}</guid><link>{server.url(p)}</link></item>" for p in paths)
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    )
    return Response(body.encode(), content_type="application/rss+xml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def start_daemon(
    tmp_path: Path, server: LoopbackServer, *, status_port: int = 0, grace: str = "20s"
) -> subprocess.Popen[bytes]:
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[[sources]]\nname = "local"\nurl = "{server.url("/feed.xml")}"\ninterval = "1h"\n'
    )
    env = {
        **os.environ,
        "INGEST_CONFIG": str(config),
        "INGEST_STORAGE_DIR": str(tmp_path / "s"),
        "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
        "INGEST_PER_HOST_DELAY": "0",
        "INGEST_HEARTBEAT_INTERVAL": "1s",
        "INGEST_JITTER": "0",
        "PYTHONPATH": str(ROOT),
        "INGEST_STATUS_PORT": str(status_port),
        "INGEST_SHUTDOWN_GRACE": grace,
    }
    # Output goes to a file, not a pipe: a killed daemon's extraction workers could hold
    # a pipe open and make reading it hang.
    with open(tmp_path / "daemon.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ingest", "run"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def stored(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "s" / "articles").rglob("*.json"))


def test_daemon_polls_beats_and_stops_on_sigterm(tmp_path: Path, server: LoopbackServer) -> None:
    """run polls at start, keeps a fresh heartbeat, and exits 0 on SIGTERM without it."""
    server.add("/a1", Response((FIXTURES / "pages" / "article.html").read_bytes()))
    server.add("/feed.xml", feed_for(server, ["/a1"]))
    proc = start_daemon(tmp_path, server)
    try:
        assert wait_for(lambda: len(stored(tmp_path)) == 1)
        assert wait_for(lambda: check_health(tmp_path / "s").healthy)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert "daemon: stopped" in (tmp_path / "daemon.log").read_text()
    assert not check_health(tmp_path / "s").healthy
    assert len(server.hits("/feed.xml")) == 1  # interval 1h: one poll only


def test_sigterm_lets_inflight_work_finish(tmp_path: Path, server: LoopbackServer) -> None:
    """An article being fetched when SIGTERM arrives is still stored, whole."""
    started = threading.Event()

    def slow(request: Request) -> Response:
        started.set()
        time.sleep(2)
        return Response((FIXTURES / "pages" / "second-article.html").read_bytes())

    server.add("/slow", slow)
    server.add("/feed.xml", feed_for(server, ["/slow"]))
    proc = start_daemon(tmp_path, server)
    try:
        assert started.wait(20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    (doc,) = stored(tmp_path)
    assert json.loads(doc.read_text())["title"] == "Lighthouse Keeper's Cottage Becomes a Museum"
    assert not list((tmp_path / "s" / "articles").rglob(".tmp-*"))


def test_work_past_the_grace_period_is_cancelled_and_retried(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """A page slower than the grace period is abandoned cleanly and stored on restart."""
    started = threading.Event()
    slow = {"delay": 8.0}

    def page(request: Request) -> Response:
        started.set()
        time.sleep(slow["delay"])
        return Response((FIXTURES / "pages" / "second-article.html").read_bytes())

    server.add("/slow", page)
    server.add("/feed.xml", feed_for(server, ["/slow"]))
    proc = start_daemon(tmp_path, server, grace="0.5s")
    try:
        assert started.wait(20)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - began < 6  # did not wait for the 8 s page
    finally:
        proc.kill()
        proc.wait()
    assert stored(tmp_path) == []
    assert not list((tmp_path / "s").rglob(".tmp-*"))
    slow["delay"] = 0.0
    proc = start_daemon(tmp_path, server)  # the entry was never recorded: fetched again
    try:
        assert wait_for(lambda: len(stored(tmp_path)) == 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_restart_honours_saved_next_poll(tmp_path: Path, server: LoopbackServer) -> None:
    """A restarted daemon waits for each source's saved next-poll time."""
    server.add("/feed.xml", feed_for(server, []))
    for _ in range(2):
        proc = start_daemon(tmp_path, server)
        try:
            assert wait_for(lambda: check_health(tmp_path / "s").healthy)
            assert wait_for(lambda: len(server.hits("/feed.xml")) >= 1)
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
            proc.wait()
    assert len(server.hits("/feed.xml")) == 1


def test_status_endpoints(tmp_path: Path, server: LoopbackServer) -> None:
    """The daemon serves /healthz, /readyz and Prometheus /metrics with real counts."""
    server.add("/a1", Response((FIXTURES / "pages" / "article.html").read_bytes()))
    server.add("/feed.xml", feed_for(server, ["/a1"]))
    port = free_port()
    proc = start_daemon(tmp_path, server, status_port=port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: len(stored(tmp_path)) == 1)
        assert wait_for(lambda: get(base + "/healthz")[0] == 200)
        assert get(base + "/readyz") == (200, "ready\n")
        assert wait_for(lambda: 'ingest_polls_total{status="ok"} 1' in get(base + "/metrics")[1])
        metrics = get(base + "/metrics")[1]
        assert "ingest_articles_stored_total 1" in metrics
        assert 'ingest_entries_total{outcome="stored"} 1' in metrics
        assert "ingest_poll_seconds_count 1" in metrics
        assert "ingest_due_sources 0" in metrics
        assert get(base + "/nope")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_start_removes_a_half_written_heartbeat(tmp_path: Path, server: LoopbackServer) -> None:
    """The temp file of a heartbeat cut off by SIGKILL does not outlive the next start."""
    server.add("/feed.xml", feed_for(server, []))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / ".tmp-cut.json").write_text('{"pid": 1, "upd')
    proc = start_daemon(tmp_path, server)
    try:
        assert wait_for(lambda: check_health(tmp_path / "s").healthy)
        assert not (tmp_path / "s" / ".tmp-cut.json").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_health_needs_a_recent_heartbeat(tmp_path: Path) -> None:
    """A heartbeat older than three intervals is unhealthy; a fresh one is healthy."""
    write_heartbeat(tmp_path / HEARTBEAT_FILE, timedelta(seconds=10))
    now = datetime.now(UTC)
    assert check_health(tmp_path, now=now).healthy
    assert not check_health(tmp_path, now=now + timedelta(seconds=31)).healthy
    (tmp_path / HEARTBEAT_FILE).write_text("{not json")
    assert "unreadable" in check_health(tmp_path).reason
