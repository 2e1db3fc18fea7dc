"""HTTP/1.1 exchanges on one connection, with h11 (the protocol engine httpcore uses).

Why not httpcore's connection and pool: in the cold-ingest benchmark the event loop
thread of `ingest poll` is the bottleneck, and sending requests and reading bodies
through httpx's transport was 40% of its samples (py-spy). Of that, h11 itself was 6.5%
and the socket calls 16%; the rest was anyio locks, cancel scopes and timeouts (each
asking asyncio for the running loop, which on Python 3.11 is a getpid() system call)
and the layers of request, response and stream objects around them. A fetcher that
sends one GET at a time per connection needs none of that.

`Connection.send` writes a request and reads up to the response head; `Connection.data`
reads the body a piece at a time; `finish` ends the exchange and says whether it ended
cleanly with both sides keeping the connection open. Errors come out as httpx's exceptions, the
cause kept, as from httpx's own transport.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, Protocol

import h11
import httpx

# Reads ask for this much; a page of 180 kB comes in three reads.
READ_SIZE = 65_536


class Stream(Protocol):
    """A connected byte stream (`transport.AsyncioStream`), raising httpx's errors."""

    async def read(self, max_bytes: int, timeout: float | None) -> bytes: ...

    async def write(self, data: bytes, timeout: float | None) -> None: ...

    def get_extra_info(self, info: str) -> Any: ...

    def close(self) -> None: ...


class StaleConnectionError(Exception):
    """A kept-alive connection was closed by the server before this request got any
    answer: the server's idle timeout met our reuse. An idempotent request (a GET) can
    go again on a new connection."""


class Connection:
    """One HTTP/1.1 connection: one exchange at a time, then reused or closed."""

    __slots__ = ("_answered", "_h11", "_stream", "exchanges", "idle_since")

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT)
        self._answered = False  # bytes came back for the current request
        self.exchanges = 0  # completed request/response cycles
        self.idle_since = time.monotonic()

    async def send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> h11.Response:
        """Write ``request``, read the response head; raise StaleConnectionError if a reused
        connection turns out closed before any byte of the answer."""
        head = h11.Request(
            method=request.method, target=request.url.raw_path, headers=request.headers.raw
        )
        body = request.content
        self._answered = False
        with _translated(request):
            data = self._h11.send(head) or b""
            if body:
                data += self._h11.send(h11.Data(data=body)) or b""
            data += self._h11.send(h11.EndOfMessage()) or b""
        try:
            await self._stream.write(data, timeout=timeouts.get("write"))
            return await self._head(request, timeouts.get("read"))
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            if self.exchanges and not self._answered:
                raise StaleConnectionError(str(exc)) from exc
            raise

    async def _head(self, request: httpx.Request, timeout: float | None) -> h11.Response:
        while True:
            event = await self._event(request, timeout)
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):  # 100 Continue and the like
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}")

    async def data(self, request: httpx.Request, timeout: float | None) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            event = await self._event(request, timeout)
            if isinstance(event, h11.Data):
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage):
                return None

    async def _event(self, request: httpx.Request, timeout: float | None) -> h11.Event:
        while True:
            with _translated(request):
                event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            received = await self._stream.read(READ_SIZE, timeout=timeout)
            self._answered = self._answered or bool(received)
            with _translated(request):
                # b"" is the end of the stream: h11 then ends a body that runs to the
                # close, or raises for a response cut short.
                self._h11.receive_data(received)

    def finish(self) -> bool:
        """End the exchange: True, and ready for the next request, if it ended cleanly
        with both sides keeping the connection open."""
        if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
            return False
        self._h11.start_next_cycle()
        self.exchanges += 1
        self.idle_since = time.monotonic()
        return True

    def usable(self, *, expiry: float) -> bool:
        """May this idle connection serve a request? Not if it has been idle past
        ``expiry`` seconds (servers drop idle connections after a few seconds) or the
        server has closed it."""
        return time.monotonic() - self.idle_since < expiry and not self._stream.get_extra_info(
            "is_readable"
        )

    def close(self) -> None:
        self._stream.close()


@contextlib.contextmanager
def _translated(request: httpx.Request) -> Iterator[None]:
    """h11's protocol errors as httpx's (the cause kept)."""
    try:
        yield
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "invalid response", request=request) from exc
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc) or "invalid request", request=request) from exc
