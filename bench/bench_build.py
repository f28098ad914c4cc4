"""Benchmark: the full build (family + all of ICD-10-CM) step by step, with its peers, in one table.

Run on demand:  python bench/bench_build.py [--builds 3] [--owlrl-cap 240] [--no-peers] [--releases DIR | --no-releases]

Every row runs in a process of its own (so memory does not carry over), one after the other:
  * `medcode build` into a temporary data directory, as `medcode build --no-releases` and as `medcode build`
    (the earlier ICD-10-CM releases from --releases DIR, default: the build's own cache, fetched into it as
    the build does), the two kinds taking turns: each step (wall, the process's CPU with the store's loader
    threads, and the build thread's own CPU: a step whose wall exceeds its own CPU waited for the loaders or
    for a core), then the whole build and its process (imports included), the fastest of --builds N (on a
    shared machine the others are slowed by whatever else runs), with the median and the load average
    around them; and what the earlier releases add against the budget (10 s per extra release);
  * the reasoning alone, as the build does it (the engine over the curated core, ICD-10-CM closed
    directly) and as it was done before (`reasonable` over everything), and `owlrl` (the reference
    semantics, pure Python, stopped at --owlrl-cap seconds) over the curated family;
  * lower bounds for writing the snapshot, on the dump the build wrote: parsing it (pyoxigraph), and
    Oxigraph's bulk load of it into memory and onto disk.
Wall seconds are the ones to compare on a quiet machine; CPU seconds (all threads) say what a shared
one hides. The load average before and after is printed under the table: quote ratios from quiet runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Row = tuple[str, str, float, float, float, float]  # (run, step, wall s, CPU s, own-thread CPU s, peak RSS MB)
NAN = float("nan")


def _build(data: str, releases: str | None = None) -> dict[str, Any]:
    from kg import build

    return build(Path(data), echo=lambda _line: None, releases=Path(releases) if releases else None,
                 fetch_releases=releases is not None).meta


def _inputs() -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The build's input: the curated family (ontology and records), what ICD-10-CM says of the items the records
    name (the engine reasons over both), and the rest of ICD-10-CM (closed directly)."""
    from kg import icd10cm
    from kg.curated import build_curated
    from kg.namespaces import SOURCES_DIR
    from kg.ontology import load_ontology
    from kg.pipeline import split_icd10cm

    curation = build_curated(SOURCES_DIR)
    curated = list(dict.fromkeys([*load_ontology(), *curation.graph]))
    known = set(curated)
    named, rest = split_icd10cm(curation, [t for t in dict.fromkeys(icd10cm.icd_triples()) if t not in known])
    return curated, named, rest


def _reason(how: str) -> dict[str, Any]:
    """Reason over the build's input (only the reasoning is timed): `partitioned` as the build does, `whole` with
    the engine over everything, `owlrl` over the curated family alone."""
    import gc

    from kg.reasoning import infer, infer_partitioned

    curated, named, rest = _inputs()
    gc.disable()  # as the build does
    start, cpu = time.perf_counter(), time.process_time()
    if how == "partitioned":
        inferred = infer_partitioned([*curated, *named], rest)
    elif how == "whole":
        inferred = infer([*curated, *named, *rest])
    else:
        inferred = infer(curated, "owlrl")
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "triples": len(inferred)}


def _oxigraph(how: str, dump: str) -> dict[str, Any]:
    import pyoxigraph as ox

    start, cpu = time.perf_counter(), time.process_time()
    if how == "parse":
        count = sum(1 for _ in ox.parse(path=dump, format=ox.RdfFormat.N_QUADS))
    else:
        target = tempfile.mkdtemp(prefix="bench-store-") if how == "disk" else None
        store = ox.Store(target)
        store.bulk_load(path=dump, format=ox.RdfFormat.N_QUADS)
        store.flush()
        count = len(store)
        del store
        if target:
            shutil.rmtree(target)
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "triples": count}


def _child(fn: Callable[..., dict[str, Any]], args: tuple, out) -> None:
    result = fn(*args)
    result["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.setdefault("cpu", time.process_time())
    out.send(result)


def measure(fn: Callable[..., dict[str, Any]], *args: object, cap: float = 3600) -> dict[str, Any] | None:
    """Run fn(*args) in a process of its own; its result with its wall time and peak RSS, or None past `cap`."""
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_child, args=(fn, args, child))
    start = time.perf_counter()
    proc.start()
    if not parent.poll(cap):
        proc.kill()
        proc.join()
        return None
    result = parent.recv()
    proc.join()
    result.setdefault("wall", time.perf_counter() - start)
    return result


