"""The build pipeline behind `medcode build`: load -> OWL-RL closure -> SHACL validation -> atomic snapshot.

Laid out by measurement (bench/bench_build.py) for two cores. Oxigraph's bulk load of the on-disk store
is the longest step (~20 s of CPU), so it runs in threads from the first quads on
(kg.snapshot.SnapshotWriter) while this thread imports ICD-10-CM, reasons (kg.reasoning: the engine over
the curated core, a direct closure over the rest of ICD-10-CM) and validates; the class counts and the
search index are then computed from the triples this thread already holds, while the loaders finish
(asking the written store for them cost ~8 s of CPU after the load), and only the disjointness check,
a few small queries, waits for the written store. Python's cyclic garbage collector is paused meanwhile:
with millions of triples alive it kept scanning them, a third of the build's Python time, and found nothing
to free.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from itertools import chain
from pathlib import Path
from typing import Any

from rdflib.namespace import RDF, SKOS

from .contract import INFERENCE_GRAPHS, SEARCH_INDEX, read_meta
from .curated import Curation, SourceSet, build_curated
from .derivation_graph import derivations
from .export_answers import write_answers
from .icd10cm import check_references, icd_triples, selection
from .icd10cm import release as icd10cm_release
from .namespaces import GRAPH_ASSERTED, GRAPH_DERIVATIONS, GRAPH_INFERRED, MC, SOURCES_DIR, code_iri
from .ncci import Tables, describe, ncci_triples, pair_key_triples, read_ncci
from .ontology import load_ontology
from .reasoning import canonical, infer_partitioned
from .release_files import fetch, release_files
from .release_graphs import dated_graphs, dated_meta
from .releases import History, read_history
from .search_index import rows_from_triples, write_rows
from .snapshot import SnapshotWriter, build_lock, publish
from .validation import ValidationError, disjointness_violations, shacl_data_graph, validate_shacl

CLASS_SUMMARY_QUERY = """
SELECT ?class (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a ?class .
  FILTER(STRSTARTS(STR(?class), "https://w3id.org/medcode/ontology#")
         || ?class = <http://www.w3.org/2004/02/skos/core#Concept>) }
GROUP BY ?class ORDER BY DESC(?n)
"""
ALL_ICD10CM = "all"  # build(icd10cm=...): the whole release
Triple = tuple


@dataclass
class BuildResult:
    """What a build made live: the snapshot's directory, its metadata and its instances per class."""

    snapshot: Path
    meta: dict[str, Any]
    class_counts: list[tuple[str, int]]


class _Steps:
    """Numbered progress lines with the time each step took, the CPU time of the whole process (the store's loader
    threads too) and that of the build's own thread: a step whose wall time exceeds its own thread's CPU time
    waited (for the loaders, or for a core)."""

    def __init__(self, echo: Callable[[str], None], total: int) -> None:
        self.echo, self.total, self.n = echo, total, 0
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.own_cpu: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any], detail: Callable[[Any], str] = lambda _: "") -> Any:
        self.n += 1
        self.echo(f"[{self.n}/{self.total}] {name} ...")
        start, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
        result = fn()
        took = time.perf_counter() - start
        self.timings[name] = round(took, 2)
        self.cpu[name] = round(time.process_time() - cpu, 2)
        self.own_cpu[name] = round(time.thread_time() - own, 2)
        extra = detail(result)
        self.echo(f"      done in {took:.1f} s{' - ' + extra if extra else ''}")
        return result


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything the build drops)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _icd10cm_items(curation: Curation, icd10cm: str | Iterable[str] | None) -> set[str] | None:
    """None for the whole release, else the few items to import (see kg.icd10cm.selection)."""
    if icd10cm == ALL_ICD10CM:
        return None
    if isinstance(icd10cm, str):
        raise ValueError(f"icd10cm is {ALL_ICD10CM!r}, None or a list of codes, not {icd10cm!r}")
    return selection(curation, icd10cm)


