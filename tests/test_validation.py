"""Disjointness (withheld from the reasoner) is checked in the written store, over both parts of the
closure: the curated core and the ICD-10-CM part the build closes directly. A violation fails the build
and leaves nothing half-written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF

import kg.pipeline
from kg import SourceSet
from kg.namespaces import GRAPH_ASSERTED, ID_BASE, MC, SOURCES_DIR
from kg.ontology import load_ontology
from kg.pipeline import build
from kg.validation import ValidationError, disjointness_violations

TINY = Path(__file__).parent / "data" / "tiny"


def store_of(*triples: tuple) -> ox.Store:
    store = ox.Store()
    graph = ox.NamedNode(str(GRAPH_ASSERTED))
    store.extend(ox.Quad(ox.NamedNode(s), ox.NamedNode(p), ox.NamedNode(o), graph) for s, p, o in triples)
    return store


@pytest.mark.parametrize("individual, classes", [
    (f"{ID_BASE}device/programmable-implantable-pump",
     (MC.ProgrammableImplantablePump, MC.NonProgrammableImplantablePump)),
    (f"{ID_BASE}icd10cm/M54.50", (MC.ICD10CMCode, MC.Modifier)),
])
def test_an_individual_of_two_disjoint_classes_is_named(individual, classes):
    store = store_of(*((individual, str(RDF.type), str(c)) for c in classes))
    assert disjointness_violations(store, load_ontology()) == [
        f"{individual} is both {classes[0]} and {classes[1]}, which are disjoint"]
    assert disjointness_violations(store_of((individual, str(RDF.type), str(classes[0]))), load_ontology()) == []


def test_a_disjointness_violation_fails_the_build_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """M54.50 and its ancestors are closed directly (no curated record names them); the violation is theirs."""
    ontology = Graph()
    for t in load_ontology():
        ontology.add(t)
    ontology.add((MC.ICD10CMBlock, OWL.disjointWith, MC.ICD10CMGrouping))  # every block is a grouping
    monkeypatch.setattr(kg.pipeline, "load_ontology", lambda: ontology)
    sources = dataclasses.replace(SourceSet.from_directory(SOURCES_DIR), codes=(TINY / "codes.yaml",),
                                  conditions=TINY / "conditions.yaml", relations=TINY / "relations.yaml")
    with pytest.raises(ValidationError, match="which are disjoint") as failure:
        build(tmp_path, sources=sources, icd10cm=["M54.50"], echo=lambda _line: None)
    assert str(URIRef(f"{ID_BASE}icd10cm/block/M50-M54")) in str(failure.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".build.lock", "snapshots"]  # nothing went live
    assert not any((tmp_path / "snapshots").iterdir())  # nor is anything half-written left


def test_a_sparql_constraint_still_names_each_offending_focus_node():
    """Each SPARQL constraint is parsed once for all focus nodes (kg.validation); every one is still checked."""
    from rdflib import Literal
    from rdflib.namespace import DCTERMS, SKOS

    from kg.validation import shacl_data_graph, validate_shacl

    icd = URIRef(f"{ID_BASE}icd10cm/G35")
    triples = [(icd, RDF.type, MC.ICD10CMCode), (icd, MC.billable, Literal(False))]
    for n in range(3):
        condition = URIRef(f"{ID_BASE}condition/test-{n}")
        triples += [(condition, RDF.type, MC.Condition), (condition, SKOS.prefLabel, Literal(f"Condition {n}")),
                    (condition, DCTERMS.source, URIRef(f"{ID_BASE}source/test")), (condition, SKOS.closeMatch, icd)]
    report = validate_shacl(shacl_data_graph(triples, {icd}))
    assert not report.conforms
    assert "Results (3):" in report.text
    assert report.text.count("Message: An exact or close match is a billable ICD-10-CM code") == 3
    for n in range(3):
        assert f"condition/test-{n}" in report.text
