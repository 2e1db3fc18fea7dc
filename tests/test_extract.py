"""Tests of the article extractor (ingest.extract)."""

from __future__ import annotations

import contextlib
import gc
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.document import from_document, to_document
from ingest.errors import ExtractError
from ingest.extract import clean, dates, extract, limits, page_dates, teasers
from ingest.extract.blocks import Blocks
from ingest.extract.dates import date_from_url, parse_date, text_dates
from ingest.extract.decode import decode_html, is_utf8
from ingest.extract.limits import MAX_DEPTH, flatten_deep_nesting
from ingest.models import Extraction, ExtractRules
from ingest.pipeline import build_article
from tests.conftest import SEED

SEED_NAME = "moscowtimes-migration-service"
PARAGRAPH = (
    "The council met on Tuesday evening to discuss the new budget, which sets aside money "
    "for the repair of three bridges, a library extension and more frequent bus services."
)


def page(body: str, head: str = "", lang: str = "en") -> bytes:
    """A minimal HTML document around ``body``."""
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">{head}</head>'
        f"<body>{body}</body></html>"
    ).encode()


def article(*paragraphs: str) -> str:
    """An <article> of the given paragraphs (PARAGRAPH thrice if none)."""
    items = paragraphs or (PARAGRAPH, PARAGRAPH, PARAGRAPH)
    return "<article>" + "".join(f"<p>{p}</p>" for p in items) + "</article>"


@pytest.fixture(scope="module")
def seed() -> tuple[Extraction, dict[str, object]]:
    """The seed page extracted, with what it must give."""
    expected = json.loads((SEED / f"{SEED_NAME}.expected.json").read_text())
    html = (SEED / f"{SEED_NAME}.html").read_bytes()
    return extract(html, url=str(expected["url"])), expected


def test_seed_text_holds_the_article(seed: tuple[Extraction, dict[str, object]]) -> None:
    """Every must-contain snippet of the seed page is in the extracted text."""
    got, expected = seed
    for snippet in expected["text_must_contain"]:  # type: ignore[attr-defined]
        assert snippet in got.text


def test_seed_text_drops_boilerplate(seed: tuple[Extraction, dict[str, object]]) -> None:
    """No must-not-contain snippet (banners, newsletter, appeal, lists, footer) survives."""
    got, expected = seed
    for snippet in expected["text_must_not_contain"]:  # type: ignore[attr-defined]
        assert snippet not in got.text


def test_seed_metadata(seed: tuple[Extraction, dict[str, object]]) -> None:
    """Title, site, language, image, tags and canonical URL match exactly."""
    got, expected = seed
    assert got.title == expected["title"]
    assert got.site_name == expected["site_name"]
    assert got.language == expected["language"]
    assert got.image == expected["image"]
    assert list(got.tags) == expected["tags"]
    assert got.canonical_url == expected["url"]


def test_seed_published_is_the_same_instant(seed: tuple[Extraction, dict[str, object]]) -> None:
    """The publication time is the expected instant, timezone-aware."""
    got, expected = seed
    assert got.published is not None
    assert got.published.tzinfo is not None
    assert got.published == datetime.fromisoformat(str(expected["published"]))


def test_inline_tags_add_no_spaces() -> None:
    """Inline markup inside a word does not split it: wor<b>ld</b> reads world."""
    body = article(f"Hello wor<b>ld</b>, it is a <i>fine</i>day. {PARAGRAPH}", PARAGRAPH)
    got = extract(page(body))
    assert "Hello world, it is a fineday." in got.text


def test_blocks_are_separated_by_blank_lines() -> None:
    """Paragraphs and headings are blocks of their own with a blank line between them."""
    body = article(PARAGRAPH, PARAGRAPH).replace("</p><p>", "</p><h2>Budget</h2><p>")
    got = extract(page(body))
    assert got.text == f"{PARAGRAPH}\n\nBudget\n\n{PARAGRAPH}"
    assert "## Budget" in got.markdown


def test_list_items_are_lines() -> None:
    """Each list item is on its own line, and Markdown shows it as a bullet."""
    body = article(PARAGRAPH, PARAGRAPH).replace(
        "</p><p>", "</p><ul><li>first point here</li><li>second point here</li></ul><p>"
    )
    got = extract(page(body))
    assert "first point here\nsecond point here" in got.text
    assert "- first point here\n- second point here" in got.markdown


def test_sanitizer_drops_active_content() -> None:
    """Scripts, handlers, javascript: URLs, iframes, forms and styles are gone."""
    body = article(
        f'<a href="javascript:alert(1)">bad link</a> <b onclick="x()">bold</b> {PARAGRAPH}',
        f'<span style="color:red">{PARAGRAPH}</span><script>evil()</script>',
        f'{PARAGRAPH}<iframe src="https://x.example/"></iframe>',
    ).replace("</article>", "<form><input name=q></form><style>p{}</style></article>")
    html = extract(page(body), url="https://example.com/a").html
    for forbidden in ("<script", "onclick", "javascript:", "<iframe", "<form", "<input", "style"):
        assert forbidden not in html
    assert "<b>bold</b>" in html


