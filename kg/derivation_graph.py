"""The derivations graph: the justifier's rule instances (kg.derivations) as triples.

The modelling is compact, because the full build infers about a million triples (measured in the
README): a rule instance (`mc:Derivation`) fixes the rule, the predicate it concludes, its premises as
patterns (`mc:PremisePattern`: rdf:subject/predicate/object, where `mc:conclusionSubject`,
`mc:conclusionObject` and `mc:viaNode` stand for the derived triple's subject and object and the
instance's `mc:via`) and, for an asserted schema premise, its `dcterms:source`. Each inferred triple
`s p o` is then one quad `s D o` in the derivations graph, D being its instance (`D mc:conclusionPredicate
p`), unless D is the default of its conclusion (`D mc:defaultFor p`, and `mc:concludedClass C` for
`rdf:type C`): the instance that derives most triples of that predicate (or class) from the triple alone,
which then derives every one of them that states no D of its own. That halves the graph (the ICD-10-CM
labels, narrower links, parents and types). No blank nodes and no RDF-star, so any SPARQL engine loads it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from rdflib import BNode, URIRef
from rdflib.namespace import RDF

from .derivations import CHAIN, TYPE, Instance, Justifier, Triple, _digest, _key, _term
from .namespaces import DCTERMS, ID_BASE, MC, ONTOLOGY_IRI

PREMISE_BASE = ID_BASE + "premise/"
#: triples an instance derives before it becomes its conclusion's default, their `s D o` left out: the ICD-10-CM
#: labels, narrower links, parents and types (about 0.6 M of the 1.16 M triples the graph would have)
DEFAULT_AT_LEAST = 100


def defaults(justifier: Justifier) -> dict[tuple, Instance]:
    """For each conclusion (a predicate; for rdf:type, a class) the instance that derives most of its triples, when
    that is at least DEFAULT_AT_LEAST of them and its premises follow from the triple alone (no mc:via)."""
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for (_, p, o), instance in zip(justifier.inferred, justifier.chosen, strict=True):
        if instance is not None and instance.via is None:
            counts[p, o if p == TYPE else None][instance] += 1
    found = {key: tally.most_common(1)[0] for key, tally in counts.items()}
    return {key: instance for key, (instance, n) in found.items() if n >= DEFAULT_AT_LEAST}


def derivation_triples(justifier: Justifier, inferred: list[Triple], ontology: set) -> Iterator[Triple]:
    """The derivations graph: each instance and premise pattern once, then one `s D o` per justified triple but those
    their conclusion's default instance derives (`D mc:defaultFor p`, and `mc:concludedClass` for a type).
    `ontology`: the ontology's triples (as the justifier's keys), the source of an asserted schema premise."""
    patterns: dict[Triple, URIRef] = {}
    default_of = {id(instance): key for key, instance in defaults(justifier).items()}
    for instance in justifier._instances.values():
        node = instance.iri
        yield node, RDF.type, MC.Derivation
        yield node, MC.rule, MC[instance.rule]
        yield node, MC.conclusionPredicate, URIRef(instance.predicate)
        if instance.via is not None:
            yield node, MC.via, _term(instance.via)
        if id(instance) in default_of:
            predicate, cls = default_of[id(instance)]
            yield node, MC.defaultFor, URIRef(predicate)
            if cls is not None:
                yield node, MC.concludedClass, URIRef(cls)
        for pattern in instance.premises:
            if pattern not in patterns:
                patterns[pattern] = URIRef(PREMISE_BASE + _digest(pattern))
                yield from _pattern(patterns[pattern], pattern, ontology)
            yield node, MC.premise, patterns[pattern]
    for (s, _, o), instance in zip(inferred, justifier.chosen, strict=True):
        if instance is not None and id(instance) not in default_of:
            yield s, instance.iri, o


def _pattern(node: URIRef, pattern: Triple, ontology: set) -> Iterator[Triple]:
    s, p, o = pattern
    yield node, RDF.type, MC.PremisePattern
    yield node, RDF.subject, _term(s)
    yield node, RDF.predicate, _term(p)
    if not isinstance(o, BNode):  # an owl:propertyChainAxiom's list: blank nodes do not cross graphs
        yield node, RDF.object, _term(o)
    if pattern in ontology or p == CHAIN:
        yield node, DCTERMS.source, ONTOLOGY_IRI


def derivations(asserted: Iterable[Triple], inferred: list[Triple],
                ontology: Iterable[Triple]) -> tuple[Iterator[Triple], list[Triple]]:
    """(the derivations graph's triples, made as they are read, so that the justifier's tables go once the graph is
    written; the inferred triples no rule instance was found for)."""
    justifier = Justifier(asserted, inferred)
    chosen = justifier.run()
    ontology_keys = {(_key(s), str(p), _key(o)) for s, p, o in ontology}
    unexplained = [t for t, instance in zip(inferred, chosen, strict=True) if instance is None]
    justifier.facts.clear()  # the largest table, not needed to write the graph
    return derivation_triples(justifier, inferred, ontology_keys), unexplained
