"""Tests for ingest.feeds: saved feed files in, Feed values (or FeedError) out."""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import FeedError
from ingest.feeds import looks_like_feed, parse_feed
from ingest.models import Entry, Feed, Page
from tests.loopback import LoopbackServer, Response

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
FETCHED_AT = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)


def page(
    body: bytes,
    *,
    url: str = "https://news.example.com/feed.xml",
    content_type: str = "application/rss+xml",
    charset: str | None = None,
) -> Page:
    """A Page as the fetcher would hand it over."""
    return Page(
        url=url,
        final_url=url,
        status=200,
        content_type=content_type,
        charset=charset,
        body=body,
        fetched_at=FETCHED_AT,
    )


def fixture(
    name: str,
    *,
    url: str = "https://news.example.com/feed.xml",
    content_type: str = "application/rss+xml",
    charset: str | None = None,
) -> Page:
    """The saved feed ``name`` as a Page."""
    body = (FEEDS / name).read_bytes()
    return page(body, url=url, content_type=content_type, charset=charset)


def by_title(feed: Feed, title: str) -> Entry:
    return next(entry for entry in feed.entries if entry.title == title)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def rss(items: str, channel: str = "") -> bytes:
    return f'<rss version="2.0"><channel>{channel}{items}</channel></rss>'.encode()


# --- RSS 2.0 --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rss20() -> Feed:
    return parse_feed(fixture("rss20.xml"))


def test_rss20_channel_metadata(rss20: Feed) -> None:
    """The channel's title is stripped, its link kept, its <ttl> read as minutes."""
    assert rss20.title == "The Example Gazette"
    assert rss20.link == "https://news.example.com/"
    assert rss20.format == "rss20"
    assert rss20.ttl == timedelta(minutes=45)


def test_rss20_entries_in_document_order_without_duplicates(rss20: Feed) -> None:
    """A guid repeated later in the same feed is dropped, the first copy kept."""
    assert [entry.guid for entry in rss20.entries] == [
        "gazette-1001",
        "https://news.example.com/2024/03/library-hours",
        "gazette-1003",
        "gazette-1004",
        "gazette-1005",
    ]
    assert rss20.entries[0].title == "Council approves the new bridge"


def test_rss20_relative_link_resolved_against_final_url(rss20: Feed) -> None:
    """A relative <link> becomes absolute against the URL the feed was fetched from."""
    assert rss20.entries[0].url == "https://news.example.com/2024/03/bridge-approved"


def test_rss20_entry(rss20: Feed) -> None:
    """An item maps to an Entry: UTC date, dc:creator, categories, description as text."""
    assert rss20.entries[0] == Entry(
        guid="gazette-1001",
        url="https://news.example.com/2024/03/bridge-approved",
        title="Council approves the new bridge",
        published=at("2024-03-05T08:30:00+00:00"),
        updated=None,
        summary="The vote was 7 to 2. Work starts in May.",
        authors=("Ana Ruiz",),
        tags=("Local", "Transport"),
    )


def test_rss20_content_encoded_is_the_summary_without_description(rss20: Feed) -> None:
    """Without <description>, content:encoded gives the summary, as plain text."""
    entry = by_title(rss20, "Library extends opening hours")
    assert entry.summary == "From April the central library stays open until 21:00."


def test_rss20_author_email_is_not_a_name(rss20: Feed) -> None:
    """<author>email (Name)</author> yields the name only."""
    assert by_title(rss20, "Library extends opening hours").authors == ("Ben Okafor",)


def test_rss20_permalink_guid_is_the_url_without_link(rss20: Feed) -> None:
    """An item without <link> whose guid is a permalink URL uses the guid as its URL."""
    entry = by_title(rss20, "Library extends opening hours")
    assert entry.url == "https://news.example.com/2024/03/library-hours"