def test_sanitizer_makes_links_and_images_absolute() -> None:
    """Relative href and src become absolute against the page URL."""
    body = article(f'<a href="/news/1">one</a> <img src="pic.jpg" alt="x"> {PARAGRAPH}', PARAGRAPH)
    got = extract(page(body), url="https://example.com/dir/page")
    assert 'href="https://example.com/news/1"' in got.html
    assert 'src="https://example.com/dir/pic.jpg"' in got.html
    assert "[one](https://example.com/news/1)" in got.markdown


def test_rules_content_selector_picks_the_body() -> None:
    """A matching content_selector decides the body, even against the generic choice."""
    body = article() + f'<div class="teaser-box"><p>{PARAGRAPH[:60]} chosen by rule.</p></div>'
    got = extract(page(body), rules=ExtractRules(content_selector=".teaser-box"))
    assert got.text.endswith("chosen by rule.")
    assert "library extension and more frequent" not in got.text


def test_rules_drop_selectors_remove_first() -> None:
    """drop_selectors remove their nodes before anything else."""
    body = article(PARAGRAPH, "Drop this sentence, it is site furniture of some length.", PARAGRAPH)
    body = body.replace("<p>Drop", '<p class="furniture">Drop')
    got = extract(page(body), rules=ExtractRules(drop_selectors=(".furniture",)))
    assert "Drop this" not in got.text
    assert PARAGRAPH in got.text


def test_invalid_rule_selector_is_an_extract_error() -> None:
    """A broken selector in the rules is reported as ExtractError, not a library error."""
    with pytest.raises(ExtractError, match="invalid selector"):
        extract(page(article()), rules=ExtractRules(content_selector="div[["))


def test_extract_leaves_the_garbage_collector_as_it_found_it() -> None:
    """Extraction pauses the cyclic collector, then restores its state, error or not."""
    assert gc.isenabled()
    extract(page(article()))
    assert gc.isenabled()
    with pytest.raises(ExtractError):
        extract(page("<p>Too short.</p>"))
    assert gc.isenabled()
    gc.disable()
    try:
        extract(page(article()))
        assert not gc.isenabled()  # a caller's choice to keep it off stands
    finally:
        gc.enable()


def test_metadata_from_meta_tags() -> None:
    """Meta tags give title without site suffix, author, date in UTC, tags and image."""
    head = (
        "<title>Bridges get money - Town Gazette</title>"
        '<meta property="og:site_name" content="Town Gazette">'
        '<meta name="author" content="Jane Roe">'
        '<meta property="article:published_time" content="2024-03-01T09:30:00+01:00">'
        '<meta property="article:tag" content="Budget">'
        '<meta property="article:tag" content="Roads">'
        '<meta property="og:image" content="/img/lead.jpg">'
        '<link rel="canonical" href="/2024/bridges">'
    )
    got = extract(page(article(), head=head, lang="en-GB"), url="https://gazette.example/x?utm=1")
    assert got.title == "Bridges get money"
    assert got.authors == ("Jane Roe",)
    assert got.published == datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    assert got.tags == ("Budget", "Roads")
    assert got.image == "https://gazette.example/img/lead.jpg"
    assert got.canonical_url == "https://gazette.example/2024/bridges"
    assert got.language == "en"
    assert got.site_name == "Town Gazette"


def test_metadata_from_json_ld_and_visible_markup() -> None:
    """JSON-LD authors and dates are read; without them a <time> and the URL date serve."""
    ld = (
        '<script type="application/ld+json">{"@graph": [{"@type": "WebSite", "name": "X"}, '
        '{"@type": "NewsArticle", "headline": "Headline here", "author": [{"name": "A One"}, '
        '{"name": "B Two"}], "datePublished": "2023-12-31T23:00:00Z"}]}</script>'
    )
    got = extract(page(article(), head=ld))
    assert got.authors == ("A One", "B Two")
    assert got.title == "Headline here"
    assert got.published == datetime(2023, 12, 31, 23, tzinfo=UTC)
    timed = extract(page('<time datetime="2022-05-04">May 4</time>' + article()))
    assert timed.published == datetime(2022, 5, 4, tzinfo=UTC)
    dated = extract(page(article()), url="https://n.example/2021/07/09/story")
    assert dated.published == datetime(2021, 7, 9, tzinfo=UTC)
    assert dated.canonical_url == "https://n.example/2021/07/09/story"


