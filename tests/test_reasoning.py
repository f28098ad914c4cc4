"""`reasonable` (the build's reasoner) and `owlrl` (the reference OWL 2 RL semantics) agree.

Run on the curated part only (ontology + curated sources, no ICD-10-CM), where owlrl takes seconds.
`reasonable` 0.4 lacks the property-chain rule that derives mc:notReportedWith from the code-pair
edits; kg.reasoning applies it between rounds, and this is where that is checked.
"""

from __future__ import annotations

import pytest
from rdflib import Literal, URIRef
from rdflib import namespace as rdfns
from rdflib.namespace import OWL, RDF

from kg.curated import build_curated
from kg.namespaces import ID_BASE, MC, SOURCES_DIR
from kg.ontology import load_ontology
from kg.reasoning import infer


@pytest.fixture(scope="module")
def asserted() -> list[tuple]:
    return list(dict.fromkeys([*load_ontology(), *build_curated(SOURCES_DIR).graph]))


def _term(term):
    # a plain literal and the same literal typed xsd:string are one RDF 1.1 term
    return Literal(str(term)) if isinstance(term, Literal) and term.datatype == rdfns.XSD.string else term


def about_data(triples: list[tuple]) -> set[tuple]:
    """Entailments whose subject is a medcode individual, minus the trivial ones."""
    return {
        (s, p, _term(o)) for s, p, o in triples
        if str(s).startswith(ID_BASE)
        and not (p == RDF.type and o == OWL.Thing)
        and not (p == OWL.sameAs and s == o)
    }


@pytest.fixture(scope="module")
def entailed(asserted) -> dict[str, set[tuple]]:
    return {engine: about_data(infer(asserted, engine)) for engine in ("reasonable", "owlrl")}


def test_reasonable_and_owlrl_entail_the_same_about_the_data(entailed):
    only_reasonable = entailed["reasonable"] - entailed["owlrl"]
    only_owlrl = entailed["owlrl"] - entailed["reasonable"]
    assert not only_reasonable and not only_owlrl, (sorted(only_reasonable)[:10], sorted(only_owlrl)[:10])
    assert entailed["reasonable"]  # not vacuously equal


@pytest.mark.parametrize("engine", ["reasonable", "owlrl"])
def test_not_reported_with_has_16_ordered_pairs(entailed, asserted, engine):
    assert not [t for t in asserted if t[1] == MC.notReportedWith]  # inferred only
    pairs = {(str(s).removeprefix(ID_BASE), str(o).removeprefix(ID_BASE))
             for s, p, o in entailed[engine] if p == MC.notReportedWith}
    edits = {(c1, c2) for c1 in ("cpt/95990", "cpt/95991")
             for c2 in ("cpt/62367", "cpt/62368", "cpt/62369", "cpt/62370")}
    assert len(pairs) == 16
    assert pairs == edits | {(b, a) for a, b in edits}


@pytest.mark.parametrize("engine", ["reasonable", "owlrl"])
def test_inverse_and_subclass_entailments(entailed, engine):
    def cpt(code: str) -> URIRef:
        return URIRef(f"{ID_BASE}cpt/{code}")

    device = URIRef(f"{ID_BASE}device/programmable-implantable-pump")
    assert (cpt("96521"), MC.portablePumpAlternativeOf, cpt("96522")) in entailed[engine]
    assert (cpt("96522"), MC.reportInstead, cpt("96521")) in entailed[engine]
    assert (device, RDF.type, MC.ImplantableInfusionPump) in entailed[engine]
    assert (device, RDF.type, MC.MedicalProduct) in entailed[engine]