def test_rss20_entry_without_any_link_has_no_url(rss20: Feed) -> None:
    """No <link> and a guid that is not a permalink: url is None, the entry is kept."""
    entry = by_title(rss20, "Weather warning for Thursday")
    assert entry.url is None
    assert entry.guid == "gazette-1003"


def test_rss20_javascript_link_dropped(rss20: Feed) -> None:
    """A javascript: link is not a URL we would ever fetch."""
    assert by_title(rss20, "Click here").url is None


def test_rss20_blank_title_and_unparseable_date_are_none(rss20: Feed) -> None:
    """A whitespace-only title and a date that is not one both become None."""
    entry = rss20.entries[-1]
    assert (entry.guid, entry.title, entry.published) == ("gazette-1005", None, None)


def test_relative_guid_is_kept_verbatim_and_not_used_as_url() -> None:
    """A guid like "12345" (isPermaLink by default) stays the id and is not a link."""
    feed = parse_feed(page(rss("<item><guid>12345</guid><title>t</title></item>")))
    assert (feed.entries[0].guid, feed.entries[0].url) == ("12345", None)


def test_http_guid_that_is_not_a_permalink_is_not_used_as_url() -> None:
    """isPermaLink="false" means the guid is only an id, even when it looks like a URL."""
    item = '<item><guid isPermaLink="false">https://news.example.com/p/1</guid></item>'
    assert parse_feed(page(rss(item))).entries[0].url is None


def test_duplicate_url_with_different_guid_dropped() -> None:
    """Two items pointing at the same URL count once."""
    items = (
        "<item><guid>a</guid><link>https://news.example.com/p/1</link></item>"
        "<item><guid>b</guid><link>https://news.example.com/p/1</link></item>"
    )
    assert [entry.guid for entry in parse_feed(page(rss(items))).entries] == ["a"]


def test_well_formed_feed_without_items_is_an_empty_feed() -> None:
    """A new blog with no posts yet is a feed, not an error."""
    feed = parse_feed(page(rss("", channel="<title>Soon</title>")))
    assert (feed.title, feed.entries) == ("Soon", ())


# --- RSS 0.91 and 1.0 -----------------------------------------------------------------


def test_rss091() -> None:
    """Netscape RSS 0.91 with its DOCTYPE parses; the DTD is not fetched."""
    feed = parse_feed(fixture("rss091.xml"))
    assert (feed.title, feed.format) == ("Scripting News", "rss091n")
    assert [entry.url for entry in feed.entries] == [
        "http://www.scripting.com/stuff/",
        "http://www.scripting.com/robots.html",
    ]
    assert feed.entries[1].summary == "Giant robots are coming."


def test_rss10_rdf() -> None:
    """RSS 1.0: rdf:about is the guid, dc:date the updated date, dc:subject a tag."""
    feed = parse_feed(fixture("rss10-rdf.xml"))
    assert (feed.format, feed.link) == ("rss10", "https://planet.example.org/")
    first = feed.entries[0]
    assert first.guid == first.url == "https://blog.example.net/posts/rdf-is-alive"
    assert first.updated == at("2024-01-15T13:00:00+00:00")
    assert (first.authors, first.tags) == (("Chidi Anagonye",), ("syndication",))


def test_rss10_ttl_from_syndication_module() -> None:
    """sy:updatePeriod daily with sy:updateFrequency 4 is a six-hour ttl."""
    assert parse_feed(fixture("rss10-rdf.xml")).ttl == timedelta(hours=6)


@pytest.mark.parametrize(
    ("channel", "ttl"),
    [
        ("<ttl>0</ttl>", None),
        ("<ttl>soon</ttl>", None),
        ("<ttl>99999999999999</ttl>", None),
        ("<ttl> 60 </ttl>", timedelta(hours=1)),
        ("<sy:updatePeriod>hourly</sy:updatePeriod>", timedelta(hours=1)),
        (
            "<sy:updatePeriod>weekly</sy:updatePeriod><sy:updateFrequency>x</sy:updateFrequency>",
            timedelta(weeks=1),
        ),
        ("<sy:updatePeriod>fortnightly</sy:updatePeriod>", None),
    ],
)
def test_ttl_values(channel: str, ttl: timedelta | None) -> None:
    """Only a positive ttl up to a year, or a known sy:updatePeriod, gives a ttl."""
    body = (
        '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        f"<channel>{channel}</channel></rss>"
    ).encode()
    assert parse_feed(page(body)).ttl == ttl


