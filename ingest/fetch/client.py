"""The Fetcher: one shared httpx transport and every limit around it.

A 2xx or a 304 comes back as a `Page`; anything else raises `FetchError`, translated
from httpx's exceptions in exactly one place (`Fetcher._fetch`, by `_describe`). What
one `get` goes through, in order, for every hop of a redirect chain:

    host asked us to wait (Retry-After)?   fail fast, no network
    robots.txt (article pages only)        robots.Robots, same client and limits
    a per-host slot, then an overall one   hosts.Hosts: concurrency and per-host delay
    connect                                transport.PinnedBackend: resolve, check, pin
    status                                 redirect (loop/budget checked), 2xx/304, error
    content type                           content.unexpected, before the body is read
    body                                   decode.Decoder, stopped at max_body_bytes

The total deadline covers the network part of all hops; time spent queueing for a slot,
waiting out the per-host delay or reading robots.txt is not this request being slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType

import httpx

from ingest import __version__
from ingest.config import DEFAULT_USER_AGENT, Settings
from ingest.errors import (
    BlockedAddressError,
    FetchError,
    RobotsDisallowedError,
    UnexpectedContentTypeError,
)
from ingest.fetch.addresses import (
    RefusedAddress,
    Resolver,
    ip_literal,
    refuse_blocked,
    system_resolver,
)
from ingest.fetch.content import Expect, parse_content_type, unexpected
from ingest.fetch.decode import ACCEPT_ENCODING, Decoder
from ingest.fetch.hosts import Hosts, parse_retry_after
from ingest.fetch.robots import MAX_ROBOTS_BYTES, Robots, RobotsAnswer
from ingest.fetch.transport import PinnedBackend, PinnedTransport
from ingest.models import Page, Validators

logger = logging.getLogger(__name__)

DEFAULT_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "text/html;q=0.8, */*;q=0.5"
)
ROBOTS_ACCEPT = "text/plain, */*;q=0.5"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
WAIT_STATUSES = frozenset({429, 503})  # whose Retry-After we remember per host
# Origins whose idle connections are kept for reuse (each connection is one file
# descriptor, closed after httpx's 5 s of keep-alive): more than the hosts of a cycle
# that repeat within seconds (bench/e2e.py's idle cycle: 10,000 feeds on 50 hosts).
IDLE_ORIGINS = 128
DISCARD_BYTES = 64 * 1024  # the most of an unwanted body read to keep its connection
DISCARD_SECONDS = 1.0  # and the longest wait for it


def _utcnow() -> datetime:
    return datetime.now(UTC)


def user_agent(settings: Settings) -> str:
    """`user_agent` as configured, unless left at its default: then it is built from
    our version and `contact_url`, "ingest/<version> (+<contact_url>)"."""
    if settings.user_agent != DEFAULT_USER_AGENT:
        return settings.user_agent
    return f"ingest/{__version__} (+{settings.contact_url})"


def product_token(agent: str) -> str:
    """The name robots.txt groups are matched against: "ingest" of "ingest/0.1 (+…)"."""
    return agent.split("/", 1)[0].split()[0] if agent.strip() else "ingest"


@dataclass(frozen=True, slots=True)
class _Options:
    """What one `get` asked for, carried through its hops."""

    headers: dict[str, str] = field(default_factory=dict)
    validators: Validators | None = None
    expect: Expect | None = None
    robots: bool = False
    max_bytes: int = 0
    truncate: bool = False  # robots.txt: keep the first max_bytes instead of failing


PERMANENT_REDIRECTS = frozenset({301, 308})  # RFC 9110 §15.4: the others are temporary


@dataclass(frozen=True, slots=True)
class _Redirect:
    url: httpx.URL
    permanent: bool


class Fetcher:
    """One shared httpx transport plus the limits; an async context manager."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._resolver = resolver
        self._now = now
        self._agent = user_agent(settings)
        self._headers = {"User-Agent": self._agent, "Accept-Encoding": ACCEPT_ENCODING}
        self._timeouts = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,  # we only send small GETs: no setting of its own
            pool=settings.total_timeout,
        ).as_dict()
        self._http: httpx.AsyncBaseTransport | None = None
        self._all = asyncio.Semaphore(settings.concurrency)
        self._hosts = Hosts(
            concurrency=settings.per_host_concurrency, delay=settings.per_host_delay, now=now
        )
        self._robots = Robots(self._robots_txt, agent=product_token(self._agent), now=now)

    async def __aenter__(self) -> Fetcher:
        s = self._settings
        # `_all` and the per-host slots bound the requests in flight, so the transport
        # needs no bound of its own, and keeps as many idle connections per origin as a
        # host may have requests in flight (plus its robots.txt).
        limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=s.per_host_concurrency + 1
        )
        backend = PinnedBackend(resolver=self._resolver, allow_private=s.allow_private_networks)
        self._http = self._transport or PinnedTransport(
            backend=backend, limits=limits, max_origins=IDLE_ORIGINS
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
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def get(
        self,
        url: str,
        *,
        validators: Validators | None = None,
        accept: str | None = None,
        expect: Expect | None = None,
        robots: bool | None = False,
    ) -> Page:
        """GET `url`, following redirects: a Page for 2xx and 304, else FetchError.

        `expect` ("feed" or "html") refuses a clearly wrong Content-Type before the body
        is read. `robots`: False (the default, and what feeds want) skips robots.txt;
        True always obeys it; None obeys it if `respect_robots` says so (article pages
        pass their source's override, None when it has none).
        """
        started = time.monotonic()
        options = _Options(
            headers=_request_headers(accept, validators),
            validators=validators,
            expect=expect,
            robots=self._settings.respect_robots if robots is None else robots,
            max_bytes=self._settings.max_body_bytes,
        )
        try:
            page = await self._fetch(url, options)
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

    async def _fetch(self, url: str, options: _Options) -> Page:
        """`_follow`, with every library error translated, here and nowhere else."""
        try:
            return await self._follow(url, options)
        except TimeoutError as exc:  # the total deadline of _follow
            total = self._settings.total_timeout
            raise FetchError(f"timed out after {total:g}s", url=url) from exc
        except RefusedAddress as exc:  # from the transport, which does not know the URL
            raise BlockedAddressError(str(exc), url=url) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchError(_describe(exc, self._settings), url=url) from exc

    async def _follow(self, url: str, options: _Options) -> Page:
        """Every hop of one request, within one total deadline."""
        current = _parse_url(url, requested=url)
        seen = {str(current)}
        permanent = True  # every redirect so far was permanent (301, 308)
        async with asyncio.timeout(None) as deadline:
            for _ in range(self._settings.max_redirects + 1):
                key = _host_key(current)
                if not self._settings.allow_private_networks:
                    _refuse_literal(current, requested=url)
                self._hosts.refuse_if_waiting(key, url=url)  # before queueing: fail fast
                remaining = self._pause(deadline)
                if options.robots:
                    await self._obey_robots(current, key, requested=url)
                async with self._hosts.slot(key), self._all:
                    self._resume(deadline, remaining)
                    self._hosts.refuse_if_waiting(key, url=url)  # it may have come meanwhile
                    outcome = await self._hop(current, url, options)
                if isinstance(outcome, Page):
                    # Redirected at all (a loop back to `url` is refused), and permanently.
                    moved = permanent and len(seen) > 1
                    return replace(outcome, permanent_redirect=str(current)) if moved else outcome
                current, permanent = outcome.url, permanent and outcome.permanent
                if str(current) in seen:
                    raise FetchError(f"redirect loop at {current}", url=url)
                seen.add(str(current))
        raise FetchError(f"too many redirects (more than {self._settings.max_redirects})", url=url)

    def _pause(self, deadline: asyncio.Timeout) -> float:
        """Stop the deadline's clock (queueing, politeness and robots.txt are not this
        request being slow); return the seconds it has left. Before the first hop it
        has not started: all of `total_timeout`."""
        when = deadline.when()
        remaining = self._settings.total_timeout
        if when is not None:
            remaining = when - asyncio.get_running_loop().time()
        deadline.reschedule(None)
        return remaining

    @staticmethod
    def _resume(deadline: asyncio.Timeout, remaining: float) -> None:
        deadline.reschedule(asyncio.get_running_loop().time() + remaining)

    async def _hop(self, target: httpx.URL, requested: str, options: _Options) -> Page | _Redirect:
        """One request: a Page, or where a redirect points."""
        async with self._send(target, options.headers) as response:
            status = response.status_code
            if 200 <= status < 300:
                self._check_type(response, requested, options.expect)
                body = await _read(response, requested, options)
                return self._page(response, requested, body, options.validators)
            await _discard(response)
            if status in REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {status} without Location", url=requested)
                return _Redirect(
                    _parse_url(location, requested=requested, base=target),
                    permanent=status in PERMANENT_REDIRECTS,
                )
            if status == 304:
                return self._page(response, requested, b"", options.validators)
            raise self._status_error(response, target, requested)

    @contextlib.asynccontextmanager
    async def _send(self, url: httpx.URL, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        """GET `url` on the transport itself, the response closed on exit.

        Not through httpx.AsyncClient: what it adds (redirects, auth, cookies, proxies
        from the environment, event hooks) we do by hand or must not do, and building
        its request and response objects cost a fifth of a 304's CPU.
        """
        if self._http is None:
            raise RuntimeError("Fetcher used outside `async with`")
        request = httpx.Request(
            "GET", url, headers={**self._headers, **headers}, extensions={"timeout": self._timeouts}
        )
        response = await self._http.handle_async_request(request)
        response.request = request
        try:
            yield response
        finally:
            await response.aclose()

    def _status_error(
        self, response: httpx.Response, target: httpx.URL, requested: str
    ) -> FetchError:
        """The error for a status we do not accept; a wait it asks for is remembered."""
        status = response.status_code
        retry_after = response.headers.get("retry-after")
        if status in WAIT_STATUSES:
            until = parse_retry_after(retry_after, now=self._now())
            if until is not None:
                self._hosts.wait(_host_key(target), until, status=status)
        suffix = f" (retry-after {retry_after})" if retry_after else ""
        return FetchError(
            f"HTTP {status}{suffix}", url=requested, status=status, retry_after=retry_after
        )

    @staticmethod
    def _check_type(response: httpx.Response, requested: str, expect: Expect | None) -> None:
        media_type, _ = parse_content_type(response.headers.get("content-type"))
        reason = unexpected(media_type, length=_declared_length(response), expect=expect)
        if reason is not None:
            raise UnexpectedContentTypeError(reason, url=requested, status=response.status_code)

    def _page(
        self,
        response: httpx.Response,
        requested: str,
        body: bytes,
        validators: Validators | None,
    ) -> Page:
        content_type, charset = parse_content_type(response.headers.get("content-type"))
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

    async def _obey_robots(self, target: httpx.URL, key: str, *, requested: str) -> None:
        """Raise FetchError unless robots.txt of `target`'s origin lets us fetch it."""
        origin = f"{target.scheme}://{key}"
        try:
            verdict = await self._robots.verdict(str(target), origin=origin)
        except FetchError as exc:  # a blocked host, or one that asked us to wait
            self._hosts.refuse_if_waiting(key, url=requested)
            raise type(exc)(
                exc.reason, url=requested, status=exc.status, retry_after=exc.retry_after
            ) from exc
        if verdict.crawl_delay is not None:
            self._hosts.set_crawl_delay(key, verdict.crawl_delay)
        if verdict.unreachable is not None:
            raise FetchError(f"robots.txt unreachable ({verdict.unreachable})", url=requested)
        if not verdict.allowed:
            raise RobotsDisallowedError("disallowed by robots.txt", url=requested)

    async def _robots_txt(self, url: str) -> RobotsAnswer:
        """Fetch one robots.txt for `Robots`: an answer, or the error that is not one."""
        options = _Options(
            headers={"Accept": ROBOTS_ACCEPT}, max_bytes=MAX_ROBOTS_BYTES, truncate=True
        )
        try:
            page = await self._fetch(url, options)
        except BlockedAddressError:
            raise  # the page's host is blocked: say so, not "robots.txt unreachable"
        except FetchError as exc:
            # A wait asked for (maybe by this very response) is the host's answer about
            # everything, not robots.txt's: raised as that, for the page's URL.
            self._hosts.refuse_if_waiting(_host_key(httpx.URL(url)), url=url)
            return RobotsAnswer(status=exc.status, problem=exc.reason)
        return RobotsAnswer(status=page.status, body=page.body)


def _request_headers(accept: str | None, validators: Validators | None) -> dict[str, str]:
    headers = {"Accept": accept or DEFAULT_ACCEPT}
    if validators is not None and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators is not None and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


async def _read(response: httpx.Response, requested: str, options: _Options) -> bytes:
    """The decoded body, refused (or cut, for robots.txt) once it passes `max_bytes`."""
    cap = options.max_bytes
    too_big = FetchError(f"body larger than {cap} bytes", url=requested)
    declared = _declared_length(response)
    if declared is not None and declared > cap and not options.truncate:
        raise too_big
    body: list[bytes] = []  # joined once at the end: one copy of the body, not two
    size = 0
    async with contextlib.aclosing(_decoded(response, requested)) as pieces:
        async for piece in pieces:
            if size + len(piece) > cap:
                if options.truncate:
                    return b"".join([*body, piece[: cap - size]])
                raise too_big
            body.append(piece)
            size += len(piece)
    return b"".join(body)


async def _discard(response: httpx.Response) -> None:
    """Read a body we do not want (a 304's, a redirect's, an error page), so that its
    connection can serve the next request: the transport closes a connection whose
    response was not read to the end. (Before this, every 304 of an idle cycle cost a new
    connection.) A body that is large or slow to come is not worth it, and failing to
    read it is not the request's failure: the connection is closed instead.
    """
    if response.is_stream_consumed:  # a response built from bytes (httpx.MockTransport)
        return
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        if response.status_code == 304:  # never has a body (RFC 9110 §15.4.5): no wait
            await _drain(response)
            return
        async with asyncio.timeout(DISCARD_SECONDS):
            await _drain(response)


async def _drain(response: httpx.Response) -> None:
    seen = 0
    async for raw in response.aiter_raw():
        seen += len(raw)
        if seen > DISCARD_BYTES:
            return


async def _decoded(response: httpx.Response, requested: str) -> AsyncGenerator[bytes]:
    """The body in decoded pieces, from the raw bytes (httpx's decoding is unbounded)."""
    decoder = Decoder(response.headers.get("content-encoding", ""), url=requested)
    async for raw in response.aiter_raw():
        for piece in decoder.decode(raw):
            yield piece
    for piece in decoder.finish():
        yield piece


def _declared_length(response: httpx.Response) -> int | None:
    """Content-Length as a number, or None if absent or not plain ASCII digits."""
    length = response.headers.get("content-length", "").strip()
    return int(length) if length.isascii() and length.isdigit() else None


def _validators(response: httpx.Response, previous: Validators | None) -> Validators:
    """The response's ETag/Last-Modified; on a 304, the old ones fill what it omits."""
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    if response.status_code == 304 and previous is not None:
        etag = etag or previous.etag
        last_modified = last_modified or previous.last_modified
    return Validators(etag=etag, last_modified=last_modified)


def _host_key(url: httpx.URL) -> str:
    """ "host:port", the unit of politeness (and, with the scheme, of robots.txt)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _refuse_literal(url: httpx.URL, *, requested: str) -> None:
    """Refuse a blocked IP literal before any I/O. Names are checked where they are
    resolved, at connect time (transport.PinnedBackend); this also covers transports
    that are not ours."""
    literal = ip_literal(url.host)
    if literal is not None:
        try:
            refuse_blocked(url.host, [literal])
        except RefusedAddress as exc:
            raise BlockedAddressError(str(exc), url=requested) from exc


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


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
