"""OWL 2 RL materialisation: `reasonable` (Rust) by default, `owlrl` as the reference semantics.

Measured on this graph (see bench/bench_build.py): owlrl needs minutes for the family plus all of
ICD-10-CM, reasonable seconds. `owl:disjointWith` axioms are withheld from the materialiser (its
memory grows quadratically with them) and checked by the validation step instead.
`reasonable` 0.4 does not implement the property-chain rule (prp-spo2), so it is applied here
between rounds until nothing new follows; the tests check the result against owlrl.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal as Choice

from rdflib import Graph, Literal
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, XSD

Triple = tuple
ENGINES = ("reasonable", "owlrl")
#: Subjects under this prefix (the generated ICD-10-CM release) are left out of the pre-pass.
BULK_PREFIX = "https://w3id.org/medcode/id/icd10cm/"


def _normalise(term):
    """reasonable returns plain literals typed xsd:string; RDF 1.1 says they are the same term."""
    if isinstance(term, Literal) and term.datatype == XSD.string:
        return Literal(str(term))
    return term


def _keep(triple: Triple, asserted: set) -> bool:
    s, p, o = triple
    if triple in asserted or isinstance(s, Literal):
        return False
    # reflexive sameAs (owlrl) and "is an owl:Thing" say nothing about the data
    return not ((p == OWL.sameAs and s == o) or (p == RDF.type and o == OWL.Thing))


def _property_chains(triples: list[Triple]) -> list[tuple[object, list]]:
    """(property, [p1, ..., pn]) for every owl:propertyChainAxiom in the input."""
    graph = Graph()
    for t in triples:
        if t[1] in (OWL.propertyChainAxiom, RDF.first, RDF.rest):
            graph.add(t)
    return [(prop, list(Collection(graph, head))) for prop, head in graph.subject_objects(OWL.propertyChainAxiom)]


def _chain_fixpoint(chains: list[tuple[object, list]], triples: list[Triple]) -> list[Triple]:
    """Chain entailments of the triples the chains can touch, reasoned to a fixpoint (cheap)."""
    if not chains:
        return []
    import reasonable

    small = [t for t in triples if not str(t[0]).startswith(BULK_PREFIX)]
    found: set[Triple] = set()
    while True:
        reasoner = reasonable.PyReasoner()
        reasoner.from_graph(small + list(found))
        closure = [(s, p, _normalise(o)) for s, p, o in reasoner.reason()]
        new = set(_chain_entailments(chains, closure)) - found
        if not new:
            return sorted(found)
        found |= new


def _chain_entailments(chains: list[tuple[object, list]], closure: list[Triple]) -> list[Triple]:
    """prp-spo2: x p1 y1 ... yn-1 pn z  =>  x P z."""
    wanted = {p for _, steps in chains for p in steps}
    by_predicate: dict[object, dict[object, list]] = {p: {} for p in wanted}
    for s, p, o in closure:
        if p in by_predicate:
            by_predicate[p].setdefault(s, []).append(o)
    entailed = []
    for prop, steps in chains:
        frontier = {(s, s) for s in by_predicate[steps[0]]}
        for step in steps:
            index = by_predicate[step]
            frontier = {(start, o) for start, node in frontier for o in index.get(node, ())}
        entailed.extend((start, prop, end) for start, end in frontier)
    return entailed


def infer(asserted: Iterable[Triple], engine: Choice["reasonable", "owlrl"] = "reasonable") -> list[Triple]:
    """Return the triples OWL-RL entails from `asserted` that are not already asserted."""
    triples = [t for t in asserted if t[1] != OWL.disjointWith]
    asserted_set = set(triples)
    if engine == "reasonable":
        import reasonable

        chains = _property_chains(triples)
        reasoner = reasonable.PyReasoner()
        # chain entailments of the small, non-bulk part first, so the full run is usually the only one
        reasoner.from_graph(triples + _chain_fixpoint(chains, triples))
        while True:
            closure = [(s, p, _normalise(o)) for s, p, o in reasoner.reason()]
            candidates = _chain_entailments(chains, closure)
            chained = {prop for prop, _ in chains}
            known = {t for t in closure if t[1] in chained}  # only what the chains can produce
            new = [t for t in candidates if t not in known]
            if not new:
                break
            reasoner.from_graph(new)
        out = iter(closure)
    elif engine == "owlrl":
        import owlrl

        graph = Graph()
        for t in triples:
            graph.add(t)
        owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False,
                               datatype_axioms=False).expand(graph)
        out = iter(graph)
    else:
        raise ValueError(f"unknown reasoner {engine!r} (one of {', '.join(ENGINES)})")
    return [t for t in out if _keep(t, asserted_set)]