# --- Atom -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def atom10() -> Feed:
    return parse_feed(fixture("atom10.xml", url="https://journal.example.org/feeds/atom.xml"))


def test_atom03() -> None:
    """Atom 0.3: issued is the published date, modified the updated one."""
    feed = parse_feed(fixture("atom03.xml"))
    assert (feed.format, feed.link) == ("atom03", "http://old.example.org/")
    assert feed.entries[0] == Entry(
        guid="tag:old.example.org,2005:3.2397",
        url="http://old.example.org/2005/07/31/snapshot",
        title="Atom 0.3 snapshot",
        published=at("2005-07-31T12:29:29+00:00"),
        updated=at("2005-08-01T12:00:00+00:00"),
        summary="A snapshot of a format long gone.",
        authors=("Mark",),
    )


def test_atom10_xml_base(atom10: Feed) -> None:
    """Relative links resolve against xml:base, including an entry's own xml:base."""
    assert atom10.link == "https://journal.example.org/blog/"
    assert [entry.url for entry in atom10.entries[:2]] == [
        "https://journal.example.org/blog/2024/02/small-parsers",
        "https://elsewhere.example.net/guest/on-feeds",
    ]


def test_atom10_entry(atom10: Feed) -> None:
    """Several authors, published and updated kept apart, labels over terms."""
    entry = atom10.entries[0]
    assert entry.authors == ("Dana Scully", "Fox Mulder")
    assert entry.published == at("2024-02-09T09:00:00+00:00")
    assert entry.updated == at("2024-02-10T18:30:02+00:00")
    assert entry.tags == ("Parsing", "python")


def test_atom10_html_title_and_summary_are_plain_text(atom10: Feed) -> None:
    """type="html" text constructs lose their markup."""
    entry = atom10.entries[0]
    assert entry.title == "Writing small parsers"
    assert entry.summary == "Why parsers should stay small."


def test_atom10_entry_with_only_updated(atom10: Feed) -> None:
    """An entry with only <updated> has no published date: we do not copy one over."""
    entry = atom10.entries[1]
    assert (entry.published, entry.updated) == (None, at("2024-01-20T12:00:00+00:00"))


def test_atom10_entry_inherits_feed_author(atom10: Feed) -> None:
    """RFC 4287 §4.2.1: an entry without an author has the feed's."""
    assert atom10.entries[1].authors == ("Editorial Team",)


def test_atom10_id_url_is_the_url_without_link(atom10: Feed) -> None:
    """An Atom entry without a link whose id is an http URL uses it."""
    assert atom10.entries[2].url == "https://journal.example.org/blog/2024/01/no-link"


def test_relative_xml_base_resolved_against_page() -> None:
    """A relative xml:base is itself resolved against the page URL."""
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="/blog/">'
        b'<entry><id>urn:x:1</id><link href="p/1"/></entry></feed>'
    )
    feed = parse_feed(page(body, url="https://site.example/feeds/atom"))
    assert feed.entries[0].url == "https://site.example/blog/p/1"


# --- JSON Feed ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def json10() -> Feed:
    return parse_feed(fixture("jsonfeed10.json", content_type="application/json"))


@pytest.fixture(scope="module")
def json11() -> Feed:
    return parse_feed(fixture("jsonfeed11.json", content_type="application/feed+json"))


def test_jsonfeed10_metadata(json10: Feed) -> None:
    """JSON Feed 1.0: format json10, home_page_url is the link, no ttl."""
    assert (json10.title, json10.link, json10.format, json10.ttl) == (
        "Linked List",
        "https://links.example.com/",
        "json10",
        None,
    )


