"""A fault-injecting HTTP server on loopback, and the helpers the fetch tests share.

`tests/loopback.py` serves well-formed responses through the stdlib server. The faults
here need the raw socket: a body dripped a byte at a time, a stall after the headers, a
connection reset mid-body, a Content-Length longer than what is sent, an endless or a
50 MB body. Each connection serves one request (``Connection: close``); the server
records when each request arrived and counts the body bytes it managed to send, so tests
assert on what really went over the wire. Every loop stops when the client hangs up or
the server closes, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import pytest

from ingest.config import Settings
from ingest.errors import FetchError
from ingest.fetch import Fetcher
from ingest.models import Page

T = TypeVar("T")
MB = 1024 * 1024
LOOPBACK = Settings(allow_private_networks=True, per_host_delay=0)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fetch(url: str, settings: Settings = LOOPBACK, **kwargs: Any) -> Page:
    """One GET through a fresh Fetcher, closed afterwards."""

    async def go() -> Page:
        async with Fetcher(settings) as fetcher:
            return await fetcher.get(url, **kwargs)

    return run(go())


def fetch_error(url: str, settings: Settings = LOOPBACK, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, settings, **kwargs)
    return caught.value


@dataclass
class Hit:
    """One request as the server read it."""

    path: str
    headers: dict[str, str]  # lower-cased names
    at: float  # time.monotonic() when its head had arrived
    sent: int = 0  # body bytes the server managed to send


@dataclass
class Exchange:
    """One connection: the request, and the means to answer it."""

    conn: socket.socket
    hit: Hit
    closing: threading.Event

    def head(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} X", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def body(self, data: bytes) -> None:
        self.conn.sendall(data)
        self.hit.sent += len(data)

    def pause(self, seconds: float) -> None:
        """Sleep, or raise OSError at once if the server is closing."""
        if self.closing.wait(seconds):
            raise OSError("server closing")


Fault = Callable[[Exchange], None]


def reply(
    body: bytes = b"", *, status: int = 200, content_type: str = "text/html", **headers: str
) -> Fault:
    """A well-formed response (header names with "_" for "-": retry_after=...)."""

    def fault(ex: Exchange) -> None:
        named = {k.replace("_", "-"): v for k, v in headers.items()}
        ex.head(status, {"Content-Type": content_type, "Content-Length": str(len(body))} | named)
        ex.body(body)

    return fault


def drip(body: bytes, *, every: float) -> Fault:
    """`body` one byte at a time, `every` seconds apart (a slow-loris server)."""

    def fault(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "text/html", "Content-Length": str(len(body))})
        for byte in body:
            ex.body(bytes([byte]))
            ex.pause(every)

    return fault


def stall(*, seconds: float = 10) -> Fault:
    """Headers, then nothing for `seconds`."""

    def fault(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "text/html", "Content-Length": "100"})
        ex.pause(seconds)

    return fault


def cut(*, declared: int, send: int, reset: bool) -> Fault:
    """Promise `declared` bytes, send `send`, then close: with a RST if `reset`."""

    def fault(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "text/html", "Content-Length": str(declared)})
        ex.body(b"x" * send)
        time.sleep(0.05)  # let the bytes leave before the connection goes
        if reset:  # SO_LINGER with a zero timeout: close() sends RST, not FIN
            ex.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return fault


def flood(size: int, *, declare: bool, content_type: str = "text/html") -> Fault:
    """`size` bytes of zeros, with or without a Content-Length (then until close)."""
    piece = bytes(64 * 1024)

    def fault(ex: Exchange) -> None:
        headers = {"Content-Type": content_type}
        if declare:
            headers["Content-Length"] = str(size)
        ex.head(200, headers)
        while ex.hit.sent < size and not ex.closing.is_set():
            ex.body(piece[: size - ex.hit.sent])

    return fault


@dataclass
class FaultServer:
    """Serve `add`ed faults on 127.0.0.1 until `close()`; other paths answer 404."""

    routes: dict[str, Fault] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, fault: Fault) -> str:
        self.routes[path] = fault
        return self.url(path)

    def hits_of(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    def sent(self, path: str) -> int:
        """Body bytes sent for `path`, once its handlers are done (bounded wait)."""
        for thread in list(self._threads):
            thread.join(10)
        return sum(hit.sent for hit in self.hits_of(path))

    def close(self) -> None:
        self._closing.set()
        self._acceptor.join(5)
        with self._lock:
            for conn in self._conns:  # unblock a handler stuck in sendall
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        try:
            with conn:
                conn.settimeout(10)
                hit = _read_head(conn)
                if hit is None:
                    return
                with self._lock:
                    self.hits.append(hit)
                fault = self.routes.get(hit.path, reply(b"not found", status=404))
                fault(Exchange(conn, hit, self._closing))
        except OSError:
            pass  # the client hung up (a cap, a timeout): what many faults are about
        finally:
            with self._lock:
                self._conns.discard(conn)


def _read_head(conn: socket.socket) -> Hit | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 65536:
            return None
        data += chunk
    at = time.monotonic()
    request_line, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Hit(path=request_line.split(" ")[1], headers=headers, at=at)
