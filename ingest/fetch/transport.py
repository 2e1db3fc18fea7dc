"""The httpx transport that resolves names itself and connects only to checked addresses.

httpx resolves a name when it connects; checking the name beforehand would resolve it a
second time, and a hostile DNS server could answer "public" to the check and "private"
to the connection (DNS rebinding). `PinnedBackend` closes that gap: it resolves once,
checks every address, and connects to a checked address. httpcore then starts TLS on
that connection with the URL's host name, so SNI and certificate verification are about
the name, exactly as without pinning.

Connections are asyncio's own streams (`AsyncioStream`), not httpcore's default through
anyio, and each origin has a small httpcore pool of its own (`OriginPools`): see why
there. httpx still does everything else: HTTP/1.1, TLS settings, error mapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import ssl
import sys
import typing
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import httpcore
import httpx

from ingest.fetch.addresses import Resolver, ip_literal, refuse_blocked


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with our resolver and address check in front."""

    def __init__(self, *, resolver: Resolver, allow_private: bool) -> None:
        self._resolver = resolver
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        if not self._allow_private:
            refuse_blocked(host, addresses)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:  # like socket.create_connection: the first that answers
            try:
                return await AsyncioStream.connect(
                    address, port, timeout=timeout, local_address=local_address
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
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
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise httpcore.ConnectError(f"cannot resolve host {host}") from exc
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@contextlib.contextmanager
def _mapped(
    timeout: type[httpcore.TimeoutException], failure: type[httpcore.NetworkError]
) -> Iterator[None]:
    """Socket errors as the httpcore errors httpx translates (the cause kept)."""
    try:
        yield
    except TimeoutError as exc:  # before OSError, of which it is a subclass
        raise timeout(str(exc)) from exc
    except OSError as exc:  # ssl.SSLError included
        raise failure(str(exc) or type(exc).__name__) from exc


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection on asyncio's streams, for httpcore.

    httpcore's default stream goes through anyio, whose cancel scopes and attribute
    lookups (it asks the peer's address of the socket each time httpcore checks an
    idle connection) cost about a third of a 304's CPU. asyncio's streams, with
    asyncio's own TLS, do the same I/O directly.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(
        cls, address: str, port: int, *, timeout: float | None, local_address: str | None
    ) -> AsyncioStream:
        local = (local_address, 0) if local_address else None
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(address, port, local_addr=local)
        return cls(reader, writer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            if not self._writer.transport.get_write_buffer_size():
                await self._writer.drain()  # all sent: this only reports a broken connection
                return
            async with asyncio.timeout(timeout):
                await self._writer.drain()

    async def aclose(self) -> None:
        # Not waiting for the close to finish: a TLS peer may never answer ours.
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
                async with asyncio.timeout(timeout):
                    await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            await self.aclose()
            raise
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":  # asked of an idle connection: did the server close it?
            return self._reader.at_eof() or self._reader.exception() is not None
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info in ("socket", "ssl_object"):
            return self._writer.get_extra_info(info)
        return None


@dataclass(slots=True, eq=False)
class _Pool:
    pool: httpcore.AsyncConnectionPool
    users: int = 0  # requests handed to the pool and not yet answered

    def idle(self) -> bool:
        """No request in it, and no connection connecting or serving a response."""
        return self.users == 0 and all(c.is_idle() or c.is_closed() for c in self.pool.connections)


Key = tuple[bytes, bytes, int]  # scheme, host, port: httpcore.Origin is not hashable


class OriginPools:
    """One httpcore pool per origin; past `max_pools`, the least recently used idle
    ones are closed.

    httpcore's pool looks at every one of its connections on each request and each
    response, asks the socket of every idle one whether the server closed it, and
    closes idle connections as soon as it holds more connections (idle or not) than
    its keep-alive limit. Over a poll cycle of many hosts a single pool must either
    keep many connections, and pay for each of them on every request (4-6 ms of CPU per
    request at 64), or keep few, and open a new connection for nearly every request.
    A pool per origin only ever looks at its own few connections.
    """

    def __init__(
        self, make_pool: Callable[[], httpcore.AsyncConnectionPool], *, max_pools: int
    ) -> None:
        self._make_pool = make_pool
        self._max_pools = max_pools
        self._pools: OrderedDict[Key, _Pool] = OrderedDict()  # least recently used first

    @property
    def connections(self) -> list[httpcore.AsyncConnectionInterface]:
        """Every connection of every pool (for tests and diagnostics)."""
        return [c for entry in self._pools.values() for c in entry.pool.connections]

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == b"https" else 80))
        entry = self._pools.pop(key, None) or _Pool(self._make_pool())
        self._pools[key] = entry
        entry.users += 1
        try:
            for old in self._evict():
                await old.pool.aclose()
            return await entry.pool.handle_async_request(request)
        finally:
            entry.users -= 1

    def _evict(self) -> list[_Pool]:
        """Take the least recently used idle pools past `max_pools` out of the table."""
        excess = len(self._pools) - self._max_pools
        if excess <= 0:
            return []
        evicted: list[_Pool] = []
        for key, entry in list(self._pools.items()):
            if len(evicted) >= excess:
                break
            if entry.idle():
                del self._pools[key]
                evicted.append(entry)
        return evicted

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for entry in pools:
            await entry.pool.aclose()

    async def __aenter__(self) -> OriginPools:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response conversion, error mapping), our backend
    and a pool per origin.

    `limits.max_connections` bounds the connections of one origin (the Fetcher bounds
    requests in flight itself), `max_keepalive_connections` the idle ones kept per
    origin, and `max_origins` how many origins keep theirs.
    """

    def __init__(self, *, backend: PinnedBackend, limits: httpx.Limits, max_origins: int) -> None:
        # TLS is always verified: there is deliberately no setting to turn it off.
        super().__init__(verify=True, trust_env=False, http1=True, http2=False, limits=limits)
        _remember_sniffio_is_missing()
        ssl_context = httpx.create_ssl_context(verify=True, trust_env=False)

        def make_pool() -> httpcore.AsyncConnectionPool:
            return httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                http1=True,
                http2=False,
                network_backend=backend,
            )

        # httpx 0.28 has no parameter to hand its pool a network backend, so the pool it
        # just built (no sockets yet) is replaced by ours, which uses our backend. httpx
        # is pinned below 0.29 in pyproject.toml; test_fetch.py::test_name_resolving_to_
        # loopback_is_refused_at_connect_time fails if the pools ever stop using it.
        self._pool = OriginPools(make_pool, max_pools=max_origins)  # type: ignore[assignment]


def _remember_sniffio_is_missing() -> None:
    """Make `import sniffio` fail at once when sniffio is not installed.

    httpcore 1.0 tries `import sniffio` for every lock and event it sets up, several
    per request, and anyio 4 no longer installs it. A failed import is not cached, so
    each attempt searched sys.path again: about 0.1 ms, 0.6 ms of CPU per request. A
    None in sys.modules is Python's own record of "no such module".
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