def test_jsonfeed10_item(json10: Feed) -> None:
    """Relative url resolved, tags deduplicated, the feed's 1.0 author inherited."""
    assert json10.entries[0] == Entry(
        guid="2347259",
        url="https://links.example.com/2024/02/20/on-json-feeds",
        title="On JSON feeds",
        published=at("2024-02-20T17:00:00+00:00"),
        summary="JSON Feed is a pragmatic syndication format.",
        authors=("Riley Chen",),
        tags=("feeds", "json"),
    )


def test_jsonfeed10_external_url_and_numeric_id(json10: Feed) -> None:
    """Without url, external_url is the URL; a numeric id becomes a string guid."""
    entry = json10.entries[1]
    assert entry.guid == "2347260"
    assert entry.url == "https://elsewhere.example.org/an-article-worth-reading"
    assert (entry.authors, entry.summary) == (("Guest Writer",), "A linked article.")


def test_jsonfeed10_item_without_url(json10: Feed) -> None:
    """An item with neither url nor external_url has url None; a bare date is UTC."""
    entry = json10.entries[2]
    assert (entry.url, entry.title) == (None, None)
    assert entry.published == at("2024-02-18T00:00:00+00:00")


def test_jsonfeed11_item(json11: Feed) -> None:
    """JSON Feed 1.1: authors list (nameless ones dropped), date_modified, summary."""
    assert json11.format == "json11"
    assert json11.entries[0] == Entry(
        guid="https://micro.example.com/2024/03/01/hello",
        url="https://micro.example.com/2024/03/01/hello",
        title="Hello, world",
        published=at("2024-03-01T08:00:00+00:00"),
        updated=at("2024-03-02T08:15:30+00:00"),
        summary="First post on the new site.",
        authors=("Sam Park", "Alex Doe"),
        tags=("intro",),
    )


def test_jsonfeed11_duplicates_and_relative_urls(json11: Feed) -> None:
    """The repeated id is dropped; "../" resolves against feed_url; bad dates are None."""
    assert [entry.guid for entry in json11.entries] == [
        "https://micro.example.com/2024/03/01/hello",
        "p-3",
    ]
    last = json11.entries[1]
    assert last.url == "https://micro.example.com/2024/03/03/relative"
    assert (last.title, last.published) == (None, None)


def test_jsonfeed_unsafe_url_dropped() -> None:
    """A javascript: url in a JSON item is dropped like any non-http link."""
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": '
        b'[{"id": "1", "url": "javascript:alert(1)", "tags": "not-a-list"}]}'
    )
    entry = parse_feed(page(body, content_type="application/feed+json")).entries[0]
    assert (entry.url, entry.tags) == (None, ())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', "invalid JSON"),
        (b"[1, 2, 3]", "without a jsonfeed.org version"),
        (b'{"title": "no version", "items": []}', "without a jsonfeed.org version"),
        (b'{"version": "https://jsonfeed.org/version/1"}', "without an items list"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": {}}', "without an items list"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [}', "invalid JSON"),
    ],
)
def test_jsonfeed_wrong_shape_is_feed_error(body: bytes, message: str) -> None:
    """Invalid JSON or JSON that is not a JSON Feed raises FeedError saying which."""
    with pytest.raises(FeedError, match=message):
        parse_feed(page(body, content_type="application/json"))


# --- encodings ------------------------------------------------------------------------


def test_latin1_declared_in_xml() -> None:
    """An ISO-8859-1 declaration decodes non-ASCII titles correctly."""
    feed = parse_feed(fixture("latin1.xml"))
    assert feed.title == "Café Société"
    assert [entry.title for entry in feed.entries] == [
        "Crème brûlée à la façon de Zoë",
        "Über die Straße",
    ]


