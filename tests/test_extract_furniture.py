"""Main-content choice against the page furniture that scoring alone used to let in:
teaser lists, recirculation after a related heading, datelines, notices, hidden and
mis-nested wrappers, and text written without spaces."""

from __future__ import annotations

import re

import pytest
from selectolax.lexbor import LexborHTMLParser

from ingest.errors import ExtractError
from ingest.extract import clean, extract, furniture
from ingest.extract.blocks import Blocks
from ingest.extract.furniture import is_furniture
from tests.test_extract import PARAGRAPH, article, page

URL = "https://news.example.com/2024/05/03/council-budget"
EXCERPT = (
    "Residents packed the hall to hear the plans for the old harbour, which the mayor says "
    "will bring new homes, shops and a ferry link by the end of next year."
)


def teaser(n: int, *, href: str = "/2024/05/02/other-story") -> str:
    """A card: a section label, a headline link to another story, a short excerpt."""
    return (
        f'<div class="card"><a href="/local/">Local</a>'
        f'<h3><a href="{href}-{n}">Harbour plan number {n} divides the town</a></h3>'
        f"<p>{EXCERPT}</p></div>"
    )


def test_teaser_list_beside_a_short_article_is_left_out() -> None:
    """Cards of other stories, even with more prose than the article, do not come out."""
    cards = "".join(teaser(n) for n in range(6))
    body = f"<div class='page'>{article(PARAGRAPH, PARAGRAPH)}<div>{cards}</div></div>"
    got = extract(page(body), url=URL)
    assert got.text == f"{PARAGRAPH}\n\n{PARAGRAPH}"


def test_list_of_links_to_other_sites_is_not_a_teaser_list() -> None:
    """A list of sources, each opening with a link to another site, stays in the article."""
    items = "".join(
        f'<li><a href="https://other{n}.example.org/report">Annual report of agency {n}</a>'
        f" — {EXCERPT}</li>"
        for n in range(4)
    )
    body = article(PARAGRAPH, PARAGRAPH).replace("</article>", f"<ul>{items}</ul></article>")
    got = extract(page(body), url=URL)
    assert got.text.count("Annual report of agency") == 4


def test_look_alike_blocks_after_a_related_heading_are_cut() -> None:
    """After "You may also like", a run of alike blocks goes however long it is."""
    posts = "".join(
        f"<article class='post-{n}'><p>{EXCERPT} {EXCERPT}</p></article>" for n in range(5)
    )
    body = (
        "<div class='main'><article><p>" + PARAGRAPH + "</p><p>" + PARAGRAPH + "</p>"
        "<h3>You may also like</h3>" + posts + "</article></div>"
    )
    got = extract(page(body), url=URL)
    assert got.text == f"{PARAGRAPH}\n\n{PARAGRAPH}"


def test_related_heading_before_the_articles_own_paragraphs_cuts_nothing() -> None:
    """An inline "Read more" box does not take the rest of the article with it."""
    body = article(PARAGRAPH, PARAGRAPH).replace(
        "</p><p>", "</p><h3>Read more</h3><p>" + EXCERPT + "</p><p>", 1
    )
    got = extract(page(body + ""), url=URL)
    assert EXCERPT in got.text
    assert got.text.count(PARAGRAPH) == 2


@pytest.mark.parametrize(
    "line",
    [
        "Published Monday, November 18, 2019 8:22AM EST",
        "PUBLISHED: 10:48, Tue, Nov 19, 2019 | UPDATED: 11:05, Tue, Nov 19, 2019",
        "segunda-feira, 22 de janeiro de 2018 às 0:13",
        "This website uses cookies. By continuing to use our website you agree to our use.",
        "Sign up for The Morning newsletter to get the day's news in your inbox.",
        "Advertisement",
        "Image 2 of 5",
    ],
)
def test_datelines_notices_and_labels_are_furniture(line: str) -> None:
    """Short date-only lines, consent and newsletter notices and labels go."""
    body = article(PARAGRAPH, PARAGRAPH).replace("</p><p>", f"</p><p>{line}</p><p>")
    got = extract(page(body), url=URL)
    assert got.text == f"{PARAGRAPH}\n\n{PARAGRAPH}"


@pytest.mark.parametrize(
    "line",
    [
        "In 2019 the council spent less on roads than in any year since 1998, its report says.",
        "On Monday, November 18, 2019, the mayor resigned after a vote of the whole council.",
        PARAGRAPH,
    ],
)
def test_sentences_with_dates_are_not_furniture(line: str) -> None:
    """A sentence that holds a date is text, not a dateline."""
    assert not is_furniture(line, len(line.split()))


