"""Settings: read once from TOML and INGEST_* variables, validated, then passed down."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingest.errors import ConfigError
from ingest.models import ExtractRules, Source

DEFAULT_USER_AGENT = "ingest/0.1 (+https://github.com/ingest-worker/ingest)"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the worker needs to know; built by ``load_settings``."""

    storage_dir: Path = Path("storage")
    user_agent: str = DEFAULT_USER_AGENT  # left at the default: built from contact_url
    contact_url: str = "https://github.com/ingest-worker/ingest"  # who runs this crawler
    allow_private_networks: bool = False
    connect_timeout: float = 10.0  # seconds to establish a connection
    read_timeout: float = 20.0  # seconds between two received chunks
    total_timeout: float = 60.0  # seconds for a whole request, body included
    max_body_bytes: int = 10 * 1024 * 1024  # decoded bytes; reading stops past this
    max_redirects: int = 5
    concurrency: int = 16  # requests in flight overall
    per_host_concurrency: int = 2  # requests in flight per host
    per_host_delay: float = 1.0  # seconds between the starts of two requests to one host
    respect_robots: bool = True  # obey robots.txt for article pages (never for feeds)
    extract_workers: int = 0  # extraction processes; 0: one per CPU core
    near_duplicates: str = "link"  # a near-copy: "link" (store it in the cluster) or "skip"
    default_interval: timedelta = timedelta(minutes=30)
    jitter: timedelta = timedelta(seconds=30)
    heartbeat_interval: timedelta = timedelta(seconds=30)
    # How long in-flight polls may run after SIGTERM before they are cancelled. Cancelling
    # is safe (the store never leaves a half-written article), it only costs a refetch.
    shutdown_grace: timedelta = timedelta(seconds=20)
    min_interval: timedelta = timedelta(minutes=5)  # no source is polled more often
    max_interval: timedelta = timedelta(hours=24)  # nor less often (backoff included)
    status_host: str = "127.0.0.1"  # where the daemon serves /healthz /readyz /metrics
    status_port: int = 9108  # 0 turns the status endpoints off
    log_level: str = "INFO"
    log_format: str = "text"  # "text" or "json"
    sources: tuple[Source, ...] = field(default_factory=tuple)


DEFAULT_CONFIG = Path("config/ingest.toml")
# The shortest interval accepted anywhere; min_interval (default 5m) is the real floor
# for adaptive polling, and can be lowered this far for tests and local feeds.
MIN_INTERVAL = timedelta(seconds=1)
ENV_PREFIX = "INGEST_"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SOURCE_KEYS = {
    "name",
    "url",
    "interval",
    "min_interval",
    "max_interval",
    "enabled",
    "robots",
    "rules",
}
_RULE_KEYS = {"content_selector", "drop_selectors"}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """``--config``, else ``INGEST_CONFIG``, else ``config/ingest.toml`` if it exists."""
    chosen = explicit or environ.get("INGEST_CONFIG")
    if chosen:
        return Path(chosen)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Read ``path`` (if any), apply ``INGEST_*`` overrides, validate everything.

    Raises ConfigError listing every problem found (file, key, what is wrong).
    """
    problems: list[str] = []
    data: dict[str, Any] = {}
    where = str(path) if path else "(defaults)"
    if path is not None:
        data = _read_toml(path, problems)
    unknown = set(data) - {"settings", "sources"}
    problems += [f"{where}: unknown section [{key}]" for key in sorted(unknown)]
    raw = dict(data.get("settings") or {})
    if not isinstance(data.get("settings", {}), dict):
        problems.append(f"{where}: [settings] must be a table")
        raw = {}
    values = _settings_values(raw, where, problems)
    values.update(_env_values(environ, problems))
    sources = _sources(data.get("sources", []), where, values, problems)
    low = values.get("min_interval", Settings().min_interval)
    if low > values.get("max_interval", Settings().max_interval):
        problems.append(f"{where}: settings.min_interval: must not exceed max_interval")
    if problems:
        raise ConfigError(problems)
    return Settings(**values, sources=tuple(sources))


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
    return {}


def _settings_values(raw: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FIELDS or key == "sources":
            problems.append(f"{where}: settings.{key}: unknown setting")
            continue
        converted = _convert(key, value, f"{where}: settings.{key}", problems)
        if converted is not None:
            values[key] = converted
    return values


def _env_values(environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """``INGEST_<SETTING>`` for every scalar setting; strings are parsed like TOML values."""
    values: dict[str, Any] = {}
    for key in _FIELDS:
        name = ENV_PREFIX + key.upper()
        if key == "sources" or name not in environ:
            continue
        converted = _convert(key, environ[name], f"environment: {name}", problems)
        if converted is not None:
            values[key] = converted
    return values


def _convert(key: str, value: Any, where: str, problems: list[str]) -> Any:
    """Check and convert one setting; on error, record it and return None."""
    kind = _FIELDS[key]
    try:
        result = _CONVERTERS[kind](value)
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None
    error = _check_range(key, result)
    if error:
        problems.append(f"{where}: {error}")
        return None
    return result


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def to_duration(value: Any) -> timedelta:
    """Seconds as a number, or a string like "90s", "15m", "2h", "1d"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f'expected a duration like 90, "90s", "15m", "2h" or "1d", got {value!r}')
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "path": lambda v: Path(_to_str(v)),
    "str": _to_str,
    "bool": _to_bool,
    "int": _to_int,
    "float": _to_float,
    "duration": to_duration,
}
_FIELDS: dict[str, str] = {
    "storage_dir": "path",
    "user_agent": "str",
    "contact_url": "str",
    "allow_private_networks": "bool",
    "connect_timeout": "float",
    "read_timeout": "float",
    "total_timeout": "float",
    "max_body_bytes": "int",
    "max_redirects": "int",
    "concurrency": "int",
    "per_host_concurrency": "int",
    "per_host_delay": "float",
    "respect_robots": "bool",
    "extract_workers": "int",
    "near_duplicates": "str",
    "default_interval": "duration",
    "jitter": "duration",
    "heartbeat_interval": "duration",
    "shutdown_grace": "duration",
    "min_interval": "duration",
    "max_interval": "duration",
    "status_host": "str",
    "status_port": "int",
    "log_level": "str",
    "log_format": "str",
    "sources": "sources",
}


