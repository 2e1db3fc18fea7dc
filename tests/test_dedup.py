"""URL canonicalization, entry keys and content fingerprints."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from ingest.dedup import (
    article_id,
    entry_keys,
    fingerprint,
    normalize_url,
    registrable_domain,
    same_site,
)
from ingest.dedup.urls import param_rules
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


def test_amp_and_mobile_variants_are_the_page() -> None:
    """AMP paths, AMP caches, ?amp and m./www./amp. hosts name the publisher's page."""
    page = normalize_url("https://example.co.uk/news/story-1")
    for variant in (
        "https://www.example.co.uk/news/story-1",
        "https://m.example.co.uk/news/story-1?utm_source=tw",
        "https://amp.example.co.uk/news/story-1",
        "https://example.co.uk/news/story-1/amp",
        "https://example.co.uk/amp/news/story-1",
        "https://example.co.uk/news/story-1.amp",
        "https://example.co.uk/news/story-1?amp=1",
        "https://example.co.uk/news/story-1?outputType=amp",
        "https://www-example-co-uk.cdn.ampproject.org/c/s/www.example.co.uk/news/story-1",
        "https://www.google.com/amp/s/www.example.co.uk/news/story-1/amp",
    ):
        assert normalize_url(variant) == page, variant
    assert normalize_url("https://ex.org/a.amp.html") == "https://ex.org/a.html"


def test_variant_labels_never_reach_a_public_suffix() -> None:
    """www.co.uk and m.com stay as they are: stripping would leave a bare suffix."""
    assert normalize_url("https://www.co.uk/x") == "https://www.co.uk/x"
    assert normalize_url("https://m.com/x") == "https://m.com/x"


def test_percent_encoding_and_ipv6() -> None:
    """Escapes are upper-cased, unreserved ones decoded; IPv6 hosts keep their brackets."""
    assert normalize_url("http://x.org/a%7e%2fb") == "http://x.org/a~%2Fb"
    assert normalize_url("http://[::1]:8080/x#f") == "http://[::1]:8080/x"


def test_tracking_params_name_their_source() -> None:
    """Every tracking parameter in the data file says who sets it."""
    import tomllib
    from importlib import resources

    text = resources.files("ingest.dedup").joinpath("tracking_params.toml").read_text("utf-8")
    data = tomllib.loads(text)
    assert {"utm_"} <= set(data["prefixes"])
    assert {"fbclid", "gclid", "mc_eid", "yclid", "igshid"} <= set(data["params"])
    for table in data.values():
        for name, source in table.items():
            assert isinstance(source, str), name
            assert len(source) > 10, name


def test_same_site_by_registrable_domain() -> None:
    """Subdomains of one publisher are one site; a shared suffix is not."""
    assert same_site("https://news.bbc.co.uk/a", "https://www.bbc.co.uk/b")
    assert not same_site("https://bbc.co.uk/a", "https://itv.co.uk/a")
    assert not same_site("https://a.example.com/", "https://example.org/")
    assert same_site("http://127.0.0.1:8000/a", "http://127.0.0.1:9000/b")
    assert registrable_domain("co.uk") is None


TRACKING = ["utm_source", "utm_Campaign", "fbclid", "gclid", "mc_eid", "yclid", "igshid"]
labels = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True).filter(
    lambda s: s not in {"www", "m", "mobile", "amp"} and "--" not in s
)
segments = st.from_regex(r"[A-Za-z0-9_~-]{1,8}", fullmatch=True).filter(lambda s: s != "amp")
params = st.lists(
    st.tuples(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True).filter(lambda k: not param_rules().drops(k)),
        st.from_regex(r"[a-z0-9]{0,5}", fullmatch=True),
    ),
    max_size=4,
)


@st.composite
def messy_urls(draw: st.DrawFn) -> tuple[str, str, list[str], list[tuple[str, str]]]:
    """A URL with noise that must vanish, and the host, path and params it means."""
    host = ".".join(draw(st.lists(labels, min_size=1, max_size=3))) + ".org"
    path = draw(st.lists(segments, max_size=4))
    query = draw(params)
    noise = [(t, "x") for t in draw(st.lists(st.sampled_from(TRACKING), max_size=3))]
    mixed = draw(st.permutations(query + noise))
    shown = "".join(c.upper() if draw(st.booleans()) else c for c in host)
    port = draw(st.sampled_from(["", ":443"]))
    fragment = draw(st.sampled_from(["", "#top", "#"]))
    dots = draw(st.sampled_from(["", "/.", "/x/.."]))
    url = f"HTTPS://{shown}{port}{dots}/{'/'.join(path)}"
    if mixed:
        url += "?" + "&".join(f"{k}={v}" for k, v in mixed)
    return url + fragment, host, path, query


@given(messy_urls())
def test_canonical_form_is_idempotent(
    case: tuple[str, str, list[str], list[tuple[str, str]]],
) -> None:
    """Canonicalizing a canonical URL changes nothing."""
    once = normalize_url(case[0])
    assert normalize_url(once) == once


@given(messy_urls())
def test_canonical_form_means_the_same_page(
    case: tuple[str, str, list[str], list[tuple[str, str]]],
) -> None:
    """Host, path and the non-tracking query survive; only the noise is gone."""
    url, host, path, query = case
    parts = urlsplit(normalize_url(url))
    assert parts.hostname == host
    assert parts.path == "/" + "/".join(path)
    assert sorted(parse_qsl(parts.query, keep_blank_values=True)) == sorted(query)
    assert parts.fragment == ""
