"""Soak: the real server under a steady mixed load, with a runaway query every few seconds.

Run on demand (tests/test_soak.py runs a short version in CI):

    python -m bench.soak [--data DIR] [--duration 60] [--clients 16] [--processes 4] [--time-limit 3]

`medcode serve` (gunicorn, 2 workers, MEDCODE_QUERY_TIMEOUT at the time limit) on a free 127.0.0.1
port. Closed-loop clients, each a thread with a keep-alive `requests.Session`, spread over processes
(the "client lag" row is what the GIL and the CPU add to their clocks), send a weighted mix of SPARQL
lookups, pages (HTML, Turtle), searches (codes, words), named-query API calls and a few exports. Every
`--runaway-every` s a runaway query must be answered 503 within the limit + 1 s; its worker retires and
gunicorn starts another. Clients never retry, as requests does not (`requests.adapters.DEFAULT_RETRIES
= 0`): a failure a user would see counts. Memory: RSS of the arbiter and its descendants (/proc), read
just before each runaway. Prints one table; exits 1 on a missed figure (an error, p99 >= 250 ms, memory
growth >= 10 %, a runaway not answered in time).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from helpers import descendants, start_server, stop_server  # noqa: E402

from kg.contract import default_data_dir  # noqa: E402

RESULTS_JSON = "application/sparql-results+json"
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
P99_LIMIT_MS = 250.0
MEMORY_GROWTH_LIMIT = 0.10
MAX_REQUESTS_PER_CLIENT = 200_000  # a second bound beside the clock
REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read (s)

Sample = tuple[str, float, float, str]  # kind, started (monotonic s), seconds, "200" or the error
Trip = tuple[float, float, str]  # a runaway query: started, seconds, status or error


def sparql(query: str) -> str:
    """The protocol GET path for a query (the server predeclares cpt:, mc:, skos: ...)."""
    return "/sparql?" + urlencode({"query": query})


@dataclass(frozen=True)
class Kind:
    """One kind of healthy request: its share of the mix and the (path, Accept) variants it picks from."""

    name: str
    weight: int
    variants: tuple[tuple[str, str], ...]


MIX = (
    Kind("sparql", 30, ((sparql("ASK { cpt:95990 mc:notReportedWith cpt:62367 }"), RESULTS_JSON),
                        (sparql('SELECT ?c ?label WHERE { ?c skos:notation "96522" ; skos:prefLabel ?label }'),
                         RESULTS_JSON))),
    Kind("page-html", 14, (("/id/cpt/96522", "text/html"), ("/id/icd10cm/G89.3", "text/html"))),
    Kind("page-turtle", 14, (("/id/cpt/96522", "text/turtle"), ("/id/icd10cm/G89.3", "text/turtle"))),
    Kind("search-code", 12, (("/search?q=G89.3", "application/json"), ("/search?q=g893", "text/html"),
                             ("/search?q=62360-62370", "application/json"), ("/search?q=G35*", "text/html"))),
    Kind("search-words", 10, (("/search?q=refill+implantable+pump+systemic", "application/json"),
                              ("/search?q=intrathecal+catheter", "text/html"))),
    Kind("api", 17, (("/api/not-reported-with.json?code=95990", "application/json"),
                     ("/api/portable-pump-alternative.json?code=96522", "application/json"),
                     ("/api/implantable-pump-device-codes.csv", "text/csv"))),
    Kind("export", 3, (("/export/device-crosswalk.csv", "text/csv"),)),
)


@dataclass(frozen=True)
class Settings:
    """One soak's shape: seconds of warm-up and of measurement, the clients and the runaway cadence."""

    duration: float = 60
    warmup: float = 5
    clients: int = 16
    processes: int = 4
    time_limit: float = 3
    runaway_every: float = 5


def outcome(send: Callable[[], requests.Response]) -> str:
    """The status as text, or the error's type and message; a response counts once its whole body arrived."""
    try:
        response = send()
        response.content  # noqa: B018 - reads the body
        return str(response.status_code)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"[:300]


def client(base: str, seed: int, end: float, out: list[Sample]) -> None:
    """One closed-loop client: the next request as soon as the last is answered, until `end` or the count."""
    rng = random.Random(seed)
    weights = [kind.weight for kind in MIX]
    with requests.Session() as session:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            started = time.monotonic()
            if started >= end:
                return
            kind = rng.choices(MIX, weights)[0]
            path, accept = rng.choice(kind.variants)
            status = outcome(partial(session.get, base + path, headers={"Accept": accept}, timeout=REQUEST_TIMEOUT))
            out.append((kind.name, started, time.monotonic() - started, status))