def test_published_keeps_the_pages_own_offset_and_day() -> None:
    """A late-evening time keeps its offset: same instant, and the day the page states."""
    head = '<meta property="article:published_time" content="2023-05-03T23:00:00-05:00">'
    got = extract(page(article(), head=head))
    assert got.published == datetime(2023, 5, 4, 4, tzinfo=UTC)
    assert got.published is not None
    assert got.published.date().isoformat() == "2023-05-03"
    assert got.published.utcoffset() == timedelta(hours=-5)


def test_article_document_writes_the_pages_day() -> None:
    """The stored document's published field carries the page's offset and day."""
    head = '<meta property="article:published_time" content="2025-12-18T21:41:41-05:00">'
    extraction = extract(page(article(), head=head))
    stored = build_article(
        extraction, article_id="0" * 20, url="https://n.example/a", source=None, fetched_at=None
    )
    assert to_document(stored)["published"] == "2025-12-18T21:41:41-05:00"
    assert from_document(to_document(stored)).published == extraction.published


def test_updated_byline_is_the_modified_date() -> None:
    """'Published X ... Updated Y' under the headline gives published X and modified Y."""
    byline = (
        "<h1>Bridges get money</h1><p class='meta'>By Jane Roe, Published Apr 26, 2023 "
        "&middot; Updated Aug 21, 2025</p>"
    )
    got = extract(page(byline + article()))
    assert got.published == datetime(2023, 4, 26, tzinfo=UTC)
    assert got.modified == datetime(2025, 8, 21, tzinfo=UTC)


def test_updated_time_element_is_not_the_published_date() -> None:
    """A <time> after 'Last updated:' is the modified date; JSON-LD keeps published."""
    ld = '<script type="application/ld+json">{"@type": "Article", "datePublished": "2024-04-10"}'
    body = (
        '<h1>Bridges get money</h1><div>Last updated: <time datetime="2025-09-04T19:24:33Z">'
        "Sep 4, 2025</time></div>"
    )
    got = extract(page(body + article(), head=ld + "</script>"))
    assert got.published == datetime(2024, 4, 10, tzinfo=UTC)
    assert got.modified == datetime(2025, 9, 4, 19, 24, 33, tzinfo=UTC)


def test_only_an_updated_date_is_also_the_published_date() -> None:
    """A page dated only 'Updated on July 9, 2025' gives that date for both fields."""
    body = "<h1>Best tax software</h1><p>By Jane Roe Updated on July 9, 2025</p>"
    got = extract(page(body + article()))
    assert got.published == got.modified == datetime(2025, 7, 9, tzinfo=UTC)


def test_printed_byline_beats_a_non_iso_json_ld_date() -> None:
    """JSON-LD 'Jun 24, 2025' (a template's display date) loses to the printed byline."""
    ld = (
        '<script type="application/ld+json">{"@type": "BlogPosting", '
        '"datePublished": "Jun 24, 2025", "dateModified": "Jun 24, 2025"}</script>'
    )
    body = "<h1>How much to charge</h1><p>Shauna Mitchell August 25, 2024</p>"
    got = extract(page(body + article(), head=ld))
    assert got.published == datetime(2024, 8, 25, tzinfo=UTC)


def test_republish_stamp_loses_to_the_printed_day() -> None:
    """A declared published time equal to the modified time yields to an earlier byline."""
    ld = (
        '<script type="application/ld+json">{{"@type": "Article", '
        '"datePublished": "2025-12-19T22:02:58Z", "dateModified": "{modified}"}}</script>'
    )
    body = "<h1>A new standard</h1><p>Corti introduces GIM Dec 18, 2025 5 min read</p>"
    stamp = extract(page(body + article(), head=ld.format(modified="2025-12-19T22:02:45Z")))
    assert stamp.published == datetime(2025, 12, 18, tzinfo=UTC)
    edited = extract(page(body + article(), head=ld.format(modified="2025-12-20T08:00:00Z")))
    assert edited.published == datetime(2025, 12, 19, 22, 2, 58, tzinfo=UTC)


def test_date_in_the_url_beats_the_byline() -> None:
    """A /2023/october/03/ URL date outranks a date printed near the headline."""
    body = "<h1>Wine styles</h1><p>- 13 October 2023</p>"
    url = "https://w.example/blog/2023/october/03/wine-styles/"
    got = extract(page(body + article()), url=url)
    assert got.published == datetime(2023, 10, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("byline", "day"),
    [
        ("Veröffentlicht am 21. Mai 2025", "2025-05-21"),
        ("Publicado el 21 de mayo de 2025", "2025-05-21"),
        ("Publié le 1er mai 2025", "2025-05-01"),
        ("2025年5月21日", "2025-05-21"),
        ("17.05.2021", "2021-05-17"),
        ("Posted on the 15/12/2025 at 19:00", "2025-12-15"),
        ("Essay - Published: 2025.12.17 |", "2025-12-17"),
        ("jsteinhardt 18th Dec 2025 AI Alignment Forum", "2025-12-18"),
    ],
)
def test_printed_dates_in_many_forms(byline: str, day: str) -> None:
    """Bylines in several languages and numeric forms give the day they print."""
    got = extract(page(f"<h1>Headline here</h1><p>{byline}</p>" + article()))
    assert got.published is not None
    assert got.published.date().isoformat() == day