def build_rows(data: Path, builds: int, releases: str | None = None) -> list[Row]:
    """The build's steps (as the build reports them) and the whole build: the fastest of `builds`, with the median
    and the load average; with `releases`, the same with the earlier ICD-10-CM releases (the two kinds take turns)
    and what they add."""
    kinds = [None, releases] if releases else [None]
    runs: dict[str | None, list[tuple[float, dict[str, Any], float]]] = {kind: [] for kind in kinds}
    for _ in range(builds):
        for kind in kinds:
            started = time.perf_counter()
            result = measure(_build, str(data), kind)
            runs[kind].append((time.perf_counter() - started, result, os.getloadavg()[0]))
    rows: list[Row] = []
    fastest = {kind: min(found, key=lambda run: run[0]) for kind, found in runs.items()}
    for kind, (wall, result, _) in fastest.items():
        found = runs[kind]
        name = "medcode build --no-releases" if kind is None else \
            f"medcode build ({', '.join(result['icd10cm_releases'])})"
        loads = ", ".join(f"{load:.1f}" for *_, load in found)
        rows += [(name, step, s, result["cpu_s"][step], result["own_cpu_s"][step], NAN)
                 for step, s in result["timings_s"].items()]
        counts = " + ".join(f"{n:,}" for n in result["triples"].values())
        rows.append((f"{name} ({counts} triples)", "the build", result["build_s"], NAN, NAN, NAN))
        rows.append((name, f"its process, imports included: fastest of {len(found)} (load {loads} after each)",
                     wall, result["cpu"], NAN, result["rss"]))
        if len(found) > 1:
            rows.append((name, "its process: median", statistics.median(run[0] for run in found),
                         statistics.median(run[1]["cpu"] for run in found), NAN,
                         statistics.median(run[1]["rss"] for run in found)))
    if releases:
        (plain_wall, plain, _), (wall, result, _) = fastest[None], fastest[releases]
        extra = len(result["icd10cm_releases"]) - 1
        rows.append((f"what {extra} earlier releases add (budget {10 * extra} s)", "its process", wall - plain_wall,
                     result["cpu"] - plain["cpu"], NAN, result["rss"] - plain["rss"]))
    return rows


def peer_rows(dump: Path, owlrl_cap: float) -> list[Row]:
    """Each peer in a process of its own."""
    rows: list[Row] = []
    for label, fn, args, cap in [
        ("reasoning as the build does it: engine over the core, ICD-10-CM directly", _reason, ("partitioned",), 3600),
        ("reasoning as before: reasonable over everything", _reason, ("whole",), 3600),
        ("reference: owlrl over the curated family only", _reason, ("owlrl",), owlrl_cap),
        ("lower bound: parse the dump (pyoxigraph)", _oxigraph, ("parse", str(dump)), 3600),
        ("lower bound: Oxigraph bulk load into memory", _oxigraph, ("memory", str(dump)), 3600),
        ("lower bound: Oxigraph bulk load onto disk", _oxigraph, ("disk", str(dump)), 3600),
    ]:
        result = measure(fn, *args, cap=cap)
        if result is None:
            rows.append((label, f"stopped at {cap:.0f} s", NAN, NAN, NAN, NAN))
        else:
            rows.append((label, f"{result['triples']:,} triples", result["wall"], result["cpu"], NAN, result["rss"]))
    return rows


def _cell(value: float, digits: int) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN: not measured


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=int, default=1, help="build N times, show the fastest")
    parser.add_argument("--owlrl-cap", type=float, default=240)
    parser.add_argument("--no-peers", action="store_true", help="only the build")
    parser.add_argument("--releases", default=None,
                        help="the earlier ICD-10-CM releases' directory (default: the build's cache, fetched into)")
    parser.add_argument("--no-releases", action="store_true", help="only build without the earlier releases")
    args = parser.parse_args()
    from kg.release_files import default_cache

    releases = None if args.no_releases else (args.releases or str(default_cache()))
    before = os.getloadavg()
    data = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        rows = build_rows(data, args.builds, releases)
        if not args.no_peers:
            rows += peer_rows(data / "current" / "medcode.nq", args.owlrl_cap)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print("| run | step | wall s | CPU s | own CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for run, step, wall, cpu, own, rss in rows:
        print(f"| {run} | {step} | {_cell(wall, 1)} | {_cell(cpu, 1)} | {_cell(own, 1)} | {_cell(rss, 0)} |")
    after = os.getloadavg()
    print(f"\n{os.cpu_count()} cores; load average {before[0]:.1f} before, {after[0]:.1f} after "
          "(other work on the machine slows every row alike)")


if __name__ == "__main__":
    main()
