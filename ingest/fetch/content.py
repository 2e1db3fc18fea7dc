"""What a response says it is, and whether that can be what the caller asked for.

Checked from the headers, before the body is read: a podcast's MP3 or a PDF linked from
a feed entry is refused without downloading it.
"""

from __future__ import annotations

from typing import Literal

Expect = Literal["feed", "html"]

# Never a feed or a web page, whatever the URL looked like.
_NEVER_PREFIXES = ("image/", "audio/", "video/", "font/", "model/")
_NEVER = frozenset(
    {
        "application/pdf",
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/x-tar",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/vnd.rar",
        "application/x-msdownload",
        "application/wasm",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/javascript",
        "text/javascript",
        "text/css",
    }
)
# "Some bytes". Feeds on object stores (S3 and friends) are often served as this, so it
# is only refused for a page, and only when it is declared bigger than a page gets: then
# it is a file download (an enclosure), not a mislabelled article.
_OCTET_STREAM = "application/octet-stream"
PAGE_OCTET_STREAM_MAX = 2 * 1024 * 1024


def parse_content_type(value: str | None) -> tuple[str, str | None]:
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


def unexpected(media_type: str, *, length: int | None, expect: Expect | None) -> str | None:
    """Why a body of `media_type` (and declared `length`) cannot be `expect`, or None."""
    if expect is None or not media_type:  # no Content-Type: let the content decide
        return None
    wrong = f"unexpected content type {media_type} (expected {expect})"
    if media_type in _NEVER or media_type.startswith(_NEVER_PREFIXES):
        return wrong
    too_big = length is not None and length > PAGE_OCTET_STREAM_MAX
    if expect == "html" and media_type == _OCTET_STREAM and too_big:
        return f"{wrong}, {length} bytes"
    return None