def test_ambiguous_slashed_date_is_not_guessed() -> None:
    """05/06/2025 could be May 6 or June 5: no date rather than a guess."""
    got = extract(page("<h1>Headline here</h1><p>05/06/2025</p>" + article()))
    assert got.published is None


def test_date_right_after_a_headline_in_a_large_container() -> None:
    """A byline just after an <h1> whose parent holds the whole article is found."""
    body = (
        "<div><h1>Defer, Panic, and Recover</h1><p>Andrew Gerrand</p><p>4 August 2010</p>"
        + "".join(f"<p>{PARAGRAPH} Number {i}.</p>" for i in range(30))
        + "</div>"
    )
    got = extract(page(body))
    assert got.published == datetime(2010, 8, 4, tzinfo=UTC)


def test_originally_published_note_beats_the_byline() -> None:
    """'Originally published on 26 Sep 2019' outranks a re-dated byline."""
    body = (
        "<h1>Tiny homes</h1><p>Chris Carroll 30 Sep 2022</p>"
        + article()
        + "<p>This article was originally published on 26 Sep 2019 at 4:12pm.</p>"
    )
    got = extract(page(body))
    assert got.published == datetime(2019, 9, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    "note",
    [
        "Last updated: 26 Sep 2019",
        "LAST UPDATED 26 Sep 2019",
        "DERNIÈRE MISE À JOUR : 26 septembre 2019",
        "Zuletzt aktualisiert am 26. September 2019",  # "k" may be a Kelvin sign
        "ZULETZT A\u212aTUALISIERT 26. September 2019",
    ],
)
def test_last_updated_note_in_any_case(note: str) -> None:
    """A "Last updated" note dates a page without a byline, in whatever case it is set."""
    got = extract(page(article() + f"<p>{note}</p>"))
    assert got.modified == datetime(2019, 9, 26, tzinfo=UTC)


def test_notes_are_read_in_shown_text_only() -> None:
    """A "Last updated" in a script's data is no note; one after scripts and styles is."""
    hidden = page(article() + '<script>var label = "Last updated: 26 Sep 2019";</script>')
    assert extract(hidden).modified is None
    shown = page(
        article()
        + "<script>var a = 1;</script><style>p { color: red }</style>"
        + "<p>Last updated: 3 Oct 2020</p><script>var b = 2;</script>"
    )
    assert extract(shown).modified == datetime(2020, 10, 3, tzinfo=UTC)


_FRAGMENT_TAGS = ["div", "span", "time", "script", "style", "noscript", "template"]
_FRAGMENT_TEXT = st.sampled_from(["", " ", "\n  ", "Mar 3, 2024", "a&amp;b", " By Jo ", "é"])


