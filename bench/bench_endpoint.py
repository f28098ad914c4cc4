"""Benchmark: medcode's endpoint against every peer on the same snapshot, in one table from one run.

Run on demand (not a test; needs `pip install -e '.[bench]'` and wrk, `apt-get install wrk`):

    python bench/bench_endpoint.py [--data DIR] [--duration 5] [--rounds 3] [--concurrency 8] [--workers 2]

Peers, all on 127.0.0.1 and serving the same snapshot:

* medcode: `medcode serve`, every protection on (guard, time limit, body and result limits, strict
  negotiation, security headers), once as configured (its answer cache on) and once with
  MEDCODE_ANSWER_CACHE=0;
* bare: Flask + pyoxigraph with no protections (bench/bare_app.py), under gunicorn with medcode's own
  worker settings (server.wsgi.WORKER_OPTIONS);
* Oxigraph's own server (the `oxigraph` CLI, `serve-read-only`): the ceiling. It cannot be told which graphs
  make the default graph, and the snapshot's store also holds the dated, derivation and meta graphs, so it
  serves a store of its own, loaded (`oxigraph load`) with the default graph medcode queries (asserted +
  inferred) as its default graph;
* rdflib-endpoint under uvicorn with as many workers, on the same triples as N-Triples.

Each server is measured alone: before every measurement the benchmark waits until no server uses
CPU (rdflib-endpoint keeps working off queued requests after wrk stops). wrk keeps `concurrency`
keep-alive connections busy for `duration` seconds per query, `rounds` times, the servers taking
turns, after a 2-second warm-up which also fills medcode's answer cache; a cell shows the median
round, the range of the rounds and the server's CPU time per answered request, the figure other work
on a shared machine distorts least. A peer's rows are counted first, so that every peer answers the same.
"Ready" is the time from a medcode worker's start to its first answer on /sparql and on /search.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from kg.contract import INFERENCE_GRAPHS, current_snapshot, default_data_dir, open_store  # noqa: E402
from server.wsgi import WORKER_OPTIONS  # noqa: E402

PREFIX = ("PREFIX mc: <https://w3id.org/medcode/ontology#> PREFIX skos: <http://www.w3.org/2004/02/skos/core#> "
          "PREFIX icd10cm: <https://w3id.org/medcode/id/icd10cm/> ")
QUERIES = {
    "lookup": PREFIX + 'SELECT ?c ?label WHERE { ?c skos:notation "96522" ; skos:prefLabel ?label }',
    "exclusion": PREFIX + ('SELECT ?o ?n WHERE { ?c skos:notation "95990" ; mc:notReportedWith ?o . '
                           "?o skos:notation ?n }"),
    "crosswalk": PREFIX + ("SELECT ?code ?icd ?label WHERE { ?c skos:notation ?code ; "
                           "mc:indication/mc:condition ?cond . "
                           "?cond skos:closeMatch ?i . ?i skos:notation ?icd ; skos:prefLabel ?label . "
                           "?c a mc:CPTCode }"),
    # what queries/icd-billable-descendants.rq asks; `skos:broader+` in its place takes Oxigraph 0.5
    # over a minute (it starts from the 74,000 billable codes), so the materialised closure is used
    "hierarchy": PREFIX + ("SELECT ?d ?n ?label WHERE { ?d skos:broaderTransitive icd10cm:G35 ; "
                           "mc:billable true ; skos:notation ?n . OPTIONAL { ?d skos:prefLabel ?label } } "
                           "ORDER BY ?n"),
}
ACCEPT = "application/sparql-results+json"
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Peer:
    """One server under test: how to start it and where its endpoint is."""

    name: str
    command: list[str]
    path: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None
    ready_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, cwd=ROOT, env={**os.environ, **self.env},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def rdflib_endpoint_app():
    """uvicorn's factory for the rdflib-endpoint peer: what `rdflib-endpoint serve FILE` builds."""
    from rdflib import Dataset
    from rdflib_endpoint import SparqlEndpoint

    graph = Dataset(default_union=True)
    graph.parse(os.environ["MEDCODE_BENCH_TRIPLES"], format="nt")
    return SparqlEndpoint(graph=graph)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 60, accept: str = ACCEPT) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def query_url(peer: Peer, query: str) -> str:
    return peer.url + "?query=" + urllib.parse.quote(query)


