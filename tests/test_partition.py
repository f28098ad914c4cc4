"""The build's partitioned closure is the OWL 2 RL closure of the same input, triple for triple.

The build runs the rule engine over the curated core (ontology, curated records, the ICD-10-CM items
they name and their ancestors) and closes the rest of ICD-10-CM directly (kg.reasoning.Schema). Here
the same input, with two whole ICD-10-CM chapters (notes included) as the rest, goes through the engine
in one piece, and both answers must be the same set. Run on the current ontology and sources, so
triples others add to either part are covered as they come.
"""

from __future__ import annotations

import pytest
from rdflib import URIRef
from rdflib.namespace import OWL, RDF, SKOS

from kg import icd10cm
from kg.curated import build_curated
from kg.namespaces import ID_BASE, SOURCES_DIR
from kg.ontology import load_ontology
from kg.pipeline import split_icd10cm
from kg.reasoning import Schema, _closure_pairs, infer, infer_partitioned

CHAPTERS = ("6", "13")  # nervous system (G00-G99) and musculoskeletal (M00-M99): ~9,600 items with their notes


def icd(code: str) -> URIRef:
    return URIRef(f"{ID_BASE}icd10cm/{code}")


@pytest.fixture(scope="module")
def curation():
    return build_curated(SOURCES_DIR)


def parts(curation, *groupings: str, extra: tuple = ()) -> tuple[list[tuple], list[tuple]]:
    """The build's two parts for the ICD-10-CM items of whole chapters or blocks (with those the curated records
    name): the engine's (ontology, records, what ICD-10-CM says of the named items) and the rest, plus `extra`."""
    import simple_icd_10_cm as cm  # parses the release (~2 s): not while the suite is collected

    items = icd10cm.selection(curation, [code for g in groupings for code in (g, *cm.get_descendants(g))])
    curated = list(dict.fromkeys([*load_ontology(), *curation.graph]))
    known = set(curated)
    named, rest = split_icd10cm(curation, [t for t in dict.fromkeys(icd10cm.icd_triples(items)) if t not in known])
    return [*curated, *named], [*rest, *extra]


@pytest.fixture(scope="module")
def chapters(curation) -> tuple[list[tuple], list[tuple]]:
    return parts(curation, *CHAPTERS)


def test_the_build_closes_icd10cm_directly(chapters):
    """Not vacuous: the axioms allow the direct closure, so the next test compares it, not the fallback."""
    core, rest = chapters
    assert Schema.of([*core, *infer(core)]).unsupported(rest) == []
    assert len(rest) > 50_000


def test_partitioned_closure_equals_the_engine_over_everything(chapters):
    core, rest = chapters
    partitioned = infer_partitioned(core, rest)
    whole = infer([*core, *rest])
    assert len(partitioned) == len(set(partitioned))  # each triple once
    only_partitioned, only_whole = set(partitioned) - set(whole), set(whole) - set(partitioned)
    assert not only_partitioned and not only_whole, (sorted(only_partitioned)[:5], sorted(only_whole)[:5])
    assert (icd("G89.29"), SKOS.broaderTransitive, URIRef(f"{ID_BASE}icd10cm/chapter/6")) in partitioned


def test_symmetric_transitive_and_cyclic_relations_in_the_rest(curation):
    """Relations the release does not have (yet): symmetric, transitive, cycles, links into the core."""
    core, rest = parts(curation, "G89-G99", extra=(
        (icd("G89.0"), SKOS.exactMatch, icd("G89.1")), (icd("G89.1"), SKOS.exactMatch, icd("G89.0")),
        (icd("G89.1"), SKOS.exactMatch, icd("G89.29")),  # G89.29 is in the core (a condition names it)
        (icd("G89.0"), SKOS.related, icd("G89.4")), (icd("G90.0"), SKOS.narrowMatch, icd("G90.01")),
    ))
    assert Schema.of([*core, *infer(core)]).unsupported(rest) == []
    assert set(infer_partitioned(core, rest)) == set(infer([*core, *rest]))


def test_an_axiom_the_direct_closure_cannot_apply_sends_everything_to_the_engine(curation):
    core, rest = parts(curation, "G89-G99")
    core.append((SKOS.broader, RDF.type, OWL.FunctionalProperty))
    lines: list[str] = []
    partitioned = infer_partitioned(core, rest, echo=lines.append)
    assert any("reasoning over everything" in line and "FunctionalProperty" in line for line in lines), lines
    assert set(partitioned) == set(infer([*core, *rest]))


@pytest.mark.parametrize("edges, pairs", [
    ({1: {2}, 2: {3}, 3: set()}, {(1, 3)}),  # a path
    ({1: {2, 3}, 2: {3}, 3: {4}}, {(1, 4), (2, 4)}),  # shortcuts
    ({1: {2}, 2: {1}}, {(1, 1), (2, 2)}),  # a cycle
    ({1: {2}, 2: {3}, 3: {1}, 4: {1}}, {(1, 3), (1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (4, 2), (4, 3)}),
])
def test_transitive_closure(edges, pairs):
    closed = {x: set(ys) for x, ys in edges.items()}
    assert set(_closure_pairs(closed)) == pairs
    assert {(x, y) for x, ys in closed.items() for y in ys} == pairs | {(x, y) for x, ys in edges.items() for y in ys}
