"""The whole path, feed to stored article, through a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from ingest.config import Settings
from ingest.fetch import Fetcher
from ingest.models import Article, ExtractRules, RunReport, Source
from ingest.pipeline import Context, extraction_pool, ingest_url, poll_source
from ingest.store.sqlite import SQLiteStore
from tests.conftest import FIXTURES, SEED
from tests.loopback import LoopbackServer, Request, Response

T = TypeVar("T")
PAGES = FIXTURES / "pages"


def rss(server: LoopbackServer, items: list[tuple[str, str | None]]) -> bytes:
    """An RSS 2.0 feed of (guid, path) items; a None path means an item without a link."""
    parts = []
    for guid, path in items:
        link = f"<link>{server.url(path)}</link>" if path else ""
        parts.append(
            f"<item><title>Item {guid}</title>{link}<guid isPermaLink='false'>{guid}"
            "</guid><pubDate>Tue, 04 Mar 2025 08:00:00 GMT</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Test</title>'
        f"<link>{server.base}/</link>{''.join(parts)}</channel></rss>"
    ).encode()


def page(name: str) -> Response:
    return Response((PAGES / name).read_bytes())


def with_ctx(
    tmp_path: Path, fn: Callable[[Context], Coroutine[Any, Any, T]], *, workers: int = 1
) -> T:
    """Run ``fn`` with a fresh fetcher and the store under ``tmp_path``."""
    settings = Settings(storage_dir=tmp_path, allow_private_networks=True, per_host_delay=0)

    async def run() -> T:
        store = SQLiteStore.open(tmp_path)
        pool = extraction_pool(workers)
        try:
            async with Fetcher(settings) as fetcher:
                return await fn(Context(fetcher=fetcher, store=store, extract_pool=pool))
        finally:
            if pool is not None:
                await pool.aclose()
            await store.close()

    return asyncio.run(run())


def source(server: LoopbackServer, path: str = "/feed.xml", name: str = "test") -> Source:
    return Source(name=name, url=server.url(path), interval=timedelta(minutes=5))


def poll(tmp_path: Path, src: Source) -> RunReport:
    return with_ctx(tmp_path, lambda ctx: poll_source(ctx, src))


def stored_docs(tmp_path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((tmp_path / "articles").rglob("*.json"))
    ]


def serve_mixed_feed(server: LoopbackServer, storage: Path | None = None) -> None:
    """A feed of every kind of entry. With ``storage``, /copy is answered only once
    /a1's document is there, so that /a1 is the one stored and /copy its duplicate
    (entries are fetched concurrently: otherwise either may come first)."""
    server.add("/a1", page("article.html"))
    server.add("/a2", page("second-article.html"))
    copy = page("article-copy.html")  # same text as /a1, other wrapper

    def stored(url: str) -> bool:
        assert storage is not None
        wanted = f'"url": "{url}"'
        return any(wanted in p.read_text(encoding="utf-8") for p in storage.rglob("[!.]*.json"))

    def after_a1(request: Request) -> Response:
        for _ in range(200 if storage else 0):  # 10 s at most
            if stored(server.url("/a1")):
                break
            time.sleep(0.05)
        return copy

    server.add("/copy", after_a1)
    server.add("/doc.pdf", Response(b"%PDF-1.4", content_type="application/pdf"))
    server.add("/login", page("not-an-article.html"))
    server.add("/flaky", Response(b"oops", status=500, content_type="text/plain"))
    items = [
        ("1", "/a1"),
        ("2", "/a2"),
        ("3", "/copy"),
        ("4", "/doc.pdf"),
        ("5", "/login"),
        ("6", None),
        ("7", "/gone"),
        ("8", "/flaky"),
    ]
    server.add(
        "/feed.xml",
        Response(rss(server, items), content_type="application/rss+xml", headers={"ETag": '"v1"'}),
    )


def test_feed_to_stored_articles(tmp_path: Path, server: LoopbackServer) -> None:
    """Each kind of entry ends as stored, duplicate, skipped or retried, as it should."""
    serve_mixed_feed(server, storage=tmp_path)
    report = poll(tmp_path, source(server))
    assert (report.status, report.entries, report.new) == ("ok", 8, 8)
    assert (report.stored, report.duplicates, report.skipped, report.errors) == (2, 1, 4, 1)
    docs = stored_docs(tmp_path)
    assert sorted(d["title"] for d in docs) == [
        "Harbour Bridge Reopens After Two-Year Repair",
        "Lighthouse Keeper's Cottage Becomes a Museum",
    ]
    bridge = next(d for d in docs if d["title"].startswith("Harbour"))
    assert bridge["url"] == server.url("/a1")
    assert bridge["canonical_url"] == server.url("/news/2025/harbour-bridge-reopens")
    assert bridge["source"] == "test"
    assert bridge["authors"] == ["Mara Lindqvist"]
    assert bridge["published"] is not None
    assert datetime.fromisoformat(bridge["published"]) == datetime.fromisoformat(
        "2025-03-04T09:15:00+01:00"
    )
    assert "forty-two of the bridge's steel hangers" in bridge["text"]
    for boilerplate in ("Subscribe", "Read more", "Donate", "All rights reserved", "Tweet"):
        assert boilerplate not in bridge["text"]
    assert bridge["entry_guid"] == "1"


def test_extraction_in_worker_processes(tmp_path: Path, server: LoopbackServer) -> None:
    """With a process pool the outcomes are the same as in-process."""
    serve_mixed_feed(server)
    src = source(server)
    report = with_ctx(tmp_path, lambda ctx: poll_source(ctx, src), workers=2)
    assert (report.stored, report.duplicates, report.skipped, report.errors) == (2, 1, 4, 1)


def test_rerun_stores_nothing_and_fetches_only_retries(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """A second poll fetches no page it already handled and stores nothing new."""
    serve_mixed_feed(server)
    poll(tmp_path, source(server))
    before = stored_docs(tmp_path)
    report = poll(tmp_path, source(server))
    assert (report.new, report.stored, report.duplicates) == (1, 0, 0)  # only /flaky again
    assert stored_docs(tmp_path) == before
    for path in ("/a1", "/a2", "/copy", "/doc.pdf", "/login", "/gone"):
        assert len(server.hits(path)) == 1, path
    assert len(server.hits("/flaky")) == 2


def test_conditional_get_and_304(tmp_path: Path, server: LoopbackServer) -> None:
    """The ETag is sent back and a 304 ends the poll without reading entries."""
    server.add("/a1", page("article.html"))

    def feed(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'}, content_type=None)
        body = rss(server, [("1", "/a1")])
        return Response(body, content_type="application/rss+xml", headers={"ETag": '"v1"'})

    server.add("/feed.xml", feed)
    assert poll(tmp_path, source(server)).stored == 1
    report = poll(tmp_path, source(server))
    assert report.status == "not_modified"
    assert server.hits("/feed.xml")[1].headers["if-none-match"] == '"v1"'
    assert len(server.hits("/a1")) == 1


def test_failed_entry_keeps_old_validators(tmp_path: Path, server: LoopbackServer) -> None:
    """While an entry still has to be retried, the next poll asks for the full feed."""
    serve_mixed_feed(server)  # /flaky answers 500
    poll(tmp_path, source(server))
    poll(tmp_path, source(server))
    assert "if-none-match" not in server.hits("/feed.xml")[1].headers


def test_broken_feed_is_reported_and_recorded(tmp_path: Path, server: LoopbackServer) -> None:
    """A broken source fails with a reason, and its state says so."""
    server.add("/feed.xml", Response(b"<html><body>Not a feed</body></html>"))
    report = poll(tmp_path, source(server))
    assert report.status == "failed"
    assert report.error is not None
    assert "feed" in report.error
    state = with_ctx(tmp_path, lambda ctx: ctx.store.source_state("test"))
    assert state is not None
    assert state.consecutive_failures == 1
    assert state.last_error == report.error
    assert state.next_poll_at is not None


def test_unreachable_source_then_recovery(tmp_path: Path, server: LoopbackServer) -> None:
    """An HTTP error fails the poll; once the feed works, failures reset to zero."""
    server.add("/feed.xml", Response(b"down", status=503, content_type="text/plain"))
    assert poll(tmp_path, source(server)).status == "failed"
    server.add("/a1", page("article.html"))
    server.add(
        "/feed.xml", Response(rss(server, [("1", "/a1")]), content_type="application/rss+xml")
    )
    assert poll(tmp_path, source(server)).stored == 1
    state = with_ctx(tmp_path, lambda ctx: ctx.store.source_state("test"))
    assert state is not None
    assert (state.consecutive_failures, state.last_status, state.articles_stored) == (0, "ok", 1)


def test_same_link_in_two_feeds_is_fetched_once(tmp_path: Path, server: LoopbackServer) -> None:
    """A URL already ingested from one feed is not fetched again for another."""
    server.add("/a1", page("article.html"))
    server.add("/one.xml", Response(rss(server, [("x", "/a1")]), content_type="text/xml"))
    server.add(
        "/two.xml", Response(rss(server, [("y", "/a1?utm_source=two")]), content_type="text/xml")
    )
    assert poll(tmp_path, source(server, "/one.xml", "one")).stored == 1
    report = poll(tmp_path, source(server, "/two.xml", "two"))
    assert (report.new, report.stored) == (0, 0)
    assert len(server.hits("/a1")) == 1


def test_seed_page_end_to_end(tmp_path: Path, server: LoopbackServer) -> None:
    """The seed page, fetched through a feed, is stored exactly as expected."""
    expected = json.loads((SEED / "moscowtimes-migration-service.expected.json").read_text())
    server.add("/seed", Response((SEED / "moscowtimes-migration-service.html").read_bytes()))
    server.add(
        "/feed.xml", Response(rss(server, [("seed", "/seed")]), content_type="application/rss+xml")
    )
    assert poll(tmp_path, source(server)).stored == 1
    (doc,) = stored_docs(tmp_path)
    for key in ("title", "site_name", "language", "image", "tags"):
        assert doc[key] == expected[key], key
    assert doc["canonical_url"] == expected["url"]
    assert datetime.fromisoformat(doc["published"]) == datetime.fromisoformat(expected["published"])
    for snippet in expected["text_must_contain"]:
        assert snippet in doc["text"]
    for snippet in expected["text_must_not_contain"]:
        assert snippet not in doc["text"]


def test_ingest_url_article_and_feed(tmp_path: Path, server: LoopbackServer) -> None:
    """A page URL is ingested as an article, a feed URL as its entries."""
    server.add("/a1", page("article.html"))
    server.add("/a2", page("second-article.html"))
    server.add(
        "/feed.json",
        Response(
            json.dumps(
                {
                    "version": "https://jsonfeed.org/version/1.1",
                    "title": "J",
                    "items": [{"id": "j1", "url": server.url("/a2")}],
                }
            ).encode(),
            content_type="application/feed+json",
        ),
    )
    got: list[Article] = []

    async def run(ctx: Context) -> list[RunReport]:
        return [
            await ingest_url(ctx, server.url("/a1"), on_stored=got.append),
            await ingest_url(ctx, server.url("/feed.json"), on_stored=got.append),
            await ingest_url(ctx, server.url("/a1"), on_stored=got.append),
        ]

    first, feed, again = with_ctx(tmp_path, run)
    assert (first.stored, feed.stored, again.stored, again.new) == (1, 1, 0, 0)
    assert [a.url for a in got] == [server.url("/a1"), server.url("/a2")]
    assert len(server.hits("/a1")) == 2  # fetched again to find out what it is, not stored


def test_source_rules_are_applied(tmp_path: Path, server: LoopbackServer) -> None:
    """A source's drop selectors remove what the generic extractor would keep."""
    server.add("/a1", page("article.html"))
    server.add("/feed.xml", Response(rss(server, [("1", "/a1")]), content_type="text/xml"))
    src = Source(
        name="ruled",
        url=server.url("/feed.xml"),
        interval=timedelta(minutes=5),
        rules=ExtractRules(drop_selectors=("article h2",)),
    )
    assert poll(tmp_path, src).stored == 1
    (doc,) = stored_docs(tmp_path)
    assert "Traffic relief for the old town" not in doc["text"]
    assert "steel hangers" in doc["text"]