def test_windows_1252_declared_in_xml() -> None:
    """windows-1252 smart quotes, euro sign and dashes survive."""
    feed = parse_feed(fixture("windows-1252.xml", content_type="text/xml"))
    assert feed.title == "“Smart quotes” Weekly"
    assert feed.entries[0].title == "Prices rise to €5 — again"
    assert feed.entries[0].summary == "It’s the “new normal”."


def test_utf8_bom() -> None:
    """A UTF-8 byte order mark neither breaks sniffing nor parsing."""
    bom_page = fixture("bom-utf8.xml", content_type="application/atom+xml")
    assert looks_like_feed(bom_page)
    feed = parse_feed(bom_page)
    assert feed.title == "Naïve Café — Ünïcode"
    assert feed.entries[0].title == "Straße, 東京, and emoji 🎉"


def test_bom_beats_http_charset() -> None:
    """RFC 7303 §3: a BOM wins over a charset in the Content-Type header."""
    feed = parse_feed(fixture("bom-utf8.xml", content_type="text/xml", charset="iso-8859-1"))
    assert feed.title == "Naïve Café — Ünïcode"


def test_charset_only_in_http_header() -> None:
    """With no XML declaration, the HTTP charset decides the encoding."""
    body = rss("<item><title>Crème brûlée</title></item>", channel="<title>Café</title>")
    feed = parse_feed(page(body.decode().encode("iso-8859-1"), charset="iso-8859-1"))
    assert (feed.title, feed.entries[0].title) == ("Café", "Crème brûlée")


def test_text_xml_without_charset_is_not_read_as_ascii() -> None:
    """text/xml without a charset still follows the XML declaration (not RFC 3023 ASCII)."""
    body = '<?xml version="1.0" encoding="utf-8"?>' + rss("", channel="<title>Zoë</title>").decode()
    assert parse_feed(page(body.encode(), content_type="text/xml")).title == "Zoë"


def test_utf16_feed() -> None:
    """A UTF-16 feed with a BOM is sniffed and parsed."""
    body = '<?xml version="1.0" encoding="utf-16"?>' + rss("", "<title>Ünï</title>").decode()
    utf16 = page(body.encode("utf-16"))
    assert looks_like_feed(utf16)
    assert parse_feed(utf16).title == "Ünï"


# --- dates ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_dates() -> Feed:
    return parse_feed(fixture("odd-dates.xml"))


@pytest.mark.parametrize(
    ("title", "published"),
    [
        ("Timezone name", "2024-03-04T15:00:00+00:00"),
        ("ISO 8601 in pubDate", "2024-03-04T04:30:00+00:00"),
        ("A few hours ahead (clock skew)", "2024-03-06T15:00:00+00:00"),
        ("No timezone at all", None),
        ("Far future", None),
        ("Garbage", None),
    ],
)
def test_odd_dates(odd_dates: Feed, title: str, published: str | None) -> None:
    """Dates become UTC; unparseable ones and ones over a day in the future are None."""
    entry = by_title(odd_dates, title)
    assert entry.published == (at(published) if published else None)
    assert entry.published is None or entry.published.tzinfo is UTC


def test_dublin_core_date_is_the_updated_date(odd_dates: Feed) -> None:
    """dc:date alone sets updated, as feedparser reads it; published stays None."""
    entry = by_title(odd_dates, "Dublin Core date only")
    assert (entry.published, entry.updated) == (None, at("2024-03-01T00:00:00+00:00"))


def test_future_json_date_dropped() -> None:
    """The one-day future limit applies to JSON Feed dates too."""
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1",'
        b' "date_published": "2024-03-07T11:00:00Z", "date_modified": "2024-03-07T13:00:00Z"}]}'
    )
    entry = parse_feed(page(body, content_type="application/feed+json")).entries[0]
    assert (entry.published, entry.updated) == (at("2024-03-07T11:00:00+00:00"), None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T10:00:00+02:00", "2024-03-01T08:00:00+00:00"),
        ("2024-03-01T10:00:00", "2024-03-01T10:00:00+00:00"),
        ("0001-01-01T00:00:00+05:00", None),
        ("9999-12-31T23:00:00-05:00", None),
        ("2024-02-30T10:00:00Z", None),
        ("", None),
    ],
)
def test_json_dates(value: str, expected: str | None) -> None:
    """JSON Feed dates are RFC 3339, naive ones taken as UTC, impossible ones None."""
    body = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "items": [{"date_published": value}]}
    )
    entry = parse_feed(page(body.encode(), content_type="application/feed+json")).entries[0]
    assert entry.published == (at(expected) if expected else None)


