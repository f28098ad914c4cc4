"""Benchmark: medcode's endpoint vs rdflib-endpoint on the same snapshot, plus the raw pyoxigraph floor.

Run on demand (not a test):  python bench/bench_endpoint.py [--data DIR] [--duration 10] [--concurrency 8]

Both servers run as separate processes on 127.0.0.1; a load generator (wrk if installed:
`apt-get install wrk`, else Python threads, which cap the measurable rate) keeps
`concurrency` keep-alive connections busy for `duration` seconds per query and reports req/s, p50
and p99. rdflib-endpoint serves the same triples (the snapshot's default graph = asserted +
inferred, exported as N-Triples).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pyoxigraph as ox

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kg.contract import current_snapshot, default_data_dir, open_store  # noqa: E402

PREFIX = "PREFIX mc: <https://w3id.org/medcode/ontology#> PREFIX skos: <http://www.w3.org/2004/02/skos/core#> "
QUERIES = {
    "lookup": PREFIX + 'SELECT ?c ?label WHERE { ?c skos:notation "96522" ; skos:prefLabel ?label }',
    "exclusion": PREFIX + ('SELECT ?o ?n WHERE { ?c skos:notation "95990" ; mc:notReportedWith ?o . '
                           "?o skos:notation ?n }"),
    "crosswalk": PREFIX + ("SELECT ?code ?icd ?label WHERE { ?c skos:notation ?code ; "
                           "mc:indication/mc:condition ?cond . "
                           "?cond skos:closeMatch ?i . ?i skos:notation ?icd ; skos:prefLabel ?label . "
                           "?c a mc:CPTCode }"),
    "text": PREFIX + ('SELECT ?c ?label WHERE { ?c a mc:PumpFamilyCode ; skos:prefLabel ?label . '
                      'FILTER(CONTAINS(LCASE(?label), "pump")) }'),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, path: str, timeout: float = 1800) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path + "?query=" + urllib.parse.quote("ASK {}"),
                         headers={"Accept": "application/sparql-results+json"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on {port} did not come up")


def _ms(text: str) -> float:
    value = float(text.rstrip("umsn"))
    if text.endswith("us"):
        return value / 1000
    return value if text.endswith("ms") else value * 1000


def load_wrk(port: int, path: str, query: str, duration: float, concurrency: int) -> dict:
    """Drive the server with wrk (a C load generator), so the client is not the bottleneck."""
    url = f"http://127.0.0.1:{port}{path}?query=" + urllib.parse.quote(query)
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{duration:g}s", "--latency",
                          "-H", "Accept: application/sparql-results+json", url],
                         capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    errors = sum(int(x) for line in out.splitlines() if "Non-2xx" in line for x in line.split()[-1:])
    return {"rps": float(lines["Requests/sec:"][1]), "p50": _ms(lines["50%"][1]), "p99": _ms(lines["99%"][1]),
            "errors": errors}


def load(port: int, path: str, query: str, duration: float, concurrency: int) -> dict:
    if shutil.which("wrk"):
        return load_wrk(port, path, query, duration, concurrency)
    target = path + "?query=" + urllib.parse.quote(query)
    latencies: list[float] = []
    errors = [0]
    stop = time.perf_counter() + duration
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.perf_counter() < stop:
            start = time.perf_counter()
            try:
                conn.request("GET", target, headers={"Accept": "application/sparql-results+json"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    n = len(latencies)
    return {"rps": n / duration, "p50": 1000 * statistics.median(latencies) if n else float("nan"),
            "p99": 1000 * latencies[int(n * 0.99) - 1] if n else float("nan"), "errors": errors[0]}


def floor_ms(store: ox.Store, query: str, runs: int = 50) -> float:
    graphs = [ox.NamedNode(f"https://w3id.org/medcode/graph/{name}") for name in ("asserted", "inferred")]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        list(store.query(query, default_graph=graphs))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    snapshot = current_snapshot(args.data)
    if snapshot is None:
        sys.exit(f"no snapshot in {args.data}; run `medcode build` first")
    store = open_store(snapshot)
    floors = {name: floor_ms(store, q) for name, q in QUERIES.items()}

    tmp = Path(tempfile.mkdtemp(prefix="medcode-bench-"))
    union = tmp / "union.nt"
    ox.serialize(store.query("CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }"), str(union),
                 format=ox.RdfFormat.N_TRIPLES)
    ours_port, peer_port, bare_port = free_port(), free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    ours = subprocess.Popen([str(bin_dir / "medcode"), "serve", "--data", str(args.data), "--port", str(ours_port),
                             "--workers", str(args.workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    bare = subprocess.Popen([str(bin_dir / "gunicorn"), "-w", str(args.workers), "-b", f"127.0.0.1:{bare_port}",
                             "bench.bare_app:app"], cwd=str(Path(__file__).resolve().parent.parent),
                            env={**os.environ, "MEDCODE_BENCH_STORE": str(snapshot / "store")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    started = time.perf_counter()
    peer = subprocess.Popen([str(bin_dir / "rdflib-endpoint"), "serve", str(union), "--host", "127.0.0.1",
                             "--port", str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until_up(ours_port, "/sparql")
        ours_ready = time.perf_counter() - started
        wait_until_up(bare_port, "/sparql")
        wait_until_up(peer_port, "/")
        peer_ready = time.perf_counter() - started
        time.sleep(10)  # medcode's workers warm their search index in the background after start
        rows = []
        for name, query in QUERIES.items():
            for port, path in ((ours_port, "/sparql"), (peer_port, "/"), (bare_port, "/sparql")):
                load(port, path, query, 2, args.concurrency)  # warm-up, not measured
            a = load(ours_port, "/sparql", query, args.duration, args.concurrency)
            b = load(peer_port, "/", query, args.duration, args.concurrency)
            c = load(bare_port, "/sparql", query, args.duration, args.concurrency)
            rows.append((name, a, b, c, floors[name]))
    finally:
        for proc in (ours, peer, bare):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    client = "wrk" if shutil.which("wrk") else "python threads"
    print(f"client {client}; snapshot {snapshot.name}; concurrency {args.concurrency}, "
          f"{args.duration:g} s per query and server; "
          f"medcode {args.workers} gunicorn workers; ready after {ours_ready:.1f} s (medcode) vs "
          f"{peer_ready:.1f} s (rdflib-endpoint, loading the same triples)")
    print("| query | medcode req/s | p50 ms | p99 ms | rdflib-endpoint req/s | p50 ms | p99 ms "
          "| medcode ÷ rdflib-endpoint | bare Flask+pyoxigraph req/s | bare ÷ medcode | pyoxigraph in-process ms "
          "| errors (ours/peer/bare) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, a, b, c, floor in rows:
        ratio = a["rps"] / b["rps"] if b["rps"] else float("inf")
        bare_ratio = c["rps"] / a["rps"] if a["rps"] else float("inf")
        print(f"| {name} | {a['rps']:,.0f} | {a['p50']:.2f} | {a['p99']:.2f} | {b['rps']:,.0f} | {b['p50']:.2f} | "
              f"{b['p99']:.2f} | {ratio:.1f}x | {c['rps']:,.0f} | {bare_ratio:.2f}x | {floor:.3f} | "
              f"{a['errors']}/{b['errors']}/{c['errors']} |")


if __name__ == "__main__":
    main()