def wait_until_up(peer: Peer, timeout: float = 1800) -> None:
    started, deadline = time.perf_counter(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.process is not None and peer.process.poll() is not None:
            raise RuntimeError(f"{peer.name} exited with {peer.process.returncode}")
        try:
            if get(query_url(peer, "ASK {}"), timeout=5)[0] == 200:
                peer.ready_s = time.perf_counter() - started
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{peer.name} did not come up on {peer.port}")


def cpu_ticks(session: int) -> int:
    """CPU time (clock ticks) used so far by every process in a session."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        if int(fields[3]) == session:  # fields[3] is the session id
            total += int(fields[11]) + int(fields[12])
    return total


def wait_until_idle(peers: list[Peer], timeout: float = 600) -> float:
    """Wait until no peer uses more than 5 % of a core over half a second; return the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = [cpu_ticks(p.process.pid) for p in peers]
        time.sleep(0.5)
        used = [(cpu_ticks(p.process.pid) - b) / TICK for p, b in zip(peers, before, strict=True)]
        if max(used) <= 0.025:
            return time.monotonic() - start
    return time.monotonic() - start


def _ms(text: str) -> float:
    value = float(text.rstrip("umsn"))
    if text.endswith("us"):
        return value / 1000
    return value if text.endswith("ms") else value * 1000


def load(url: str, duration: float, concurrency: int) -> dict:
    """wrk on one URL: req/s, p50 and p99 ms, and failed requests (non-2xx, timeouts, socket errors)."""
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "30s", "--latency",
                          "-H", f"Accept: {ACCEPT}", url], capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    errors = sum(int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line)
    for line in out.splitlines():
        if "Socket errors" in line:
            errors += sum(int(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
    return {"rps": float(lines["Requests/sec:"][1]), "p50": _ms(lines["50%"][1]), "p99": _ms(lines["99%"][1]),
            "errors": errors}


def rows(peer: Peer, query: str) -> int | str:
    """The number of rows a peer answers (or its status when it fails)."""
    status, body = get(query_url(peer, query), timeout=300)
    return len(json.loads(body)["results"]["bindings"]) if status == 200 else f"HTTP {status}"


def in_process_ms(store: ox.Store, query: str, runs: int = 30) -> float:
    """The query alone: pyoxigraph in this process, results iterated, median ms."""
    graphs = [ox.NamedNode(iri) for iri in INFERENCE_GRAPHS["all"]]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        list(store.query(query, default_graph=graphs))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def peers(data: Path, store_dir: Path, triples: Path, workers: int) -> list[Peer]:
    """Every server of the table, each on a port of its own (the Oxigraph server's store loaded from `triples`)."""
    bin_dir = Path(sys.executable).parent
    own_store = triples.with_suffix(".oxigraph")
    subprocess.run([str(bin_dir / "oxigraph"), "load", "--location", str(own_store), "--file", str(triples)],
                   check=True, stdout=subprocess.DEVNULL)
    medcode, uncached, bare, oxigraph, rdflib = (free_port() for _ in range(5))
    serve = [str(bin_dir / "medcode"), "serve", "--data", str(data), "--workers", str(workers), "--port"]
    gunicorn = [str(bin_dir / "gunicorn"), "-w", str(workers), "-k", WORKER_OPTIONS["worker_class"],
                "--threads", str(WORKER_OPTIONS["threads"]), "--keep-alive", str(WORKER_OPTIONS["keepalive"]),
                "--no-control-socket", "-b", f"127.0.0.1:{bare}", "bench.bare_app:app"]
    uvicorn = [str(bin_dir / "uvicorn"), "bench.bench_endpoint:rdflib_endpoint_app", "--factory",
               "--workers", str(workers), "--no-access-log", "--log-level", "warning",
               "--timeout-worker-healthcheck", "1800",  # loading the triples blocks a worker for minutes
               "--host", "127.0.0.1", "--port", str(rdflib)]
    return [
        Peer("medcode", [*serve, str(medcode)], "/sparql", port=medcode),
        Peer("medcode, no answer cache", [*serve, str(uncached)], "/sparql", {"MEDCODE_ANSWER_CACHE": "0"},
             port=uncached),
        Peer("bare Flask+pyoxigraph", gunicorn, "/sparql", {"MEDCODE_BENCH_STORE": str(store_dir)}, port=bare),
        Peer("Oxigraph server", [str(bin_dir / "oxigraph"), "serve-read-only", "--location", str(own_store),
                                 "--bind", f"127.0.0.1:{oxigraph}"], "/query", port=oxigraph),
        Peer("rdflib-endpoint", uvicorn, "/", {"MEDCODE_BENCH_TRIPLES": str(triples)}, port=rdflib),
    ]


def workers(arbiter: int) -> list[int]:
    """gunicorn's workers: the arbiter's children that are forks of it (not, say, a resource tracker)."""
    found, command = [], Path(f"/proc/{arbiter}/cmdline").read_bytes()
    for entry in os.listdir("/proc"):
        try:
            raw = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
            if raw and int(raw[raw.rindex(")") + 2:].split()[1]) == arbiter and (
                    Path(f"/proc/{entry}/cmdline").read_bytes() == command):
                found.append(int(entry))
        except OSError:
            continue
    return found


def listening(port: int) -> bool:
    """Whether something listens on the port (read from /proc: connecting would occupy a worker)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows)


def first_answers(server: Peer, known: set[int]) -> tuple[int, float, float]:
    """(worker pid, s to its first /sparql answer, s to its first /search answer), from the worker's start.

    gunicorn's arbiter listens before it forks its workers; children seen earlier are other forks.
    """
    while not listening(server.port):
        time.sleep(0.002)
    while not (new := [pid for pid in workers(server.process.pid) if pid not in known]):
        time.sleep(0.002)
    worker = new[0]
    stat = Path(f"/proc/{worker}/stat").read_text()
    started = int(stat[stat.rindex(")") + 2:].split()[19]) / TICK  # since boot, like CLOCK_BOOTTIME
    answered = []
    for url in (query_url(server, "ASK {}"), f"http://127.0.0.1:{server.port}/search?q=G35&format=json"):
        while True:
            try:
                if get(url, timeout=30, accept="application/json")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.002)
        answered.append(time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    return worker, answered[0], answered[1]


def readiness(data: Path) -> list[tuple[str, float, float]]:
    """A one-worker medcode: its first worker, then the one the arbiter starts when that one stops."""
    port = free_port()
    server = Peer("medcode", [str(Path(sys.executable).parent / "medcode"), "serve", "--data", str(data),
                              "--workers", "1", "--port", str(port)], "/sparql", port=port)
    server.start()
    try:
        worker, sparql, search = first_answers(server, set())
        os.kill(worker, signal.SIGTERM)
        _, again_sparql, again_search = first_answers(server, {worker})
    finally:
        server.stop()
    return [("first worker", sparql, search), ("replacement worker", again_sparql, again_search)]


def measured(server: Peer, url: str, duration: float, concurrency: int) -> dict:
    """One wrk run, plus the CPU the server used for it per answered request (µs): unlike req/s, that
    figure hardly moves when other work shares the cores."""
    before = cpu_ticks(server.process.pid)
    result = load(url, duration, concurrency)
    used = (cpu_ticks(server.process.pid) - before) / TICK
    result["cpu_us"] = 1e6 * used / (result["rps"] * duration) if result["rps"] else float("nan")
    return result


def measure(servers: list[Peer], duration: float, concurrency: int, rounds: int
            ) -> tuple[dict[tuple[str, str], dict], float]:
    """wrk on every (query, server) `rounds` times, each server alone (the others idle, the previous
    one done), servers taking turns so that a burst of other work hits one round, not one server; per
    cell the round with the median req/s. Also returns the seconds spent waiting for idle servers."""
    runs: dict[tuple[str, str], list[dict]] = {}
    waited = 0.0
    for name, query in QUERIES.items():
        for server in servers:
            waited += wait_until_idle(servers)
            load(query_url(server, query), 2, concurrency)  # warm-up (fills medcode's answer cache)
        for _ in range(rounds):
            for server in servers:
                waited += wait_until_idle(servers)
                runs.setdefault((name, server.name), []).append(
                    measured(server, query_url(server, query), duration, concurrency))
    return {key: median_round(found) for key, found in runs.items()}, waited


def median_round(found: list[dict]) -> dict:
    """The round with the median req/s, with every round's errors and the slowest and fastest rate."""
    rates = sorted(r["rps"] for r in found)
    median = sorted(found, key=lambda r: r["rps"])[len(found) // 2]
    return {**median, "errors": sum(r["errors"] for r in found), "spread": (rates[0], rates[-1])}


def cell(result: dict) -> str:
    if not result["rps"]:
        return "none answered in the run"
    low, high = result["spread"]
    rates = "–".join(f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}" for rate in (low, high))
    return f"{result['rps']:,.0f} [{rates}] ({result['p50']:.1f}/{result['p99']:.1f} ms, {result['cpu_us']:,.0f} µs)"


def ratio(a: dict, b: dict, key: str = "rps") -> str:
    return f"{a[key] / b[key]:.2f}x" if b[key] else "-"


def print_table(servers: list[Peer], results: dict, counts: dict, floors: dict) -> None:
    names = [s.name for s in servers]
    print("| query | rows | medcode ÷ bare | medcode ÷ rdflib-endpoint | Oxigraph ÷ medcode | "
          "medcode, no cache ÷ bare | CPU per request, bare ÷ medcode | "
          + " | ".join(f"{n} req/s [range] (p50/p99, CPU per request)" for n in names)
          + " | query alone in-process ms | errors |")
    print("|" + "---|" * (9 + len(names)))
    for query in QUERIES:
        r = {n: results[query, n] for n in names}
        ours, bare = r["medcode"], r["bare Flask+pyoxigraph"]
        errors = "/".join(str(r[n]["errors"]) for n in names)
        print(f"| {query} | {counts[query]} | {ratio(ours, bare)} | {ratio(ours, r['rdflib-endpoint'])} | "
              f"{ratio(r['Oxigraph server'], ours)} | {ratio(r['medcode, no answer cache'], bare)} | "
              f"{ratio(bare, ours, 'cpu_us')} | " + " | ".join(cell(r[n]) for n in names)
              + f" | {floors[query]:.3f} | {errors} |")


def row_counts(servers: list[Peer]) -> dict[str, str]:
    """Rows per query; every peer must answer the same, or the table says who differs."""
    counts = {}
    for query, text in QUERIES.items():
        per_peer = {server.name: rows(server, text) for server in servers}
        values = set(per_peer.values())
        counts[query] = str(values.pop()) if len(values) == 1 else ", ".join(f"{k}: {v}" for k, v in per_peer.items())
    return counts


def export_triples(store: ox.Store, target: Path) -> None:
    """The default graph medcode queries (asserted + inferred), for the Oxigraph server and rdflib-endpoint."""
    graphs = [ox.NamedNode(iri) for iri in INFERENCE_GRAPHS["all"]]
    ox.serialize(store.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", default_graph=graphs), str(target),
                 format=ox.RdfFormat.N_TRIPLES)


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("pyoxigraph", "oxigraph", "rdflib", "rdflib-endpoint",
                                                           "gunicorn", "flask", "uvicorn"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    snapshot = current_snapshot(args.data)
    if snapshot is None:
        sys.exit(f"no snapshot in {args.data}; run `medcode build` first")
    store = open_store(snapshot)
    floors = {name: in_process_ms(store, query) for name, query in QUERIES.items()}
    ready = readiness(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="medcode-bench-"))
    export_triples(store, tmp / "union.nt")
    servers = peers(args.data, snapshot / "store", tmp / "union.nt", args.workers)
    load_before = os.getloadavg()
    try:
        for server in servers:
            server.start()
        for server in servers:
            wait_until_up(server)
        counts = row_counts(servers)
        results, waited = measure(servers, args.duration, args.concurrency, args.rounds)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"snapshot {snapshot.name}; wrk, {args.concurrency} keep-alive connections, {args.rounds} rounds of "
          f"{args.duration:g} s per query and server after a 2 s warm-up (the median round, [slowest–fastest]);"
          f" {args.workers} workers each ({WORKER_OPTIONS['worker_class']}, "
          f"{WORKER_OPTIONS['threads']} threads, for medcode and the bare app); {os.cpu_count()} cores; "
          f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"{waited:.0f} s spent waiting for idle servers; {versions()}")
    print("up after: " + ", ".join(f"{s.name} {s.ready_s:.1f} s" for s in servers))
    print("ready (worker start -> first answer): " + "; ".join(
        f"{what}: /sparql {sparql:.2f} s, /search {search:.2f} s" for what, sparql, search in ready))
    print_table(servers, results, counts, floors)


if __name__ == "__main__":
    main()