def build(data_dir: Path, *, sources: Path | SourceSet = SOURCES_DIR, icd10cm: str | Iterable[str] | None = ALL_ICD10CM,
          engine: str = "reasonable", ncci: Path | None = None, echo: Callable[[str], None] = print,
          releases: Path | None = None, fetch_releases: bool = False, compact: bool = False) -> BuildResult:
    """Build a snapshot from a source set and make it live. Raises SourceError/ValidationError, leaving the old one.

    `sources` is a directory laid out like kg/sources/ or a SourceSet. `icd10cm` is "all" (the whole
    release, ~30 s to build on two cores) or a few codes, imported with the codes the curated records name
    and their ancestors (None: only those), which builds a small graph in seconds. One build at a time per
    data directory: a second one waits for the first (SnapshotError if it waits too long). `ncci` is a
    directory of CMS NCCI PTP and MUE files (kg.ncci), read before anything is written. `releases` is a
    directory of earlier ICD-10-CM releases (kg.release_files; `fetch_releases`: first fetch the missing ones
    into it with pip), compared with the installed one into each code's history; None: the installed one only.
    `compact`: compact the store before it is closed (SnapshotWriter.compact; README: How it is built).
    """
    started = time.perf_counter()
    steps = _Steps(echo, 11 if ncci is None else 12)
    with _collector_paused():
        curation = steps.run("Reading curated sources", lambda: build_curated(sources),
                             lambda c: f"{len(c.codes)} codes, {len(c.graph)} triples")
        steps.run("Importing ICD-10-CM (simple-icd-10-cm)", lambda: check_references(curation))
        tables = None if ncci is None else steps.run(
            "Reading NCCI edit files", lambda: read_ncci(ncci),
            lambda t: f"{len(t.files)} files, {len(t.pair_edits)} code-pair edits, {len(t.units_edits)} MUEs")
        only = _icd10cm_items(curation, icd10cm)  # bad input fails here, before anything is written
        history = steps.run("Reading the earlier ICD-10-CM releases",
                            lambda: _history(releases, fetch_releases, only, echo),
                            lambda h: h.counts() + (f"; skipped {', '.join(h.skipped)}" if h.skipped else ""))
        with build_lock(data_dir, echo):
            return _build(data_dir, curation, tables, only, history, engine, steps, started, compact)


def _history(releases: Path | None, fetch_releases: bool, only: set[str] | None,
             echo: Callable[[str], None]) -> History:
    """The installed release and the earlier ones found in `releases` (fetched first when asked); the build goes on
    without those it cannot fetch or read, and says so."""
    if releases is None:
        return read_history([], only)
    if fetch_releases:
        fetch(releases, echo)
    with release_files(releases) as (files, skipped):
        if skipped:
            echo(f"      skipped the ICD-10-CM releases not found in {releases}: {', '.join(skipped)}")
        return read_history(files, only, skipped)


def _unseen(triples: Iterable[Triple], seen: set, kept: list[Triple]) -> Iterator[Triple]:
    """The triples not seen before, each also added to `seen` and to `kept`."""
    for t in triples:
        if t not in seen:
            seen.add(t)
            kept.append(t)
            yield t


def _build(data_dir: Path, curation: Curation, tables: Tables | None, only: set[str] | None,
           history: History, engine: str, steps: _Steps, started: float, compact: bool) -> BuildResult:
    echo = steps.echo
    with SnapshotWriter(data_dir) as writer:
        asserted, inferred = _write_graphs(writer, curation, tables, only, history, engine, steps)
        if compact:  # every quad is added: the store is compacted while the search index is written
            writer.compact()
        class_counts = steps.run("Writing the search index, counting classes and checking disjointness",
                                 lambda: _index_and_check(writer, asserted, inferred))
        meta = {
            "reasoner": engine,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "icd10cm_release": icd10cm_release(),
            "icd10cm_items": ALL_ICD10CM if only is None else sorted(only),
            "icd10cm_releases": [r.notation for r in history.releases],
            "icd10cm_releases_skipped": history.skipped,
            "icd10cm_dated": dated_meta(history, {part: INFERENCE_GRAPHS[part] for part in ("asserted", "inferred")}),
            "versions": {pkg: version(pkg) for pkg in ("rdflib", "owlrl", "reasonable", "pyoxigraph", "pyshacl")},
            "python": platform.python_version(),
            **({} if tables is None else {"ncci": describe(tables)}),
        }
        snapshot = steps.run("Writing the snapshot (Oxigraph store + N-Quads)", lambda: writer.close(meta))
        steps.run("Answering the exports' queries (kept in the snapshot)", lambda: answered(snapshot),
                  lambda kept: f"{len(kept)} answers, {sum(kept.values()) / 1e6:.1f} MB")
    publish(data_dir, snapshot)

    meta = read_meta(snapshot)
    meta["timings_s"], meta["cpu_s"], meta["own_cpu_s"] = steps.timings, steps.cpu, steps.own_cpu
    meta["build_s"] = round(time.perf_counter() - started, 1)
    echo(f"Built {snapshot.name} in {meta['build_s']} s: "
         + ", ".join(f"{g.rsplit('/', 1)[1]} {n:,}" for g, n in meta["triples"].items()) + " triples")
    echo("Instances per class:")
    for cls, n in class_counts:
        echo(f"  {n:>8,}  {cls.replace(str(MC), 'mc:').replace('http://www.w3.org/2004/02/skos/core#', 'skos:')}")
    return BuildResult(snapshot, meta, class_counts)


def answered(snapshot: Path) -> dict[str, int]:
    """The exports' kept answers written into the complete (not yet live) snapshot, which is removed if that
    fails: a build that fails publishes nothing and leaves nothing."""
    try:
        return write_answers(snapshot)
    except BaseException:
        shutil.rmtree(snapshot, ignore_errors=True)
        raise