def cpu_seconds(who: int) -> float:
    """User + system CPU seconds of this process or of its waited-for children (RUSAGE_*)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def client_lag(end: float, out: list[float], nap: float = 0.005) -> None:
    """How late this process wakes from short sleeps until `end`: what an answered client waits for GIL and CPU."""
    for _ in range(math.ceil((end - time.monotonic()) / nap) + 1):
        before = time.monotonic()
        if before >= end:
            return
        time.sleep(nap)
        out.append(time.monotonic() - before - nap)


def client_process(base: str, seeds: list[int], pipe: Connection) -> None:
    """Says it is ready, runs one client thread per seed until the end it is sent; sends (samples, lags, CPU s)."""
    pipe.send("ready")
    end = pipe.recv()
    results: list[list[Sample]] = [[] for _ in seeds]
    lags: list[float] = []
    threads = [threading.Thread(target=client, args=(base, seed, end, out))
               for seed, out in zip(seeds, results, strict=True)]
    threads.append(threading.Thread(target=client_lag, args=(end, lags)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pipe.send(([sample for out in results for sample in out], lags, cpu_seconds(resource.RUSAGE_SELF)))


def start_clients(base: str, clients: int, processes: int) -> list[tuple[mp.Process, Connection]]:
    """`processes` spawned client processes sharing `clients` threads; returns once every one is ready."""
    context = mp.get_context("spawn")  # no fork of a process that runs threads
    pool = []
    for n in range(processes):
        mine, theirs = context.Pipe()
        process = context.Process(target=client_process, args=(base, list(range(n, clients, processes)), theirs),
                                  daemon=True)
        process.start()
        pool.append((process, mine))
    for process, pipe in pool:
        if not pipe.poll(60):
            raise RuntimeError(f"client process {process.pid} did not start within 60 s")
        pipe.recv()
    return pool


def collect(pool: list[tuple[mp.Process, Connection]], end: float, run: Run) -> None:
    """Every client process's samples, lags and CPU seconds into `run`, once each has passed `end`."""
    run.cpu["clients"] = 0.0
    for process, pipe in pool:
        if not pipe.poll(max(0.0, end - time.monotonic()) + REQUEST_TIMEOUT[1] + 10):
            raise RuntimeError(f"client process {process.pid} sent no samples")
        samples, lags, seconds = pipe.recv()
        run.samples.extend(samples)
        run.lags.extend(lags)
        run.cpu["clients"] += seconds
        process.join(10)


def rss_mib(pid: int) -> float:
    """VmRSS of a live process in MiB, 0 once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


def server_rss(arbiter: int) -> dict[int, float]:
    """RSS (MiB) of the arbiter and of each process under it."""
    return {pid: rss_mib(pid) for pid in [arbiter, *descendants(arbiter)]}


def runaways(base: str, arbiter: int, begin: float, end: float, settings: Settings,
             trips: list[Trip], memory: list[tuple[float, float]]) -> None:
    """Every `runaway_every` s from 1 s in until `end`: the server's RSS, then a runaway if it can finish by `end`."""
    for n in range(int((end - begin) / settings.runaway_every) + 1):
        at = begin + 1 + n * settings.runaway_every
        time.sleep(max(0.0, at - time.monotonic()))
        memory.append((at, sum(server_rss(arbiter).values())))
        if at + settings.time_limit + 1 > end:
            continue
        sent = time.monotonic()
        status = outcome(partial(requests.get, base + sparql(RUNAWAY), timeout=settings.time_limit + 30))
        trips.append((sent, time.monotonic() - sent, status))