@st.composite
def _fragments(draw: st.DrawFn, depth: int = 0) -> str:
    """HTML of text and nested elements, some of them script, style, noscript or template."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        if depth < 3 and draw(st.booleans()):
            tag = draw(st.sampled_from(_FRAGMENT_TAGS))
            parts.append(f"<{tag}>{draw(_fragments(depth + 1))}</{tag}>")
        else:
            parts.append(draw(_FRAGMENT_TEXT))
    return "".join(parts)


def _visible_text_reference(node: LexborNode) -> str:
    """The text nodes under ``node`` not of whitespace only and not straight inside a
    script, style, noscript or template, joined by spaces: one Python step a node."""
    parts = []
    for child in node.traverse(include_text=True, skip_empty=True):
        parent = child.parent
        if child.tag == "-text" and (parent is None or parent.tag not in page_dates._INVISIBLE):
            text = child.text(deep=False)
            if text:
                parts.append(text)
    return " ".join(parts)


@given(_fragments())
@settings(max_examples=300, deadline=None)
def test_visible_text_in_c_agrees_with_the_walk(html: str) -> None:
    """The byline search reads a block's text in C when it holds no script or style;
    either way the text is that of the node-by-node walk."""
    body = LexborHTMLParser(f"<div>{html}</div>").body
    assert body is not None
    for node in body.css("div, span, time"):
        assert page_dates._visible_text(node) == _visible_text_reference(node)


@given(_fragments())
@settings(max_examples=300, deadline=None)
def test_parents_text_is_the_text_read_from_the_tree(html: str) -> None:
    """Pruning gives a block the verdict of a parent whose text is all inside it: that
    is so exactly when the two read the same text from the tree, but for whitespace."""
    body = LexborHTMLParser(f"<div>{html}</div>").body
    assert body is not None
    blocks = Blocks(body)
    for i in range(1, len(blocks.tags)):
        parent = blocks.nodes[blocks.parents[i]]
        same = parent.text().strip() == blocks.nodes[i].text().strip()
        assert blocks.has_parents_text(i) == same


# The date patterns as first written, each with its look back in front.
_PLAIN_DATE_PATTERNS = {
    "_ISO_DAY": r"(?<![\d.])((?:19|20)\d\d)([-/.])(\d{1,2})\2(\d{1,2})(?![\d])",
    "_DMY": r"(?<!\d)(\d{1,2})(?:st|nd|rd|th|er|º)?\.?\s*(?:of\s+|de\s+)?"
    + dates._MONTH
    + r",?\s+(?:de\s+)?"
    + dates._YEAR
    + r"(?!\d)",
    "_NUMERIC": r"(?<![\d./])(\d{1,2})([./])(\d{1,2})\2" + dates._YEAR + r"(?![\d])",
}
_DATE_PIECES = st.sampled_from(
    [
        *("1", "2", "0", "9", "12", "19", "20", "2024", "1999"),
        *(" ", "  ", "\n", ".", "/", "-", ","),
        *("May", "mai", "Sept", "st", "de ", "of ", "x", "º", "é", "_"),
    ]
)


@given(st.lists(_DATE_PIECES, max_size=14).map("".join))
@example("x12 May 2025 and 123 May 2025, 1.2.2024, 3/14/2024, 2024-05-06")
@example("120 May 2024 12.2024-01-02 .2024-01-02 12/12/2024")
@example("May 12 2024, Sept 1st, 1999")
@settings(max_examples=500, deadline=None)
def test_date_patterns_agree_with_the_plain_ones(text: str) -> None:
    """The date patterns, turned around to search faster, find what the plain ones find;
    and the cheap test that _MDY runs behind holds wherever _MDY matches."""
    for name, plain in _PLAIN_DATE_PATTERNS.items():
        fast = getattr(dates, name)
        expected = re.compile(plain, fast.flags)
        assert [(m.span(), m.groups()) for m in fast.finditer(text)] == [
            (m.span(), m.groups()) for m in expected.finditer(text)
        ]
    for match in dates._MDY.finditer(text):
        assert dates._DAY_YEAR.search(text, match.start(), match.end())


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        ("share-bar ", "strong"),
        ("shareButtons ", "strong"),  # camelCase humps split
        (" comments", "strong"),  # an id alone
        ("Ad-Slot ", "strong"),
        ("sr-only x", "strong"),  # an exact marker
        ("post-meta ", "weak"),  # a weak word beside a content word
        ("author-bio ", "weak"),  # weak words only
        ("main-content sidebar", "weak"),  # a strong word in a block that names content
        ("x MostRead", "weak"),
        ("content ", ""),
        ("col-md-8 row", ""),
        ("art header", ""),  # no word holds a boilerplate word inside it
    ],
)
def test_class_and_id_verdicts(value: str, verdict: str) -> None:
    """How class and id values ("class id") are judged as boilerplate."""
    assert clean._boilerplate(value) == verdict


def test_forms_landmarks_and_a_page_wrapping_form() -> None:
    """A page-wrapping form (one holding paragraphs) keeps what it holds; other forms go,
    and so do landmarks with the forms inside them."""
    body = LexborHTMLParser(
        "<body><nav><form><p>menu</p><input></form></nav><form><p>kept</p></form>"
        "<aside><form>search</form></aside><form><input name=q> go</form><p>text</p></body>"
    ).body
    assert body is not None
    clean.remove_junk(body)
    assert body.html == "<body><p>kept</p><p>text</p></body>"


@pytest.mark.parametrize(
    "href",
    [
        *("/a", "/", "/a?b#c", " /a ", "/\\x", "x/y", "//other.example/a"),
        *("//www.site.example/x", "https://site.example/", "https://evil.example/"),
        *("HTTPS://News.Site.Example/a", "http://["),
    ],
)
def test_teaser_links_to_the_site_as_urlsplit_says(href: str) -> None:
    """A teaser's link is to the page's site when urlsplit finds no host or the site's;
    a path is taken for the site without asking urlsplit."""
    try:
        host = urlsplit(href.strip()).hostname
    except ValueError:
        expected = False
    else:
        expected = host is None or host == "site.example" or host.endswith(".site.example")
    assert teasers._same_site(href, "site.example") == expected


def test_note_folding_characters_are_complete() -> None:
    """Every non-ASCII character whose lower case holds a letter of a note phrase is
    listed, so the cheap test for a note never misses one."""
    letters = set("".join(page_dates._ORIGINALLY + page_dates._LAST_UPDATED))
    folding = {
        char
        for char in map(chr, range(0x80, 0x110000))
        if char.lower() != char and letters & set(char.lower())
    }
    assert folding == set(page_dates._FOLDS_INTO_NOTES)


def test_nested_and_meta_json_ld_are_read() -> None:
    """A BlogPosting inside a Blog, or JSON-LD in a meta tag, gives the date."""
    nested = (
        '<script type="application/ld+json">{"@type": "Blog", "blogPost": '
        '[{"@type": "BlogPosting", "datePublished": "2025-12-19T20:20:42Z"}]}</script>'
    )
    assert extract(page(article(), head=nested)).published == datetime(
        2025, 12, 19, 20, 20, 42, tzinfo=UTC
    )
    in_meta = (
        '<meta name="script:ld+json" content="{&quot;@type&quot;:&quot;Article&quot;,'
        '&quot;datePublished&quot;:&quot;2025-11-17T09:00:00-05:00&quot;}">'
    )
    got = extract(page(article(), head=in_meta))
    assert got.published == datetime(2025, 11, 17, 14, tzinfo=UTC)


def test_review_nested_in_a_business_is_not_the_article() -> None:
    """A customer review inside a LocalBusiness does not lend its author to the page."""
    ld = (
        '<script type="application/ld+json">{"@type": "LocalBusiness", "name": "Shop", '
        '"review": {"@type": "Review", "author": {"@type": "Person", "name": "C McGill"}}}'
        "</script>"
    )
    got = extract(page(article(), head=ld + '<meta name="author" content="Jane Roe">'))
    assert got.authors == ("Jane Roe",)


def test_scripts_are_data_never_text() -> None:
    """Scripts are read as data wherever they are (JSON-LD in the body, its type in
    capitals), and neither they nor styles count as text: a long inline script in the
    block after the headline does not hide the date printed after it."""
    ld = (
        '<script type="Application/LD+JSON">'
        '{"@type": "Article", "author": {"name": "C Three"}}</script>'
    )
    script = "<script>var config = '" + "x" * 4000 + "';</script><style>p { color: red }</style>"
    got = extract(
        page(f"<h1>Headline here</h1><div>{script}<p>March 3, 2024</p></div>{article()}{ld}")
    )
    assert got.authors == ("C Three",)
    assert got.published == datetime(2024, 3, 3, tzinfo=UTC)
    assert "config" not in got.text
    assert "color" not in got.text


def test_script_data_date_when_nothing_is_printed() -> None:
    """A client-rendered page's "publishedAt" in script data gives the date."""
    data = (
        '<script>window.__DATA__ = {"post": {"publishedAt": "2025-10-20T13:08:55-07:00"}}</script>'
    )
    got = extract(page(article() + data))
    assert got.published == datetime(2025, 10, 20, 20, 8, 55, tzinfo=UTC)
    assert got.published is not None
    assert got.published.date().isoformat() == "2025-10-20"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_date_parsers_never_crash(value: str) -> None:
    """Any string in: a timezone-aware datetime or None out, from every date parser."""
    for found in (parse_date(value), date_from_url(value), date_from_url("https://e.x/" + value)):
        assert found is None or found.tzinfo is not None
    for item in text_dates(value):
        assert item.when.tzinfo is not None
        assert item.kind in (None, "published", "modified")


