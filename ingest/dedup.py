"""Identity and duplicate keys: who an entry is before we fetch it, and what an article
says after we extract it.

Two layers, both enforced by unique constraints in the store:

* entry keys, checked before any page is fetched: the feed's GUID (scoped to its source,
  because GUIDs are only promised unique within one feed) and the normalized URL (global,
  so the same link in two feeds is fetched once);
* the content fingerprint, checked after extraction: a hash of the normalized text, so the
  same story under two URLs is stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ingest.models import Entry

# Query parameters that only say where a click came from. Dropping them never changes
# which page is meant. utm_*: Google Analytics campaign tags; fbclid: Facebook; gclid,
# dclid, gbraid, wbraid: Google Ads; mc_cid/mc_eid: Mailchimp; yclid: Yandex; igshid:
# Instagram; msclkid: Microsoft Ads; _hsenc/_hsmi: HubSpot; mkt_tok: Marketo.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "mc_cid",
        "mc_eid",
        "yclid",
        "igshid",
        "msclkid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "spm",
    }
)
TRACKING_PREFIXES = ("utm_",)
DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_url(url: str) -> str:
    """The form of ``url`` used as a dedup key: same page, same string.

    Lower-cases scheme and host, drops default ports, fragments and tracking
    parameters, resolves dot segments and sorts the query. Paths keep their case:
    on most servers /A and /a are different pages.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if host:
        with contextlib.suppress(UnicodeError):  # not valid IDNA: keep the lower-cased form
            host = host.encode("idna").decode("ascii")
    port = parts.port if _has_valid_port(parts.netloc) else None
    netloc = host if port is None or str(port) == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = _remove_dot_segments(parts.path) or "/"
    query = urlencode(sorted(_kept_params(parts.query)), doseq=True)
    return urlunsplit((scheme, netloc, path, query, ""))


def _has_valid_port(netloc: str) -> bool:
    try:
        urlsplit(f"//{netloc}").port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return True


def _kept_params(query: str) -> list[tuple[str, str]]:
    pairs = parse_qsl(query, keep_blank_values=True)
    return [
        (k, v)
        for k, v in pairs
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]


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


def entry_keys(entry: Entry, *, source: str) -> tuple[str, ...]:
    """The keys under which an entry counts as seen: any one matching means seen."""
    keys = []
    if entry.guid:
        keys.append(f"guid:{source}:{entry.guid}")
    if entry.url:
        keys.append(f"url:{normalize_url(entry.url)}")
    return tuple(keys)


_WORD = re.compile(r"\w+")


def fingerprint(text: str) -> str:
    """A hash of the words of ``text``: case, punctuation, spacing and accents ignored."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    words = _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def article_id(key: str) -> str:
    """A short, stable id from an identity key: the same page gets the same id on a rerun."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]
