"""URL canonicalization: the same page, the same string.

``normalize_url`` is a dedup key, never a URL we fetch, so it may fold together forms
that a server would answer identically but are spelled differently:

* RFC 3986 §6.2.2 syntax: scheme and host case, percent-encoding case and unreserved
  characters, dot segments (§5.2.4), an empty path as ``/``;
* RFC 3986 §6.2.3 scheme-based: the scheme's default port;
* IDNA: a Unicode host as its ASCII (punycode) form;
* the fragment, which is never sent to the server;
* query order, and the attribution parameters listed with their source in
  ``tracking_params.toml`` (utm_*, fbclid, gclid, ...);
* AMP and mobile renderings: ``www.``/``m.``/``mobile.``/``amp.`` host prefixes, an
  ``amp`` first or last path segment, a ``.amp`` suffix, ``?amp``/``?outputType=amp``,
  and AMP caches (``<host>.cdn.ampproject.org/c/s/<host>/...``,
  ``www.google.com/amp/s/<host>/...``) mapped back to the publisher's URL.

Path case is kept (on most servers /A and /a differ), and so is the scheme (http and
https are usually the same page, but not always, and a feed rarely mixes them).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Leading host labels that name another rendering of the same site, not another site.
VARIANT_HOST_LABELS = ("www", "m", "mobile", "amp")
AMP_CACHE_SUFFIX = ".cdn.ampproject.org"
# Second-level labels under which a country code TLD sells names (example.co.uk,
# example.com.au): an approximation of the Public Suffix List good enough to decide
# "same site" for news publishers, without shipping the 10,000-line list.
_SECOND_LEVEL = frozenset(
    {"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "go", "gob", "nic", "mil"}
)
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@dataclass(frozen=True, slots=True)
class ParamRules:
    """Which query parameters to drop, read from ``tracking_params.toml``."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def drops(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self.names or lowered.startswith(self.prefixes)


@functools.cache
def param_rules() -> ParamRules:
    """The parameter list, loaded on first use (never at import time)."""
    text = resources.files("ingest.dedup").joinpath("tracking_params.toml").read_text("utf-8")
    data = tomllib.loads(text)
    names = {k.lower() for table in ("params", "variants") for k in data.get(table, {})}
    return ParamRules(frozenset(names), tuple(k.lower() for k in data.get("prefixes", {})))


def normalize_url(url: str) -> str:
    """The canonical form of ``url`` used as a dedup key (see the module docstring)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    path = _percent(parts.path)
    google = _strip_variant_labels(host) == "google.com"
    if host.endswith(AMP_CACHE_SUFFIX) or (google and path.startswith("/amp/")):
        unwrapped = _unwrap_amp_cache(path, parts.query)
        if unwrapped is not None:
            return normalize_url(unwrapped)
    host = _strip_variant_labels(host)
    port = _port(parts.netloc)
    netloc = host if port is None or port == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = _strip_amp_path(_remove_dot_segments(path)) or "/"
    query = urlencode(sorted(_kept_params(parts.query)), doseq=True)
    return urlunsplit((scheme, netloc, path, query, ""))


# Hosts repeat across a feed's links and a crawl's pages, and IDNA encoding and the
# IP-literal check cost several microseconds each: both are memoized (pure functions).
@functools.lru_cache(maxsize=4096)
def _host(raw: str) -> str:
    host = raw.lower().rstrip(".")
    if ":" in host:  # an IPv6 literal: urlsplit removed its brackets
        return f"[{host}]"
    with contextlib.suppress(UnicodeError):  # not valid IDNA: keep the lower-cased form
        host = host.encode("idna").decode("ascii")
    return host


def _strip_variant_labels(host: str) -> str:
    """``www.m.example.com`` → ``example.com``; never down to a bare public suffix."""
    while True:
        label, _, rest = host.partition(".")
        if label not in VARIANT_HOST_LABELS or "." not in rest or not registrable_domain(rest):
            return host
        host = rest


def _port(netloc: str) -> int | None:
    try:
        return urlsplit(f"//{netloc}").port
    except ValueError:  # not a number, or out of range: drop it, the host still counts
        return None


def _percent(text: str) -> str:
    """Upper-case percent escapes and decode the unreserved characters (RFC 3986 §6.2.2)."""

    def fix(match: re.Match[str]) -> str:
        byte = int(match[1], 16)
        return chr(byte) if byte in _UNRESERVED else f"%{match[1].upper()}"

    return _PCT.sub(fix, text)


def _unwrap_amp_cache(path: str, query: str) -> str | None:
    """The publisher URL inside an AMP cache URL, or None if it is not one."""
    # https://developers.google.com/amp/cache/overview: /c/s/<host>/<path> (s = https),
    # /c/<host>/<path> (http); Google Search serves the same under www.google.com/amp/.
    for prefix, scheme in (("/c/s/", "https"), ("/amp/s/", "https"), ("/c/", "http")):
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            if "." in rest.partition("/")[0]:
                return f"{scheme}://{rest}" + (f"?{query}" if query else "")
    return None


def _strip_amp_path(path: str) -> str:
    """``/amp/story``, ``/story/amp/``, ``/story.amp`` and ``/story.amp.html`` → the story."""
    while True:
        before = path
        if path.startswith("/amp/"):
            path = path[4:]
        if path.endswith("/amp"):
            path = path[:-4] or "/"
        elif path.endswith("/amp/"):
            path = path[:-4]
        if path.endswith(".amp"):
            path = path[:-4]
        elif path.endswith(".amp.html"):
            path = path[:-9] + ".html"
        if path == before:
            return path


def _kept_params(query: str) -> list[tuple[str, str]]:
    rules = param_rules()
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not rules.drops(k)]


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on whole segments."""
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out)


@functools.lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str | None:
    """The name a publisher registered: ``news.bbc.co.uk`` → ``bbc.co.uk``.

    An approximation of the Public Suffix List: the last two labels, or three when the
    top-level domain is a two-letter country code and the second level is one of the
    generic ones sold under it (``co.uk``, ``com.au``, ``or.jp``, ...). IP addresses and
    single-label hosts are their own domain; an empty host or a bare suffix has none.
    """
    host = host.lower().rstrip(".").strip("[]")
    if not host:
        return None
    # Only an address can end in a digit or hold a colon (top-level domains are
    # letters): trying every name as an address costs two raised ValueErrors.
    if host[-1].isdigit() or ":" in host:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            return host
    labels = host.split(".")
    if len(labels) == 1:
        return host
    count = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    if len(labels) < count:
        return None
    return ".".join(labels[-count:])


def same_site(a: str, b: str) -> bool:
    """Whether two absolute URLs belong to the same publisher (registrable domain)."""
    host_a, host_b = urlsplit(a).hostname or "", urlsplit(b).hostname or ""
    domain = registrable_domain(_host(host_a))
    return domain is not None and domain == registrable_domain(_host(host_b))
