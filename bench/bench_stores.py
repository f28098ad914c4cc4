"""Benchmark: the embedded store vs Virtuoso behind the same app, at the real size and with a synthetic
NCCI-scale edit table (bench/ncci_synthetic.py), all in one run.

Run on demand (not a test; needs the Debian package virtuoso-opensource):

    python -m bench.bench_stores [--data data] [--pairs 2000000] [--codes 15000] [--repeat 40]

For each dataset and store it prints the load time (embedded: Oxigraph bulk load of the snapshot's
N-Quads; Virtuoso: `medcode publish` over HTTP, staging graphs, count check and swap), the memory
(embedded: peak RSS of the process that opened the store and ran the queries; Virtuoso: the app
process plus the virtuoso-t server), and p50/p99 latency of four queries put through the app's store
interface (`store.query`, JSON answers, the same path every page and API call takes): a code lookup,
the exclusions of 95990, the indication crosswalk, and the claim check "all edits among these 10 codes".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyoxigraph as ox

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from virtuoso import Virtuoso, available  # noqa: E402

from bench.bench_endpoint import QUERIES, free_port  # noqa: E402
from bench.ncci_synthetic import add_scale_options, iri, measure_in_child, synthetic_data  # noqa: E402
from kg.contract import current_snapshot, read_meta  # noqa: E402
from kg.publish import PublishError, publish  # noqa: E402

REAL_CLAIM = ["95990", "95991", "62367", "62368", "62369", "62370", "62362", "62350", "96522", "96521"]


def claim_query(code_iris: list[str]) -> str:
    values = " ".join(f"<{iri}>" for iri in code_iris)
    return ("PREFIX mc: <https://w3id.org/medcode/ontology#> PREFIX skos: <http://www.w3.org/2004/02/skos/core#> "
            f"SELECT ?edit ?n1 ?n2 WHERE {{ VALUES ?c1 {{ {values} }} VALUES ?c2 {{ {values} }} "
            "?edit mc:column1 ?c1 ; mc:column2 ?c2 . ?c1 skos:notation ?n1 . ?c2 skos:notation ?n2 }")


def queries(synthetic: bool) -> dict[str, str]:
    chosen = dict(QUERIES)
    chosen.pop("text", None)
    iris = [f"https://w3id.org/medcode/id/cpt/{c}" for c in REAL_CLAIM]
    if synthetic:  # the heaviest column-1 codes of the Zipf skew plus a few ordinary ones
        iris = [iri(i) for i in (0, 1, 2, 3, 4, 100, 1000, 5000, 9000, 14000)]
    chosen["claim (10 codes)"] = claim_query(iris)
    return chosen


def _measure(store_setting: str, data_dir: str, synthetic: bool, repeat: int, out: mp.Queue) -> None:
    """In a child process: open the app's store, run each query `repeat` times, report latencies and RSS."""
    from kg.contract import INFERENCE_GRAPHS
    from server import create_app

    app = create_app({"MEDCODE_STORE": store_setting, "MEDCODE_DATA": data_dir, "QUERY_WORKERS": 1})
    store = app.extensions["medcode.store"]
    results = {}
    with app.app_context():
        for name, text in queries(synthetic).items():
            timings, rows = [], 0
            for i in range(repeat + 2):
                started = time.perf_counter()
                payload = store.query(text, fmt="json", limit=1_000_000, timeout=120,
                                      default_graph=INFERENCE_GRAPHS["all"], named_graphs=INFERENCE_GRAPHS["all"])
                if i >= 2:  # two warm-up runs
                    timings.append(time.perf_counter() - started)
                rows = len(json.loads(payload)["results"]["bindings"])
            timings.sort()
            results[name] = (statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))],
                             rows)
    if hasattr(store, "close"):
        store.close()
    out.put((results, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def measure(store_setting: str, data_dir: Path, synthetic: bool, repeat: int) -> tuple[dict, int]:
    return measure_in_child(_measure, store_setting, data_dir, synthetic, repeat)


def embedded_load_seconds(snapshot: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        store = ox.Store(tmp)
        store.bulk_load(path=str(snapshot / "medcode.nq"), format=ox.RdfFormat.N_QUADS)
        store.flush()
        elapsed = time.perf_counter() - started
        del store
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scale_options(parser, repeat=40)
    parser.add_argument("--work", type=Path, default=None, help="Where to write the synthetic snapshot.")
    args = parser.parse_args()
    if not available():
        sys.exit("virtuoso-opensource is not installed (apt-get install virtuoso-opensource)")
    real = current_snapshot(args.data)
    if real is None:
        sys.exit(f"no snapshot in {args.data}; run `medcode build` first")
    work = args.work or Path(tempfile.mkdtemp(prefix="medcode-bench-"))
    datasets = [] if args.skip_real else [("real graph", args.data, False)]
    if args.pairs:
        datasets.append((f"+{args.pairs / 1e6:g}M NCCI pairs", synthetic_data(real, work, args.pairs, args.codes),
                         True))
    rows = []
    for label, data_dir, synthetic in datasets:
        snapshot = current_snapshot(data_dir)
        triples = sum(read_meta(snapshot)["triples"].values())
        load = embedded_load_seconds(snapshot)
        latencies, rss = measure("embedded", data_dir, synthetic, args.repeat)
        rows.append((label, triples, "embedded", load, rss // 1024, latencies))
        print(f"{label}: embedded done", flush=True)
        engine = Virtuoso(work / f"virtuoso-{len(rows)}", free_port(), free_port(), memory_mb=args.virtuoso_memory_mb)
        with engine:
            started = time.perf_counter()
            try:
                publish(snapshot, engine.url, user=engine.user, password=engine.password,
                        echo=lambda line: print("   ", line, flush=True) if not line.startswith("  ") else None)
            except PublishError as exc:
                print(f"{label}: virtuoso publish failed after {time.perf_counter() - started:.0f} s: {exc}")
                continue
            load = time.perf_counter() - started
            latencies, rss = measure(f"sparql+{engine.url}", data_dir, synthetic, args.repeat)
            rows.append((label, triples, "virtuoso", load, rss // 1024 + engine.memory_kib() // 1024, latencies))
        print(f"{label}: virtuoso done", flush=True)
    if not rows:
        return
    names = list(rows[0][5])
    print()
    print("| data | triples | store | load s | memory MiB | " + " | ".join(f"{n} p50 / p99 ms" for n in names) + " |")
    print("|---|---|---|---|---|" + "---|" * len(names))
    by_key = {(r[0], r[2]): r for r in rows}
    for label, triples, store, load, mem, lat in rows:
        cells = []
        for n in names:
            p50, p99, _ = lat[n]
            cell = f"{p50 * 1000:.1f} / {p99 * 1000:.1f}"
            if store == "virtuoso" and (label, "embedded") in by_key:
                base = by_key[(label, "embedded")][5][n][0]
                cell += f" ({p50 / base:.1f}×)"
            cells.append(cell)
        print(f"| {label} | {triples:,} | {store} | {load:.0f} | {mem:,} | " + " | ".join(cells) + " |")
    print("\n(×: Virtuoso's p50 relative to the embedded store's on the same data, same run)")


if __name__ == "__main__":
    main()