def _write_graphs(writer: SnapshotWriter, curation: Curation, tables: Tables | None, only: set[str] | None,
                  history: History, engine: str, steps: _Steps) -> tuple[list[Triple], list[Triple]]:
    """The asserted graph (ontology, curated records, NCCI edits, ICD-10-CM and its history), its closure, and the
    SHACL check; returns the asserted and the inferred triples."""
    asserted: set = set()
    core: list[Triple] = []
    # in one order (an rdflib graph's varies from run to run): the derivations follow from it
    writer.add(str(GRAPH_ASSERTED), _unseen(chain(canonical([*load_ontology(), *curation.graph]),
                                                  _ncci(curation, tables)), asserted, core))
    writer.add(str(GRAPH_ASSERTED), _unseen(list(pair_key_triples(core)), asserted, core))
    icd: list[Triple] = []
    steps.run("Generating the ICD-10-CM hierarchy and its history (the store is written meanwhile)",
              lambda: writer.add(str(GRAPH_ASSERTED),
                                 _unseen(chain(icd_triples(only), history.triples()), asserted, icd)),
              lambda _: f"{len(icd)} triples")
    inferred = steps.run(f"Reasoning (OWL 2 RL: {engine} over the curated core, directly over ICD-10-CM)",
                         lambda: _reason(curation, core, icd, asserted, engine, steps.echo),
                         lambda t: f"{len(t)} new triples")
    writer.add(str(GRAPH_INFERRED), inferred)
    dated = steps.run("Dating the ICD-10-CM facts (the graphs of each earlier release's state)",
                      lambda: dated_graphs(history, core, [*core, *icd], inferred, engine, steps.echo),
                      lambda found: ", ".join(f"{g.rsplit('/', 1)[1]} {len(t):,}" for g, t in found.items()))
    for graph, triples in dated.items():
        writer.add(graph, triples)
    why, unexplained = steps.run("Recording why each inferred triple holds (OWL 2 RL rule instances)",
                                 lambda: derivations(chain(core, icd), inferred, load_ontology()),
                                 lambda found: f"{len(inferred) - len(found[1])} of {len(inferred)} explained")
    if unexplained:
        steps.echo(f"      no rule instance found for {len(unexplained)} inferred triples, e.g. {unexplained[0]}")
    writer.add(str(GRAPH_DERIVATIONS), why)
    referenced = set(curation.graph.objects(None, SKOS.closeMatch)) | set(curation.graph.objects(None, SKOS.exactMatch))
    report = steps.run("Validating (SHACL)",
                       lambda: validate_shacl(shacl_data_graph([*core, *icd, *inferred], referenced)),
                       lambda r: "conforms" if r.conforms else "VIOLATIONS")
    if not report.conforms:
        raise ValidationError(report.text)
    return [*core, *icd], inferred


def _ncci(curation: Curation, tables: Tables | None) -> Iterable[Triple]:
    """The NCCI files' triples; a code the curated records describe keeps their description."""
    if tables is None:
        return ()
    return ncci_triples(tables, {code_iri(*ref.split("/", 1)) for ref in curation.codes})


def split_icd10cm(curation: Curation, icd: Iterable[Triple]) -> tuple[list[Triple], list[Triple]]:
    """The ICD-10-CM triples about the items the curated records name (and their ancestors, and their notes),
    which the engine reasons over with the records, and the rest, which kg.reasoning closes directly."""
    named = {t[0] for t in icd_triples(selection(curation, None))}
    core: list[Triple] = []
    rest: list[Triple] = []
    for t in icd:
        (core if t[0] in named else rest).append(t)
    return core, rest


def _reason(curation: Curation, core: list[Triple], icd: list[Triple], asserted: set, engine: str,
            echo: Callable[[str], None]) -> list[Triple]:
    """The entailments of everything asserted (`core`: the ontology and the curated records)."""
    named, rest = split_icd10cm(curation, icd)
    return infer_partitioned([*core, *named], rest, engine, echo, asserted)


def class_counts(asserted: Iterable[Triple], inferred: Iterable[Triple]) -> list[tuple[str, int]]:
    """CLASS_SUMMARY_QUERY's answer (instances per medcode class and skos:Concept, most first) from the triples."""
    types, concept, mc = {RDF.type}, SKOS.Concept, str(MC)  # (a set look-up misses in C; rdflib's == is Python)
    typed = {(s, o) for triples in (asserted, inferred) for s, p, o in triples
             if p in types and (o == concept or str.startswith(o, mc))}
    return Counter(str(o) for _, o in typed).most_common()


def _index_and_check(writer: SnapshotWriter, asserted: list[Triple], inferred: list[Triple]) -> list[tuple[str, int]]:
    """The search index and the instances per class from the triples, while the store's loaders finish; then
    disjointness (withheld from the reasoner), asked of the written store."""
    write_rows(rows_from_triples(asserted, inferred), writer.directory / SEARCH_INDEX)
    counts = class_counts(asserted, inferred)
    problems = disjointness_violations(writer.loaded(), load_ontology(), dict(counts))
    if problems:
        raise ValidationError("\n".join(problems))
    return counts