def watch_workers(arbiter: int, end: float, seen: dict[int, list[float]], every: float = 0.5) -> None:
    """The RSS (MiB) of every process under the arbiter, every `every` s until `end`, by pid."""
    for _ in range(math.ceil((end - time.monotonic()) / every) + 1):
        if time.monotonic() >= end:
            return
        for pid, mib in server_rss(arbiter).items():
            if mib and pid != arbiter:
                seen.setdefault(pid, []).append(mib)
        time.sleep(every)


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, from /proc/stat."""
    ticks = [int(x) / os.sysconf("SC_CLK_TCK") for x in Path("/proc/stat").read_text().split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # all but idle and iowait, all


@dataclass
class Run:
    """What one soak measured; `rows` is the table, `problems` the acceptance figures it missed."""

    settings: Settings
    samples: list[Sample] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    memory: list[tuple[float, float]] = field(default_factory=list)  # (at, MiB) once per runaway cycle
    workers: dict[int, list[float]] = field(default_factory=dict)
    measured: tuple[float, float] = (math.nan, math.nan)
    cpu: dict[str, float] = field(default_factory=dict)
    rows: list[list[str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Every healthy request that failed, warm-up included."""
        return [f"{s[0]} at {s[1] - self.measured[0]:+.2f} s: {s[3]}" for s in self.samples if s[3] != "200"]

    @property
    def steady(self) -> list[Sample]:
        """The healthy requests sent after the warm-up."""
        return [s for s in self.samples if s[1] >= self.measured[0]]

    @property
    def p99_ms(self) -> float:
        """The acceptance latency: p99 of the healthy requests after the warm-up."""
        return percentile(sorted(s[2] * 1000 for s in self.steady), 0.99)

    @property
    def late(self) -> list[Trip]:
        """Runaway queries not answered 503 within the time limit + 1 s (the benchmark's target)."""
        return [t for t in self.trips if t[2] != "503" or t[1] > self.settings.time_limit + 1]

    def queued(self, trip: Trip) -> float:
        """How long the server kept a healthy request waiting from a runaway's sending on (those in flight
        then or sent in its first second): what the runaway may have waited for a thread."""
        sent = trip[0]
        return max((min(s[2], s[1] + s[2] - sent) for s in self.samples
                    if s[1] <= sent + 1 and s[1] + s[2] >= sent), default=0.0)

    @property
    def late_beyond_queueing(self) -> list[Trip]:
        """Runaway queries not answered 503 within the limit + 1 s on top of what a healthy request queued
        for at the time: what a loaded machine (CI) can hold the server to; `late` needs a quiet one."""
        return [t for t in self.trips if t[2] != "503" or t[1] > self.settings.time_limit + 1 + self.queued(t)]

    @property
    def memory_mib(self) -> tuple[float, float, float]:
        """Mean RSS of the first two readings after the warm-up, of the last two, and the growth between."""
        after = [mib for at, mib in self.memory if at >= self.measured[0]] or [math.nan]
        first, last = statistics.fmean(after[:2]), statistics.fmean(after[-2:])
        return first, last, (last - first) / first


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)] if sorted_values else math.nan


def spread(ms: list[float]) -> list[str]:
    """p50, p99 and max of some milliseconds, as table cells."""
    ordered = sorted(ms)
    return [f"{percentile(ordered, 0.5):,.1f}", f"{percentile(ordered, 0.99):,.1f}",
            f"{ordered[-1] if ordered else math.nan:,.1f}"]


def latency_row(name: str, samples: list[Sample], seconds: float, note: str = "",
                failed: int | None = None) -> list[str]:
    """A table row for some requests: count, rate, latencies and failures (non-200s unless `failed` is given)."""
    failed = sum(1 for s in samples if s[3] != "200") if failed is None else failed
    return [name, f"{len(samples):,}", f"{len(samples) / seconds:,.1f}", *spread([s[2] * 1000 for s in samples]),
            str(failed), note]


def summarise(run: Run) -> Run:
    """Fills in the table and the acceptance figures: latency after the warm-up, errors over the whole run."""
    seconds = run.measured[1] - run.measured[0]
    for kind in MIX:
        run.rows.append(latency_row(kind.name, [s for s in run.steady if s[0] == kind.name], seconds))
    run.rows.append(latency_row("all healthy", run.steady, seconds,
                                f"{len(run.errors)} errors with the warm-up's requests"))
    shadowed = [s for s in run.steady if any(at <= s[1] <= at + took + 1 for at, took, _ in run.trips)]
    run.rows.append(latency_row("  while a runaway ran", shadowed, seconds,
                                "sent from a runaway's start to 1 s after its answer (its worker's replacement)"))
    run.rows.append(latency_row("runaway", [("runaway", *t) for t in run.trips], seconds,
                                f"each must be 503 within {run.settings.time_limit + 1:g} s; the longest a healthy "
                                f"request waited from each one's sending: "
                                + ", ".join(f"{run.queued(t):.2f} s" for t in run.trips), failed=len(run.late)))
    run.rows.append(["client lag", f"{len(run.lags):,}", "", *spread([lag * 1000 for lag in run.lags]), "",
                     f"how late a client process wakes from 5 ms sleeps: the GIL and CPU wait inside the latencies "
                     f"above ({run.settings.clients} clients in {run.settings.processes} processes)"])
    before, after, growth = run.memory_mib
    peak = max((max(v) for v in run.workers.values()), default=math.nan)
    run.rows.append(["server RSS", str(len(run.memory)), "", "", "", "", "",
                     f"{before:,.0f} -> {after:,.0f} MiB ({growth:+.1%}), read before each runaway; "
                     f"{len(run.workers)} workers seen; one worker's peak {peak:,.0f} MiB"])
    cpu = run.cpu
    rest = cpu["busy"] - cpu["server"] - cpu["clients"] - cpu["self"]
    run.rows.append(["CPU s", "", "", "", "", "", "", f"server {cpu['server']:,.1f}, clients {cpu['clients']:,.1f}, "
                     f"rest of the machine {rest:,.1f}; busy {cpu['busy']:,.1f} of {cpu['all']:,.1f} core-seconds"])
    run.problems = acceptance(run)
    return run