def test_boilerplate_blocks_inside_article_are_removed() -> None:
    """Share bars, newsletter boxes, related lists and comments inside the article go."""
    body = (
        article(PARAGRAPH, PARAGRAPH).replace(
            "</p><p>",
            '</p><div class="social-share">Share on Facebook</div>'
            '<div class="newsletter-box">Get our daily newsletter in your inbox now, free</div>'
            '<ul class="related-links"><li><a href="/a">Other story one</a></li></ul><p>',
        )
        + '<section id="comments"><p>I disagree with everything written in this article, '
        "friends.</p></section>"
    )
    got = extract(page(body))
    assert got.text == f"{PARAGRAPH}\n\n{PARAGRAPH}"


def test_content_split_across_siblings_is_recovered() -> None:
    """An article split into sibling blocks (around an inline ad) comes out whole."""
    first = f"<div class='text-block'><p>First part. {PARAGRAPH}</p><p>{PARAGRAPH}</p></div>"
    second = f"<div class='text-block'><p>Second part. {PARAGRAPH}</p><p>{PARAGRAPH}</p></div>"
    body = f"<div class='story'>{first}<div class='ad-slot'>Advertisement</div>{second}</div>"
    got = extract(page(body))
    assert "First part." in got.text
    assert "Second part." in got.text
    assert "Advertisement" not in got.text