def test_cookie_dialog_goes_whatever_its_size() -> None:
    """A consent dialog goes even when it holds more words than a short article."""
    dialog = '<div role="dialog" aria-hidden="true"><p>' + " ".join([EXCERPT] * 4) + "</p></div>"
    got = extract(page(article(PARAGRAPH, PARAGRAPH) + dialog), url=URL)
    assert got.text == f"{PARAGRAPH}\n\n{PARAGRAPH}"


def test_hidden_wrapper_holding_the_page_is_kept() -> None:
    """Streamed server rendering hides the article in <div hidden> until a script runs."""
    body = f'<div hidden id="S:1">{article()}</div><div hidden>Menu</div>'
    got = extract(page(body), url=URL)
    assert got.text.count(PARAGRAPH) == 3


def test_unclosed_aside_does_not_swallow_the_article() -> None:
    """An <aside> left open wraps the rest of the page; its article still comes out."""
    body = f"<aside class='banner'><p>Offer</p>{article(*[PARAGRAPH] * 8)}"
    got = extract(page(body), url=URL)
    assert got.text.count(PARAGRAPH) == 8


def test_long_aside_beside_a_longer_article_is_removed() -> None:
    """An aside long enough to be measured goes when the page holds twice its words."""
    aside = f"<aside><p>{EXCERPT}</p>{''.join(f'<p>{PARAGRAPH}</p>' for _ in range(8))}</aside>"
    body = article(*[PARAGRAPH] * 20) + aside
    got = extract(page(body), url=URL)
    assert EXCERPT not in got.text
    assert got.text.count(PARAGRAPH) == 20


def test_small_aside_is_still_removed() -> None:
    """An ordinary aside beside the article is furniture."""
    body = article() + f"<aside><p>{EXCERPT}</p></aside>"
    got = extract(page(body), url=URL)
    assert EXCERPT not in got.text


def test_japanese_without_spaces_is_an_article() -> None:
    """Text without spaces between words still counts as enough words."""
    sentence = "先日、不正に改造したスマートフォンを販売したとして男性が逮捕されました。"
    got = extract(page(article(sentence, sentence), lang="ja"), url=URL)
    assert sentence in got.text


def test_a_few_japanese_characters_are_not_an_article() -> None:
    """The minimum length still holds for unspaced text."""
    with pytest.raises(ExtractError):
        extract(page("<p>先日、逮捕。</p>", lang="ja"), url=URL)


def test_marked_blocks_are_what_the_selectors_find() -> None:
    """One query told apart in Python finds the dialogs, hidden blocks and markers that
    the three selectors find, markers listed once per selector they match."""
    variants = [
        '<div role="dialog">',
        '<div role="alertdialog">',
        '<div role="alert">',
        '<div role="Dialog">',
        '<div role="button">',
        '<div aria-modal="true">',
        '<div aria-modal="TRUE">',
        "<div hidden>",
        '<div aria-hidden="true">',
        '<div aria-hidden="false">',
        '<div role="navigation">',
        '<div role="complementary">',
        '<div role="contentinfo">',
        '<div role="banner">',
        '<div style="color:red; DISPLAY:NONE">',
        '<div style="display: None">',
        '<div style="display:block">',
        '<h1 itemprop="articleBody">',
        '<article itemprop="articleBody">',
        '<div itemprop="articlebody">',
        "<article>",
        "<h1>",
    ]
    body = "".join(f"{start}x</{start[1:].split()[0].rstrip('>')}>" for start in variants)
    tree = LexborHTMLParser(page(f"<div role='dialog' hidden>{body}</div>"))
    root = tree.body
    assert root is not None
    blocks = Blocks(root)
    marked = clean.marked_blocks(blocks, root)
    assert marked.dialogs == list(dict.fromkeys(blocks.numbers(root.css(clean._DIALOGS))))
    assert marked.hidden == list(dict.fromkeys(blocks.numbers(root.css(clean._HIDDEN))))
    assert marked.markers == blocks.numbers(root.css(clean._MARKERS))
    assert len(marked.markers) == 6


@pytest.mark.parametrize("pattern", [furniture._RELATED_HEADING, furniture._SHORT_BOILERPLATE])
def test_furniture_patterns_have_only_lowercase_letters(pattern: re.Pattern[str]) -> None:
    """ASCII text is lowercased and matched case-sensitively, so a capital in a pattern
    (escapes such as \\W aside) would never match."""
    letters = re.sub(r"\\[A-Za-z]", "", pattern.pattern)
    assert letters == letters.lower()
    assert furniture.is_related_heading("YOU MAY ALSO LIKE")
