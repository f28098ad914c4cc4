"""A synthetic NCCI-scale edit table, loaded beside the real graph, for the store benchmark.

CMS's procedure-to-procedure edit files hold millions of column-1/column-2 pairs. This makes
`pairs` of them over `codes` synthetic procedure codes (X0000-style notations, in their own code
system so they never collide with real codes), in two forms:

- `ncci_ptp_synthetic.txt`: the CMS file layout (Column 1, Column 2, * = in existence prior to 1996,
  Effective Date, Deletion Date, Modifier 0/1/9, PTP Edit Rationale), tab-separated;
- a complete snapshot directory (real graph + the edits as mc:CodePairEdit resources in the
  asserted graph, and what the reasoner derives from them, column1Of/column2Of and the symmetric
  mc:notReportedWith, in the inferred graph), which the embedded store serves and `medcode
  publish` loads into a remote engine.

Column 1 codes are drawn with a Zipf-like skew (a few codes have thousands of edits, as in the real
files), column 2 uniformly; pairs are unique. Deterministic for a given seed.

    python -m bench.ncci_synthetic --from data --out /tmp/ncci --pairs 2000000 --codes 15000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import click
import pyoxigraph as ox

from kg.contract import CURRENT, current_snapshot, default_data_dir, read_meta
from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, ID_BASE, MC

SYSTEM = ID_BASE + "synthetic-cpt/"
RATIONALES = ["Standards of medical / surgical practice", "Mutually exclusive procedures",
              "CPT Manual or CMS manual coding instructions", "Misuse of column two code with column one code"]
MODIFIERS = ["0", "1", "9"]
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
NOTATION = "<http://www.w3.org/2004/02/skos/core#notation>"
XSD_DATE = "http://www.w3.org/2001/XMLSchema#date"


def notation(i: int) -> str:
    return f"X{i:04d}"


def generate_pairs(pairs: int, codes: int, seed: int) -> list[tuple[int, int]]:
    """`pairs` unique (column 1, column 2) index pairs; column 1 Zipf-skewed, never equal to column 2."""
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


def write_snapshot(base: Path, out: Path, pairs: list[tuple[int, int]], codes: int, seed: int) -> Path:
    """A data directory at `out` whose live snapshot is `base`'s graph plus the synthetic edits."""
    rng = random.Random(seed + 1)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-ncci{len(pairs)}"
    target = out / "snapshots" / stamp
    target.mkdir(parents=True)
    dump = target / "medcode.nq"
    shutil.copyfile(base / "medcode.nq", dump)
    asserted, inferred = f"<{GRAPH_ASSERTED}> .\n", f"<{GRAPH_INFERRED}> .\n"
    code = [f"<{SYSTEM}{notation(i)}>" for i in range(codes)]
    added = {str(GRAPH_ASSERTED): 0, str(GRAPH_INFERRED): 0}
    with dump.open("a", encoding="utf-8") as nq, (out / "ncci_ptp_synthetic.txt").open("w", encoding="utf-8") as tsv:
        tsv.write("Column 1\tColumn 2\t*\tEffective Date\tDeletion Date\tModifier\tPTP Edit Rationale\n")
        for i in range(codes):
            nq.write(f'{code[i]} {RDF_TYPE} <{MC}CPTCode> {asserted}{code[i]} {NOTATION} "{notation(i)}" {asserted}')
            nq.write(f"{code[i]} {RDF_TYPE} <{MC}Code> {inferred}")
        added[str(GRAPH_ASSERTED)] += 2 * codes
        added[str(GRAPH_INFERRED)] += codes
        for c1, c2 in pairs:
            edit = f"<{ID_BASE}edit/synthetic/{notation(c1)}_{notation(c2)}>"
            modifier = rng.choice(MODIFIERS)
            year = rng.randint(1996, 2025)
            effective = f"{year}-{rng.randint(1, 12):02d}-01"
            rationale = rng.choice(RATIONALES)
            nq.write(f"{edit} {RDF_TYPE} <{MC}CodePairEdit> {asserted}"
                     f"{edit} <{MC}column1> {code[c1]} {asserted}"
                     f"{edit} <{MC}column2> {code[c2]} {asserted}"
                     f"{edit} <{MC}modifierIndicator> <{ID_BASE}valueset/ptp-modifier-indicator/{modifier}> {asserted}"
                     f'{edit} <{MC}effectiveDate> "{effective}"^^<{XSD_DATE}> {asserted}'
                     f'{edit} <{MC}rationale> "{rationale}" {asserted}'
                     f"{code[c1]} <{MC}column1Of> {edit} {inferred}"
                     f"{code[c2]} <{MC}column2Of> {edit} {inferred}"
                     f"{code[c1]} <{MC}notReportedWith> {code[c2]} {inferred}"
                     f"{code[c2]} <{MC}notReportedWith> {code[c1]} {inferred}")
            tsv.write(f"{notation(c1)}\t{notation(c2)}\t\t{effective.replace('-', '')}\t*\t{modifier}\t{rationale}\n")
        added[str(GRAPH_ASSERTED)] += 6 * len(pairs)
        added[str(GRAPH_INFERRED)] += 4 * len(pairs)
    store = ox.Store(str(target / "store"))
    store.bulk_load(path=str(dump), format=ox.RdfFormat.N_QUADS)
    store.flush()
    counts = {g: int(next(store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}"))["n"].value)
              for g in added}
    del store
    meta = {**read_meta(base), "snapshot": stamp, "triples": counts,
            "synthetic_ncci": {"pairs": len(pairs), "codes": codes, "seed": seed, "added_triples": added}}
    (target / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    link = out / CURRENT
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target.relative_to(out))
    return target


@click.command()
@click.option("--from", "base_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data"),
              show_default=True, help="Data directory holding the real built snapshot.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New data directory for the combined snapshot and the NCCI-layout file.")
@click.option("--pairs", default=2_000_000, show_default=True)
@click.option("--codes", default=15_000, show_default=True)
@click.option("--seed", default=1, show_default=True)
def main(base_dir: Path, out: Path, pairs: int, codes: int, seed: int) -> None:
    """Write the synthetic edit table and a snapshot of the real graph plus the edits."""
    base = current_snapshot(base_dir)
    if base is None:
        raise click.ClickException(f"no snapshot in {base_dir}; run `medcode build` first")
    started = time.perf_counter()
    chosen = generate_pairs(pairs, codes, seed)
    target = write_snapshot(base, out, chosen, codes, seed)
    meta = read_meta(target)
    click.echo(f"{pairs:,} pairs over {codes:,} codes in {time.perf_counter() - started:.0f} s -> {target}: "
               + ", ".join(f"{g.rsplit('/', 1)[1]} {n:,}" for g, n in meta["triples"].items()) + " triples")


if __name__ == "__main__":
    main()


def add_scale_options(parser: argparse.ArgumentParser, repeat: int) -> None:
    """The options the store and claim-check benchmarks share: the real graph and the synthetic table's size."""
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--pairs", type=int, default=2_000_000)
    parser.add_argument("--codes", type=int, default=15_000)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--virtuoso-memory-mb", type=int, default=4096)
    parser.add_argument("--skip-real", action="store_true", help="Measure only the graph with the synthetic table.")