# --- broken input ---------------------------------------------------------------------


def test_broken_xml_recovers_entries_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """Malformed XML with recoverable items returns them and logs why it was malformed."""
    with caplog.at_level(logging.WARNING, logger="ingest.feeds"):
        feed = parse_feed(fixture("broken.xml", url="https://broken.example.com/rss"))
    assert [entry.url for entry in feed.entries] == [
        "https://broken.example.com/fish-and-chips",
        "https://broken.example.com/never-ends",
    ]
    assert feed.entries[0].title == "Fish & Chips are back"
    [record] = caplog.records
    assert record.getMessage().startswith("feeds: recovered 2 entries from malformed XML (")
    assert record.getMessage().endswith("url=https://broken.example.com/rss")


def test_undeclared_namespace_prefix_is_recovered(caplog: pytest.LogCaptureFixture) -> None:
    """dc:creator without xmlns:dc (common in the wild) still yields the entry and author."""
    body = rss("<item><dc:creator>Kim</dc:creator><link>https://x.example/1</link></item>")
    with caplog.at_level(logging.WARNING, logger="ingest.feeds"):
        entry = parse_feed(page(body)).entries[0]
    assert (entry.url, entry.authors) == ("https://x.example/1", ("Kim",))
    assert "unbound prefix" in caplog.text


def test_wrong_http_charset_is_worked_around_without_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A header charset that cannot decode the bytes falls back to the declaration; info only."""
    with caplog.at_level(logging.INFO, logger="ingest.feeds"):
        feed = parse_feed(fixture("latin1.xml", charset="utf-8"))
    assert feed.title == "Café Société"
    assert [record.levelno for record in caplog.records] == [logging.INFO]


def test_malformed_xml_without_entries_is_feed_error() -> None:
    """Malformed XML from which nothing usable was recovered raises FeedError."""
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>A & B</title></chan'
    with pytest.raises(FeedError, match=r"^feeds: malformed XML \(.+\): https://news"):
        parse_feed(page(body))


@pytest.mark.parametrize("content_type", ["text/html", "text/xml", "application/rss+xml"])
def test_html_page_is_not_a_feed(content_type: str) -> None:
    """An HTML page is FeedError, whatever content type it was served with."""
    html = fixture("not-a-feed.html", content_type=content_type)
    assert not looks_like_feed(html)
    with pytest.raises(FeedError, match=r"^feeds: not a feed \(HTML page\): https://"):
        parse_feed(html)


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "])
def test_empty_body_is_feed_error(body: bytes) -> None:
    """An empty or blank body raises FeedError naming it."""
    with pytest.raises(FeedError, match=r"^feeds: empty body: "):
        parse_feed(page(body))


def test_xml_that_is_not_a_feed_is_feed_error() -> None:
    """Well-formed XML with another root (a sitemap) is not a feed."""
    body = b'<?xml version="1.0"?><urlset><url><loc>https://x.example/</loc></url></urlset>'
    with pytest.raises(FeedError, match="no RSS or Atom root element"):
        parse_feed(page(body, content_type="application/xml"))


# --- no I/O ---------------------------------------------------------------------------


def test_external_entity_is_not_resolved(tmp_path: Path) -> None:
    """An external entity pointing at a local file never pulls that file in."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        '<rss version="2.0"><channel><title>t &xxe;</title>'
        "<item><title>&xxe;</title><link>https://x.example/1</link></item></channel></rss>"
    ).encode()
    feed = parse_feed(page(body))
    assert "TOP-SECRET" not in repr(feed)


