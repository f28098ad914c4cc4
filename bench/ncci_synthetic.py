"""A synthetic NCCI-scale edit table in CMS's file layout, and a snapshot of the real graph with it, for the
store and claim-check benchmarks.

CMS's procedure-to-procedure edit files hold millions of column-1/column-2 pairs. This makes `pairs`
of them over `codes` synthetic procedure codes: CPT-shaped notations no real code has (four digits and
X, Y or Z; CPT's own end in a digit or in F, M, T or U), so that kg.ncci reads them like any others.
Column 1 codes are drawn with a Zipf-like skew (a few codes have thousands of edits, as in the real
files), column 2 uniformly; pairs are unique. Deterministic for a given seed. It writes:

- `<out>/ncci/ccipra-synthetic-f1.txt`, `-f2.txt`, ...: CMS's practitioner PTP layout and naming (a
  preamble, the header, tab-separated rows, split into parts as CMS splits its tables), which
  `medcode build --ncci <out>/ncci` reads;
- a snapshot of the real graph plus what that build adds: the files read back by kg.ncci's reader, the
  triples it makes of them with their mc:pairKey, and what the reasoner derives from them that queries
  read (column1Of/column2Of, the symmetric mc:notReportedWith, the codes' and sources' classes and
  labels). It is written directly: the rule engine and SHACL over 20 M more triples are beyond a
  shared two-core machine. On 3,000 pairs the snapshot held exactly the NCCI triples that `medcode
  build --ncci` made of the same files, asserted and inferred.

    python -m bench.ncci_synthetic --from data --out /tmp/ncci --pairs 2000000 --codes 15000
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import pyoxigraph as ox
from rdflib.namespace import RDF, RDFS, SKOS

from kg.contract import CURRENT, current_snapshot, default_data_dir, read_meta
from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, MC, PROV, code_iri
from kg.ncci import ncci_triples, pair_key_triples, read_ncci

RATIONALES = ["Standards of medical / surgical practice", "Mutually exclusive procedures",
              "CPT Manual or CMS manual coding instructions", "Misuse of column two code with column one code"]
MODIFIERS = ["0", "1", "9"]
SUFFIXES = "XYZ"  # the last character of a synthetic code: 10,000 codes each
PART_ROWS = 1_000_000  # rows of one PTP file (CMS splits each table into several)
PREAMBLE = ("Synthetic rows in the layout of the CMS NCCI practitioner PTP edit files (ccipra-v*-f*.txt), made by "
            "bench/ncci_synthetic.py for benchmarks: not CMS edits.\n\nColumn1/Column2 Edits\n"
            "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\tModifier\t"
            "PTP Edit Rationale\n\t\t\t\t*=no data\t0=not allowed\t\n\t\t\t\t\t1=allowed\t\n"
            "\t\t\t\t\t9=not applicable\t\n")
#: what the reasoner derives from an edit's column properties (mc:notReportedWith in both directions)
DERIVED = {MC.column1: MC.column1Of, MC.column2: MC.column2Of}
#: the classes the reasoner adds to an NCCI file's code and source nodes
SUPERCLASSES = {MC.CPTCode: (MC.Code, SKOS.Concept), MC.PublicSource: (MC.Source, PROV.Entity)}


def notation(i: int) -> str:
    """The notation of synthetic code `i` (0000X ... 9999Z)."""
    return f"{i % 10_000:04d}{SUFFIXES[i // 10_000]}"


def iri(i: int) -> str:
    """The IRI of synthetic code `i` (a CPT code's IRI, as kg.ncci mints it)."""
    return str(code_iri("cpt", notation(i)))


def generate_pairs(pairs: int, codes: int, seed: int) -> list[tuple[int, int]]:
    """`pairs` unique (column 1, column 2) index pairs; column 1 Zipf-skewed, never equal to column 2."""
    if codes > 10_000 * len(SUFFIXES):
        raise click.UsageError(f"at most {10_000 * len(SUFFIXES):,} synthetic codes")
    if pairs > codes * (codes - 1):
        raise click.UsageError("more pairs than there are ordered code pairs")
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(codes)]
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int]] = []
    while len(out) < pairs:
        firsts = rng.choices(range(codes), weights=weights, k=min(200_000, 2 * (pairs - len(out))))
        for c1 in firsts:
            c2 = rng.randrange(codes)
            if c1 != c2 and (c1, c2) not in seen:
                seen.add((c1, c2))
                out.append((c1, c2))
                if len(out) == pairs:
                    break
    return out


def write_ptp_files(directory: Path, pairs: list[tuple[int, int]], seed: int) -> list[Path]:
    """The pairs as CMS practitioner PTP files (`ccipra-synthetic-f1.txt`, ...), PART_ROWS rows a file."""
    rng = random.Random(seed + 1)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for part, start in enumerate(range(0, len(pairs), PART_ROWS), 1):
        path = directory / f"ccipra-synthetic-f{part}.txt"
        with path.open("w", encoding="utf-8") as out:
            out.write(PREAMBLE)
            for c1, c2 in pairs[start:start + PART_ROWS]:
                effective = f"{rng.randint(1996, 2025)}{rng.randint(1, 12):02d}01"
                out.write(f"{notation(c1)}\t{notation(c2)}\t\t{effective}\t*\t{rng.choice(MODIFIERS)}\t"
                          f"{rng.choice(RATIONALES)}\n")
        files.append(path)
    return files


