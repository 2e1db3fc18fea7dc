"""The extract stage: one HTML page in, its article (text, HTML, Markdown, metadata) out.

    decode      bytes -> UTF-8 (BOM, HTTP charset, <meta charset>, never-failing fallback)
    limits      caps on pathological nesting, applied before parsing
    metadata    title, authors, language, site, image, tags, canonical
    page_dates  published and modified times (strings parsed by dates)
    clean       removal of never-content tags, hidden blocks and class/id-named boilerplate
    blocks      a flat index of the page (tags, parents, word counts) built in one pass
    teasers     lists of cards for other stories
    body        choice of the main-content container and pruning inside it
    furniture   text patterns of labels, datelines and notices inside the article
    text        block-aware plain text, Markdown and allowlisted HTML of that container
    sanitize    the HTML allowlist

selectolax (Lexbor) is imported only in this package; its types stop here.
"""

from __future__ import annotations

import gc

from selectolax.lexbor import LexborDocumentOptions, LexborHTMLParser

from ingest.errors import ExtractError
from ingest.extract.blocks import has_words
from ingest.extract.body import find_content
from ingest.extract.decode import utf8_bytes
from ingest.extract.limits import flatten_deep_nesting
from ingest.extract.metadata import Metadata, read_metadata
from ingest.extract.text import render
from ingest.models import Extraction, ExtractRules

__all__ = ["extract"]

# Fewer words than this is a teaser, an error page or a paywall stub, not an article.
_MIN_WORDS = 10


def extract(
    body: bytes | str,
    *,
    url: str | None = None,
    charset: str | None = None,
    rules: ExtractRules | None = None,
) -> Extraction:
    """Extract the article of an HTML page; raise ExtractError if there is none."""
    # The cyclic garbage collector waits while a page is extracted (the idea of
    # Mercurial's ``util.nogc``). Extraction allocates thousands of container objects
    # (node handles, per-element lists) that live until it returns and form no cycles, so
    # collections started halfway free nothing, and what they promote makes the next full
    # collections long: 4-5% of the extraction time on the benchmark pages, timed with
    # gc.callbacks. Reference counting still frees everything as usual. The state is
    # restored, not forced on, so a caller that turned the collector off keeps it off.
    # The switch is per process: when extractions run in threads (``extract_workers``
    # of 1, no worker processes), the collector also waits in the other threads while
    # one runs, and collects what they left once the first extraction that found it on
    # returns; with overlapping extractions that can be later than usual, never lost.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _extract(body, url=url, charset=charset, rules=rules)
    finally:
        if enabled:
            gc.enable()


def _extract(
    body: bytes | str, *, url: str | None, charset: str | None, rules: ExtractRules | None
) -> Extraction:
    # Lexbor reads bytes as UTF-8; encoding a str ourselves also turns lone surrogates
    # (which a str may carry) into "?" instead of an exception.
    if isinstance(body, bytes):
        html = utf8_bytes(body, charset=charset)
    else:
        html = body.encode("utf-8", errors="replace")
    where = url or "<no url>"
    if not html or html.isspace():  # (not html.strip(): that copies the page)
        raise ExtractError(f"extract: empty page: {where}")
    # Without mutation events: Lexbor's insertion callbacks serve its style engine and
    # <selectedcontent> mirroring, neither of which extraction reads, and skipping them
    # makes the parse 4% faster (0.451 -> 0.433 ms a page; outputs identical on the
    # benchmark pages).
    tree = LexborHTMLParser(flatten_deep_nesting(html), options=LexborDocumentOptions.WO_EVENTS)
    meta = read_metadata(tree, url=url)
    base = meta.canonical_url or url
    root = find_content(tree, rules=rules, title=meta.title, url=url)
    rendered = render(root, base=base)
    text = rendered.text
    if not has_words(text, _MIN_WORDS):
        raise ExtractError(f"extract: no article body found: {where}")
    return _extraction(meta, text=text, html=rendered.html, markdown=rendered.markdown)


def _extraction(meta: Metadata, *, text: str, html: str, markdown: str) -> Extraction:
    return Extraction(
        canonical_url=meta.canonical_url,
        title=meta.title,
        authors=meta.authors,
        published=meta.published,
        modified=meta.modified,
        language=meta.language,
        site_name=meta.site_name,
        description=meta.description,
        image=meta.image,
        tags=meta.tags,
        text=text,
        html=html,
        markdown=markdown,
    )