def _check_range(key: str, value: Any) -> str | None:
    positive = {
        "connect_timeout",
        "read_timeout",
        "total_timeout",
        "max_body_bytes",
        "concurrency",
        "per_host_concurrency",
        "heartbeat_interval",
    }
    zero = value == timedelta(0) if isinstance(value, timedelta) else value == 0
    negative = (
        value < timedelta(0)
        if isinstance(value, timedelta)
        else (isinstance(value, int | float) and value < 0)
    )
    if negative or (key in positive and zero):
        return f"must be {'greater than 0' if key in positive else 'zero or more'}, got {value}"
    if key in {"default_interval", "min_interval", "max_interval"} and value < MIN_INTERVAL:
        return f"must be at least {MIN_INTERVAL.total_seconds():g}s"
    if key == "status_port" and value > 65535:
        return f"must be a port number (0 to 65535; 0 turns it off), got {value}"
    if key == "log_level" and value.upper() not in _LOG_LEVELS:
        return f"must be one of {', '.join(sorted(_LOG_LEVELS))}, got {value!r}"
    if key == "near_duplicates" and value not in {"link", "skip"}:
        return f'must be "link" or "skip", got {value!r}'
    if key == "log_format" and value not in {"text", "json"}:
        return f'must be "text" or "json", got {value!r}'
    if key == "user_agent" and not value.strip():
        return "must not be empty"
    if key == "contact_url" and not _is_http_url(value):
        return f"must be an absolute http(s) URL, got {value!r}"
    return None


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and value.strip() == value


def _sources(raw: Any, where: str, values: dict[str, Any], problems: list[str]) -> list[Source]:
    if not isinstance(raw, list):
        problems.append(f"{where}: sources must be an array of tables ([[sources]])")
        return []
    default_interval = values.get("default_interval", Settings().default_interval)
    sources: list[Source] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        label = f"{where}: sources[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{label}: must be a table")
            continue
        source = _source(item, label, default_interval, problems)
        if source is None:
            continue
        if source.name in seen:
            problems.append(f"{label}.name: duplicate source name {source.name!r}")
            continue
        seen.add(source.name)
        sources.append(source)
    return sources


def _source(
    item: dict[str, Any], label: str, default_interval: timedelta, problems: list[str]
) -> Source | None:
    before = len(problems)
    problems += [f"{label}.{k}: unknown key" for k in sorted(set(item) - _SOURCE_KEYS)]
    name = item.get("name")
    if not isinstance(name, str) or not _SOURCE_NAME.match(name):
        problems.append(
            f"{label}.name: required; letters, digits, '.', '_' or '-' (at most 64), got {name!r}"
        )
    url = item.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        problems.append(f"{label}.url: required; an absolute http(s) URL, got {url!r}")
    durations = {
        key: _source_duration(item, key, label, problems)
        for key in ("interval", "min_interval", "max_interval")
    }
    low, high = durations["min_interval"], durations["max_interval"]
    if low and high and low > high:
        problems.append(f"{label}.min_interval: must not exceed max_interval")
    flags = {key: item.get(key) for key in ("enabled", "robots")}
    for key, value in flags.items():
        if value is not None and not isinstance(value, bool):
            problems.append(f"{label}.{key}: expected true or false, got {value!r}")
    rules = _rules(item.get("rules", {}), f"{label}.rules", problems)
    if len(problems) > before:
        return None
    return Source(
        name=str(name),
        url=str(url),
        interval=durations["interval"] or default_interval,
        enabled=flags["enabled"] is not False,
        rules=rules,
        fixed_interval=durations["interval"] is not None,
        min_interval=low,
        max_interval=high,
        robots=flags["robots"],
    )


def _source_duration(
    item: dict[str, Any], key: str, label: str, problems: list[str]
) -> timedelta | None:
    if key not in item:
        return None
    try:
        value = to_duration(item[key])
    except ValueError as exc:
        problems.append(f"{label}.{key}: {exc}")
        return None
    if value < MIN_INTERVAL:
        problems.append(f"{label}.{key}: must be at least {MIN_INTERVAL.total_seconds():g}s")
        return None
    return value


def _rules(raw: Any, label: str, problems: list[str]) -> ExtractRules:
    if not isinstance(raw, dict):
        problems.append(f"{label}: must be a table")
        return ExtractRules()
    problems += [f"{label}.{k}: unknown key" for k in sorted(set(raw) - _RULE_KEYS)]
    content = raw.get("content_selector")
    if content is not None and (not isinstance(content, str) or not content.strip()):
        problems.append(f"{label}.content_selector: expected a CSS selector string")
        content = None
    drops = raw.get("drop_selectors", [])
    if not isinstance(drops, list) or not all(isinstance(d, str) and d.strip() for d in drops):
        problems.append(f"{label}.drop_selectors: expected a list of CSS selector strings")
        drops = []
    return ExtractRules(content_selector=content, drop_selectors=tuple(drops))
