"""A loopback web site for the end-to-end benchmark (bench/e2e.py).

It serves feeds (RSS 2.0, Atom and JSON Feed, in turn) whose entries point to article
pages taken from the extraction benchmark sets (../shared/benchmarks/extraction: 181
scrapinghub pages and 711 wcxb pages). There are far more article URLs than real pages,
so each served copy gets a unique marker sentence, ``[bench:<set>:<n>]``, appended to the
three longest ``<p>`` of the page: otherwise the content fingerprint would rightly
collapse the copies of one page into one article. Whether the marker survives extraction
is also a cheap check that the stored text is the article body.

Everything is stateless and computed from the path, so the harness needs no shared state:

    /<set>/<entries>/feed/<i>.<rss|atom|json>   feed i: articles i*entries ... +entries-1
    /<set>/a/<n>.html                            article n of that set
    /_stats                                      requests, statuses, bytes, CPU seconds

A feed is fully static: it has an ETag and a Last-Modified, and answers 304 to a matching
If-None-Match (or, without one, If-Modified-Since). The site listens on port 80 of several
loopback addresses (127.77.0.1, 127.77.0.2, ...) so that it looks like several hosts: to
ingest's per-host limits and to trafilatura's per-domain politeness queue (courlan, which
it uses, refuses an IP address followed by a port). Feed i and its articles live on host
``i % hosts``.

The server is raw HTTP/1.1 over asyncio protocols with keep-alive; run it in its own
process (``python bench/site.py``) so it does not share a GIL with what is measured.
A fault profile (``--faults 500:0.01,404:0.01,reset:0.005,slow:0.01``) picks faulty
articles deterministically from their number; ``--latency-ms`` delays every answer.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import resource
import signal
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "extraction"
HOST_PREFIX = "127.77.0."  # 127.0.0.0/8 is all loopback; a range nobody else uses
MAX_HOSTS = 250
FORMATS = ("rss", "atom", "json")
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_PARAGRAPH = re.compile(rb"<p[\s>].*?</p\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(rb"<[^>]*>")
_REQUEST = re.compile(
    r"^/(?P<set>[\w-]+)/(?:(?P<entries>\d+)/feed/(?P<feed>\d+)\.(?P<fmt>rss|atom|json)|a/(?P<n>\d+)\.html)$"
)


# --- the layout, shared with the harness ------------------------------------------------


def host(index: int, *, port: int = 80) -> str:
    """The address (and port, unless 80) of host number ``index``."""
    address = f"{HOST_PREFIX}{1 + index}"
    return address if port == 80 else f"{address}:{port}"


def feed_url(set_name: str, i: int, *, entries: int, hosts: int, port: int = 80) -> str:
    fmt = FORMATS[i % len(FORMATS)]
    return f"http://{host(i % hosts, port=port)}/{set_name}/{entries}/feed/{i}.{fmt}"


def article_url(set_name: str, n: int, *, hosts: int, entries: int, port: int = 80) -> str:
    """Article n lives on the host of the feed that lists it."""
    return f"http://{host((n // max(entries, 1)) % hosts, port=port)}/{set_name}/a/{n}.html"


def marker(set_name: str, n: int) -> str:
    return f"[bench:{set_name}:{n}]"


# --- the pages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasePage:
    """A real page cut where the marker goes: marker between every two pieces."""

    pieces: tuple[bytes, ...]
    content_type: bytes


def load_pages(data: Path = DATA) -> list[BasePage]:
    """Every page of both sets, in a stable order."""
    raw = [p.read_bytes() for p in sorted((data / "scrapinghub" / "html").glob("*.html"))]
    raw += [
        gzip.decompress(p.read_bytes())
        for p in sorted((data / "wcxb-dev-articles" / "html").glob("*.html.gz"))
    ]
    if not raw:
        raise SystemExit(f"site: no pages found under {data}")
    return [_cut(body) for body in raw]


def _cut(body: bytes) -> BasePage:
    """Cut the page before the closing tag of its three longest paragraphs."""
    paragraphs = sorted(
        _PARAGRAPH.finditer(body), key=lambda m: len(_TAG.sub(b"", m.group())), reverse=True
    )
    ends = sorted(m.end() - len(m.group().rsplit(b"<", 1)[1]) - 1 for m in paragraphs[:3])
    if not ends:  # no <p> at all: put it before </body>, or at the end
        at = body.lower().rfind(b"</body")
        ends = [at if at >= 0 else len(body)]
    pieces = [body[a:b] for a, b in zip([0, *ends], [*ends, len(body)], strict=True)]
    try:
        body.decode("utf-8")
        content_type = b"text/html; charset=utf-8"
    except UnicodeDecodeError:
        content_type = b"text/html"  # let the reader sniff <meta charset>
    return BasePage(tuple(pieces), content_type)


def article_body(pages: list[BasePage], set_name: str, n: int) -> tuple[list[bytes], bytes]:
    page = pages[n % len(pages)]
    mark = f" {marker(set_name, n)}".encode()
    parts = [page.pieces[0]]
    for piece in page.pieces[1:]:
        parts += [mark, piece]
    return parts, page.content_type


# --- the feeds --------------------------------------------------------------------------


def feed_body(set_name: str, i: int, *, fmt: str, entries: int, base: str) -> bytes:
    """Feed i of a set: its entries are articles i*entries ... i*entries+entries-1."""
    numbers = range(i * entries, (i + 1) * entries)
    items = [(n, f"{base}/{set_name}/a/{n}.html", EPOCH - timedelta(minutes=n)) for n in numbers]
    title = f"Bench feed {set_name} {i}"
    if fmt == "json":
        doc = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "home_page_url": f"{base}/",
            "items": [
                {
                    "id": f"{set_name}-{n}",
                    "url": url,
                    "title": f"Article {n}",
                    "date_published": when.isoformat(),
                }
                for n, url, when in items
            ],
        }
        return json.dumps(doc).encode()
    if fmt == "atom":
        parts = [
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{escape(title)}</title><id>urn:bench:{set_name}:{i}</id>"
            f'<link href="{base}/"/><updated>{EPOCH.isoformat()}</updated>'
        ]
        parts += [
            f"<entry><title>Article {n}</title><id>urn:bench:{set_name}:{n}</id>"
            f'<link rel="alternate" href="{url}"/><updated>{when.isoformat()}</updated></entry>'
            for n, url, when in items
        ]
        return ("".join(parts) + "</feed>").encode()
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{base}/</link><description>bench</description>"
    ]
    parts += [
        f"<item><title>Article {n}</title><link>{url}</link>"
        f'<guid isPermaLink="false">{set_name}-{n}</guid>'
        f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate></item>"
        for n, url, when in items
    ]
    return ("".join(parts) + "</channel></rss>").encode()


FEED_TYPES = {
    "rss": b"application/rss+xml",
    "atom": b"application/atom+xml",
    "json": b"application/feed+json",
}


# --- faults -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Faults:
    """Share of articles that fail, and how; chosen by a hash of the article's path."""

    rates: dict[str, float] = field(default_factory=dict)  # "500", "404", "reset", "slow"
    slow_seconds: float = 2.0

    @classmethod
    def parse(cls, text: str) -> Faults:
        rates = {}
        for item in filter(None, text.split(",")):
            kind, _, rate = item.partition(":")
            if kind not in {"500", "404", "reset", "slow"}:
                raise ValueError(f"unknown fault {kind!r} (500, 404, reset, slow)")
            rates[kind] = float(rate)
        return cls(rates)

    def pick(self, path: str) -> str | None:
        """The fault for ``path``, if any: stable across runs and processes."""
        point = zlib.crc32(path.encode()) / 2**32
        for kind, rate in self.rates.items():
            if point < rate:
                return kind
            point -= rate
        return None


