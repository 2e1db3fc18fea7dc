"""Tests of the text, Markdown and sanitized-HTML rendering (ingest.extract.text, .sanitize)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from html import escape
from urllib.parse import urljoin

from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingest.extract.blocks import _UNSPACED, _unspaced_words
from ingest.extract.sanitize import (
    _escape_attribute,
    _join,
    _join_slowly,
    resolve,
    safe_url,
    sanitize,
)
from ingest.extract.text import _collapse, render

BASE = "https://example.com/dir/page"


def body(html: str) -> LexborNode:
    """The <body> of ``html`` parsed as a page."""
    node = LexborHTMLParser(html).body
    assert node is not None
    return node


def test_render_blocks_lists_quotes_and_breaks() -> None:
    """Blocks, nested lists, quotes, <br> and <pre> render as text and Markdown lines."""
    got = render(
        body(
            "<h2>Head <i>line</i></h2><p>One<br>two <a href='/x'>link</a></p>"
            "<ol start='3'><li>a<ul><li>b</li></ul></li><li>c</li></ol>"
            "<blockquote><p>Said *so*</p></blockquote><pre>  x\n  y</pre><p>wor<b>ld</b></p>"
        ),
        base=BASE,
    )
    assert got.text == "Head line\n\nOne\ntwo link\n\na\nb\nc\n\nSaid *so*\n\n  x\n  y\n\nworld"
    assert got.markdown == (
        "## Head *line*\n\nOne  \ntwo [link](https://example.com/x)\n\n3. a\n  - b\n4. c"
        "\n\n> Said \\*so\\*\n\n```\n  x\n  y\n```\n\nwor**ld**"
    )


def test_render_whitespace_between_and_inside_blocks() -> None:
    """Indentation between blocks adds nothing (the walk leaves it out of the text); a
    space between inline elements stays, as does one after a link's "[" in Markdown and
    at the start of a <pre>."""
    got = render(
        body(
            "<div>\n  <p>\n    <a href='/a'>x</a> <b>y</b>\n  </p>\n"
            "  <p> <a href='/b'> <i>z</i></a></p>\n  <ul>\n <li> <i>i</i>\n</li></ul>"
            "<pre>  <b>p</b>\n</pre>\n</div>"
        ),
        base=BASE,
    )
    assert got.text == "x y\n\nz\n\ni\n\n  p"
    assert got.markdown == (
        "[x](https://example.com/a) **y**\n\n[ *z*](https://example.com/b)\n\n- *i*"
        "\n\n```\n  p\n```"
    )
    assert got.html.startswith('<div>\n  <p>\n    <a href="https://example.com/a">x</a> <b>')


def test_render_drops_blocks_with_only_markup() -> None:
    """A block with an image or an empty link but no text gives no line at all."""
    got = render(body("<p>Text</p><p><img src='/i.png'></p><p><a href='/a'> </a></p>"), base=BASE)
    assert got.text == "Text"
    assert got.markdown == "Text"


def test_markdown_images_use_the_lazy_source_like_the_html() -> None:
    """A lazy-loaded image (placeholder src, URL in data-src) keeps its URL in Markdown."""
    got = render(body("<p>Text <img data-src='/lazy.jpg' src='data:,' alt='x'></p>"), base=BASE)
    assert got.markdown == "Text ![x](https://example.com/lazy.jpg)"
    assert '<img src="https://example.com/lazy.jpg" alt="x">' in got.html


def test_sanitize_keeps_allowlisted_markup_only() -> None:
    """Unknown wrappers unwrap, active content goes, URLs become absolute and safe."""
    html = sanitize(
        body(
            "<div><span onclick='x()'>a &amp; b</span><script>evil()</script>"
            "<a href='javascript:alert(1)' title='t'>bad</a><a href='mailto:x@y.z'>mail</a>"
            "<img data-src='/lazy.jpg' src='data:,' alt='A \"q\"'><img src='javascript:x'>"
            "<!-- note --><p style='color:red'>p</p></div>"
        ),
        base=BASE,
    )
    assert html == (
        '<div>a &amp; b<a title="t">bad</a><a href="mailto:x@y.z">mail</a>'
        '<img src="https://example.com/lazy.jpg" alt="A &quot;q&quot;"><p>p</p></div>'
    )


def test_render_writes_the_sanitized_html() -> None:
    """The HTML written in the rendering walk is what sanitize() writes on its own."""
    root = body(
        "<article><h2>T</h2><form><label>Name <b>x</b></label></form><p>a<br>b"
        "<img src='/i.png' alt='i'><video>v<source src='/v.mp4'></video>"
        "<a href='/l'>l</a></p></article>"
    )
    got = render(root, base=BASE)
    assert got.html == sanitize(root, base=BASE)
    assert got.html == (
        '<article><h2>T</h2><p>a<br>b<img src="https://example.com/i.png" alt="i">'
        '<a href="https://example.com/l">l</a></p></article>'
    )
    assert got.text == "T\n\nName x\n\na\nbvl"


def test_safe_url_schemes() -> None:
    """Only http(s) (and mailto for links) survive; relative URLs need a base."""
    assert safe_url("/a b", base=BASE) == "https://example.com/ab"
    assert safe_url("java\tscript:alert(1)", base=BASE) is None
    assert safe_url("mailto:x@y.z", base=BASE) is None
    assert safe_url("mailto:x@y.z", base=BASE, allow_mailto=True) == "mailto:x@y.z"
    assert safe_url("#top", base=BASE) is None
    assert safe_url("pic.jpg", base=None) == "pic.jpg"
    assert safe_url("http://[::1", base=BASE) is None


_URL_PIECES = st.sampled_from(
    [
        "http:",
        "https:",
        "HTTP:",
        "//",
        "/",
        "./",
        "../",
        ".",
        "a",
        "b.c",
        ":80",
        "@",
        ";p",
        "?",
        "?q=1",
        "#",
        "#f",
        "[",
        "]",
        "%20",
        "~x",
        "-",
        "mailto:",
        "",
        "é",
    ]
)

# Pieces alone rarely make a URL the shortcut takes (one in a few hundred): half the
# examples start like one.
_URLS = st.one_of(
    st.lists(_URL_PIECES, min_size=1, max_size=8).map("".join),
    st.tuples(
        st.sampled_from(["https://", "http://", "/", "HTTPS://", "https:///"]),
        st.lists(_URL_PIECES, max_size=6).map("".join),
    ).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(
    url=_URLS,
    base=st.sampled_from(
        [
            BASE,
            "http://example.com",
            "https://u@h.example:8080/a/b/?q#f",
            "http:/x",
            "https://[::1]/x",
            "http://[bad/",
            "ftp://f.example/x",
            "example.com/rel",
        ]
    ),
)
def test_url_shortcut_agrees_with_urljoin(url: str, base: str) -> None:
    """The shortcut past urljoin for plain URLs gives exactly what urljoin gives."""
    assert _join(url, base) == (_join_slowly(url, base) if url and url[0] != "#" else None)


@settings(max_examples=400, deadline=None)
@given(
    url=st.one_of(_URLS, st.lists(st.sampled_from(["a", "/", " ", "\t", "\x00"])).map("".join)),
    base=st.sampled_from([BASE, "https://u@h.example:8080/a/b/?q#f", "http:/x", "", "x/y"]),
)
def test_resolve_agrees_with_urljoin(url: str, base: str) -> None:
    """resolve (the metadata URLs') is urljoin, error or not, shortcut or not."""
    assert _outcome(resolve, url, base) == _outcome(lambda u, b: urljoin(b, u), url, base)


def _outcome(join: Callable[[str, str], str], url: str, base: str) -> str:
    try:
        return join(url, base)
    except ValueError as exc:
        return f"ValueError: {exc}"


@given(st.text())
def test_unspaced_word_shortcut_agrees_with_the_pattern(text: str) -> None:
    """The UTF-8 lead-byte test never skips a text holding Chinese or Japanese."""
    assert _unspaced_words(text) == len(_UNSPACED.findall(text)) // 2


@given(st.text(alphabet=st.sampled_from("a \u00e9\u2019\u3040\u30ff\u4e00\u9fff\ufaff\ud800")))
def test_unspaced_word_shortcut_at_the_range_edges(text: str) -> None:
    """The same near the edges of the ranges, and with a lone surrogate."""
    assert _unspaced_words(text) == len(_UNSPACED.findall(text)) // 2


def test_only_the_space_is_printable_whitespace() -> None:
    """text._collapse relies on every other whitespace character being non-printable."""
    spaces = (chr(c) for c in range(sys.maxunicode + 1))
    assert [c for c in spaces if c.isspace() and c.isprintable()] == [" "]


@given(st.text(alphabet=st.sampled_from("ab \t\n\r\xa0\u2009\u3000\x1c\x85é“")))
def test_collapse_matches_split_and_join(raw: str) -> None:
    """The shortcut in whitespace collapsing gives what split and join give."""
    assert _collapse(raw) == " ".join(raw.split())


@given(st.text(alphabet=st.sampled_from("ab &<>\"';é"), max_size=20) | st.text(max_size=20))
def test_attribute_escaping_agrees_with_html_escape(value: str) -> None:
    """Attribute values are escaped as ``html.escape`` escapes them."""
    assert _escape_attribute(value) == escape(value)


def test_long_urls_are_not_cached() -> None:
    """An inline data: image (megabytes) is joined but not kept in the URL cache."""
    from ingest.extract.sanitize import _join_cached

    long_url = "/img/" + "a" * 5000 + ".png"
    before = _join_cached.cache_info().currsize
    assert _join(long_url, "https://x.example/p") == (
        "https://x.example" + long_url,
        "https",
    )
    assert _join_cached.cache_info().currsize == before
