"""The fetcher against a real HTTP server on loopback (MockTransport only where it can't)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import brotli  # type: ignore[import-untyped]  # ships no type information
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.config import Settings
from ingest.errors import BlockedAddressError, FetchError
from ingest.fetch import DEFAULT_ACCEPT, Fetcher, is_blocked_address, user_agent
from ingest.fetch.addresses import system_resolver
from ingest.fetch.decode import Decoder
from ingest.fetch.transport import PinnedBackend, PinnedTransport
from ingest.models import Page, Validators
from tests.loopback import LoopbackServer, Request, Response

LOOPBACK = Settings(allow_private_networks=True, per_host_delay=0)
CLOCK = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MB = 1024 * 1024
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fetch(url: str, settings: Settings = LOOPBACK, **kwargs: Any) -> Page:
    """One GET through a fresh Fetcher, closed afterwards."""

    async def go() -> Page:
        async with Fetcher(settings, now=lambda: CLOCK) as fetcher:
            return await fetcher.get(url, **kwargs)

    return run(go())


def fetch_error(url: str, settings: Settings = LOOPBACK, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, settings, **kwargs)
    return caught.value


def encoded(body: bytes, encoding: str) -> Callable[[Request], Response]:
    """A handler serving `body` already compressed, labelled with `encoding`."""
    return lambda _: Response(body, headers={"Content-Encoding": encoding})


@contextlib.contextmanager
def stalled(server: LoopbackServer, path: str) -> Iterator[str]:
    """Serve `path` with a handler that sends nothing until the `with` block ends."""
    release, answered = threading.Event(), threading.Event()

    def handler(_: Request) -> Response:
        release.wait(10)
        answered.set()
        return Response(b"late")

    try:
        yield server.add(path, handler)
    finally:
        release.set()
        answered.wait(5)


@contextlib.contextmanager
def endless_server() -> Iterator[tuple[str, list[int], threading.Thread]]:
    """A raw server streaming a chunked body with no Content-Length until the client hangs up.

    Yields its URL, a one-item list counting the body bytes sent, and its thread.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    sent = [0]
    piece = b"x" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
            conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
            try:
                while sent[0] < 500 * MB:
                    conn.sendall(chunk)
                    sent[0] += len(piece)
            except OSError:
                pass  # the client hung up: what we want

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/", sent, thread
    finally:
        thread.join(10)
        listener.close()


def test_ok_page_parses_content_type_charset_validators_and_headers(
    server: LoopbackServer,
) -> None:
    """A 200 becomes a Page with media type, charset, validators and lower-cased headers."""
    url = server.add(
        "/feed",
        Response(
            b"<rss/>",
            content_type='Application/RSS+XML; Charset="ISO-8859-1"',
            headers={"ETag": '"v1"', "Last-Modified": "Wed, 01 May 2024 10:00:00 GMT"},
        ),
    )
    page = fetch(url)
    assert (page.status, page.body, page.url, page.final_url) == (200, b"<rss/>", url, url)
    assert (page.content_type, page.charset) == ("application/rss+xml", "iso-8859-1")
    assert page.validators == Validators('"v1"', "Wed, 01 May 2024 10:00:00 GMT")
    assert page.fetched_at == CLOCK
    assert page.header("ETag") == '"v1"'
    assert all(name == name.lower() for name, _ in page.headers)


def test_missing_content_type_is_empty_and_fetched_at_is_utc(server: LoopbackServer) -> None:
    """No Content-Type gives "" and no charset; the default clock is aware UTC."""
    url = server.add("/plain", Response(b"x", content_type=None))

    async def go() -> Page:
        async with Fetcher(LOOPBACK) as fetcher:
            return await fetcher.get(url)

    page = run(go())
    assert (page.content_type, page.charset) == ("", None)
    assert page.fetched_at.utcoffset() is not None
    assert page.fetched_at.utcoffset() == UTC.utcoffset(None)


