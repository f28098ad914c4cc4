"""Benchmark: build inputs reasoned by `reasonable` (the build's engine) vs `owlrl` (the reference).

Run on demand:  python bench/bench_build.py [--owlrl-cap 600]

Two inputs: the curated part (ontology + curated sources) and the full graph (plus all of
ICD-10-CM). Each engine runs in its own process so memory does not leak between them; owlrl on
the full graph is stopped at --owlrl-cap seconds (it is pure Python).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _inputs(full: bool) -> list[tuple]:
    from kg import icd10cm
    from kg.curated import build_curated
    from kg.namespaces import SOURCES_DIR
    from kg.ontology import load_ontology

    curation = build_curated(SOURCES_DIR)
    triples = [*load_ontology(), *curation.graph]
    if full:
        triples += list(icd10cm.icd_triples())
    return list(dict.fromkeys(triples))


def _run(engine: str, full: bool, out) -> None:
    from kg.reasoning import infer

    triples = _inputs(full)
    start = time.perf_counter()
    inferred = infer(triples, engine)
    out.send((len(triples), len(inferred), time.perf_counter() - start,
              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(engine: str, full: bool, cap: float) -> str:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_run, args=(engine, full, child))
    proc.start()
    if parent.poll(cap + 120):
        asserted, inferred, seconds, rss = parent.recv()
        proc.join()
        return f"{asserted:,} | {inferred:,} | {seconds:.1f} | {rss:,.0f}"
    proc.kill()
    proc.join()
    return f"- | - | > {cap:.0f} (stopped) | -"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--owlrl-cap", type=float, default=600)
    args = parser.parse_args()
    print("| input | engine | asserted triples | inferred triples | reasoning s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for full in (False, True):
        for engine in ("reasonable", "owlrl"):
            cap = args.owlrl_cap if engine == "owlrl" else 3600
            label = "family + ICD-10-CM" if full else "curated family"
            print(f"| {label} | {engine} | {measure(engine, full, cap)} |", flush=True)


if __name__ == "__main__":
    main()
