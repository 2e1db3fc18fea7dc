"""The httpx transport that resolves names itself and connects only to checked addresses.

httpx resolves a name when it connects; checking the name beforehand would resolve it a
second time, and a hostile DNS server could answer "public" to the check and "private"
to the connection (DNS rebinding). `PinnedBackend` closes that gap: it resolves once,
checks every address, and connects to a checked address. httpcore then starts TLS on
that connection with the URL's host name, so SNI and certificate verification are about
the name, exactly as without pinning.
"""

from __future__ import annotations

import asyncio
import socket
import typing

import httpcore
import httpx

from ingest.fetch.addresses import Resolver, ip_literal, refuse_blocked


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with our resolver and address check in front."""

    def __init__(self, *, resolver: Resolver, allow_private: bool) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

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
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
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
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response conversion, error mapping), our backend."""

    def __init__(self, *, backend: PinnedBackend, limits: httpx.Limits) -> None:
        super().__init__(verify=True, trust_env=False, http1=True, http2=False, limits=limits)
        # httpx 0.28 has no parameter to hand its pool a network backend, so the pool it
        # just built (no sockets yet) is replaced by the same pool with ours. httpx is
        # pinned below 0.29 in pyproject.toml; test_fetch.py::test_name_resolving_to_loopback_
        # is_refused_at_connect_time fails if the pool ever stops using our backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=True, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )
