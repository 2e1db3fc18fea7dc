"""Prometheus metrics for the daemon, in the text exposition format (version 0.0.4).

Small on purpose: counters, gauges and histograms with labels are all the daemon needs,
so no client library is pulled in. A ``Metrics`` object is made by the daemon and passed
down; nothing here is global.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
# Latency buckets in seconds: from a fast 304 on a LAN to a slow page near the timeout.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class _Family:
    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    buckets: tuple[float, ...] = ()
    values: dict[Labels, float] = field(default_factory=dict)
    histograms: dict[Labels, list[float]] = field(default_factory=dict)  # buckets, sum, n
    sampler: Callable[[], float] | None = None  # gauges read at scrape time


class Metrics:
    """The daemon's metrics; safe to update from several threads."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()
        self._declare()

    def _declare(self) -> None:
        add = self._add
        add("ingest_polls_total", "counter", "Source polls, by outcome (ok, not_modified, failed).")
        add("ingest_poll_errors_total", "counter", "Failed polls, by kind of error.")
        add(
            "ingest_entries_total",
            "counter",
            "Feed entries handled, by outcome (new, stored, duplicate, skipped, error).",
        )
        add("ingest_articles_stored_total", "counter", "Articles stored.")
        add("ingest_duplicates_total", "counter", "Entries found to duplicate a stored article.")
        add(
            "ingest_fetch_seconds",
            "histogram",
            "Duration of HTTP fetches, by kind.",
            LATENCY_BUCKETS,
        )
        add("ingest_poll_seconds", "histogram", "Duration of whole source polls.", LATENCY_BUCKETS)
        add("ingest_due_sources", "gauge", "Sources whose poll is due or overdue (the backlog).")
        add("ingest_sources", "gauge", "Configured sources, by state.")

    def _add(self, name: str, kind: str, help_text: str, buckets: tuple[float, ...] = ()) -> None:
        self._families[name] = _Family(name, kind, help_text, buckets)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to a counter (or gauge)."""
        key = _labels(labels)
        with self._lock:
            family = self._families[name]
            family.values[key] = family.values.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        with self._lock:
            self._families[name].values[_labels(labels)] = value

    def sample(self, name: str, sampler: Callable[[], float]) -> None:
        """Read a gauge from ``sampler`` at every scrape."""
        self._families[name].sampler = sampler

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a histogram."""
        key = _labels(labels)
        with self._lock:
            family = self._families[name]
            counts = family.histograms.setdefault(key, [0.0] * (len(family.buckets) + 3))
            counts[bisect.bisect_left(family.buckets, value)] += 1
            counts[-2] += value
            counts[-1] += 1

    def render(self) -> str:
        """The exposition text for a scrape."""
        lines: list[str] = []
        with self._lock:
            for family in self._families.values():
                lines += [
                    f"# HELP {family.name} {family.help}",
                    f"# TYPE {family.name} {family.kind}",
                ]
                lines += _render(family)
        return "\n".join(lines) + "\n"


def _render(family: _Family) -> Iterable[str]:
    if family.sampler is not None:
        yield f"{family.name} {_number(family.sampler())}"
    for key, value in sorted(family.values.items()):
        yield f"{family.name}{_text(key)} {_number(value)}"
    for key, counts in sorted(family.histograms.items()):
        cumulative = 0.0
        for bound, count in zip((*family.buckets, math.inf), counts[:-2], strict=True):
            cumulative += count
            le = "+Inf" if bound == math.inf else repr(bound)
            yield f"{family.name}_bucket{_text((*key, ('le', le)))} {_number(cumulative)}"
        yield f"{family.name}_sum{_text(key)} {_number(counts[-2])}"
        yield f"{family.name}_count{_text(key)} {_number(counts[-1])}"


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _text(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
