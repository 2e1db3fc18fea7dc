"""The daemon's status endpoints: /healthz, /readyz and Prometheus /metrics.

A minimal HTTP/1.1 server on asyncio (GET only, one response per connection): enough
for a load balancer, Kubernetes probes and a Prometheus scrape, with no web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ingest.metrics import Metrics

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0  # seconds a client may take to send its request head
MAX_HEAD = 8192


@dataclass(frozen=True, slots=True)
class Probe:
    """The answer of a probe: ready or healthy, and why."""

    ok: bool
    reason: str


class StatusServer:
    """Serve the status endpoints until ``close()``."""

    def __init__(
        self, metrics: Metrics, *, health: Callable[[], Probe], ready: Callable[[], Probe]
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._ready = ready
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0 picks a free one); return the bound port."""
        self._server = await asyncio.start_server(self._handle, host, port)
        bound = int(self._server.sockets[0].getsockname()[1])
        logger.info("status: listening on http://%s:%d (/healthz /readyz /metrics)", host, bound)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            status, content_type, body = self._route(head[:MAX_HEAD])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, content_type, body = "400 Bad Request", "text/plain", "bad request\n"
        except ConnectionError:
            writer.close()
            return
        payload = body.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _route(self, head: bytes) -> tuple[str, str, str]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or parts[0] not in {"GET", "HEAD"}:
            return "405 Method Not Allowed", "text/plain", "GET only\n"
        path = parts[1].split("?", 1)[0]
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", self._metrics.render()
        probes = {"/healthz": self._health, "/readyz": self._ready}
        if path not in probes:
            return "404 Not Found", "text/plain", "not found\n"
        probe = probes[path]()
        status = "200 OK" if probe.ok else "503 Service Unavailable"
        return status, "text/plain; charset=utf-8", probe.reason + "\n"
