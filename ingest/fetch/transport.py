"""The httpx transport that resolves names itself and connects only to checked addresses.

httpx resolves a name when it connects; checking the name beforehand would resolve it a
second time, and a hostile DNS server could answer "public" to the check and "private"
to the connection (DNS rebinding). `PinnedBackend` closes that gap: it resolves once,
checks every address, and connects to a checked address. TLS then starts on that
connection with the URL's host name, so SNI and certificate verification are about the
name, exactly as without pinning.

Connections are asyncio's own streams (`AsyncioStream`) speaking HTTP/1.1 through
`http11.Connection`; `PinnedTransport` keeps a few idle ones per origin. httpx provides
the request and response objects, the TLS settings and the error classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator

import h11
import httpx

from ingest.fetch.addresses import Resolver, ip_literal, refuse_blocked
from ingest.fetch.http11 import Connection, StaleConnectionError


class PinnedBackend:
    """Resolves with our resolver, checks the addresses, connects to a checked one."""

    def __init__(self, *, resolver: Resolver, allow_private: bool) -> None:
        self._resolver = resolver
        self._allow_private = allow_private

    async def connect_tcp(self, host: str, port: int, *, timeout: float | None) -> AsyncioStream:
        addresses = await self._resolve(host, port, timeout)
        if not self._allow_private:
            refuse_blocked(host, addresses)
        failure: httpx.ConnectError | httpx.ConnectTimeout | None = None
        for address in addresses:  # like socket.create_connection: the first that answers
            try:
                return await AsyncioStream.connect(address, port, timeout=timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # _resolve never returns an empty list
        raise failure

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(timeout):  # resolving is part of connecting
                addresses = await self._resolver(host, port)
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "no addresses")
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise httpx.ConnectError(f"cannot resolve host {host}") from exc
        return addresses


@contextlib.contextmanager
def _mapped(
    timeout: type[httpx.TimeoutException], failure: type[httpx.NetworkError]
) -> Iterator[None]:
    """Socket errors as httpx's errors (the cause kept)."""
    try:
        yield
    except TimeoutError as exc:  # before OSError, of which it is a subclass
        raise timeout(str(exc) or "timed out") from exc
    except OSError as exc:  # ssl.SSLError included
        raise failure(str(exc) or type(exc).__name__) from exc


