"""SIGKILL at random moments while sources publish: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.loopback import LoopbackServer, Response

KILLS = 20
WORDS = (
    "harbour",
    "tide",
    "lantern",
    "copper",
    "meadow",
    "signal",
    "orchard",
    "basalt",
    "ferry",
    "glacier",
    "quarry",
    "timber",
    "willow",
    "beacon",
    "canyon",
    "delta",
    "ember",
    "falcon",
    "granite",
    "heron",
)


class Publisher:
    """Feeds that gain entries as they are read, and the article page of each entry."""

    def __init__(self, server: LoopbackServer, feeds: int, rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.lock = threading.Lock()
        self.items: dict[int, list[str]] = {f: [] for f in range(feeds)}
        self.open = True
        for f in range(feeds):
            server.add(f"/feed{f}.xml", lambda request, f=f: self.feed(f))

    def feed(self, f: int) -> Response:
        with self.lock:
            if self.open:
                for _ in range(self.rng.randint(0, 3)):
                    self.publish(f)
            items = list(self.items[f])
        body = "".join(
            f"<item><guid>{p}</guid><link>{self.server.url(p)}</link></item>"
            for p in reversed(items)
        )
        xml = f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{f}</title>{body}'
        return Response((xml + "</channel></rss>").encode(), content_type="application/rss+xml")

    def publish(self, f: int) -> None:
        n = sum(len(v) for v in self.items.values())
        path = f"/story/{f}/{n}"
        words = [self.rng.choice(WORDS) for _ in range(120)]
        paragraphs = "".join(
            f"<p>Story {n} from feed {f}, part {k}: {' '.join(words[k * 40 : (k + 1) * 40])}.</p>"
            for k in range(3)
        )
        html = (
            f"<html><head><title>Story {n}</title></head><body><nav><a href='/'>Home</a>"
            f"</nav><article><h1>Story {n}</h1>{paragraphs}</article></body></html>"
        )
        self.server.add(path, Response(html.encode()))
        self.items[f].append(path)

    def published(self) -> set[str]:
        with self.lock:
            return {self.server.url(p) for paths in self.items.values() for p in paths}


def start(tmp_path: Path, feeds: int, server: LoopbackServer) -> subprocess.Popen[bytes]:
    config = tmp_path / "ingest.toml"
    config.write_text(
        "".join(
            f'[[sources]]\nname = "f{f}"\nurl = "{server.url(f"/feed{f}.xml")}"\ninterval = "1s"\n'
            for f in range(feeds)
        )
    )
    env = {
        **os.environ,
        "INGEST_CONFIG": str(config),
        "INGEST_STORAGE_DIR": str(tmp_path / "s"),
        "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
        "INGEST_PER_HOST_DELAY": "0",
        "INGEST_JITTER": "0",
        "INGEST_STATUS_PORT": "0",
        "INGEST_EXTRACT_WORKERS": "2",
        "INGEST_HEARTBEAT_INTERVAL": "1s",
        "PYTHONPATH": str(ROOT),
    }
    with open(tmp_path / "daemon.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ingest", "run"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stored_urls(storage: Path) -> list[str]:
    """The URL of every stored document; temp files of writes in progress are not."""
    docs = (p for p in (storage / "articles").rglob("*.json") if not p.name.startswith(".tmp-"))
    return [json.loads(p.read_text())["url"] for p in docs]


def test_sigkill_loses_and_duplicates_nothing(tmp_path: Path, server: LoopbackServer) -> None:
    """After 20 SIGKILLs at random moments and a clean finish, stored == published exactly."""
    seed = int(os.environ.get("INGEST_CRASH_SEED", "20261125"))
    rng = random.Random(seed)
    publisher = Publisher(server, feeds=4, rng=rng)
    for _ in range(KILLS):
        proc = start(tmp_path, 4, server)
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with publisher.lock:  # the sources go on publishing while the worker is down
            for f in range(4):
                publisher.publish(f)
    publisher.open = False  # stop publishing; let a last daemon catch up and stop cleanly
    want = publisher.published()
    proc = start(tmp_path, 4, server)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and set(stored_urls(tmp_path / "s")) != want:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0

    storage = tmp_path / "s"
    urls = stored_urls(storage)
    assert sorted(urls) == sorted(want), f"seed {seed}"  # nothing lost, nothing twice
    assert len(want) > 80, f"seed {seed}: too little was published to prove anything"
    assert not list(storage.rglob(".tmp-*")), f"seed {seed}: partial files left"
    catalog = sqlite3.connect(storage / "catalog.sqlite3")
    try:
        assert catalog.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = catalog.execute("SELECT path FROM articles").fetchall()
        assert sorted(r[0] for r in rows) == sorted(
            str(p.relative_to(storage))
            for p in (storage / "articles").rglob("*.json")
            if not p.name.startswith(".tmp-")
        )
        assert catalog.execute("SELECT count(*) FROM pending_files").fetchone() == (0,)
    finally:
        catalog.close()
