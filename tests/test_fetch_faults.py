"""The fetcher against a server that misbehaves on purpose (tests/faults.py).

Each test names one fault; RELIABILITY.md lists them with the outcome and the command.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ingest import feeds
from ingest.errors import FeedError
from tests.conftest import FIXTURES
from tests.faults import (
    LOOPBACK,
    MB,
    Exchange,
    FaultServer,
    cut,
    drip,
    fetch,
    fetch_error,
    flood,
    reply,
    stall,
)


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    """A fault-injecting server on 127.0.0.1 and an ephemeral port."""
    with FaultServer() as srv:
        yield srv


def test_fault_slow_drip_stops_at_the_total_deadline(faults: FaultServer) -> None:
    """A body dripped a byte per 50 ms never trips the read timeout, but the total one."""
    url = faults.add("/drip", drip(b"x" * 200, every=0.05))
    started = time.monotonic()
    error = fetch_error(url, replace(LOOPBACK, read_timeout=5, total_timeout=0.5))
    assert str(error) == f"fetch: timed out after 0.5s: {url}"
    assert time.monotonic() - started < 3
    assert faults.sent("/drip") < 200  # we hung up long before the end


def test_fault_stall_after_headers_trips_the_read_timeout(faults: FaultServer) -> None:
    """Headers, then silence: the read timeout fires, not the (longer) total one."""
    url = faults.add("/stall", stall(seconds=10))
    error = fetch_error(url, replace(LOOPBACK, read_timeout=0.3, total_timeout=30))
    assert str(error) == f"fetch: read timed out after 0.3s: {url}"


def test_fault_connection_reset_mid_body(faults: FaultServer) -> None:
    """A RST halfway through the body is a 'connection broken' FetchError."""
    url = faults.add("/reset", cut(declared=100_000, send=1000, reset=True))
    error = fetch_error(url)
    assert str(error).startswith("fetch: connection broken: ")
    assert error.status is None


def test_fault_truncated_body_with_too_long_content_length(faults: FaultServer) -> None:
    """Fewer bytes than Content-Length promised, then FIN, is a protocol error."""
    url = faults.add("/short", cut(declared=100_000, send=1000, reset=False))
    error = fetch_error(url)
    assert str(error).startswith("fetch: protocol error: peer closed connection")


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "until-close"])
def test_fault_50mb_body_stops_early(faults: FaultServer, declare: bool) -> None:
    """50 MB on offer, 1 MB cap: refused, and the server got to send only a fraction."""
    url = faults.add("/big", flood(50 * MB, declare=declare))
    error = fetch_error(url, replace(LOOPBACK, max_body_bytes=MB))
    assert str(error) == f"fetch: body larger than {MB} bytes: {url}"
    # The cap (when undeclared) plus what the two socket buffers hold: far below 50 MB.
    assert faults.sent("/big") < 16 * MB


@pytest.mark.parametrize("status", [500, 502, 503])
def test_fault_server_errors_are_fetch_errors_with_status(faults: FaultServer, status: int) -> None:
    """5xx answers raise FetchError carrying the status; nothing is remembered without
    Retry-After, so the next request goes out again."""
    url = faults.add("/e", reply(b"oops", status=status))
    for _ in range(2):
        assert fetch_error(url).status == status
    assert len(faults.hits_of("/e")) == 2


@pytest.mark.parametrize(
    ("content_type", "expect"),
    [
        ("image/png", "html"),
        ("video/mp4", "feed"),
        ("application/pdf", "html"),
        ("application/zip", "feed"),
        ("audio/mpeg", "html"),
    ],
)
def test_fault_wrong_content_type_refused_before_the_body(
    faults: FaultServer, content_type: str, expect: str
) -> None:
    """A clearly wrong type is refused from the headers; the 20 MB body is not read."""
    url = faults.add("/file", flood(20 * MB, declare=True, content_type=content_type))
    error = fetch_error(url, expect=expect)
    assert str(error) == (
        f"fetch: unexpected content type {content_type} (expected {expect}): {url}"
    )
    assert error.status == 200
    assert faults.sent("/file") < 16 * MB


def test_fault_big_octet_stream_is_not_a_page_but_may_be_a_feed(faults: FaultServer) -> None:
    """A 3 MB application/octet-stream is refused as a page, fetched as a feed (S3)."""
    url = faults.add("/blob", reply(b"x" * 3 * MB, content_type="application/octet-stream"))
    error = fetch_error(url, expect="html")
    assert "unexpected content type application/octet-stream (expected html)" in str(error)
    assert len(fetch(url, expect="feed").body) == 3 * MB


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/xml"])
def test_fault_doubtful_types_are_left_to_the_pipeline(
    faults: FaultServer, content_type: str
) -> None:
    """Types that are merely unlikely pass through; the pipeline's own HTML check decides."""
    url = faults.add("/doc", reply(b"{}", content_type=content_type))
    assert fetch(url, expect="html").content_type == content_type


def test_fault_invalid_xml_reaches_the_feed_reader_untouched(faults: FaultServer) -> None:
    """Broken XML is fetched byte for byte; the feed reader, not the fetcher, judges it."""
    body = b"<?xml version='1.0'?><rss><channel><item><title>never closed"
    url = faults.add("/broken.xml", reply(body, content_type="application/rss+xml"))
    page = fetch(url, expect="feed")
    assert page.body == body
    with pytest.raises(FeedError):
        feeds.parse_feed(page)


def test_fault_not_xml_at_all_is_a_feed_error(faults: FaultServer) -> None:
    """Random bytes labelled as a feed: fetched, then refused by the reader with FeedError."""
    url = faults.add("/noise.xml", reply(bytes(range(256)) * 4, content_type="text/xml"))
    with pytest.raises(FeedError):
        feeds.parse_feed(fetch(url, expect="feed"))


def test_fault_mislabelled_encoding_keeps_bytes_and_label(faults: FaultServer) -> None:
    """windows-1252 bytes labelled UTF-8: the fetcher changes nothing; the reader decodes."""
    body = (FIXTURES / "feeds" / "windows-1252.xml").read_bytes()
    url = faults.add("/cp1252.xml", reply(body, content_type="text/xml; charset=utf-8"))
    page = fetch(url, expect="feed")
    assert (page.body, page.charset) == (body, "utf-8")
    # The XML declaration names windows-1252; the reader trusts the document over the
    # header, so the euro sign and the dash survive.
    assert feeds.parse_feed(page).entries[0].title == "Prices rise to €5 — again"


def test_fault_error_page_stalling_or_cut_is_still_its_status(faults: FaultServer) -> None:
    """A 404 whose body stalls, or a 500 whose body is cut, fails as that status."""

    def stalled_404(ex: Exchange) -> None:
        ex.head(404, {"Content-Type": "text/html", "Content-Length": "100"})
        ex.pause(10)

    def cut_500(ex: Exchange) -> None:
        ex.head(500, {"Content-Type": "text/html", "Content-Length": "100000"})
        ex.body(b"x" * 1000)
        time.sleep(0.05)
        ex.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    assert fetch_error(faults.add("/stalled404", stalled_404)).status == 404
    assert fetch_error(faults.add("/cut500", cut_500)).status == 500
