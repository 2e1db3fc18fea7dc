"""The command line, run in-process against a loopback server, and the README's promises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from ingest.cli import COMMANDS, build_parser, main
from tests.conftest import FIXTURES, ROOT, SEED
from tests.loopback import LoopbackServer, Response

PAGES = FIXTURES / "pages"
SCHEMA = json.loads((ROOT / "ingest" / "schema" / "article.schema.json").read_text())


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A storage dir and no config file unless a test writes one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INGEST_STORAGE_DIR", str(tmp_path / "storage"))
    monkeypatch.setenv("INGEST_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("INGEST_PER_HOST_DELAY", "0")
    monkeypatch.delenv("INGEST_CONFIG", raising=False)
    return tmp_path


def write_config(path: Path, server: LoopbackServer, feeds: dict[str, str]) -> Path:
    config = path / "ingest.toml"
    config.write_text(
        "".join(
            f'[[sources]]\nname = "{name}"\nurl = "{server.url(p)}"\n' for name, p in feeds.items()
        )
    )
    return config


def serve_feed(server: LoopbackServer) -> None:
    server.add("/a1", Response((PAGES / "article.html").read_bytes()))
    server.add("/a2", Response((PAGES / "second-article.html").read_bytes()))
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><guid>1</guid><link>{server.url('/a1')}</link></item>"
        f"<item><guid>2</guid><link>{server.url('/a2')}</link></item></channel></rss>"
    )
    server.add("/feed.xml", Response(feed.encode(), content_type="application/rss+xml"))
    server.add("/broken.xml", Response(b"<rss><channel><item>", content_type="text/xml"))


def test_every_command_is_documented() -> None:
    """Each CLI command appears in the README and has help text."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"ingest {name}" in readme, name
    help_text = build_parser().format_help()
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", help_text, re.MULTILINE), name


def test_bad_config_exits_2_with_every_problem(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid config exits 2 and names the file, the keys and what is wrong."""
    bad = env / "bad.toml"
    bad.write_text('[settings]\nconcurrency = "x"\n[[sources]]\nname = "s"\n')
    assert main(["--config", str(bad), "sources"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: settings.concurrency: expected an integer" in err
    assert f"{bad}: sources[0].url: required" in err


def test_poll_reports_each_source_and_fails_on_one(
    env: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """poll prints a line per source and exits 1 when one failed; the other still ran."""
    serve_feed(server)
    config = write_config(env, server, {"good": "/feed.xml", "bad": "/broken.xml"})
    assert main(["--config", str(config), "poll"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^good: ok entries=2 new=2 stored=2 ", out, re.MULTILINE)
    assert re.search(r"^bad: failed .* error: feeds: ", out, re.MULTILINE)
    assert main(["--config", str(config), "sources"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^good\s+ok\s+every 15m\s+\(adaptive\) stored=2", out, re.MULTILINE)
    assert "error: feeds: " in out


def test_fetch_json_matches_extract_and_schema(
    env: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """fetch --json prints the stored document; extract prints the same document offline."""
    server.add("/seed", Response((SEED / "moscowtimes-migration-service.html").read_bytes()))
    assert main(["fetch", "--json", server.url("/seed")]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    fetched = json.loads(line)
    jsonschema.validate(fetched, SCHEMA)
    stored = list((env / "storage" / "articles").rglob("*.json"))
    assert [json.loads(p.read_text()) for p in stored] == [fetched]

    html = env / "seed.html"
    html.write_bytes((SEED / "moscowtimes-migration-service.html").read_bytes())
    assert main(["extract", str(html), "--url", server.url("/seed")]) == 0
    offline = json.loads(capsys.readouterr().out)
    jsonschema.validate(offline, SCHEMA)
    assert list(offline) == list(fetched)
    for key in ("id", "url", "title", "authors", "published", "text", "html", "tags"):
        assert offline[key] == fetched[key], key
    assert (offline["source"], offline["fetched_at"]) == (None, None)

    assert main(["fetch", "--json", server.url("/seed")]) == 0  # already stored
    assert capsys.readouterr().out == ""


def test_extract_directory_and_failures(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """extract takes a directory, prints one line per page, and reports bad inputs."""
    pages = env / "pages"
    pages.mkdir()
    for name in ("article.html", "second-article.html", "not-an-article.html"):
        (pages / name).write_bytes((PAGES / name).read_bytes())
    assert main(["extract", str(pages), str(env / "missing.html")]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "not-an-article.html" in captured.err
    assert "missing.html" in captured.err


def test_articles_list_show_search(
    env: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """articles lists, searches, pages by sequence and shows one document."""
    serve_feed(server)
    config = write_config(env, server, {"good": "/feed.xml"})
    assert main(["--config", str(config), "poll"]) == 0
    capsys.readouterr()
    assert main(["articles", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in rows] == [2, 1]
    assert main(["articles", "--after", "1", "--json"]) == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [2]
    assert main(["articles", "--search", "lighthouse keepers", "--json"]) == 0
    (hit,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert hit["title"] == "Lighthouse Keeper's Cottage Becomes a Museum"
    assert main(["articles", hit["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == hit["id"]
    assert main(["articles", "nope"]) == 1


def test_poll_without_sources_and_health_without_daemon(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """poll with nothing to do and health with no daemon both exit 1 with a reason."""
    assert main(["poll"]) == 1
    assert "no enabled sources" in capsys.readouterr().err
    assert main(["health"]) == 1
    assert "not running" in capsys.readouterr().out


def test_articles_show_versions_and_copies(
    env: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """articles ID lists versions, shows any version, and names the cluster's copies."""
    from tests.test_pipeline import MARCH_4, MARCH_5, STORY, feed_of, poll, source, story_page

    storage = env / "storage"
    server.add("/story", story_page(STORY, site="Courier"))
    server.add("/feed.xml", feed_of(server, [("1", "/story", MARCH_4)]))
    poll(storage, source(server))
    server.add("/story", story_page([*STORY, "Correction: the cost was higher."], site="C"))
    server.add("/feed.xml", feed_of(server, [("1", "/story", MARCH_5)]))
    poll(storage, source(server))
    server.add("/copy", story_page(STORY[:-1], site="Wire"))
    server.add("/two.xml", feed_of(server, [("c", "/copy", MARCH_4)]))
    poll(storage, source(server, "/two.xml", "two"))

    assert main(["articles", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    first = next(r for r in rows if r["source"] == "test")
    assert main(["articles", first["id"], "--versions", "--json"]) == 0
    versions = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [v["version"] for v in versions] == [1, 2]
    assert main(["articles", first["id"], "--version", "1"]) == 0
    old = json.loads(capsys.readouterr().out)
    assert "Correction" not in old["text"]
    assert main(["articles", first["id"]]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "Correction" in doc["text"]
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    copy = next(r for r in rows if r["source"] == "two")
    assert doc["copies"] == [copy["id"]]
    assert main(["articles", first["id"], "--version", "9"]) == 1
