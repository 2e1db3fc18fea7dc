"""Time the rendering stages alone: text + Markdown + HTML, and the HTML alone.

    .venv/bin/python bench/render.py [--limit N] [--reps R]

For every page of the two extraction benchmarks (see bench/extraction.py) the content
node is chosen as extract() does; then ``render`` (which also writes the sanitized HTML)
and ``sanitize`` (the HTML alone) run on it: once cold, right after the choice and with
the URL cache emptied, as in extract(), then R times warm, keeping the fastest. Only the
first stage's cold call follows the choice directly, so its figure is the fairer one. Prints the
median and the total over pages, in milliseconds. Timings on a shared machine are
noisy: compare two versions in the same run, or count instructions with
``valgrind --tool=callgrind``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator

from selectolax.lexbor import LexborHTMLParser, LexborNode

from bench.extraction import load_scrapinghub, load_wcxb
from ingest.errors import ExtractError
from ingest.extract.body import find_content
from ingest.extract.decode import utf8_bytes
from ingest.extract.limits import flatten_deep_nesting
from ingest.extract.metadata import read_metadata
from ingest.extract.sanitize import _join_cached, sanitize
from ingest.extract.text import render

Stage = Callable[[LexborNode, str | None], object]
STAGES: dict[str, Stage] = {
    "render (text, md, html)": lambda root, base: render(root, base=base),
    "sanitize (html alone)": lambda root, base: sanitize(root, base=base),
}


def content_nodes(limit: int | None) -> Iterator[tuple[LexborNode, str | None]]:
    """(content node, base URL) per benchmark page, as extract() would choose them."""
    for case in load_scrapinghub(limit) + load_wcxb(limit):
        tree = LexborHTMLParser(flatten_deep_nesting(utf8_bytes(case.html)))
        meta = read_metadata(tree, url=case.url)
        try:
            root = find_content(tree, rules=None, title=meta.title, url=case.url)
        except ExtractError:
            continue
        # Yielded right after the choice, so the tree is as warm in the CPU caches as
        # it is when extract() renders it.
        yield root, meta.canonical_url or case.url


def timed(stage: Stage, root: LexborNode, base: str | None) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    stage(root, base)
    return time.perf_counter() - start


def main() -> None:
    """Time each stage over all pages and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="pages per benchmark set")
    parser.add_argument("--reps", type=int, default=5, help="warm repetitions per page")
    args = parser.parse_args()
    cold: dict[str, list[float]] = {name: [] for name in STAGES}
    warm: dict[str, list[float]] = {name: [] for name in STAGES}
    for root, base in content_nodes(args.limit):
        for name, stage in STAGES.items():  # interleaved, so load swings hit all alike
            _join_cached.cache_clear()
            cold[name].append(timed(stage, root, base) * 1000)
            warm[name].append(min(timed(stage, root, base) for _ in range(args.reps)) * 1000)
    pages = len(next(iter(cold.values())))
    print(f"{pages} pages; ms per page: cold (first call), warm (best of {args.reps})")
    for name in STAGES:
        for label, values in (("cold", cold[name]), ("warm", warm[name])):
            median, total = statistics.median(values), sum(values)
            print(f"{name:24s} {label}  median {median:6.3f}  total {total:8.1f}")


if __name__ == "__main__":
    main()