def test_request_headers_sent(server: LoopbackServer) -> None:
    """User-Agent, the default Accept and Accept-Encoding go over the wire."""
    url = server.add("/h", Response(b"ok"))
    fetch(url)
    (hit,) = server.hits("/h")
    assert hit.headers["user-agent"] == "ingest/0.1.0 (+https://github.com/ingest-worker/ingest)"
    assert hit.headers["accept"] == DEFAULT_ACCEPT
    assert hit.headers["accept-encoding"] == "gzip, deflate, br"
    assert "if-none-match" not in hit.headers
    assert "if-modified-since" not in hit.headers


def test_caller_accept_replaces_default(server: LoopbackServer) -> None:
    """A caller's Accept is sent instead of the default."""
    url = server.add("/h", Response(b"ok"))
    fetch(url, accept="text/html")
    assert server.hits("/h")[0].headers["accept"] == "text/html"


def test_each_request_is_logged_at_debug(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Successes and failures log one debug line with url=, status= and elapsed_ms=."""
    ok = server.add("/ok", Response(b"ok"))
    caplog.set_level(logging.DEBUG, logger="ingest.fetch")
    fetch(ok)
    fetch_error(server.url("/missing"))
    lines = [r.getMessage() for r in caplog.records if r.name == "ingest.fetch.client"]
    assert len(lines) == 2
    assert lines[0].startswith(f"fetch url={ok} final_url={ok} status=200 ")
    assert lines[1].startswith(f"fetch failed url={server.url('/missing')} status=404 ")
    assert all("elapsed_ms=" in line for line in lines)


def test_gzip_body_is_decoded(server: LoopbackServer) -> None:
    """A gzip-encoded body comes back decoded."""
    body = "<p>héllo</p>".encode() * 1000
    page = fetch(server.add("/gz", Response(body, gzip=True)))
    assert page.body == body


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("br", brotli.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9112 means it
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw, as IIS sends it
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),  # applied in order
        ("identity", lambda b: b),
    ],
)
def test_other_encodings_are_decoded(
    server: LoopbackServer, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    """Brotli, both deflate flavours, a chain of two and identity all decode."""
    body = b"<p>hello</p>" * 10_000
    assert fetch(server.add("/enc", encoded(compress(body), encoding))).body == body


CODECS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


def decode_all(encoding: str, chunks: list[bytes]) -> bytes:
    decoder = Decoder(encoding, url="http://example.com/")
    out = b"".join(piece for chunk in chunks for piece in decoder.decode(chunk))
    return out + b"".join(decoder.finish())


@given(st.binary(max_size=5000), st.sampled_from(sorted(CODECS)), st.integers(1, 700))
def test_decoding_survives_any_chunking(body: bytes, encoding: str, size: int) -> None:
    """However the network splits the encoded bytes, the body decodes back whole."""
    data = CODECS[encoding](body)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert decode_all(encoding, chunks) == body


@given(st.binary(max_size=2000), st.sampled_from(sorted(CODECS)))
def test_any_bytes_in_no_crash_out(data: bytes, encoding: str) -> None:
    """Garbage labelled as compressed either decodes or raises FetchError, nothing else."""
    with contextlib.suppress(FetchError):
        decode_all(encoding, [data])


def test_corrupt_gzip_is_a_fetch_error(server: LoopbackServer) -> None:
    """Bytes that claim to be gzip but are not raise FetchError."""
    error = fetch_error(server.add("/bad", encoded(b"not gzip at all", "gzip")))
    assert "cannot decode" in str(error)


def test_conditional_get_sends_validators_and_304_is_a_page(server: LoopbackServer) -> None:
    """Validators become If-None-Match/If-Modified-Since; a 304 is a Page keeping them."""

    def handler(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(status=304, content_type=None)
        return Response(b"full")

    url = server.add("/feed", handler)
    old = Validators('"v1"', "Wed, 01 May 2024 10:00:00 GMT")
    page = fetch(url, validators=old)
    (hit,) = server.hits("/feed")
    assert hit.headers["if-none-match"] == '"v1"'
    assert hit.headers["if-modified-since"] == "Wed, 01 May 2024 10:00:00 GMT"
    assert page.not_modified
    assert (page.status, page.body, page.validators) == (304, b"", old)


def test_304_with_new_validators_replaces_old(server: LoopbackServer) -> None:
    """A 304 carrying a new ETag replaces the old one and keeps the other validator."""
    url = server.add("/feed", Response(status=304, content_type=None, headers={"ETag": '"v2"'}))
    page = fetch(url, validators=Validators('"v1"', "Wed, 01 May 2024 10:00:00 GMT"))
    assert page.validators == Validators('"v2"', "Wed, 01 May 2024 10:00:00 GMT")


def test_redirects_are_followed(server: LoopbackServer) -> None:
    """Relative and absolute Locations are followed; final_url is where we ended."""
    server.add("/a", Response(status=301, headers={"Location": "b?x=1"}))
    server.add("/b?x=1", Response(status=302, headers={"Location": server.url("/c")}))
    final = server.add("/c", Response(b"here"))
    page = fetch(server.url("/a"))
    assert (page.url, page.final_url, page.body) == (server.url("/a"), final, b"here")
    assert server.hits("/c")[0].headers["user-agent"] == user_agent(LOOPBACK)


def test_permanent_redirects_are_reported(server: LoopbackServer) -> None:
    """A chain of only 301/308 names where the resource lives now; any 302/307 does not."""
    server.add("/old", Response(status=301, headers={"Location": "/older"}))
    server.add("/older", Response(status=308, headers={"Location": "/new"}))
    new = server.add("/new", Response(b"here"))
    server.add("/temp", Response(status=302, headers={"Location": "/new"}))
    server.add("/mixed", Response(status=301, headers={"Location": "/temp"}))
    assert fetch(server.url("/old")).permanent_redirect == new
    assert fetch(server.url("/temp")).permanent_redirect is None
    assert fetch(server.url("/mixed")).permanent_redirect is None
    assert fetch(new).permanent_redirect is None


def test_connection_is_kept_after_304_redirect_and_error(server: LoopbackServer) -> None:
    """Bodies we do not keep are read to the end, so one connection serves every request."""
    server.add("/304", Response(status=304, content_type=None))
    server.add("/moved", Response(b"see /ok", status=302, headers={"Location": "/ok"}))
    server.add("/ok", Response(b"ok"))
    server.add("/gone", Response(b"x" * 5000, status=410))

    async def go() -> None:
        async with Fetcher(LOOPBACK) as fetcher:
            await fetcher.get(server.url("/304"), validators=Validators('"v"', None))
            await fetcher.get(server.url("/moved"))
            with pytest.raises(FetchError):
                await fetcher.get(server.url("/gone"))
            await fetcher.get(server.url("/ok"))

    run(go())
    assert [r.path for r in server.requests] == ["/304", "/moved", "/ok", "/gone", "/ok"]
    assert len({r.peer for r in server.requests}) == 1


class OneAnswerServer:
    """A raw HTTP server whose connections answer one request each, with keep-alive
    allowed, and then close on the next request without a word: a server whose idle
    timeout fires just as the client reuses the connection."""

    def __init__(self, *, close_header: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.connections = 0
        self.requests: list[bytes] = []
        self.close_header = close_header
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                self.connections += 1
                threading.Thread(target=self._answer_once, args=(conn,), daemon=True).start()

    def _answer_once(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn, contextlib.suppress(OSError):
            for answered in (False, True):
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                self.requests.append(request.split(b"\r\n", 1)[0])
                if answered:
                    return  # the second request on this connection: hang up
                close = b"Connection: close\r\n" if self.close_header else b""
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + close + b"\r\nok")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self.listener.close()
        self.thread.join(5)

    def fetch_three(self) -> list[bytes]:
        """The bodies of /0, /1 and /2, fetched one after the other; then close."""

        async def go() -> list[bytes]:
            async with Fetcher(LOOPBACK) as fetcher:
                return [(await fetcher.get(self.url(f"/{n}"))).body for n in range(3)]

        try:
            return run(go())
        finally:
            self.close()


def test_a_kept_connection_the_server_dropped_is_replaced() -> None:
    """A reused connection closed before any answer: the GET goes again on a new one."""
    server = OneAnswerServer()
    assert server.fetch_three() == [b"ok"] * 3
    # /1 and /2 each went first to the connection that had answered the previous one.
    assert server.requests == [
        b"GET /0 HTTP/1.1",
        *[b"GET /1 HTTP/1.1"] * 2,
        *[b"GET /2 HTTP/1.1"] * 2,
    ]
    assert server.connections == 3


def test_a_non_idempotent_request_is_not_sent_again() -> None:
    """A POST that met a dropped kept-alive connection fails instead of going twice."""
    server = OneAnswerServer()
    backend = PinnedBackend(resolver=system_resolver, allow_private=True)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=2)

    async def go() -> None:
        transport = PinnedTransport(backend=backend, limits=limits, max_origins=8)
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.post(server.url("/0"))).content == b"ok"
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(server.url("/1"))

    try:
        run(go())
    finally:
        server.close()
    assert server.requests == [b"POST /0 HTTP/1.1", b"POST /1 HTTP/1.1"]
    assert server.connections == 1


def test_connection_close_is_honoured() -> None:
    """A response saying "Connection: close" is not followed by a reuse of its connection."""
    server = OneAnswerServer(close_header=True)
    assert server.fetch_three() == [b"ok"] * 3
    assert server.requests == [b"GET /0 HTTP/1.1", b"GET /1 HTTP/1.1", b"GET /2 HTTP/1.1"]
    assert server.connections == 3


def test_idle_connections_of_the_least_recent_origins_are_closed() -> None:
    """Past max_origins, the idle pool of the origin used longest ago is closed."""
    servers = [LoopbackServer() for _ in range(3)]
    for s in servers:
        s.add("/", Response(b"ok"))
    backend = PinnedBackend(resolver=system_resolver, allow_private=True)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=2)

    async def go(max_origins: int) -> None:
        transport = PinnedTransport(backend=backend, limits=limits, max_origins=max_origins)
        async with httpx.AsyncClient(transport=transport) as client:
            for s in (servers[0], servers[1], servers[0], servers[2], servers[1]):
                assert (await client.get(s.url("/"))).status_code == 200

    try:
        run(go(max_origins=2))  # 0 1 0 2 (closes 1) 1
        peers = [len({r.peer for r in s.requests}) for s in servers]
        assert peers == [1, 2, 1]
        for s in servers:
            s.requests.clear()
        run(go(max_origins=3))
        assert [len({r.peer for r in s.requests}) for s in servers] == [1, 1, 1]
    finally:
        for s in servers:
            s.close()


def test_too_many_redirects(server: LoopbackServer) -> None:
    """A chain longer than max_redirects stops after max_redirects + 1 requests."""
    for i in range(10):
        server.add(f"/r{i}", Response(status=302, headers={"Location": f"/r{i + 1}"}))
    error = fetch_error(server.url("/r0"), replace(LOOPBACK, max_redirects=3))
    assert "too many redirects" in str(error)
    assert len(server.requests) == 4


def test_redirect_loop(server: LoopbackServer) -> None:
    """A URL seen twice in one chain is a loop, reported before the budget runs out."""
    server.add("/x", Response(status=302, headers={"Location": "/y"}))
    server.add("/y", Response(status=307, headers={"Location": "/x"}))
    error = fetch_error(server.url("/x"), replace(LOOPBACK, max_redirects=10))
    assert "redirect loop" in str(error)
    assert len(server.requests) == 2


def test_redirect_to_other_scheme_is_refused(server: LoopbackServer) -> None:
    """Only http and https redirect targets are followed."""
    url = server.add("/ftp", Response(status=302, headers={"Location": "file:///etc/passwd"}))
    assert "unsupported scheme 'file'" in str(fetch_error(url))


@pytest.mark.parametrize("status", [404, 410, 500])
def test_error_status_is_fetch_error_with_status(server: LoopbackServer, status: int) -> None:
    """A status other than 2xx/3xx/304 raises FetchError carrying it."""
    error = fetch_error(server.add("/e", Response(b"no", status=status)))
    assert error.status == status
    assert str(error) == f"fetch: HTTP {status}: {server.url('/e')}"


def test_retry_after_is_kept_in_the_error(server: LoopbackServer) -> None:
    """A 503's Retry-After shows in the error message."""
    url = server.add("/busy", Response(status=503, headers={"Retry-After": "120"}))
    error = fetch_error(url)
    assert (error.status, str(error)) == (503, f"fetch: HTTP 503 (retry-after 120): {url}")


def test_declared_length_over_cap_is_refused(server: LoopbackServer) -> None:
    """A Content-Length above max_body_bytes is refused before reading the body."""
    url = server.add("/big", Response(bytes(2 * MB)))
    error = fetch_error(url, replace(LOOPBACK, max_body_bytes=MB))
    assert str(error) == f"fetch: body larger than {MB} bytes: {url}"


def test_streamed_body_over_cap_stops_reading() -> None:
    """Without Content-Length, reading stops at the cap and the connection is dropped."""
    with endless_server() as (url, sent, thread):
        error = fetch_error(url, replace(LOOPBACK, max_body_bytes=MB))
        thread.join(10)
    assert "body larger than" in str(error)
    assert not thread.is_alive()  # the server saw us hang up
    assert sent[0] < 100 * MB  # the cap plus socket buffers, not the 500 MB on offer


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("br", lambda b: brotli.compress(b, quality=1))],
)
def test_compression_bomb_stops_at_cap_in_bounded_memory(
    server: LoopbackServer, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    """50 MB of zeros in ~50 KB (gzip) or ~10 KB (br) stops at the cap, never inflated whole."""
    bomb = compress(bytes(50 * MB))
    url = server.add("/bomb", encoded(bomb, encoding))
    tracemalloc.start()
    try:
        error = fetch_error(url, replace(LOOPBACK, max_body_bytes=MB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "body larger than" in str(error)
    assert peak < 10 * MB


def test_read_timeout_on_stalling_server(server: LoopbackServer) -> None:
    """A server that sends nothing trips the read timeout."""
    with stalled(server, "/stall") as url:
        started = time.monotonic()
        error = fetch_error(url, replace(LOOPBACK, read_timeout=0.5))
    assert str(error) == f"fetch: read timed out after 0.5s: {url}"
    assert time.monotonic() - started < 5


def test_total_deadline_covers_the_whole_request(server: LoopbackServer) -> None:
    """The total deadline fires even when the read timeout is longer."""
    with stalled(server, "/stall") as url:
        error = fetch_error(url, replace(LOOPBACK, read_timeout=30, total_timeout=0.5))
    assert str(error) == f"fetch: timed out after 0.5s: {url}"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_loopback_refused_when_private_networks_disallowed(
    server: LoopbackServer, host: str
) -> None:
    """Without allow_private_networks, loopback (literal or resolved) is never contacted."""
    port = server.base.rsplit(":", 1)[1]
    with pytest.raises(BlockedAddressError):
        fetch(f"http://{host}:{port}/", Settings())
    assert server.requests == []


def test_every_redirect_hop_is_checked() -> None:
    """A public host redirecting to a private address is refused before the second hop."""
    # Loopback is itself blocked here, so a MockTransport plays the public first hop.
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://10.0.0.1/admin"})

    async def go() -> None:
        async with Fetcher(Settings(), transport=httpx.MockTransport(handler)) as fetcher:
            await fetcher.get("http://93.184.216.34/feed")

    with pytest.raises(BlockedAddressError, match=r"10\.0\.0\.1"):
        run(go())
    assert seen == ["http://93.184.216.34/feed"]


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("172.31.255.255", True),
        ("192.168.1.1", True),
        ("127.0.0.1", True),
        ("127.8.8.8", True),
        ("0.0.0.0", True),
        ("100.64.0.1", True),  # carrier-grade NAT: not global
        ("169.254.169.254", True),  # cloud metadata
        ("224.0.0.1", True),  # multicast
        ("240.0.0.1", True),  # reserved
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fe80::1%eth0", True),  # how getaddrinfo reports link-local
        ("fc00::1", True),
        ("fd00:ec2::254", True),  # AWS metadata over IPv6
        ("ff02::1", True),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped
        ("::ffff:127.0.0.1", True),
        ("2002:a00:1::", True),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 wrapping 169.254.169.254
        ("93.184.216.34", False),
        ("8.8.8.8", False),
        ("172.32.0.1", False),
        ("2606:4700::1", False),
        ("::ffff:93.184.216.34", False),
    ],
)
def test_address_classifier(address: str, blocked: bool) -> None:
    """Private, loopback, link-local, metadata and friends are blocked; public ones are not."""
    assert is_blocked_address(address) is blocked


def test_unresolvable_host_is_a_fetch_error() -> None:
    """A name that does not resolve (RFC 6761 .invalid) raises 'cannot resolve host'."""
    error = fetch_error("http://no-such-host.invalid/feed", Settings())
    assert "cannot resolve host" in str(error)


def test_connection_refused() -> None:
    """A closed port raises FetchError naming the refusal."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    assert str(fetch_error(url)) == f"fetch: connection refused: {url}"


def test_tls_to_a_plain_http_server_is_a_tls_error(server: LoopbackServer) -> None:
    """Speaking TLS to a plain HTTP port fails as a TLS error, not a generic one."""
    url = server.base.replace("http://", "https://") + "/"
    assert "TLS error" in str(fetch_error(url))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/feed", "unsupported scheme 'ftp'"),
        ("example.com/feed", "unsupported scheme"),
        ("http:///feed", "invalid URL"),
        ("http://[::1/", "invalid URL"),
    ],
)
def test_bad_urls_are_fetch_errors(url: str, message: str) -> None:
    """Malformed URLs and non-http(s) schemes raise FetchError before any I/O."""
    assert message in str(fetch_error(url))


def test_certificate_failure_via_mock_transport() -> None:
    """A certificate verification failure is reported as a TLS error with its reason."""

    def handler(request: httpx.Request) -> httpx.Response:
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        cause.reason = "CERTIFICATE_VERIFY_FAILED"
        raise httpx.ConnectError("boom", request=request) from cause

    async def go() -> None:
        async with Fetcher(LOOPBACK, transport=httpx.MockTransport(handler)) as fetcher:
            await fetcher.get("https://example.com/")

    with pytest.raises(FetchError) as caught:
        run(go())
    assert str(caught.value) == (
        "fetch: TLS error: CERTIFICATE_VERIFY_FAILED: https://example.com/"
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (replace(LOOPBACK, per_host_concurrency=2), 2),
        (replace(LOOPBACK, per_host_concurrency=5, concurrency=3), 3),
    ],
)
def test_concurrency_caps_are_respected(
    server: LoopbackServer, settings: Settings, expected: int
) -> None:
    """No more requests are in flight than the per-host and overall caps allow."""
    lock = threading.Lock()
    now_serving = [0, 0]  # current, most ever

    def slow(_: Request) -> Response:
        with lock:
            now_serving[0] += 1
            now_serving[1] = max(now_serving)
        time.sleep(0.2)
        with lock:
            now_serving[0] -= 1
        return Response(b"ok")

    for i in range(8):
        server.add(f"/s{i}", slow)

    async def go() -> int:
        async with Fetcher(settings) as fetcher:
            pages = await asyncio.gather(*(fetcher.get(server.url(f"/s{i}")) for i in range(8)))
            assert all(page.status == 200 for page in pages)
            return fetcher._hosts.busy()  # white-box: every slot was given back

    assert run(go()) == 0
    assert now_serving[1] == expected


# --- DNS pinning: the addresses checked are the addresses connected to ------------------


def resolving_to(*addresses: str, calls: list[str] | None = None) -> Any:
    """A resolver answering `addresses` for any name, noting each name it was asked."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)

    return resolve


def fetch_via(url: str, settings: Settings, resolver: Any) -> Page:
    async def go() -> Page:
        async with Fetcher(settings, resolver=resolver) as fetcher:
            return await fetcher.get(url)

    return run(go())


def test_name_resolving_to_loopback_is_refused_at_connect_time(server: LoopbackServer) -> None:
    """A name whose (only) answer is private is refused when connecting; nothing is sent."""
    calls: list[str] = []
    port = server.base.rsplit(":", 1)[1]
    url = f"http://feed.example:{port}/feed"
    with pytest.raises(BlockedAddressError) as caught:
        fetch_via(url, Settings(), resolving_to("127.0.0.1", calls=calls))
    assert str(caught.value) == f"fetch: blocked address 127.0.0.1 for feed.example: {url}"
    assert calls == ["feed.example"]  # resolved once, by the transport, and no more
    assert server.requests == []


def test_one_private_answer_among_public_ones_is_refused() -> None:
    """Any blocked address in the answer refuses the name; no connection is tried."""
    resolver = resolving_to("93.184.216.34", "10.0.0.7")
    with pytest.raises(BlockedAddressError, match=r"10\.0\.0\.7 for mixed\.example"):
        fetch_via("http://mixed.example/feed", Settings(), resolver)


def test_connection_goes_to_the_resolved_address_with_the_name_kept(
    server: LoopbackServer,
) -> None:
    """Allowed, the name connects to what our resolver said; Host still carries the name."""
    port = server.base.rsplit(":", 1)[1]
    server.add("/feed", Response(b"<rss/>"))
    page = fetch_via(f"http://feed.example:{port}/feed", LOOPBACK, resolving_to("127.0.0.1"))
    assert page.body == b"<rss/>"
    assert server.hits("/feed")[0].headers["host"] == f"feed.example:{port}"


def test_tls_to_a_pinned_address_still_sends_the_host_name() -> None:
    """TLS over a pinned connection uses the name for SNI and verification (here it fails)."""
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # no certificate: the handshake fails
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc,return-value]
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        conn, _ = listener.accept()
        with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"https://feed.example:{listener.getsockname()[1]}/feed"
    try:
        with pytest.raises(FetchError, match="TLS error"):
            fetch_via(url, LOOPBACK, resolving_to("127.0.0.1"))
    finally:
        thread.join(5)
        listener.close()
    assert names == ["feed.example"]


def test_resolver_failure_and_empty_answer_cannot_resolve() -> None:
    """A resolver error or an empty answer is 'cannot resolve host'."""

    async def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    for resolver in (failing, resolving_to()):
        error = fetch_error_via("http://gone.example/", Settings(), resolver)
        assert str(error) == "fetch: cannot resolve host: http://gone.example/"


def test_slow_resolver_is_a_connect_timeout() -> None:
    """Resolving counts toward the connect timeout."""

    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return ["93.184.216.34"]

    error = fetch_error_via("http://slow.example/", replace(Settings(), connect_timeout=0.2), slow)
    assert str(error) == "fetch: connect timed out after 0.2s: http://slow.example/"


def fetch_error_via(url: str, settings: Settings, resolver: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch_via(url, settings, resolver)
    return caught.value
