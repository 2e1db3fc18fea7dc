"""Fetch one URL over HTTP: the one module that imports httpx.

A `Fetcher` owns one shared `httpx.AsyncClient` and the limits around it: a total
deadline per request, a cap on the decoded body, a redirect budget with loop detection,
a refusal to contact private addresses, and semaphores for overall and per-host
concurrency. A 2xx or a 304 comes back as a `Page`; anything else raises `FetchError`,
translated from httpx's exceptions in exactly one place (`Fetcher.get`, by `_describe`).

The body is decoded here, not by httpx: httpx decodes each network chunk in one call,
so 300 bytes of brotli can become 200 MB before any cap is checked. `_Decoder` inflates
in bounded pieces, so `max_body_bytes` really bounds what is held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

import brotli
import httpx

from ingest.config import Settings
from ingest.errors import BlockedAddressError, FetchError
from ingest.models import Page, Validators

logger = logging.getLogger(__name__)

DEFAULT_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "text/html;q=0.8, */*;q=0.5"
)
ACCEPT_ENCODING = "gzip, deflate, br"  # exactly what _Decoder can undo
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PIECE = 64 * 1024  # largest piece a decoder hands out at once

# Cloud metadata endpoints (AWS, GCP, Azure: 169.254.169.254; AWS IPv6: fd00:ec2::254).
# Both are link-local or private anyway; named so the intent survives a refactor.
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are IPv4


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_blocked_address(address: str) -> bool:
    """True if we must not connect to `address` while private networks are disallowed.

    Blocks private, loopback, link-local, multicast, reserved, unspecified, shared
    (100.64/10: `is_global` is false) and cloud metadata addresses, after unwrapping
    IPv4 embedded in IPv6 (mapped ::ffff:a.b.c.d, 6to4 2002::/16, NAT64 64:ff9b::/96).
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_blocked_address(str(embedded))
    return (
        ip in _METADATA
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def _check_address(url: httpx.URL, *, requested: str) -> None:
    """Refuse `url` if its host is, or resolves to, any blocked address.

    We check what the resolver says now; httpx resolves again when it connects, so a
    hostile DNS server could answer differently the second time (DNS rebinding).
    Pinning the connection to the checked address is issue 4.
    """
    host = url.raw_host.decode("ascii")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve host {host}", url=requested) from exc
        addresses = [str(info[4][0]) for info in infos]
    blocked = [a for a in addresses if is_blocked_address(a)]
    if blocked:
        raise BlockedAddressError(f"blocked address {blocked[0]} for {host}", url=requested)


class _Stage(Protocol):
    """Undoes one content coding, handing out pieces of at most about `_PIECE` bytes."""

    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def flush(self) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Inflate:
    """gzip, or zlib-wrapped deflate, or raw deflate, depending on `wbits`."""

    def __init__(self, wbits: int) -> None:
        self._inflater = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            out = self._inflater.decompress(data, _PIECE)
            if out:
                yield out
            data = self._inflater.unconsumed_tail
            if not data and len(out) < _PIECE:
                return  # all input used and nothing held back

    def flush(self) -> Iterator[bytes]:
        if rest := self._inflater.flush():
            yield rest


class _Deflate:
    """HTTP "deflate" is meant to be zlib-wrapped (RFC 9112 §7.2); IIS sends it raw."""

    def __init__(self) -> None:
        self._head = b""  # the first two bytes tell which, and may arrive one by one
        self._inner: _Inflate | None = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inner is None:
            self._head += data
            if len(self._head) < 2:
                return iter(())
            data, self._head = self._head, b""
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inner = _Inflate(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return self._inner.feed(data)

    def flush(self) -> Iterator[bytes]:
        if self._inner is None:  # a body of one byte: let raw inflate judge it
            self._inner = _Inflate(-zlib.MAX_WBITS)
            yield from self._inner.feed(self._head)
        yield from self._inner.flush()


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield self._decompressor.process(data, output_buffer_limit=_PIECE)
        while not self._decompressor.can_accept_more_data():
            yield self._decompressor.process(b"", output_buffer_limit=_PIECE)

    def flush(self) -> Iterator[bytes]:
        # can_accept_more_data() may be true with output still pending: drain it.
        while not self._decompressor.is_finished():
            out: bytes = self._decompressor.process(b"", output_buffer_limit=_PIECE)
            if not out:
                return
            yield out


_STAGES: dict[str, Callable[[], _Stage]] = {
    "gzip": lambda: _Inflate(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: _Inflate(16 + zlib.MAX_WBITS),
    "deflate": _Deflate,
    "br": _Brotli,
}


class _Decoder:
    """Undo a Content-Encoding chain in bounded pieces (see the module docstring)."""

    def __init__(self, content_encoding: str, *, url: str) -> None:
        # Codings are listed in the order applied (RFC 9110 §8.4), so undone in reverse.
        codings = [c.strip().lower() for c in reversed(content_encoding.split(","))]
        self._codings = [c for c in codings if c not in ("", "identity")]
        self._url = url
        self._stages: list[_Stage] = []
        for coding in self._codings:
            if coding not in _STAGES:
                # Like httpx, pass it through: misconfigured servers label plain bodies
                # "utf-8" or "none". Said out loud rather than silently.
                logger.warning("fetch unknown content-encoding url=%s error=%s", url, coding)
            self._stages.append(_STAGES.get(coding, _Identity)())

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw chunk."""
        return self._guarded(self._through(0, iter((data,))))

    def finish(self) -> Iterator[bytes]:
        """Whatever the stages still hold once the raw body has ended."""
        return self._guarded(
            piece
            for index, stage in enumerate(self._stages)
            for piece in self._through(index + 1, stage.flush())
        )

    def _through(self, index: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        if index == len(self._stages):
            yield from (piece for piece in pieces if piece)
            return
        for piece in pieces:
            yield from self._through(index + 1, self._stages[index].feed(piece))

    def _guarded(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from pieces
        except (zlib.error, brotli.error) as exc:
            coding = ", ".join(self._codings)
            raise FetchError(f"cannot decode {coding} body", url=self._url) from exc


def _parse_content_type(value: str | None) -> tuple[str, str | None]:
    """("text/html", "utf-8") from 'text/HTML; charset="UTF-8"'."""
    if not value:
        return "", None
    media_type, *params = value.split(";")
    charset = None
    for param in params:
        name, _, raw = param.partition("=")
        if name.strip().lower() == "charset" and raw.strip().strip('"'):
            charset = raw.strip().strip('"').lower()
    return media_type.strip().lower(), charset


def _validators(response: httpx.Response, previous: Validators | None) -> Validators:
    """The response's ETag/Last-Modified; on a 304, the old ones fill what it omits."""
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    if response.status_code == 304 and previous is not None:
        etag = etag or previous.etag
        last_modified = last_modified or previous.last_modified
    return Validators(etag=etag, last_modified=last_modified)


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of `kind` in the __cause__/__context__ chain of `exc`."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _describe(exc: httpx.HTTPError | httpx.InvalidURL, settings: Settings) -> str:
    """What went wrong, in the words of the stage, for one httpx exception."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {settings.connect_timeout:g}s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"read timed out after {settings.read_timeout:g}s"
    if isinstance(exc, httpx.TimeoutException):  # write or pool
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "invalid URL"
    tls = _cause(exc, ssl.SSLError)
    if tls is not None:
        return f"TLS error: {getattr(tls, 'reason', None) or tls}"
    if _cause(exc, ConnectionRefusedError) is not None:
        return "connection refused"
    if _cause(exc, socket.gaierror) is not None:
        return "cannot resolve host"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return f"protocol error: {exc}"
    if isinstance(exc, httpx.NetworkError):
        return f"connection broken: {exc}"
    return f"{type(exc).__name__}: {exc}"


class _HostSlots:
    """The per-host semaphore and how many requests hold or await it."""

    __slots__ = ("semaphore", "users")

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.users = 0


class Fetcher:
    """One shared httpx.AsyncClient plus the limits; an async context manager."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._now = now
        self._client: httpx.AsyncClient | None = None
        self._all = asyncio.Semaphore(settings.concurrency)
        # An entry lives only while some request holds or awaits it, so the dict never
        # outgrows the requests in flight.
        self._hosts: dict[str, _HostSlots] = {}

    async def __aenter__(self) -> Fetcher:
        s = self._settings
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            verify=True,  # always: there is deliberately no setting to turn it off
            # Proxies and netrc from the environment would bypass the address check.
            trust_env=False,
            follow_redirects=False,  # followed by hand, checking every hop
            timeout=httpx.Timeout(
                connect=s.connect_timeout,
                read=s.read_timeout,
                write=s.read_timeout,  # we only send small GETs: no setting of its own
                pool=s.total_timeout,
            ),
            limits=httpx.Limits(max_connections=s.concurrency),
            headers={"User-Agent": s.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            transport=self._transport,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(
        self, url: str, *, validators: Validators | None = None, accept: str | None = None
    ) -> Page:
        """GET `url`, following redirects: a Page for 2xx and 304, else FetchError."""
        started = time.monotonic()
        headers = {"Accept": accept or DEFAULT_ACCEPT}
        if validators is not None and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators is not None and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        try:
            try:
                page = await self._follow(url, headers=headers, validators=validators)
            except TimeoutError as exc:  # the total deadline of _follow
                total = self._settings.total_timeout
                raise FetchError(f"timed out after {total:g}s", url=url) from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # the one translation
                raise FetchError(_describe(exc, self._settings), url=url) from exc
        except FetchError as error:
            logger.debug(
                "fetch failed url=%s status=%s elapsed_ms=%d error=%s",
                url, error.status, _ms_since(started), error,
            )  # fmt: skip
            raise
        logger.debug(
            "fetch url=%s final_url=%s status=%d bytes=%d elapsed_ms=%d",
            url, page.final_url, page.status, len(page.body), _ms_since(started),
        )  # fmt: skip
        return page

    async def _follow(
        self, url: str, *, headers: dict[str, str], validators: Validators | None
    ) -> Page:
        """Every hop of one request, within one total deadline."""
        current = _parse_url(url, requested=url)
        seen = {str(current)}
        # The deadline starts once the first slot is ours: waiting in the queue behind
        # other requests is not this request being slow.
        async with asyncio.timeout(None) as deadline:
            for _ in range(self._settings.max_redirects + 1):
                async with self._slot(current.host):
                    if deadline.when() is None:
                        loop = asyncio.get_running_loop()
                        deadline.reschedule(loop.time() + self._settings.total_timeout)
                    if not self._settings.allow_private_networks:
                        await _check_address(current, requested=url)
                    outcome = await self._hop(current, url, headers, validators)
                if isinstance(outcome, Page):
                    return outcome
                current = outcome
                if str(current) in seen:
                    raise FetchError(f"redirect loop at {current}", url=url)
                seen.add(str(current))
        raise FetchError(f"too many redirects (more than {self._settings.max_redirects})", url=url)

    async def _hop(
        self,
        target: httpx.URL,
        requested: str,
        headers: dict[str, str],
        validators: Validators | None,
    ) -> Page | httpx.URL:
        """One request: a Page, or the URL a redirect points to."""
        if self._client is None:
            raise RuntimeError("Fetcher used outside `async with`")
        async with self._client.stream("GET", target, headers=headers) as response:
            status = response.status_code
            if status in REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {status} without Location", url=requested)
                return _parse_url(location, requested=requested, base=target)
            if status == 304 or 200 <= status < 300:
                body = b"" if status == 304 else await self._read(response, requested)
                return self._page(response, requested, body, validators)
            retry_after = response.headers.get("retry-after")
            suffix = f" (retry-after {retry_after})" if retry_after else ""
            raise FetchError(
                f"HTTP {status}{suffix}", url=requested, status=status, retry_after=retry_after
            )

    async def _read(self, response: httpx.Response, requested: str) -> bytes:
        """The decoded body, refusing it as soon as it passes `max_body_bytes`."""
        cap = self._settings.max_body_bytes
        too_big = FetchError(f"body larger than {cap} bytes", url=requested)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise too_big
        body = bytearray()
        async with contextlib.aclosing(_decoded(response, requested)) as pieces:
            async for piece in pieces:
                if len(body) + len(piece) > cap:
                    raise too_big
                body += piece
        return bytes(body)

    def _page(
        self,
        response: httpx.Response,
        requested: str,
        body: bytes,
        validators: Validators | None,
    ) -> Page:
        content_type, charset = _parse_content_type(response.headers.get("content-type"))
        return Page(
            url=requested,
            final_url=str(response.url),
            status=response.status_code,
            content_type=content_type,
            charset=charset,
            body=body,
            fetched_at=self._now(),
            validators=_validators(response, validators),
            headers=tuple((k.lower(), v) for k, v in response.headers.multi_items()),
        )

    @contextlib.asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """Hold one per-host slot, then one overall slot (in that order, so requests
        queued for a busy host do not sit on overall slots other hosts could use)."""
        slots = self._hosts.get(host)
        if slots is None:
            slots = self._hosts[host] = _HostSlots(self._settings.per_host_concurrency)
        slots.users += 1
        try:
            async with slots.semaphore, self._all:
                yield
        finally:
            slots.users -= 1
            if slots.users == 0:
                del self._hosts[host]


async def _decoded(response: httpx.Response, requested: str) -> AsyncGenerator[bytes]:
    """The body in decoded pieces, from the raw bytes (httpx's decoding is unbounded)."""
    decoder = _Decoder(response.headers.get("content-encoding", ""), url=requested)
    async for raw in response.aiter_raw():
        for piece in decoder.decode(raw):
            yield piece
    for piece in decoder.finish():
        yield piece


def _parse_url(value: str, *, requested: str, base: httpx.URL | None = None) -> httpx.URL:
    """An absolute http(s) URL with a host, resolved against `base` for redirects."""
    try:
        url = base.join(value) if base is not None else httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise FetchError("invalid URL", url=requested) from exc
    if url.scheme not in ("http", "https"):
        where = "redirect to " if base is not None else ""
        raise FetchError(f"{where}unsupported scheme {url.scheme or '(none)'!r}", url=requested)
    if not url.host:
        raise FetchError("invalid URL (no host)", url=requested)
    return url


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