def test_body_naming_a_local_file_is_not_opened(tmp_path: Path) -> None:
    """A body that happens to be a file path is parsed as bytes, never opened."""
    target = tmp_path / "feed.xml"
    target.write_bytes(rss("<item><link>https://x.example/1</link></item>"))
    with pytest.raises(FeedError):
        parse_feed(page(str(target).encode()))


def test_body_that_is_a_url_is_not_fetched(server: LoopbackServer) -> None:
    """A body that is a URL is text, not something to download."""
    url = server.add("/feed.xml", Response(rss("<item><link>https://x.example/1</link></item>")))
    with pytest.raises(FeedError):
        parse_feed(page(url.encode(), content_type="application/xml"))
    assert server.requests == []


def test_external_dtd_and_entities_are_never_fetched(server: LoopbackServer) -> None:
    """A DOCTYPE's DTD and SYSTEM entities on a reachable server are not requested."""
    dtd = server.add("/evil.dtd", Response(b'<!ENTITY evil "PWNED">', content_type="text/plain"))
    ent = server.add("/entity.txt", Response(b"PWNED", content_type="text/plain"))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{dtd}" [<!ENTITY ext SYSTEM "{ent}">]>'
        '<rss version="2.0"><channel><title>&ext;&evil;</title>'
        "<item><title>&ext;</title><link>https://x.example/1</link></item></channel></rss>"
    ).encode()
    feed = parse_feed(page(body))
    assert "PWNED" not in repr(feed)
    assert server.requests == []


# --- sniffing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "rss091.xml",
        "rss10-rdf.xml",
        "rss20.xml",
        "atom03.xml",
        "atom10.xml",
        "jsonfeed10.json",
        "jsonfeed11.json",
        "latin1.xml",
        "bom-utf8.xml",
        "broken.xml",
        "odd-dates.xml",
        "windows-1252.xml",
    ],
)
def test_fixtures_look_like_feeds_even_served_as_html(name: str) -> None:
    """The first bytes decide: every saved feed is recognised, even served as text/html."""
    assert looks_like_feed(fixture(name, content_type="text/html"))


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"", "application/rss+xml", False),
        (b'{"name": "not a feed"}', "application/json", False),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "text/plain", True),
        (b'{"version": "https:\\/\\/jsonfeed.org\\/version\\/1"}', "application/json", True),
        (b"<?xml version='1.0'?><urlset/>", "application/xml", False),
        (b"<html><body>hi</body></html>", "text/xml", False),
        (b"<body><p>a fragment</p></body>", "application/xml", False),
        (b"plain words", "application/rss+xml", False),
        (b"<!--" + b"x" * 70_000 + b"--><rss/>", "application/rss+xml", True),
        (b"<!--" + b"x" * 70_000 + b"--><rss/>", "text/html", False),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "", True),
    ],
)
def test_looks_like_feed(body: bytes, content_type: str, expected: bool) -> None:
    """Bytes decide when they can; the content type only when the root is out of sight."""
    assert looks_like_feed(page(body, content_type=content_type)) is expected


# --- properties -----------------------------------------------------------------------

_SEEDS = sorted(path.read_bytes() for path in FEEDS.iterdir())
_XML_BITS = st.sampled_from(
    [
        "<rss version='2.0'>",
        "<channel>",
        "<item>",
        "</item>",
        "<link>",
        "</link>",
        "<guid isPermaLink='true'>",
        "</guid>",
        "<title>",
        "</title>",
        "<pubDate>",
        "<feed xmlns='http://www.w3.org/2005/Atom'>",
        "<entry>",
        "<id>",
        "xml:base='",
        "<![CDATA[",
        "]]>",
        "&amp;",
        "&#0;",
        "&#xD800;",
        "&bogus;",
        "<!DOCTYPE x [",
        "<!ENTITY a 'b'>",
        "]>",
        "<?xml version='1.0' encoding='utf-16'?>",
        "javascript:",
        "http://",
        "9999-99-99T99:99:99Z",
        "Mon, 31 Feb 99999 25:00:00 +9999",
        "<ttl>",
        '{"version": "https://jsonfeed.org/version/1", "items": [',
        '{"url": ',
        "null",
        "]}",
        "\ufeff",
        "\x00",
        "é",
        " ",
    ]
)