# --- the server -------------------------------------------------------------------------


@dataclass(slots=True)
class Stats:
    requests: int = 0
    bytes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


class Site:
    """Turns a request head into response parts; owns the pages and the counters."""

    def __init__(self, pages: list[BasePage], *, faults: Faults, port: int) -> None:
        self.pages = pages
        self.faults = faults
        self.port = port
        self.stats = Stats()

    def respond(self, head: bytes) -> tuple[list[bytes] | None, float, bool]:
        """(parts, delay, close); parts None means: reset the connection."""
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = [*lines[0].split(" "), "", "", ""][:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        close = version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
        path = target.split("?", 1)[0]
        status, extra, body, delay = self._route(path, headers)
        self.stats.requests += 1
        self.stats.statuses[status] += 1
        if status == 0:
            return None, delay, True
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found", 500: "Server Error"}
        length = sum(map(len, body))
        head_out = [f"HTTP/1.1 {status} {reason.get(status, 'X')}".encode()]
        head_out += extra
        if status != 304:
            head_out.append(b"Content-Length: %d" % length)
        if close:
            head_out.append(b"Connection: close")
        parts = [b"\r\n".join(head_out) + b"\r\n\r\n"]
        if method != "HEAD" and status != 304:
            parts += body
            self.stats.bytes += length
        return parts, delay, close

    def _route(
        self, path: str, headers: dict[str, str]
    ) -> tuple[int, list[bytes], list[bytes], float]:
        if path == "/_stats":
            return 200, [b"Content-Type: application/json"], [self._stats_json()], 0.0
        match = _REQUEST.match(path)
        if match is None:
            return 404, [b"Content-Type: text/plain"], [b"not found\n"], 0.0
        set_name = match["set"]
        if match["n"] is not None:
            return self._article(path, set_name, int(match["n"]))
        etag = f'"{set_name}-{match["entries"]}-{match["feed"]}"'
        validators = [f"ETag: {etag}".encode(), f"Last-Modified: {LAST_MODIFIED}".encode()]
        if headers.get("if-none-match") == etag or (
            "if-none-match" not in headers and headers.get("if-modified-since") == LAST_MODIFIED
        ):
            return 304, validators, [], 0.0
        base = f"http://{headers.get('host', host(0, port=self.port))}"
        body = feed_body(
            set_name, int(match["feed"]), fmt=match["fmt"], entries=int(match["entries"]), base=base
        )
        return 200, [b"Content-Type: " + FEED_TYPES[match["fmt"]], *validators], [body], 0.0

    def _article(
        self, path: str, set_name: str, n: int
    ) -> tuple[int, list[bytes], list[bytes], float]:
        fault = self.faults.pick(path)
        if fault == "404":
            return 404, [b"Content-Type: text/plain"], [b"gone\n"], 0.0
        if fault == "500":
            return 500, [b"Content-Type: text/plain"], [b"oops\n"], 0.0
        if fault == "reset":
            return 0, [], [], 0.0
        parts, content_type = article_body(self.pages, set_name, n)
        delay = self.faults.slow_seconds if fault == "slow" else 0.0
        return 200, [b"Content-Type: " + content_type], parts, delay

    def _stats_json(self) -> bytes:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return json.dumps(
            {
                "requests": self.stats.requests,
                "bytes": self.stats.bytes,
                "statuses": {str(k): v for k, v in sorted(self.stats.statuses.items())},
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
            }
        ).encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; clients here never pipeline, but we would cope."""

    def __init__(self, site: Site, latency: float) -> None:
        self.site = site
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            parts, delay, close = self.site.respond(head)
            delay += self.latency
            if delay:
                asyncio.get_running_loop().call_later(delay, self._send, parts, close)
            else:
                self._send(parts, close)

    def _send(self, parts: list[bytes] | None, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if parts is None:
            transport.abort()  # a reset: the client sees the connection drop
            return
        transport.writelines(parts)
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(site: Site, *, hosts: int, port: int, latency: float) -> None:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(
            lambda: _Connection(site, latency), host(i), port, reuse_address=True, backlog=1024
        )
        for i in range(hosts)
    ]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"site: ready hosts={hosts} port={port} pages={len(site.pages)}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50, help=f"loopback hosts (max {MAX_HOSTS})")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every answer")
    parser.add_argument("--faults", default="", help="e.g. 500:0.01,404:0.01,reset:0.005,slow:0.01")
    parser.add_argument("--data", type=Path, default=DATA, help="the extraction sets")
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= MAX_HOSTS:
        parser.error(f"--hosts must be 1..{MAX_HOSTS}")
    site = Site(load_pages(args.data), faults=Faults.parse(args.faults), port=args.port)
    asyncio.run(serve(site, hosts=args.hosts, port=args.port, latency=args.latency_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