class AsyncioStream:
    """One connection on asyncio's streams (with asyncio's own TLS)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, address: str, port: int, *, timeout: float | None) -> AsyncioStream:
        with _mapped(httpx.ConnectTimeout, httpx.ConnectError):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(address, port)
        return cls(reader, writer)

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        with _mapped(httpx.ReadTimeout, httpx.ReadError):
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, data: bytes, timeout: float | None) -> None:
        with _mapped(httpx.WriteTimeout, httpx.WriteError):
            self._writer.write(data)
            if not self._writer.transport.get_write_buffer_size():
                await self._writer.drain()  # all sent: this only reports a broken connection
                return
            async with asyncio.timeout(timeout):
                await self._writer.drain()

    def close(self) -> None:
        # Not waiting for the close to finish: a TLS peer may never answer ours.
        self._writer.close()

    async def start_tls(
        self, context: ssl.SSLContext, *, server_hostname: str, timeout: float | None
    ) -> AsyncioStream:
        try:
            with _mapped(httpx.ConnectTimeout, httpx.ConnectError):
                async with asyncio.timeout(timeout):
                    await self._writer.start_tls(context, server_hostname=server_hostname)
        except BaseException:
            self.close()
            raise
        return self

    def get_extra_info(self, info: str) -> object:
        if info == "is_readable":  # asked of an idle connection: did the server close it?
            return self._reader.at_eof() or self._reader.exception() is not None
        return self._writer.get_extra_info(info)


Key = tuple[str, str, int]  # scheme, host, port
# Requests sent again when a kept-alive connection turns out closed (RFC 9110 §9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class PinnedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 on pinned connections, keeping a few idle ones per origin.

    The Fetcher bounds the requests in flight (overall and per host), so connections
    are opened as requests need them, never waited for. Once a response has been read
    to its end, its connection is kept for the next request to that origin, up to
    ``limits.max_keepalive_connections`` per origin, for ``limits.keepalive_expiry``
    seconds. Only the ``max_origins`` origins used last keep theirs: over a poll cycle
    of thousands of hosts, the others would only hold sockets open.
    """

    def __init__(self, *, backend: PinnedBackend, limits: httpx.Limits, max_origins: int) -> None:
        if limits.max_connections is not None:
            raise ValueError("PinnedTransport: the Fetcher bounds connections; pass None")
        self._backend = backend
        self._keep = limits.max_keepalive_connections or 0
        self._expiry = limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
        self._max_origins = max_origins
        # TLS is always verified: there is deliberately no setting to turn it off.
        self._tls = httpx.create_ssl_context(verify=True, trust_env=False)
        self._idle: OrderedDict[Key, list[Connection]] = OrderedDict()  # least recent first
        self._open: set[Connection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}", request=request)
        key = (scheme, url.raw_host.decode("ascii"), url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        connection = self._take_idle(key)
        if connection is not None:
            try:
                head = await self._send(connection, request, timeouts)
            except StaleConnectionError as exc:
                if request.method not in _IDEMPOTENT:  # it may have been acted on
                    raise httpx.RemoteProtocolError(str(exc), request=request) from exc
                connection = None
        if connection is None:
            connection = await self._connect(key, request, timeouts)
            head = await self._send(connection, request, timeouts)
        stream = _Body(self, key, connection, request, timeouts.get("read"))
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=stream,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    def _take_idle(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()  # the most recently used: the least likely closed
            if connection.usable(expiry=self._expiry):
                return connection
            self._close(connection)
        return None

    async def _connect(
        self, key: Key, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> Connection:
        scheme, host, port = key
        timeout = timeouts.get("connect")
        try:
            stream = await self._backend.connect_tcp(host, port, timeout=timeout)
            if scheme == "https":
                stream = await stream.start_tls(self._tls, server_hostname=host, timeout=timeout)
        except httpx.TransportError as exc:
            exc.request = request
            raise
        connection = Connection(stream)
        self._open.add(connection)
        return connection

    async def _send(
        self, connection: Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> h11.Response:
        try:
            return await connection.send(request, timeouts)
        except BaseException as exc:
            self._close(connection)
            if isinstance(exc, httpx.TransportError):
                exc.request = request
            raise

    def release(self, key: Key, connection: Connection) -> None:
        """Keep ``connection`` (its exchange ended cleanly) for the next request to ``key``."""
        idle = self._idle.pop(key, [])
        self._idle[key] = idle  # now the most recently used origin
        if len(idle) >= self._keep:
            self._close(connection)
        else:
            idle.append(connection)
        while len(self._idle) > self._max_origins:
            _, dropped = self._idle.popitem(last=False)
            for old in dropped:
                self._close(old)

    def _close(self, connection: Connection) -> None:
        self._open.discard(connection)
        connection.close()

    def discard(self, connection: Connection) -> None:
        """Close ``connection``: its exchange did not end cleanly."""
        self._close(connection)

    async def aclose(self) -> None:
        for connection in list(self._open):
            self._close(connection)
        self._idle.clear()


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection, which goes back to the transport
    when the body has been read to its end, and is closed otherwise."""

    def __init__(
        self,
        transport: PinnedTransport,
        key: Key,
        connection: Connection,
        request: httpx.Request,
        timeout: float | None,
    ) -> None:
        self._transport = transport
        self._key = key
        self._connection: Connection | None = connection
        self._request = request
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        try:
            while (piece := await connection.data(self._request, self._timeout)) is not None:
                yield piece
        except BaseException as exc:
            self._finish(clean=False)
            if isinstance(exc, httpx.TransportError):
                exc.request = self._request
            raise
        self._finish(clean=True)

    def _finish(self, *, clean: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if clean and connection.finish():
            self._transport.release(self._key, connection)
        else:
            self._transport.discard(connection)

    async def aclose(self) -> None:
        self._finish(clean=False)  # closed before its end: the connection is unusable
