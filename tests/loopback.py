"""A real HTTP server on 127.0.0.1 and an ephemeral port, for tests.

Routes map a path (with query) to a Response or to a callable that builds one from the
request; every request the server received is kept in ``requests`` so tests assert on
what actually went over the wire (conditional headers, User-Agent, how often a page was
asked for).
"""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/html; charset=utf-8"
    gzip: bool = False


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    peer: tuple[str, int] = ("", 0)  # the client's address and port: one per connection


Handler = Callable[[Request], Response]


class LoopbackServer:
    """Serve ``routes`` until ``close()``; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, response: Response | Handler) -> str:
        """Serve ``response`` at ``path`` and return its absolute URL."""
        self.routes[path] = response
        return self.url(path)

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request("GET", self.path, headers, peer=self.client_address[:2])
                with server._lock:
                    server.requests.append(request)
                route = server.routes.get(self.path)
                if route is None:
                    response = Response(b"not found", status=404, content_type="text/plain")
                elif callable(route):
                    response = route(request)
                else:
                    response = route
                self._send(response)

            def _send(self, response: Response) -> None:
                body = response.body
                self.send_response(response.status)
                if response.content_type:
                    self.send_header("Content-Type", response.content_type)
                if response.gzip:
                    body = gzip.compress(body)
                    self.send_header("Content-Encoding", "gzip")
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and response.status not in (204, 304):
                    # The client may give up (a size cap, a timeout): not the server's failure.
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test output quiet

        return _Handler
