"""The values that cross stage boundaries.

Every stage takes and returns these frozen, slotted dataclasses, never dicts or tuples of
loose values. Datetimes are timezone-aware (UTC when we made them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ExtractRules:
    """Per-source overrides for the rare site the generic extractor gets wrong."""

    content_selector: str | None = None
    drop_selectors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Source:
    """A configured feed: where it is and how often to read it."""

    name: str
    url: str
    interval: timedelta  # the fixed interval, or where adaptive polling starts
    enabled: bool = True
    rules: ExtractRules = field(default_factory=ExtractRules)
    fixed_interval: bool = False  # True when the config sets `interval`: no adaptation
    min_interval: timedelta | None = None  # per-source bounds, in place of the global ones
    max_interval: timedelta | None = None
    robots: bool | None = None  # obey robots.txt for article pages; None: the global setting


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators kept per source for conditional GET (RFC 9110 §13)."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One HTTP response as the fetcher got it: the body is raw, undecoded bytes."""

    url: str  # what we asked for
    final_url: str  # after redirects
    status: int
    content_type: str  # media type only, lower-cased, e.g. "text/html"; "" if absent
    charset: str | None  # from the Content-Type header, if any
    body: bytes
    fetched_at: datetime
    validators: Validators = field(default_factory=Validators)
    headers: tuple[tuple[str, str], ...] = ()  # lower-cased names, as received
    # The final URL when every redirect on the way was permanent (301, 308): where the
    # resource now lives. None without redirects or when any of them was temporary.
    permanent_redirect: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a feed, links already absolute."""

    guid: str | None
    url: str | None
    title: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    summary: str | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Feed:
    """A parsed feed: its own metadata and its entries in document order."""

    title: str | None
    link: str | None  # the site the feed describes
    format: str  # "rss20", "atom10", "rss10", "json11", ... as detected
    entries: tuple[Entry, ...]
    ttl: timedelta | None = None  # RSS <ttl> or sy:updatePeriod/sy:updateFrequency


@dataclass(frozen=True, slots=True)
class Extraction:
    """What the extractor found in one HTML page."""

    canonical_url: str | None
    title: str | None
    authors: tuple[str, ...]
    # In the UTC offset the page wrote (else UTC): the instant is exact, and .date() is
    # the day the page states, which in UTC may be the day before or after.
    published: datetime | None
    modified: datetime | None
    language: str | None
    site_name: str | None
    description: str | None
    image: str | None
    tags: tuple[str, ...]
    text: str  # paragraphs separated by one blank line
    html: str  # sanitized main-content HTML
    markdown: str = ""


@dataclass(frozen=True, slots=True)
class Article:
    """A stored article: the extraction plus where it came from.

    The names of these fields are the on-disk JSON contract (see storage/README.md and
    ingest/schema/article.schema.json): add fields freely, rename none.
    """

    id: str
    url: str  # as fetched (after redirects)
    canonical_url: str | None
    source: str | None
    title: str | None
    authors: tuple[str, ...]
    published: datetime | None  # in the page's own UTC offset, as in Extraction
    modified: datetime | None
    language: str | None
    site_name: str | None
    description: str | None
    image: str | None
    tags: tuple[str, ...]
    text: str
    html: str
    markdown: str
    fetched_at: datetime | None
    fingerprint: str
    entry_guid: str | None = None
    version: int = 1  # 1 for the first document of an article, then 2, 3, ... per update
    duplicate_of: str | None = None  # the first article of its near-duplicate cluster


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one poll of one source did."""

    source: str
    started_at: datetime
    finished_at: datetime
    status: str  # "ok", "not_modified", "failed", "gone" (HTTP 410: not polled again)
    entries: int = 0  # entries in the feed
    new: int = 0  # entries not seen before
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # not HTML, no article, ...: recorded with a reason
    errors: int = 0  # entries whose page could not be fetched: retried next time
    error: str | None = None  # why the whole source failed
    updated: int = 0  # seen entries refetched whose text changed: stored as a new version
    near_duplicates: int = 0  # stored linked to (or skipped as copies of) another article
    error_kind: str | None = None  # a short label of that: http_503, network, feed, ...
    next_poll_at: datetime | None = None  # as planned by this poll (None: gone, or not planned)

    @property
    def ok(self) -> bool:
        """False when the source failed, or is gone (HTTP 410) and needs attention."""
        return self.status not in {"failed", "gone"}

    @property
    def elapsed(self) -> timedelta:
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers about a source between polls."""

    name: str
    url: str
    validators: Validators = field(default_factory=Validators)
    last_polled_at: datetime | None = None
    last_status: str | None = None  # RunReport.status of the last poll
    last_error: str | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    entries_seen: int = 0
    articles_stored: int = 0
    interval: timedelta | None = None  # the adaptive interval now in force
    current_url: str | None = None  # where the feed moved to (a lasting permanent redirect)
    redirect_target: str | None = None  # a permanent redirect seen, not yet lasting
    redirect_count: int = 0  # consecutive polls that saw redirect_target

    @property
    def poll_url(self) -> str:
        """The URL to poll: the moved-to URL once a move has lasted, else the configured."""
        return self.current_url or self.url


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    """What happened to an article handed to the store."""

    status: str  # "stored", "duplicate", "near_duplicate" (skipped), "updated", "unchanged"
    article_id: str  # the new or updated article, or the one it duplicates
    seq: int | None = None  # catalog sequence number when stored or updated
    path: str | None = None  # JSON document, relative to the storage directory
    duplicate_of: str | None = None  # a near-copy: the first article of its cluster
    similarity: float | None = None  # a near-copy: shingle containment, 0..1
    version: int | None = None  # when stored or updated: the document's version


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One article as the catalog indexes it (the full document is on disk)."""

    seq: int
    id: str
    path: str
    url: str
    source: str | None
    title: str | None
    published: datetime | None
    fetched_at: datetime
    version: int = 1
    duplicate_of: str | None = None  # set on a near-copy: the first article of its cluster


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """What the store remembers under one entry key: what became of it, and the entry as
    last seen (to notice updates before fetching anything)."""

    key: str
    source: str
    status: str  # "stored", "duplicate" or "skipped"
    article_id: str | None = None
    guid: str | None = None
    url: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Classified:
    """An entry with its identity keys and what to do with it, decided before fetching."""

    entry: Entry
    keys: tuple[str, ...]
    state: str  # "new" (fetch), "updated" (refetch, maybe a new version), "seen" (nothing)
    article_id: str | None = None  # "updated": the stored article it is a version of


@dataclass(frozen=True, slots=True)
class ArticleVersion:
    """One stored version of an article."""

    article_id: str
    version: int
    fingerprint: str
    path: str
    stored_at: datetime