def acceptance(run: Run) -> list[str]:
    """The acceptance figures the run missed, each as a sentence."""
    problems = []
    if run.errors:
        problems.append(f"{len(run.errors)} healthy requests failed, first: {run.errors[:3]}")
    if not run.p99_ms < P99_LIMIT_MS:
        problems.append(f"p99 {run.p99_ms:.1f} ms is not under {P99_LIMIT_MS:g} ms")
    if run.late or not run.trips:
        problems.append(f"runaway queries not answered 503 in time: {run.late or 'none was sent'}")
    if not run.memory_mib[2] < MEMORY_GROWTH_LIMIT:
        problems.append(f"server memory grew {run.memory_mib[2]:+.1%} (limit {MEMORY_GROWTH_LIMIT:.0%})")
    return problems


def table(run: Run) -> str:
    """The figures as one Markdown table."""
    head = ["kind", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in run.rows])


def drive(run: Run, base: str, arbiter: int) -> None:
    """Warm-up and measurement against a running server, into `run`."""
    settings = run.settings
    pool = start_clients(base, settings.clients, min(settings.processes, settings.clients))
    begin = time.monotonic()
    end = begin + settings.warmup + settings.duration
    run.measured = (begin + settings.warmup, end)
    for _, pipe in pool:
        pipe.send(end)
    side = [threading.Thread(target=runaways, args=(base, arbiter, begin, end, settings, run.trips, run.memory)),
            threading.Thread(target=watch_workers, args=(arbiter, end, run.workers))]
    for thread in side:
        thread.start()
    collect(pool, end, run)
    for thread in side:
        thread.join()


def soak(data_dir: Path, workdir: Path, settings: Settings) -> Run:
    """Serve `data_dir`, load it for warm-up + duration seconds, stop it; the figures of the run."""
    run = Run(settings)
    machine_busy, machine_all = machine_cpu()
    children, own = cpu_seconds(resource.RUSAGE_CHILDREN), cpu_seconds(resource.RUSAGE_SELF)
    srv = start_server(data_dir, workdir / "serve.log", {"MEDCODE_QUERY_TIMEOUT": f"{settings.time_limit:g}"},
                       workers=2)
    try:
        drive(run, f"http://127.0.0.1:{srv.port}", srv.process.pid)
    finally:
        stop_server(srv)
    run.cpu.update(self=cpu_seconds(resource.RUSAGE_SELF) - own,
                   server=cpu_seconds(resource.RUSAGE_CHILDREN) - children - run.cpu["clients"],
                   busy=machine_cpu()[0] - machine_busy, all=machine_cpu()[1] - machine_all)
    return summarise(run)


def main() -> None:
    """The command line: one soak, its table, exit status 1 when a figure is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    given = Settings()
    parser.add_argument("--duration", type=float, default=given.duration, help="measured seconds, after the warm-up")
    parser.add_argument("--warmup", type=float, default=given.warmup)
    parser.add_argument("--clients", type=int, default=given.clients)
    parser.add_argument("--processes", type=int, default=given.processes, help="client processes for the clients")
    parser.add_argument("--time-limit", type=float, default=given.time_limit, help="MEDCODE_QUERY_TIMEOUT (s)")
    parser.add_argument("--runaway-every", type=float, default=given.runaway_every)
    args = parser.parse_args()
    settings = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})
    with tempfile.TemporaryDirectory(prefix="medcode-soak-") as workdir:
        run = soak(args.data, Path(workdir), settings)
    print("\n".join([table(run), *(f"FAIL: {problem}" for problem in run.problems)]))
    sys.exit(1 if run.problems else 0)


if __name__ == "__main__":
    main()