# -- dedup: versions, near copies, GUID trust ------------------------------------------

VOCABULARY = [
    "harbour",
    "bridge",
    "council",
    "engineers",
    "steel",
    "cable",
    "repair",
    "traffic",
    "ferry",
    "minister",
    "budget",
    "river",
    "city",
    "tunnel",
    "workers",
    "spring",
    "summer",
    "winter",
    "opened",
    "closed",
    "report",
    "week",
    "million",
    "tonnes",
    "crossing",
    "commuters",
    "delays",
    "inspection",
    "safety",
    "rust",
    "paint",
    "mayor",
    "contractor",
    "deck",
    "north",
    "south",
    "lanes",
    "cyclists",
    "buses",
    "night",
    "shift",
    "cranes",
    "welders",
    "divers",
    "tide",
    "storm",
]
_rng = random.Random(20250304)
STORY = [" ".join(_rng.choice(VOCABULARY) for _ in range(30)).capitalize() + "." for _ in range(10)]


def story_page(paragraphs: list[str], *, site: str, canonical: str = "") -> Response:
    """An article page with ``site``'s own chrome around ``paragraphs``."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    html = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{link}"
        f"<title>Bridge reopens | {site}</title></head><body><header><nav>"
        f"<a href='/'>{site} home</a> <a href='/news'>News</a></nav></header><main><article>"
        f"<h1>Bridge reopens</h1>{body}</article><aside class='newsletter'>Subscribe to "
        f"{site}</aside></main><footer>© {site}</footer></body></html>"
    )
    return Response(html.encode())


def feed_of(server: LoopbackServer, items: list[tuple[str, str, str]]) -> Response:
    """RSS 2.0 of (guid, path, RFC 822 date) items."""
    parts = "".join(
        f"<item><title>Item {guid}</title><link>{server.url(path)}</link>"
        f"<guid isPermaLink='false'>{guid}</guid><pubDate>{date}</pubDate></item>"
        for guid, path, date in items
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{parts}</channel></rss>'
    )
    return Response(body.encode(), content_type="application/rss+xml")


MARCH_4 = "Tue, 04 Mar 2025 08:00:00 GMT"
MARCH_5 = "Wed, 05 Mar 2025 08:00:00 GMT"


def test_updated_entry_becomes_a_new_version(tmp_path: Path, server: LoopbackServer) -> None:
    """A newer feed date refetches the page; changed text is version 2 of the same id."""
    server.add("/story", story_page(STORY, site="Courier"))
    server.add("/feed.xml", feed_of(server, [("1", "/story", MARCH_4)]))
    assert poll(tmp_path, source(server)).stored == 1
    (first,) = stored_docs(tmp_path)
    server.add("/story", story_page([*STORY, "Correction: the repair cost 40 million."], site="C"))
    server.add("/feed.xml", feed_of(server, [("1", "/story", MARCH_5)]))
    report = poll(tmp_path, source(server))
    assert (report.new, report.stored, report.updated) == (0, 0, 1)
    docs = {(d["id"], d["version"]): d for d in stored_docs(tmp_path)}
    assert set(docs) == {(first["id"], 1), (first["id"], 2)}
    assert docs[(first["id"], 1)] == first
    assert "Correction" in docs[(first["id"], 2)]["text"]
    rows = with_ctx(tmp_path, lambda ctx: ctx.store.articles())
    assert [(r.id, r.seq, r.version) for r in rows] == [(first["id"], 2, 2)]
    assert poll(tmp_path, source(server)).updated == 0  # the same state: not refetched
    assert len(server.hits("/story")) == 2


def test_unchanged_refetch_changes_nothing(tmp_path: Path, server: LoopbackServer) -> None:
    """A newer feed date over the same text refetches once and keeps everything as it was."""
    server.add("/story", story_page(STORY, site="Courier"))
    server.add("/feed.xml", feed_of(server, [("1", "/story", MARCH_4)]))
    poll(tmp_path, source(server))
    before = stored_docs(tmp_path)
    server.add("/feed.xml", feed_of(server, [("1", "/story", MARCH_5)]))
    report = poll(tmp_path, source(server))
    assert (report.stored, report.updated, report.duplicates) == (0, 0, 0)
    assert stored_docs(tmp_path) == before
    poll(tmp_path, source(server))
    assert len(server.hits("/story")) == 2


def near_copy_feeds(server: LoopbackServer) -> tuple[Source, Source]:
    edited = [*STORY[:9]]  # truncated by one paragraph, and two words changed
    edited[2] = "Officials said " + edited[2]
    edited[5] = edited[5].replace(" ", " reportedly ", 1)
    server.add("/story", story_page(STORY, site="Courier"))
    server.add("/wire/copy", story_page(edited, site="Wire Daily"))
    server.add("/one.xml", feed_of(server, [("a", "/story", MARCH_4)]))
    server.add("/two.xml", feed_of(server, [("b", "/wire/copy", MARCH_4)]))
    return source(server, "/one.xml", "one"), source(server, "/two.xml", "two")


def test_near_copy_in_another_feed_is_linked(tmp_path: Path, server: LoopbackServer) -> None:
    """The same story under other chrome, lightly edited, joins the first one's cluster."""
    one, two = near_copy_feeds(server)
    poll(tmp_path, one)
    report = poll(tmp_path, two)
    assert (report.stored, report.near_duplicates, report.duplicates) == (1, 1, 0)
    first, copy = sorted(stored_docs(tmp_path), key=lambda d: d["source"])
    assert (first["duplicate_of"], first["cluster"]) == (None, first["id"])
    assert (copy["duplicate_of"], copy["cluster"]) == (first["id"], first["id"])


