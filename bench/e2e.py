"""End-to-end benchmark: ingest rate, idle cost and memory, side by side with trafilatura.

    .venv/bin/python bench/e2e.py                 # every scenario, full size (~15 min)
    .venv/bin/python bench/e2e.py --quick         # a smoke run of every scenario (~1 min)
    .venv/bin/python bench/e2e.py --scenario cold,baseline --feeds 500 --entries 10

The site (bench/site.py) runs in its own process. Each system under test runs as the
command its users run, in its own process(es): ``ingest poll`` on a generated config, and
the ``trafilatura --feed`` CLI on the same feed list. For each run we report wall time,
CPU seconds (user+system, from wait4, so threads and reaped children count), peak
memory (the sum of the RSS of the process tree, sampled every 50 ms, and the largest
single-process ru_maxrss), and the rate. Scenarios:

    cold      <feeds> x <entries> articles into an empty store, with 1 and with 2
              ``ingest poll`` processes (sources split between them, one shared store)
    idle      <idle-sources> sources, primed by one poll, then one full cycle of 304s
    growth    <growth-feeds> x <entries> new articles on top of a catalog of N rows,
              for each N in --growth (rows inserted directly with SQL)
    baseline  trafilatura's CLI: find_feed_urls on every feed (thread pool), then its
              buffered_downloads + extract to JSON files, --parallel threads
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ingest, uninstalled too
from ingest.config import Settings
from ingest.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SITE_SCRIPT = ROOT / "bench" / "site.py"


def _site_module():  # type: ignore[no-untyped-def]
    """bench/site.py, loaded by path ("site" is also a stdlib module name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_site", SITE_SCRIPT)
    if spec is None or spec.loader is None:
        raise SystemExit(f"e2e: cannot load {SITE_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_site"] = module
    spec.loader.exec_module(module)
    return module


benchsite = _site_module()


# --- measuring a process tree -----------------------------------------------------------


@dataclass(slots=True)
class Measure:
    wall: float = 0.0
    cpu: float = 0.0
    own_cpu: float = 0.0  # of the commands' own processes, without their workers
    tree_rss_mb: float = 0.0  # peak of the summed RSS of the process tree, sampled
    max_rss_mb: float = 0.0  # largest single-process peak (ru_maxrss)
    codes: list[int] = field(default_factory=list)


def _tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    queue += [int(c) for c in handle.read().split()]
    return pids


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` itself (not of its children), from /proc."""
    with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    return 0.0


_TICKS = os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(commands: list[list[str]], *, logs: Path, timeout: float) -> Measure:
    """Run ``commands`` concurrently; wall until the last exits, CPU and memory summed.

    CPU is sampled every 50 ms for each process of the tree from /proc (its own user +
    system time), so pool workers that their parent never reaps (forkserver children)
    count too; at most the last 50 ms of each process is missed.
    """
    result = Measure()
    started = time.monotonic()
    procs = []
    for index, command in enumerate(commands):
        with (
            open(logs.with_suffix(f".{index}.out"), "wb") as out,
            open(logs.with_suffix(f".{index}.err"), "wb") as err,
        ):
            procs.append(subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT))
    live = {proc.pid: proc for proc in procs}
    cpu: dict[int, float] = {}
    deadline = started + timeout
    while live:
        if time.monotonic() > deadline:  # bounded: never wait forever on a stuck run
            for proc in live.values():
                print(f"e2e: killing after {timeout:.0f}s: {proc.args}", file=sys.stderr)
                proc.kill()
            deadline = float("inf")
        tree = [p for pid in live for p in _tree(pid)]
        result.tree_rss_mb = max(result.tree_rss_mb, sum(map(_rss_kb, tree)) / 1024)
        for p in tree:
            cpu[p] = max(cpu.get(p, 0.0), _cpu_seconds(p))
        for pid in list(live):
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                live.pop(pid).returncode = os.waitstatus_to_exitcode(status)
                result.max_rss_mb = max(result.max_rss_mb, usage.ru_maxrss / 1024)
                result.wall = time.monotonic() - started
        time.sleep(0.05)
    result.codes = [proc.returncode for proc in procs]
    result.cpu = sum(cpu.values())
    result.own_cpu = sum(cpu.get(proc.pid, 0.0) for proc in procs)
    return result


# --- the site ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteInfo:
    hosts: int
    port: int


@contextlib.contextmanager
def running_site(args: argparse.Namespace, work: Path) -> Iterator[SiteInfo]:
    command = [sys.executable, str(SITE_SCRIPT), "--hosts", str(args.hosts)]
    command += ["--port", str(args.port), "--latency-ms", str(args.latency_ms)]
    if args.faults:
        command += ["--faults", args.faults]
    log = open(work / "site.log", "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"site: ready" not in (work / "site.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"e2e: the site did not start:\n{(work / 'site.log').read_text()}")
            time.sleep(0.1)
        yield SiteInfo(hosts=args.hosts, port=args.port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def site_stats(site: SiteInfo) -> dict[str, float]:
    url = f"http://{benchsite.host(0, port=site.port)}/_stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


# --- ingest -----------------------------------------------------------------------------


def feed_urls(site: SiteInfo, set_name: str, feeds: int, entries: int) -> list[str]:
    return [
        benchsite.feed_url(set_name, i, entries=entries, hosts=site.hosts, port=site.port)
        for i in range(feeds)
    ]


def write_config(path: Path, *, storage: Path, urls: list[str], args: argparse.Namespace) -> None:
    settings = {
        "storage_dir": f'"{storage}"',
        "allow_private_networks": "true",  # the bench site is on loopback
        "concurrency": args.concurrency,
        "per_host_concurrency": args.per_host,
        # Politeness would measure waiting, not work (trafilatura's SLEEP_TIME is 0 too).
        "per_host_delay": args.per_host_delay,
        "extract_workers": args.extract_workers,
        "log_level": f'"{args.log_level}"',
    }
    known = {f.name for f in dataclasses.fields(Settings)}  # settings of this checkout
    lines = ["[settings]"]
    lines += [f"{key} = {value}" for key, value in settings.items() if key in known]
    lines.append("")
    for url in urls:
        name = url.split("/", 3)[3].replace("/", "_")
        lines += ["[[sources]]", f'name = "{name[:64]}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines))


def ingest_poll(
    work: Path, label: str, urls: list[str], args: argparse.Namespace, *, storage: Path, procs: int
) -> Measure:
    """``ingest poll`` over ``urls``, split round-robin between ``procs`` processes."""
    commands = []
    for index in range(procs):
        config = work / f"{label}.{index}.toml"
        write_config(config, storage=storage, urls=urls[index::procs], args=args)
        commands.append([sys.executable, "-m", "ingest", "--config", str(config), "poll"])
    return measure(commands, logs=work / f"{label}.log", timeout=args.timeout)


def catalog_counts(storage: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(storage / "catalog.sqlite3")) as conn:
        # Every bench feed entry has a GUID, so its guid: key counts each entry once.
        counts = dict(
            conn.execute(
                "SELECT status, count(*) FROM entry_keys WHERE key LIKE 'guid:%' GROUP BY status"
            )
        )
        counts["articles"] = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        return counts


def marker_share(docs: list[Path], set_name: str) -> tuple[float, int]:
    """Share of documents whose text kept a marker of ``set_name`` (see bench/site.py),
    a cheap sign that the body was extracted, and how many distinct articles they are.

    A page carries only its own marker, so any marker of the set will do: trafilatura's
    JSON names the page's canonical URL, not the one fetched, so URLs cannot be matched.
    """
    pattern = re.compile(re.escape(benchsite.marker(set_name, 0)).replace("0", r"(\d+)"))
    kept, seen = 0, set()
    for path in docs:
        found = pattern.findall(json.loads(path.read_text(encoding="utf-8")).get("text") or "")
        kept += bool(found)
        seen.update(found)
    return (kept / len(docs) if docs else 0.0), len(seen)


# --- scenarios --------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    scenario: str
    system: str
    items: int  # articles stored, or sources polled
    unit: str
    run: Measure
    site_cpu: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.run.wall if self.run.wall else 0.0


def run_with_site_cpu(site: SiteInfo, fn):  # type: ignore[no-untyped-def]
    before = site_stats(site)
    result = fn()
    after = site_stats(site)
    return result, after["cpu_s"] - before["cpu_s"], after["requests"] - before["requests"]


def fresh(path: Path) -> Path:
    """``path``, emptied: a --workdir used before must not turn a cold run warm."""
    shutil.rmtree(path, ignore_errors=True)
    return path


def scenario_cold(site: SiteInfo, work: Path, args: argparse.Namespace) -> list[Row]:
    rows = []
    urls = feed_urls(site, "cold", args.feeds, args.entries)
    for procs in args.procs:
        storage = fresh(work / f"cold-{procs}p")
        run, site_cpu, requests = run_with_site_cpu(
            site,
            lambda storage=storage, procs=procs: ingest_poll(
                work, f"cold-{procs}p", urls, args, storage=storage, procs=procs
            ),
        )
        counts = catalog_counts(storage)
        docs = list((storage / "articles").rglob("*.json"))
        share, distinct = marker_share(docs, "cold")
        note = (
            f"stored {counts['articles']}/{args.feeds * args.entries}, "
            f"dup {counts.get('duplicate', 0)}, skipped {counts.get('skipped', 0)}, "
            f"marker kept {share:.1%} ({distinct} distinct), {requests} requests, exit {run.codes}"
        )
        rows.append(
            Row(
                "cold", f"ingest, {procs} proc", counts["articles"], "articles", run, site_cpu, note
            )
        )
        _print_row(rows[-1])
    return rows


def scenario_baseline(site: SiteInfo, work: Path, args: argparse.Namespace) -> list[Row]:
    urls = feed_urls(site, "cold", args.feeds, args.entries)
    inputs = work / "trafilatura-feeds.txt"
    inputs.write_text("\n".join(urls) + "\n")
    config = work / "trafilatura.cfg"
    # Loopback must be allowed, and its 5 s per-domain politeness delay would measure
    # sleeping, not work: 0 makes every draw take one URL from each of the hosts.
    config.write_text("[DEFAULT]\nSSRF_PROTECTION = off\nSLEEP_TIME = 0\n")
    out = fresh(work / "trafilatura-out")
    command = [str(BIN / "trafilatura"), "--feed", "-i", str(inputs), "-o", str(out)]
    command += [
        "--json",
        "--with-metadata",
        "--parallel",
        str(args.threads),
        "--config-file",
        str(config),
    ]
    run, site_cpu, requests = run_with_site_cpu(
        site, lambda: measure([command], logs=work / "trafilatura.log", timeout=args.timeout)
    )
    docs = list(out.rglob("*.json")) if out.exists() else []
    share, distinct = marker_share(docs, "cold")
    note = (
        f"files {len(docs)}/{len(urls) * args.entries}, "
        f"marker kept {share:.1%} ({distinct} distinct), "
        f"{requests} requests, --parallel {args.threads}, exit {run.codes}"
    )
    row = Row("cold", "trafilatura CLI", len(docs), "articles", run, site_cpu, note)
    _print_row(row)
    return [row]


def scenario_idle(site: SiteInfo, work: Path, args: argparse.Namespace) -> list[Row]:
    urls = feed_urls(site, "idle", args.idle_sources, 0)
    storage = fresh(work / "idle")
    rows = []
    for label in ("first poll (200)", "idle cycle (304)"):
        run, site_cpu, requests = run_with_site_cpu(
            site, lambda: ingest_poll(work, "idle", urls, args, storage=storage, procs=1)
        )
        with contextlib.closing(sqlite3.connect(storage / "catalog.sqlite3")) as conn:
            statuses = dict(conn.execute("SELECT last_status, count(*) FROM sources GROUP BY 1"))
        note = f"{requests} requests, sources {statuses}, exit {run.codes}"
        rows.append(Row(label, "ingest, 1 proc", len(urls), "sources", run, site_cpu, note))
        _print_row(rows[-1])
    return rows


def scenario_growth(site: SiteInfo, work: Path, args: argparse.Namespace) -> list[Row]:
    rows = []
    for size in args.growth:
        storage = fresh(work / f"growth-{size}")
        started = time.monotonic()
        fill_catalog(storage, size)
        filled = time.monotonic() - started
        set_name = f"g{size}"
        urls = feed_urls(site, set_name, args.growth_feeds, args.entries)
        run, site_cpu, requests = run_with_site_cpu(
            site,
            lambda storage=storage, set_name=set_name, urls=urls: ingest_poll(
                work, set_name, urls, args, storage=storage, procs=1
            ),
        )
        stored = catalog_counts(storage)["articles"] - size
        note = f"catalog of {size:,} rows filled in {filled:.1f}s; {requests} requests"
        rows.append(
            Row(f"growth {size:,}", "ingest, 1 proc", stored, "articles", run, site_cpu, note)
        )
        _print_row(rows[-1])
    return rows


_WORDS = [
    "the",
    "harbour",
    "bridge",
    "council",
    "said",
    "on",
    "monday",
    "that",
    "a",
    "new",
    "plan",
    "for",
    "the",
    "city",
    "would",
    "bring",
    "more",
    "trains",
    "buses",
    "and",
    "cycle",
    "lanes",
    "while",
    "critics",
    "warned",
    "about",
    "costs",
    "delays",
    "and",
    "the",
    "impact",
    "on",
    "small",
    "businesses",
    "near",
    "the",
    "waterfront",
    "during",
    "years",
    "of",
    "construction",
    "work",
]


def fill_catalog(storage: Path, size: int, *, batch: int = 50_000) -> None:
    """``size`` stored articles straight into the catalog tables, as ingest would have
    written them (unique id, fingerprint, path, entry keys and a full-text row); no
    documents on disk: only the catalog's growth is measured."""
    store = SQLiteStore.open(storage)  # creates and migrates the schema
    asyncio.run(store.close())
    conn = sqlite3.connect(storage / "catalog.sqlite3", isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    count = len(_WORDS)
    for start in range(0, size, batch):
        numbers = range(start, min(size, start + batch))
        conn.executemany(
            "INSERT INTO articles (seq, id, fingerprint, path, url, canonical_url, source,"
            " title, published_at, fetched_at, stored_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    i + 1,
                    f"{i:020x}",
                    f"{i:064x}",
                    f"articles/2023/01/01/{i:020x}.json",
                    f"https://news{i % 997}.example/story/{i}",
                    None,
                    f"gen-{i % 500}",
                    f"Story {i}",
                    "2023-01-01T00:00:00+00:00",
                    "2023-01-01T00:00:00+00:00",
                    "2023-01-01T00:00:00+00:00",
                )
                for i in numbers
            ),
        )
        conn.executemany(
            "INSERT INTO entry_keys (key, source, status, article_id, reason, seen_at)"
            " VALUES (?, ?, 'stored', ?, NULL, '2023-01-01T00:00:00+00:00')",
            (
                (key, f"gen-{i % 500}", f"{i:020x}")
                for i in numbers
                for key in (
                    f"guid:gen-{i % 500}:{i}",
                    f"url:https://news{i % 997}.example/story/{i}",
                )
            ),
        )
        conn.executemany(
            "INSERT INTO articles_fts (rowid, title, text) VALUES (?, ?, ?)",
            (
                (
                    i + 1,
                    f"Story {i}",
                    " ".join(_WORDS[(i + k * 7) % count] for k in range(60)) + f" story{i}",
                )
                for i in numbers
            ),
        )
    conn.execute("COMMIT")
    conn.close()
    # Written with synchronous=OFF, the catalog is gigabytes of dirty pages in memory at
    # 1M rows; the kernel writes them back over the next minute, and every fsync of the
    # measured run waited behind that (rate halved, CPU unchanged). A catalog that grew
    # over months has nothing pending: write it out before measuring.
    os.sync()


# --- the report -------------------------------------------------------------------------


def _print_row(row: Row) -> None:
    run = row.run
    print(
        f"{row.scenario:<18} {row.system:<18} {row.items:>6} {row.unit:<8} "
        f"wall {run.wall:7.1f}s  cpu {run.cpu:7.1f}s (main {run.own_cpu:.1f}s)  "
        f"rss tree {run.tree_rss_mb:6.0f} MB "
        f"(max proc {run.max_rss_mb:4.0f})  rate {row.rate:7.1f}/s  site cpu {row.site_cpu:5.1f}s"
        f"  | {row.note}",
        flush=True,
    )


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| scenario | system | items | wall s | CPU s | peak RSS MB (tree / largest process)"
        " | rate /s | site CPU s | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        run = row.run
        lines.append(
            f"| {row.scenario} | {row.system} | {row.items:,} {row.unit} | {run.wall:.1f} "
            f"| {run.cpu:.1f} | {run.tree_rss_mb:.0f} / {run.max_rss_mb:.0f} | {row.rate:.1f} "
            f"| {row.site_cpu:.1f} | {row.note} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--scenario", default="cold,baseline,idle,growth")
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--idle-sources", type=int, default=10_000)
    parser.add_argument("--growth", type=ints, default=[10_000, 1_000_000])
    parser.add_argument("--growth-feeds", type=int, default=100, help="x --entries new articles")
    parser.add_argument("--procs", type=ints, default=[1], help="ingest processes, cold")
    parser.add_argument("--hosts", type=int, default=50, help="loopback hosts of the site")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--faults", default="")
    parser.add_argument("--concurrency", type=int, default=64, help="ingest's setting")
    parser.add_argument("--per-host", type=int, default=2, help="ingest's per_host_concurrency")
    parser.add_argument("--per-host-delay", type=float, default=0.0, help="ingest's setting")
    parser.add_argument("--extract-workers", type=int, default=0, help="ingest's; 0: per core")
    parser.add_argument("--log-level", default="INFO", help="ingest's log_level")
    parser.add_argument("--threads", type=int, default=16, help="trafilatura's --parallel")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds, per run")
    parser.add_argument("--workdir", type=Path, help="keep stores and logs here")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.feeds, args.entries, args.idle_sources = 30, 5, 300
        args.growth, args.growth_feeds, args.hosts = [1_000, 20_000], 10, 10
    return args


SCENARIOS = {
    "cold": scenario_cold,
    "baseline": scenario_baseline,
    "idle": scenario_idle,
    "growth": scenario_growth,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [s for s in args.scenario.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"e2e: unknown scenario(s) {sorted(unknown)}; pick from {list(SCENARIOS)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ingest-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"e2e: work dir {work}; cores {os.cpu_count()}", flush=True)
    rows: list[Row] = []
    try:
        with running_site(args, work) as site:
            for name in chosen:
                rows += SCENARIOS[name](site, work, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    table = markdown_table(rows)
    print("\n" + table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
