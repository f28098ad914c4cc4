"""Benchmark: linked-data page latency per page kind, embedded and remote (Virtuoso), in one table.

Run on demand (not a test; remote mode needs the Debian package virtuoso-opensource, or an engine
that already serves the snapshot):

    python -m bench.bench_pages [--data data] [--engine http://127.0.0.1:8890/sparql] [--pages 40]

Each request is a page's first view: every request names another code (so neither the rendered-page
cache nor the answer cache can answer it) and the answer cache is off; what the app keeps per snapshot
(the ontology's labels, the releases) is read by one warm-up request first, as a running server has.
The app is called in process (Flask's test client), so the figures are the page's own work: its store
queries (the round trips to the engine in remote mode) and the rendering, as wall time and as the app
process' CPU time (which other jobs on a shared machine disturb less). Without `--engine` a private
Virtuoso is started in a temporary directory and the snapshot published into it (about 90 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench.bench_endpoint import free_port  # noqa: E402
from kg.contract import INFERENCE_GRAPHS, current_snapshot, open_store  # noqa: E402

SKOS = "http://www.w3.org/2004/02/skos/core#"
ID = "https://w3id.org/medcode/id/"
#: page kind -> (code system path, `?format=` or "" for HTML)
KINDS = {
    "CPT/HCPCS code, HTML": ("cpt", ""),
    "ICD-10-CM code, HTML": ("icd10cm", ""),
    "ICD-10-CM code, Turtle": ("icd10cm", "turtle"),
    "ICD-10-CM code, JSON-LD": ("icd10cm", "jsonld"),
    "CPT/HCPCS code, Turtle": ("cpt", "turtle"),
    "condition, HTML": ("condition", ""),
}


def sample_paths(data: Path, system: str, n: int) -> list[str]:
    """`n` paths of resources under /id/{system}/, spread over the system (ICD-10-CM: every level)."""
    import pyoxigraph as ox

    store = open_store(current_snapshot(data))
    graphs = [ox.NamedNode(g) for g in INFERENCE_GRAPHS["all"]]
    rows = store.query(f"SELECT DISTINCT ?s WHERE {{ ?s a ?type FILTER(STRSTARTS(STR(?s), \"{ID}{system}/\")) "
                       f"FILTER(!CONTAINS(SUBSTR(STR(?s), {len(ID + system) + 2}), \"/\")) }}",
                       default_graph=graphs)
    iris = sorted(r[0].value for r in rows)
    step = max(1, len(iris) // n)
    return ["/id/" + i[len(ID):] for i in iris[::step][:n]]


def measure(app_config: dict, paths: dict[str, list[str]]) -> dict[str, tuple[list[float], list[float]]]:
    """Milliseconds per page kind, each page asked once, after one warm-up page: (wall, this process' CPU)."""
    from server.app import create_app

    app = create_app(app_config)
    client = app.test_client()
    client.get("/id/cpt/96521")
    client.get("/id/icd10cm/G35?format=turtle")
    out: dict[str, tuple[list[float], list[float]]] = {}
    for kind, urls in paths.items():
        times, cpu = [], []
        for url in urls:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        out[kind] = (times, cpu)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def with_engine(url: str | None, data: Path, run: Callable[[str], dict]) -> dict:
    """`run(engine_url)` against `url`, or against a private Virtuoso holding the snapshot."""
    if url:
        return run(url)
    from virtuoso import Virtuoso, available

    from kg.publish import publish

    if not available():
        raise SystemExit("virtuoso-opensource is not installed; give --engine URL of an engine serving the snapshot")
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as work, \
            Virtuoso(Path(work), free_port(), free_port()) as engine:
        publish(current_snapshot(data), engine.url, user=engine.user, password=engine.password, echo=lambda _l: None)
        return run(engine.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--engine", help="SPARQL URL of an engine already serving the snapshot (else a private one)")
    parser.add_argument("--pages", type=int, default=40, help="pages per kind (each a different resource)")
    parser.add_argument("--no-remote", action="store_true", help="embedded only")
    args = parser.parse_args()
    sampled = {system: sample_paths(args.data, system, args.pages) for system in {s for s, _ in KINDS.values()}}
    paths = {kind: [p + (f"?format={fmt}" if fmt else "") for p in sampled[system]]
             for kind, (system, fmt) in KINDS.items()}
    base = {"MEDCODE_DATA": str(args.data), "ANSWER_CACHE_BYTES": 0}
    results = {"embedded": measure(base, paths)}
    if not args.no_remote:
        results["remote"] = with_engine(args.engine, args.data,
                                        lambda url: measure({**base, "MEDCODE_STORE": f"sparql+{url}"}, paths))
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"\nload average {load}; {args.pages} different pages per kind, answer cache off\n")
    stores = list(results)
    print("| page | " + " | ".join(f"{s} p50 / p99 ms | {s} app CPU p50 ms" for s in stores)
          + (" | remote ÷ embedded (p50) |" if len(stores) > 1 else " |"))
    print("|---|" + "---|---|" * len(stores) + ("---|" if len(stores) > 1 else ""))
    for kind in KINDS:
        cells = [f"{percentile(results[s][kind][0], 0.5):.0f} / {percentile(results[s][kind][0], 0.99):.0f} | "
                 f"{statistics.median(results[s][kind][1]):.0f}" for s in stores]
        ratio = ""
        if len(stores) > 1:
            remote, embedded = (statistics.median(results[s][kind][0]) for s in ("remote", "embedded"))
            ratio = f" {remote / embedded:.1f}x |"
        print(f"| {kind} | " + " | ".join(cells) + " |" + ratio)

if __name__ == "__main__":
    main()
