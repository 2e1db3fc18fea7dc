"""The one exception hierarchy of ingest.

    IngestError                 anything ingest raises on purpose
    ├── ConfigError             settings or sources are invalid (the CLI exits with 2)
    ├── FetchError              the network said no: timeout, refused, too big, bad status
    │   ├── BlockedAddressError a private/loopback address while those are not allowed
    │   ├── RobotsDisallowedError       robots.txt disallows the URL
    │   └── UnexpectedContentTypeError  an image, a PDF, ... where a page or feed was wanted
    ├── FeedError               the bytes are not a feed we can read
    ├── ExtractError            the page holds no article we can extract
    └── StoreError              the catalog or the files cannot be read or written

Third-party exceptions are translated once, in the module that imports the library, with
``raise ... from exc``. Normal outcomes (a 304, nothing new, a duplicate) are values,
never exceptions.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error ingest raises on purpose."""


class ConfigError(IngestError):
    """Invalid configuration; ``problems`` lists every one found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class FetchError(IngestError):
    """A URL could not be fetched."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.reason = message  # without the "fetch: " prefix and the URL
        self.url = url
        self.status = status
        self.retry_after = retry_after  # the server's Retry-After header, as sent
        super().__init__(f"fetch: {message}: {url}")


class BlockedAddressError(FetchError):
    """The URL resolves to an address we refuse to contact (private, loopback, ...)."""


class RobotsDisallowedError(FetchError):
    """robots.txt asks us not to fetch this URL: a permanent answer, not a failure."""


class UnexpectedContentTypeError(FetchError):
    """The server says the body is something we would not use (an image, a PDF, ...)."""


class FeedError(IngestError):
    """Bytes that should be a feed could not be read as one."""


class ExtractError(IngestError):
    """No article could be extracted from a page."""


class StoreError(IngestError):
    """The store could not read or write."""
