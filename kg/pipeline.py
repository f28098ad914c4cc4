"""The build pipeline behind `medcode build`: load -> OWL-RL closure -> SHACL validation -> atomic snapshot."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rdflib.namespace import SKOS

from .contract import SEARCH_INDEX, open_store, read_meta
from .curated import Curation, SourceSet, build_curated
from .icd10cm import check_references, icd_triples, selection
from .icd10cm import release as icd10cm_release
from .namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, MC, SOURCES_DIR
from .ontology import load_ontology
from .reasoning import infer
from .search_index import write_search_index
from .snapshot import build_lock, discard, publish, write_snapshot
from .validation import ValidationError, disjointness_violations, shacl_data_graph, validate_shacl

CLASS_SUMMARY_QUERY = """
SELECT ?class (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a ?class .
  FILTER(STRSTARTS(STR(?class), "https://w3id.org/medcode/ontology#")
         || ?class = <http://www.w3.org/2004/02/skos/core#Concept>) }
GROUP BY ?class ORDER BY DESC(?n)
"""
ALL_ICD10CM = "all"  # build(icd10cm=...): the whole release


@dataclass
class BuildResult:
    """What a build made live: the snapshot's directory, its metadata and its instances per class."""

    snapshot: Path
    meta: dict[str, Any]
    class_counts: list[tuple[str, int]]


class _Steps:
    """Numbered progress lines with the time each step took."""

    def __init__(self, echo: Callable[[str], None], total: int) -> None:
        self.echo, self.total, self.n = echo, total, 0
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any], detail: Callable[[Any], str] = lambda _: "") -> Any:
        self.n += 1
        self.echo(f"[{self.n}/{self.total}] {name} ...")
        start = time.perf_counter()
        result = fn()
        took = time.perf_counter() - start
        self.timings[name] = round(took, 2)
        extra = detail(result)
        self.echo(f"      done in {took:.1f} s{' - ' + extra if extra else ''}")
        return result


def _icd10cm_items(curation: Curation, icd10cm: str | Iterable[str] | None) -> set[str] | None:
    """None for the whole release, else the few items to import (see kg.icd10cm.selection)."""
    if icd10cm == ALL_ICD10CM:
        return None
    if isinstance(icd10cm, str):
        raise ValueError(f"icd10cm is {ALL_ICD10CM!r}, None or a list of codes, not {icd10cm!r}")
    return selection(curation, icd10cm)


def build(data_dir: Path, *, sources: Path | SourceSet = SOURCES_DIR, icd10cm: str | Iterable[str] | None = ALL_ICD10CM,
          engine: str = "reasonable", echo: Callable[[str], None] = print) -> BuildResult:
    """Build a snapshot from a source set and make it live. Raises SourceError/ValidationError, leaving the old one.

    `sources` is a directory laid out like kg/sources/ or a SourceSet. `icd10cm` is "all" (the whole
    release, ~100 s to build) or a few codes, imported with the codes the curated records name and
    their ancestors (None: only those), which builds a small graph in seconds. One build at a time per
    data directory: a second one waits for the first (SnapshotError if it waits too long).
    """
    started = time.perf_counter()
    steps = _Steps(echo, 7)
    curation = steps.run("Reading curated sources", lambda: build_curated(sources),
                         lambda c: f"{len(c.codes)} codes, {len(c.graph)} triples")
    steps.run("Importing ICD-10-CM (simple-icd-10-cm)", lambda: check_references(curation))
    only = _icd10cm_items(curation, icd10cm)  # bad input fails here, before anything is written
    with build_lock(data_dir, echo):
        return _build(data_dir, curation, only, engine, steps, started)


def _build(data_dir: Path, curation: Curation, only: set[str] | None, engine: str, steps: _Steps,
           started: float) -> BuildResult:
    echo = steps.echo
    icd = steps.run("Generating the ICD-10-CM hierarchy", lambda: list(icd_triples(only)),
                    lambda t: f"{len(t)} triples")
    asserted = list(dict.fromkeys([*load_ontology(), *curation.graph, *icd]))
    inferred = steps.run(f"Reasoning (OWL 2 RL, {engine})", lambda: infer(asserted, engine),
                         lambda t: f"{len(t)} new triples")
    referenced = {iri for iri in curation.graph.objects(None, SKOS.closeMatch)} | set(
        curation.graph.objects(None, SKOS.exactMatch))
    report = steps.run("Validating (SHACL)",
                       lambda: validate_shacl(shacl_data_graph([*asserted, *inferred], referenced)),
                       lambda r: "conforms" if r.conforms else "VIOLATIONS")
    if not report.conforms:
        raise ValidationError(report.text)
    meta = {
        "reasoner": engine,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "icd10cm_release": icd10cm_release(),
        "icd10cm_items": ALL_ICD10CM if only is None else sorted(only),
        "versions": {pkg: version(pkg) for pkg in ("rdflib", "owlrl", "reasonable", "pyoxigraph", "pyshacl")},
        "python": platform.python_version(),
    }
    snapshot = steps.run("Writing the snapshot (Oxigraph store + N-Quads)",
                         lambda: write_snapshot(data_dir, {str(GRAPH_ASSERTED): asserted,
                                                           str(GRAPH_INFERRED): inferred}, meta))

    def check_and_publish() -> list[tuple[str, int]]:
        store = open_store(snapshot)
        problems = disjointness_violations(store, load_ontology())
        counts = [(row["class"].value, int(row["n"].value))
                  for row in store.query(CLASS_SUMMARY_QUERY, use_default_graph_as_union=True)]
        if problems:
            del store
            discard(snapshot)
            raise ValidationError("\n".join(problems))
        write_search_index(store, snapshot / SEARCH_INDEX)
        del store
        publish(data_dir, snapshot)
        return counts

    class_counts = steps.run("Checking disjointness, writing the search index and publishing", check_and_publish)

    meta = read_meta(snapshot)
    meta["timings_s"] = steps.timings
    meta["build_s"] = round(time.perf_counter() - started, 1)
    echo(f"Built {snapshot.name} in {meta['build_s']} s: "
         + ", ".join(f"{g.rsplit('/', 1)[1]} {n:,}" for g, n in meta["triples"].items()) + " triples")
    echo("Instances per class:")
    for cls, n in class_counts:
        echo(f"  {n:>8,}  {cls.replace(str(MC), 'mc:').replace('http://www.w3.org/2004/02/skos/core#', 'skos:')}")
    return BuildResult(snapshot, meta, class_counts)