@st.composite
def feedish_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, cut and spliced saved feeds, or shuffled feed vocabulary."""
    kind = draw(st.sampled_from(["binary", "mutated", "tokens"]))
    if kind == "binary":
        return draw(st.binary(max_size=2000))
    if kind == "tokens":
        return "".join(draw(st.lists(_XML_BITS, max_size=60))).encode(
            draw(st.sampled_from(["utf-8", "latin-1", "utf-16"])), "ignore"
        )
    seed = draw(st.sampled_from(_SEEDS))
    cut = draw(st.integers(0, len(seed)))
    return seed[:cut] + draw(st.binary(max_size=50)) + seed[cut + draw(st.integers(0, 50)) :]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=feedish_bytes(), charset=st.sampled_from([None, "utf-8", "latin-1", "bogus"]))
def test_any_bytes_give_a_feed_or_feed_error(body: bytes, charset: str | None) -> None:
    """Whatever the bytes, parse_feed returns a Feed or raises FeedError, nothing else."""
    any_page = page(body, charset=charset)
    looks_like_feed(any_page)
    try:
        feed = parse_feed(any_page)
    except FeedError:
        return
    guids = [entry.guid for entry in feed.entries if entry.guid]
    assert len(guids) == len(set(guids))
    for entry in feed.entries:
        assert entry.url is None or entry.url.startswith(("http://", "https://"))
        for date in (entry.published, entry.updated):
            assert date is None or (date.tzinfo is UTC and date <= FETCHED_AT + timedelta(days=1))


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["javascript:x", "/rel", "https://x.example/a", "2024-03-01T10:00:00Z"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "url",
                    "external_url",
                    "title",
                    "summary",
                    "content_text",
                    "content_html",
                    "date_published",
                    "date_modified",
                    "author",
                    "authors",
                    "name",
                    "tags",
                    "items",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(items=_JSON_VALUES, feed_url=_JSON_VALUES)
def test_any_json_feed_shape_gives_a_feed_or_feed_error(items: object, feed_url: object) -> None:
    """Any JSON under a JSON Feed version gives a Feed or FeedError, nothing else."""
    body = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "feed_url": feed_url, "items": items}
    ).encode()
    with contextlib.suppress(FeedError):
        parse_feed(page(body, content_type="application/feed+json"))


RUSSIAN_TITLE = "Президент создал службу по делам иностранцев"


@pytest.mark.parametrize(
    ("declaration", "http_charset"),
    [
        ('<?xml version="1.0" encoding="utf-8"?>', None),
        ("<?xml version='1.0'?>", "utf-8"),
        ("", None),
    ],
)
def test_feed_declared_utf8_but_windows_1251_is_readable(
    declaration: str, http_charset: str | None
) -> None:
    """A feed that claims UTF-8 but is windows-1251 is decoded from what its bytes are."""
    items = "".join(
        f"<item><title>{RUSSIAN_TITLE} {n}</title><link>https://news.example/{n}</link>"
        f"<description>{RUSSIAN_TITLE}: подробности и комментарии экспертов.</description></item>"
        for n in range(5)
    )
    xml = f'{declaration}<rss version="2.0"><channel><title>Новости</title>{items}</channel></rss>'
    feed = parse_feed(page(xml.encode("cp1251"), charset=http_charset))
    assert feed.title == "Новости"
    assert [e.title for e in feed.entries] == [f"{RUSSIAN_TITLE} {n}" for n in range(5)]
