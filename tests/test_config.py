"""Settings: TOML, environment overrides and validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ingest.config import Settings, config_path, load_settings, to_duration
from ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ingest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid() -> None:
    """The commented example shipped in config/ loads without a problem."""
    settings = load_settings(ROOT / "config" / "ingest.toml", {})
    assert settings.sources
    assert all(s.url.startswith("https://") for s in settings.sources)


def test_example_config_mentions_every_setting() -> None:
    """Every setting appears in the example config, so it documents them all."""
    text = (ROOT / "config" / "ingest.toml").read_text(encoding="utf-8")
    missing = [
        name
        for name in Settings.__dataclass_fields__
        if name != "sources" and f"\n{name} = " not in text
    ]
    assert missing == []


def test_defaults_without_file() -> None:
    """No file means the defaults and no sources."""
    assert load_settings(None, {}) == Settings()


def test_sources_and_durations(tmp_path: Path) -> None:
    """Sources are read with their intervals, falling back to default_interval."""
    path = write(
        tmp_path,
        '[settings]\ndefault_interval = "2h"\n'
        '[[sources]]\nname = "a"\nurl = "https://a.example/feed"\ninterval = 90\n'
        '[[sources]]\nname = "b"\nurl = "https://b.example/feed"\nenabled = false\n'
        '[sources.rules]\ncontent_selector = "main"\ndrop_selectors = [".ad"]\n',
    )
    a, b = load_settings(path, {}).sources
    assert a.interval == timedelta(seconds=90)
    assert b.interval == timedelta(hours=2)
    assert not b.enabled
    assert b.rules.content_selector == "main"
    assert b.rules.drop_selectors == (".ad",)


def test_default_interval_applies(tmp_path: Path) -> None:
    """A source without an interval gets the default of 30 minutes."""
    path = write(tmp_path, '[[sources]]\nname = "a"\nurl = "https://a.example/feed"\n')
    assert load_settings(path, {}).sources[0].interval == timedelta(minutes=30)


def test_fixed_and_adaptive_sources(tmp_path: Path) -> None:
    """An explicit interval is fixed; without one the source adapts within its bounds."""
    path = write(
        tmp_path,
        '[[sources]]\nname = "fixed"\nurl = "https://a.example/f"\ninterval = "10m"\n'
        '[[sources]]\nname = "adaptive"\nurl = "https://b.example/f"\nmin_interval = "1h"\n'
        'max_interval = "2d"\nrobots = false\n',
    )
    fixed, adaptive = load_settings(path, {}).sources
    assert (fixed.fixed_interval, fixed.interval) == (True, timedelta(minutes=10))
    assert (adaptive.fixed_interval, adaptive.interval) == (False, timedelta(minutes=30))
    assert (adaptive.min_interval, adaptive.max_interval) == (timedelta(hours=1), timedelta(days=2))
    assert adaptive.robots is False
    assert fixed.robots is None


def test_environment_overrides_file(tmp_path: Path) -> None:
    """INGEST_* variables win over the file, parsed to the setting's type."""
    path = write(tmp_path, '[settings]\nstorage_dir = "here"\nconcurrency = 4\n')
    settings = load_settings(
        path,
        {
            "INGEST_STORAGE_DIR": "/data",
            "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
            "INGEST_CONCURRENCY": "8",
            "INGEST_JITTER": "5s",
        },
    )
    assert settings.storage_dir == Path("/data")
    assert settings.allow_private_networks is True
    assert settings.concurrency == 8
    assert settings.jitter == timedelta(seconds=5)


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    """One ConfigError lists every problem with file and key, not just the first."""
    path = write(
        tmp_path,
        '[settings]\nconcurrency = 0\nlog_format = "xml"\ncolour = "blue"\n'
        '[[sources]]\nname = "bad name"\nurl = "ftp://x"\ninterval = "soon"\n'
        '[[sources]]\nname = "dup"\nurl = "https://x.example/1"\n'
        '[[sources]]\nname = "dup"\nurl = "https://x.example/2"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, {"INGEST_MAX_REDIRECTS": "many"})
    text = "\n".join(info.value.problems)
    for expected in (
        "settings.concurrency: must be greater than 0",
        "settings.log_format",
        "settings.colour: unknown setting",
        "INGEST_MAX_REDIRECTS: expected an integer",
        "sources[0].name",
        "sources[0].url",
        "sources[0].interval",
        "sources[2].name: duplicate source name 'dup'",
    ):
        assert expected in text
    assert str(path) in text


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    """Unreadable files are configuration errors, not tracebacks."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[settings\n"), {})
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5m", 90)],
)
def test_durations(text: object, seconds: float) -> None:
    """Durations accept seconds or a number with a unit."""
    assert to_duration(text) == timedelta(seconds=seconds)


def test_config_path_resolution(tmp_path: Path) -> None:
    """--config wins over INGEST_CONFIG."""
    assert config_path("a.toml", {"INGEST_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"INGEST_CONFIG": "b.toml"}) == Path("b.toml")
