"""URL normalization, entry keys and content fingerprints."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from ingest.dedup import article_id, entry_keys, fingerprint, normalize_url
from ingest.models import Entry


def test_normalize_url_cases() -> None:
    """Case, default port, dot segments, fragment, tracking and query order vanish."""
    assert (
        normalize_url("HTTPS://Example.COM:443/a/./b/../c?utm_source=x&b=2&a=1&fbclid=z#top")
        == "https://example.com/a/c?a=1&b=2"
    )
    assert normalize_url("http://example.com") == "http://example.com/"
    assert normalize_url("http://example.com:8080/x") == "http://example.com:8080/x"
    assert normalize_url("http://bücher.de/x") == "http://xn--bcher-kva.de/x"


def test_normalize_keeps_path_case_and_meaningful_params() -> None:
    """Path case and non-tracking parameters still name a different page."""
    assert normalize_url("https://x.org/A?id=1") != normalize_url("https://x.org/a?id=1")
    assert normalize_url("https://x.org/a?id=1") != normalize_url("https://x.org/a?id=2")


urls = st.builds(
    lambda host, path, query: f"https://{host}/{path}?{query}",
    st.from_regex(r"[A-Za-z]{1,10}\.(com|org)", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9./_-]{0,20}", fullmatch=True),
    st.from_regex(r"([a-z]{1,5}=[a-z0-9]{0,5}&?){0,3}", fullmatch=True),
)


@given(urls)
def test_normalize_is_idempotent(url: str) -> None:
    """Normalizing twice gives the same string as once."""
    once = normalize_url(url)
    assert normalize_url(once) == once


@given(urls)
def test_normalize_keeps_the_host(url: str) -> None:
    """Normalization never points at another site."""
    assert urlsplit(normalize_url(url)).hostname == urlsplit(url).hostname.lower()


def test_entry_keys() -> None:
    """GUIDs are scoped to their source, URLs are global."""
    entry = Entry(guid="42", url="https://x.org/a?utm_medium=rss")
    assert entry_keys(entry, source="s") == ("guid:s:42", "url:https://x.org/a")
    assert entry_keys(Entry(guid=None, url=None), source="s") == ()


def test_fingerprint_ignores_layout_not_words() -> None:
    """Spacing, case and punctuation do not change the fingerprint; words do."""
    a = fingerprint("Hello,  world!\n\nSecond paragraph.")
    assert a == fingerprint("hello world second   paragraph")
    assert a != fingerprint("Hello world. Third paragraph.")


def test_article_id_is_stable() -> None:
    """The same key always gives the same short id."""
    assert article_id("url:https://x.org/a") == article_id("url:https://x.org/a")
    assert len(article_id("k")) == 20