def _with_derived(triples: Iterable[tuple]) -> Iterator[tuple[tuple, bool]]:
    """(triple, inferred?): the files' triples, each edit's pair key, and what the reasoner derives."""
    for _subject, group in itertools.groupby(triples, key=lambda t: t[0]):
        facts = list(group)  # kg.ncci yields a node's triples together
        yield from ((t, False) for t in facts)
        yield from ((t, False) for t in pair_key_triples(facts))
        columns = {p: o for _, p, o in facts if p in DERIVED}
        for s, p, o in facts:
            if p in DERIVED:
                yield (o, DERIVED[p], s), True
            elif p == RDF.type:
                yield from (((s, RDF.type, cls), True) for cls in SUPERCLASSES.get(o, ()))
            elif p == SKOS.prefLabel:  # a sub-property of rdfs:label
                yield (s, RDFS.label, o), True
        if len(columns) == 2:
            one, two = columns[MC.column1], columns[MC.column2]
            yield (one, MC.notReportedWith, two), True
            yield (two, MC.notReportedWith, one), True


def write_snapshot(base: Path, out: Path, pairs: list[tuple[int, int]], seed: int) -> Path:
    """A data directory at `out` whose live snapshot is `base`'s graph plus the synthetic PTP files'."""
    write_ptp_files(out / "ncci", pairs, seed)
    tables = read_ncci(out / "ncci")
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-ncci{len(pairs)}"
    target = out / "snapshots" / stamp
    target.mkdir(parents=True)
    dump = target / "medcode.nq"
    shutil.copyfile(base / "medcode.nq", dump)
    tails = {False: f" <{GRAPH_ASSERTED}> .\n", True: f" <{GRAPH_INFERRED}> .\n"}
    added = {str(GRAPH_ASSERTED): 0, str(GRAPH_INFERRED): 0}
    with dump.open("a", encoding="utf-8") as nq:
        for (s, p, o), inferred in _with_derived(ncci_triples(tables)):
            nq.write(f"{s.n3()} {p.n3()} {o.n3()}{tails[inferred]}")
            added[str(GRAPH_INFERRED if inferred else GRAPH_ASSERTED)] += 1
    store = ox.Store(str(target / "store"))
    store.bulk_load(path=str(dump), format=ox.RdfFormat.N_QUADS)
    store.flush()
    base_meta = read_meta(base)  # every graph of the base (the dated and derivations graphs too), so publish takes it
    counts = {g: int(next(store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}"))["n"].value)
              for g in base_meta["triples"]}
    del store
    meta = {**base_meta, "snapshot": stamp, "triples": counts,
            "synthetic_ncci": {"pairs": len(pairs), "seed": seed, "added_triples": added,
                               "files": [path.name for path, _, _ in tables.files]}}
    (target / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    link = out / CURRENT
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target.relative_to(out))
    return target


def synthetic_data(real: Path, work: Path, pairs: int, codes: int) -> Path:
    """The data directory with the synthetic table under `work`, made unless it is there already."""
    big = work / "ncci"
    if current_snapshot(big) is None:
        started = time.perf_counter()
        write_snapshot(real, big, generate_pairs(pairs, codes, 1), 1)
        print(f"generated {pairs:,} synthetic pairs in {time.perf_counter() - started:.0f} s", flush=True)
    return big


@click.command()
@click.option("--from", "base_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data"),
              show_default=True, help="Data directory holding the real built snapshot.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New data directory for the combined snapshot and the NCCI-layout files (in ncci/).")
@click.option("--pairs", default=2_000_000, show_default=True)
@click.option("--codes", default=15_000, show_default=True)
@click.option("--seed", default=1, show_default=True)
def main(base_dir: Path, out: Path, pairs: int, codes: int, seed: int) -> None:
    """Write the synthetic PTP files and a snapshot of the real graph plus the edits."""
    base = current_snapshot(base_dir)
    if base is None:
        raise click.ClickException(f"no snapshot in {base_dir}; run `medcode build` first")
    started = time.perf_counter()
    target = write_snapshot(base, out, generate_pairs(pairs, codes, seed), seed)
    meta = read_meta(target)
    click.echo(f"{pairs:,} pairs over {codes:,} codes in {time.perf_counter() - started:.0f} s -> {target}: "
               + ", ".join(f"{g.rsplit('/', 1)[1]} {n:,}" for g, n in meta["triples"].items()) + " triples")


def add_scale_options(parser: argparse.ArgumentParser, repeat: int) -> None:
    """The options the store and claim-check benchmarks share: the real graph and the synthetic table's size."""
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--pairs", type=int, default=2_000_000)
    parser.add_argument("--codes", type=int, default=15_000)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--virtuoso-memory-mb", type=int, default=4096)
    parser.add_argument("--skip-real", action="store_true", help="Measure only the graph with the synthetic table.")


def measure_in_child(target: Callable[..., None], *args: object) -> Any:
    """What `target(*args, queue)` puts on the queue, run in a fresh interpreter (spawned: one store, one app,
    and its memory its own) for the store, claim-check and FHIR benchmarks."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=target, args=(*(str(a) if isinstance(a, Path) else a for a in args), out))
    child.start()
    result = out.get()
    child.join()
    return result


if __name__ == "__main__":
    main()