@pytest.mark.parametrize(
    ("raw", "charset", "expected"),
    [
        ("café".encode("cp1252"), None, "café"),
        ("café".encode(), None, "café"),
        ("café".encode("latin-1"), "ISO-8859-1", "café"),
        (b'<meta charset="koi8-r">' + "мир".encode("koi8-r"), None, "мир"),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "cp1252", "café"),
        ("café".encode("utf-16-le"), None, "c"),  # no BOM, not declared: garbage, no crash
        (b"caf\xe9", "no-such-charset", "café"),
        (b"x", "base64", "x"),
    ],
)
def test_decode_follows_bom_header_meta_then_fallback(
    raw: bytes, charset: str | None, expected: str
) -> None:
    """Decoding picks BOM, then HTTP charset, then meta, then UTF-8 or cp1252, never failing."""
    assert expected in decode_html(raw, charset=charset)


def _utf8_or_not(text: str, cuts: list[tuple[int, int]]) -> bytes:
    """UTF-8 of ``text`` with bytes replaced at some positions (often making it invalid)."""
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    for position, value in cuts:
        if data:
            data[position % len(data)] = value
    return bytes(data)


@settings(max_examples=500, deadline=None)
@given(
    data=st.builds(
        _utf8_or_not,
        st.text(alphabet=st.sampled_from("ab <\u00e9\u2019\U0001f600\ud800")),
        st.lists(
            st.tuples(st.integers(0, 200), st.sampled_from([0x41, 0x80, 0xC3, 0xE2, 0xF0, 0xFF])),
            max_size=2,
        ),
    ),
    chunk=st.integers(1, 9),
)
@example(data=b"\xc3A\xa9", chunk=1)  # a lead byte, ASCII, then a continuation byte
@example(data=b"ab\xe2\x80\x99", chunk=3)  # a valid sequence across a chunk end
@example(data=b"ab\xe2\x80", chunk=2)  # cut off by the end
def test_chunked_utf8_check_agrees_with_decode(data: bytes, chunk: int) -> None:
    """The chunked UTF-8 check says what decoding the whole page says, sequences cut
    at chunk ends, by ASCII chunks, or by the end included."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert not is_utf8(data, chunk=chunk)
    else:
        assert is_utf8(data, chunk=chunk)


@pytest.mark.parametrize("raw", [b"", b"   ", b"<html><body></body></html>", b"<p>too short</p>"])
def test_no_article_is_an_extract_error(raw: bytes) -> None:
    """Pages without an article body raise ExtractError naming the URL."""
    with pytest.raises(ExtractError, match=r"https://e\.example/p"):
        extract(raw, url="https://e.example/p")


@pytest.mark.parametrize("raw", [b"", b" \t\r\n\x0b\x0c", "  \n"])
def test_blank_page_is_reported_as_empty(raw: bytes | str) -> None:
    """A page of nothing but ASCII whitespace is an empty page, said so."""
    with pytest.raises(ExtractError, match=r"empty page: https://e\.example/p"):
        extract(raw, url="https://e.example/p")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode))
def test_any_bytes_give_extraction_or_extract_error(raw: bytes) -> None:
    """Any bytes in: an Extraction or an ExtractError, never another exception."""
    with contextlib.suppress(ExtractError):
        assert isinstance(extract(raw, url="https://e.example/p"), Extraction)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<div>",
                "</div>",
                "<p>",
                "<b>",
                "</b>",
                "<a href=x>",
                "</a>",
                "<li>",
                "<ul>",
                "<br>",
                "word ",
                "<article>",
                "<script>",
                "&amp;",
                "<h1>",
                "<table><td>",
                "<pre>",
                "\x00",
                "\ud800",
            ]
        ),
        max_size=400,
    )
)
def test_any_tag_soup_gives_extraction_or_extract_error(parts: list[str]) -> None:
    """Random tag soup (including str input with lone surrogates) never crashes."""
    with contextlib.suppress(ExtractError):
        extract("".join(parts) + PARAGRAPH * 2)


def test_deep_nesting_finishes() -> None:
    """50,000 nested elements are handled without recursion errors."""
    depth = 50_000
    raw = "<div>" * depth + f"<p>{PARAGRAPH}</p>" + "</div>" * depth
    got = extract(raw)
    assert PARAGRAPH in got.text


def test_deep_inline_nesting_finishes() -> None:
    """50,000 nested inline elements inside a paragraph are handled too."""
    depth = 50_000
    raw = f"<p>{PARAGRAPH}" + "<b>x" * depth + "</b>" * depth + "</p>"
    got = extract(raw)
    assert PARAGRAPH in got.text


def test_huge_page_finishes() -> None:
    """A 5 MB page of article text and link lists is extracted."""
    filler = "<ul>" + "<li><a href='/x'>link text here</a></li>" * 20 + "</ul>"
    chunk = f"<p>{PARAGRAPH}</p>" * 5 + filler
    raw = page(article() + "<div>" + chunk * (5_000_000 // len(chunk)) + "</div>")
    assert len(raw) > 5_000_000
    got = extract(raw)
    assert PARAGRAPH in got.text


@pytest.mark.parametrize(
    ("open_tag", "close_tag"),
    [
        ('<span class="byline meta">', "</span>"),
        ("<ul><li>", "</li></ul>"),
        ("<blockquote>", "</blockquote>"),
        ('<a href="/x">', "</a>"),
        ("<table><tr><td>", "</td></tr></table>"),
        ('<div hidden class="related">', "</div>"),
        ("<b><i>", ""),
    ],
)
def test_pathological_nesting_finishes(open_tag: str, close_tag: str) -> None:
    """20,000 levels of any element kind end in an Extraction or an ExtractError."""
    depth = 20_000
    raw = f"<p>{PARAGRAPH}</p>" + open_tag * depth + f"<p>{PARAGRAPH}</p>" + close_tag * depth
    with contextlib.suppress(ExtractError):
        extract(raw)


@pytest.mark.parametrize("level", ["<span><p>x</p>", "<b><p>x</p>", "<x-card><p>x</p>"])
def test_deep_inline_levels_are_flattened_before_parsing(level: str) -> None:
    """Nested inline or custom elements are capped like blocks (the parser's scope walks
    make every level cost time proportional to the depth)."""
    raw = ("<html><body>" + level * 20_000 + "</body></html>").encode()
    opening = level[: level.index(">") + 1].encode()
    assert flatten_deep_nesting(raw).count(opening) == MAX_DEPTH
    assert raw.count(opening) == 20_000


_TAG_SOUP = st.sampled_from(
    [
        *("<div>", "</div>", "<DIV class=x>", "</Div >", "<span>", "</span>", "<x-card>"),
        *("</x-card>", "<p>", "</p>", "<br>", "<br/>", "<li>", "<param>", "<pre>", "</pre>"),
        *("<a href='/'>", "</a>", "<path/>", "text", "<", "</", "a<b)", "i<n;", "<1>"),
    ]
)


def _plain_max_depth(html: bytes) -> int:
    """The nesting depth as first written: the running sum in Python."""
    pattern = re.compile(
        rb"<(/?)(?!(?:" + b"|".join(sorted(limits._FLAT)) + rb")[\s/>])[a-z][a-z0-9:-]*[\s/>]"
    )
    sums = [0]
    for closing in pattern.findall(html.lower()):
        sums.append(sums[-1] + (-1 if closing else 1))
    return max(total - min(sums[: at + 1]) for at, total in enumerate(sums))


@given(st.lists(_TAG_SOUP, max_size=40).map("".join))
@settings(max_examples=300, deadline=None)
def test_nesting_depth_agrees_with_the_plain_count(html: str) -> None:
    """The screen for deep nesting counts as the plain running sum does."""
    assert limits._max_depth(html.encode()) == _plain_max_depth(html.encode())


RUSSIAN = "Президент поручил создать службу по делам иностранных граждан в министерстве."


def mislabelled_page(text: str, encoding: str, declared: str | None) -> bytes:
    meta = f'<meta charset="{declared}">' if declared else ""
    paragraphs = "".join(f"<p>{text} Абзац {n}. {text}</p>" for n in range(6))
    html = f"<html><head>{meta}<title>Новости</title></head><body><article><h1>Новости</h1>"
    return (html + paragraphs + "</article></body></html>").encode(encoding)


@pytest.mark.parametrize(
    ("encoding", "declared", "http"),
    [
        ("cp1251", "utf-8", None),  # the meta says UTF-8, the bytes are windows-1251
        ("cp1251", None, "utf-8"),  # the server says UTF-8
        ("cp1251", None, None),  # nobody says anything
        ("koi8-r", "utf-8", None),
        ("utf-8", "iso-8859-1", "iso-8859-1"),  # UTF-8 labelled latin-1
    ],
)
def test_mislabelled_encodings_come_out_readable(
    encoding: str, declared: str | None, http: str | None
) -> None:
    """A page whose declared charset is wrong is decoded from what its bytes are."""
    result = extract(mislabelled_page(RUSSIAN, encoding, declared), charset=http)
    assert RUSSIAN in result.text


def test_latin1_page_declared_utf8_keeps_its_accents() -> None:
    """Western text in windows-1252 under a UTF-8 label keeps é, ü and the euro sign."""
    text = "Le café du marché coûte 3 € aujourd'hui, et la crème brûlée est délicieuse."
    page = f'<html><head><meta charset="utf-8"></head><body><article>{"<p>" + text + "</p>" * 1}'
    page += "".join(f"<p>{text} Paragraphe {n}.</p>" for n in range(6)) + "</article></body></html>"
    assert text in extract(page.encode("cp1252")).text