def test_near_copy_skipped_by_setting(tmp_path: Path, server: LoopbackServer) -> None:
    """With near_duplicates="skip" the copy is recorded as a duplicate and not stored."""
    one, two = near_copy_feeds(server)

    async def both(ctx: Context) -> RunReport:
        await poll_source(ctx, one)
        return await poll_source(replace(ctx, near_duplicates="skip"), two)

    report = with_ctx(tmp_path, both)
    assert (report.stored, report.near_duplicates, report.duplicates) == (0, 1, 1)
    assert len(stored_docs(tmp_path)) == 1
    assert poll(tmp_path, two).new == 0  # recorded: not fetched again


def test_reused_guid_does_not_hide_a_new_story(tmp_path: Path, server: LoopbackServer) -> None:
    """A GUID back for another link and date is another story: fetched, and GUIDs distrusted."""
    server.add("/a1", page("article.html"))
    server.add("/a2", page("second-article.html"))
    server.add("/feed.xml", feed_of(server, [("1", "/a1", MARCH_4)]))
    poll(tmp_path, source(server))
    server.add("/feed.xml", feed_of(server, [("1", "/a2", MARCH_5)]))
    report = poll(tmp_path, source(server))
    assert (report.new, report.stored) == (1, 1)
    assert not with_ctx(tmp_path, lambda ctx: ctx.store.guids_trusted("test"))  # type: ignore[attr-defined]


def test_same_page_by_canonical_url_is_not_stored_twice(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """A link whose page declares a stored article's canonical URL counts as that page."""
    canonical = server.url("/story")
    server.add("/story", story_page(STORY, site="Courier", canonical=canonical))
    printed = story_page(STORY[:9], site="Print", canonical=canonical)
    server.add("/story-print?view=print", printed)
    server.add("/one.xml", feed_of(server, [("a", "/story", MARCH_4)]))
    server.add("/two.xml", feed_of(server, [("b", "/story-print?view=print", MARCH_4)]))
    poll(tmp_path, source(server, "/one.xml", "one"))
    report = poll(tmp_path, source(server, "/two.xml", "two"))
    assert (report.stored, report.updated) == (0, 1)  # the same page, its text changed
    assert {d["version"] for d in stored_docs(tmp_path)} == {1, 2}
