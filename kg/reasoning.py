"""OWL 2 RL materialisation: `reasonable` (Rust) by default, `owlrl` as the reference semantics.

The build reasons in two parts (`infer_partitioned`). The core (the ontology, the curated records and
the ICD-10-CM items they name, with their ancestors) goes through the rule engine. The bulk (the rest
of ICD-10-CM, about 0.7 M triples, a reasoner's minute and 2 GB) needs none: with the core's axioms, a
bulk triple only entails through the rules with one data premise (sub-properties, inverses,
symmetry, domains, ranges, sub-classes) and through transitivity, which `Schema` applies directly.
`Schema.unsupported` checks that this holds for the input at hand (no other axiom names a property
or class the bulk uses, no owl:sameAs); when it does not, the whole graph goes through the engine.
tests/test_partition.py checks the two parts against the engine over everything, triple for triple.

`owl:disjointWith` axioms are withheld from the engine (its memory grows quadratically with them)
and checked by the validation step instead. `reasonable` 0.4 does not implement the property-chain
rule (prp-spo2), so it is applied here between rounds until nothing new follows; the tests check
the result against owlrl.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal as Choice

from rdflib import Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, XSD

Triple = tuple
TYPE = RDF.type  # (a Namespace attribute is looked up on every use)
TYPES = frozenset({TYPE})
TYPE_TEXT = str(TYPE)
XSD_STRING = XSD.string
ENGINES = ("reasonable", "owlrl")
#: namespaces whose terms carry OWL 2 RL rules
VOCABULARY = (str(RDF), str(RDFS), str(OWL))
#: vocabulary predicates no rule reads: annotations and reification (mc:Assertion)
RULE_FREE = frozenset({RDFS.label, RDFS.comment, RDFS.seeAlso, RDFS.isDefinedBy, OWL.versionInfo,
                       OWL.deprecated, RDF.subject, RDF.predicate, RDF.object, RDF.value})
#: axioms between two named terms that the direct closure applies (disjointness: validation checks it)
SIMPLE_AXIOMS = frozenset({RDFS.subClassOf, OWL.equivalentClass, RDFS.subPropertyOf, OWL.equivalentProperty,
                           OWL.inverseOf, RDFS.domain, RDFS.range, OWL.disjointWith})
#: what a property or class the bulk uses may be declared as
SIMPLE_TYPES = frozenset({OWL.Class, RDFS.Class, RDF.Property, OWL.ObjectProperty, OWL.DatatypeProperty,
                          OWL.AnnotationProperty, OWL.TransitiveProperty, OWL.SymmetricProperty})


def _literal(term: object) -> bool:
    """Whether a term is a literal (IRIs first: isinstance on rdflib's terms goes through abc, slowly)."""
    return type(term) is not URIRef and isinstance(term, Literal)


def _normalise(term):
    """reasonable returns plain literals typed xsd:string; RDF 1.1 says they are the same term."""
    if _literal(term) and term.datatype == XSD_STRING:
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


def _reasonable(triples: list[Triple]) -> list[Triple]:
    """The closure by `reasonable`, with prp-spo2 applied between rounds until nothing new follows."""
    import reasonable

    chains = _property_chains(triples)
    chained = {prop for prop, _ in chains}
    reasoner = reasonable.PyReasoner()
    reasoner.from_graph(triples)
    while True:
        closure = [(s, p, _normalise(o)) for s, p, o in reasoner.reason()]
        known = {t for t in closure if t[1] in chained}  # only what the chains can produce
        new = [t for t in _chain_entailments(chains, closure) if t not in known]
        if not new:
            return closure
        reasoner.from_graph(new)


def _owlrl(triples: list[Triple]) -> Graph:
    import owlrl

    graph = Graph()
    for t in triples:
        graph.add(t)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(graph)
    return graph


def infer(asserted: Iterable[Triple], engine: Choice["reasonable", "owlrl"] = "reasonable") -> list[Triple]:
    """Return the triples OWL-RL entails from `asserted` that are not already asserted (one engine run)."""
    triples = [t for t in asserted if t[1] != OWL.disjointWith]
    asserted_set = set(triples)
    if engine == "reasonable":
        closure: Iterable[Triple] = _reasonable(triples)
    elif engine == "owlrl":
        closure = _owlrl(triples)
    else:
        raise ValueError(f"unknown reasoner {engine!r} (one of {', '.join(ENGINES)})")
    return canonical([t for t in closure if _keep(t, asserted_set)])


def canonical(triples: Iterable[Triple]) -> list[Triple]:
    """The triples in one order whatever order they came in (the engine's, and an rdflib graph's, vary from run to
    run), so that what is computed from their order (the derivations) is the same in every build. Blank nodes,
    labelled anew by every parse, sort as equal."""
    return sorted(triples, key=lambda t: (_sort_key(t[1]), _sort_key(t[0]), _sort_key(t[2])))


def _sort_key(term: object) -> tuple[str, str, str, str]:
    if type(term) is URIRef:
        return "", term, "", ""
    if isinstance(term, Literal):
        return "l", term, str(term.datatype or ""), term.language or ""
    return "b", "", "", ""


def infer_partitioned(core: Iterable[Triple], bulk: Iterable[Triple],
                      engine: Choice["reasonable", "owlrl"] = "reasonable",
                      echo: Callable[[str], None] = lambda _line: None, asserted: set | None = None) -> list[Triple]:
    """The same triples as `infer([*core, *bulk], engine)`: the engine reasons over `core`, `Schema` closes
    `bulk` directly. If the axioms allow no direct closure of the bulk, says why and reasons over everything.
    `asserted`: the set of the core's and the bulk's triples, if the caller has it at hand."""
    core, bulk = list(core), list(bulk)
    core_inferred = infer(core, engine)
    schema = Schema.of([*core, *core_inferred])
    problems = schema.unsupported(bulk)
    if problems:
        echo(f"      the bulk needs the rule engine ({'; '.join(problems[:3])}): reasoning over everything")
        return infer([*core, *bulk], engine)
    return schema.close(bulk, core, core_inferred, asserted)


def _is_axiom(triple: Triple) -> bool:
    """Whether a rule reads the triple as an axiom (any vocabulary statement but annotations and data types)."""
    _, p, o = triple
    if p == RDF.type:
        return str(o).startswith(VOCABULARY)
    return str(p).startswith(VOCABULARY) and p not in RULE_FREE


def _reach(start: Iterable, step: Callable[[object], Iterable]) -> frozenset:
    """Everything reachable from `start` (included) through `step`."""
    seen, todo = set(start), list(start)
    while todo:
        for nxt in step(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


def _descendants(edges: dict[object, set]) -> dict[object, set] | None:
    """Everything each node reaches through `edges` (one depth-first pass), or None if they have a cycle."""
    reach: dict[object, set] = {}
    for root in edges:
        path, stack = set(), [(root, False)]  # path: entered, not finished
        while stack:
            node, finishing = stack.pop()
            children = edges.get(node, ())
            if finishing:
                path.discard(node)
                reach[node] = set(children).union(*(reach[c] for c in children))
            elif node in path:  # pushed again by one of its own descendants
                return None
            elif node not in reach:
                path.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in children if c not in reach)
    return reach


def _closure_pairs(edges: dict[object, set]) -> list[tuple[object, object]]:
    """The pairs the transitive closure of `edges` adds; `edges` is extended in place. Semi-naive (paths
    one edge longer each round) when the edges have a cycle."""
    reach = _descendants(edges)
    if reach is not None:
        added = []
        for x, known in edges.items():
            if reached := reach[x] - known:
                known |= reached
                added.extend((x, z) for z in sorted(reached, key=str))  # (sets' order varies between runs)
        return added
    base = {x: tuple(ys) for x, ys in edges.items()}
    added, delta = [], base
    while delta:
        following = {}
        for x, middle in delta.items():
            known = edges[x]
            if reached := {z for y in middle for z in base.get(y, ()) if z not in known}:
                known |= reached
                following[x] = reached
                added.extend((x, z) for z in sorted(reached, key=str))
        delta = following
    return added


@dataclass
class Schema:
    """The axioms of a reasoned core that apply to data: what one data triple entails, and transitivity."""

    axioms: list[Triple]
    supers: dict = field(default_factory=lambda: defaultdict(set))  # property -> direct super-properties
    inverses: dict = field(default_factory=lambda: defaultdict(set))
    domains: dict = field(default_factory=lambda: defaultdict(set))
    ranges: dict = field(default_factory=lambda: defaultdict(set))
    superclasses: dict = field(default_factory=lambda: defaultdict(set))  # class -> direct super-classes
    symmetric: set = field(default_factory=set)
    transitive: set = field(default_factory=set)

    @classmethod
    def of(cls, reasoned: Iterable[Triple]) -> Schema:
        """The schema of a reasoned graph (its asserted and inferred triples)."""
        schema = cls([t for t in reasoned if _is_axiom(t)])
        pairs = {RDFS.subPropertyOf: (schema.supers, False), OWL.equivalentProperty: (schema.supers, True),
                 OWL.inverseOf: (schema.inverses, True), RDFS.domain: (schema.domains, False),
                 RDFS.range: (schema.ranges, False), RDFS.subClassOf: (schema.superclasses, False),
                 OWL.equivalentClass: (schema.superclasses, True)}
        kinds = {OWL.SymmetricProperty: schema.symmetric, OWL.TransitiveProperty: schema.transitive}
        for s, p, o in schema.axioms:
            if p in pairs and isinstance(s, URIRef) and isinstance(o, URIRef):
                index, both_ways = pairs[p]
                index[s].add(o)
                if both_ways:
                    index[o].add(s)
            elif p == RDF.type and o in kinds:
                kinds[o].add(s)
        return schema

    def up(self, cls: object) -> frozenset:
        """The class and all its super-classes, owl:Thing left out."""
        return _reach([cls], lambda c: self.superclasses.get(c, ())) - {OWL.Thing}

    def derived(self, prop: object) -> frozenset:
        """(q, reversed) for every x q y (reversed: y q x) that one x prop y entails, itself included."""
        def step(state):
            q, flipped = state
            yield from ((sup, flipped) for sup in self.supers.get(q, ()))
            yield from ((inv, not flipped) for inv in self.inverses.get(q, ()))
            if q in self.symmetric:
                yield q, not flipped
        return _reach([(prop, False)], step)

    def typed(self, prop: object) -> tuple[frozenset, frozenset]:
        """The classes one x prop y gives x, and those it gives y (domains and ranges, with super-classes)."""
        ends: tuple[set, set] = (set(), set())
        for q, flipped in self.derived(prop):
            for classes, end in ((self.domains.get(q, ()), flipped), (self.ranges.get(q, ()), not flipped)):
                for c in classes:
                    ends[int(end)].update(self.up(c))
        return frozenset(ends[0]), frozenset(ends[1])

    def unsupported(self, bulk: list[Triple]) -> list[str]:
        """Why the direct closure would miss entailments of `bulk`; empty when it is complete."""
        predicates = {p for _, p, _ in bulk} - TYPES
        stated = {o for _, p, o in bulk if p in TYPES}
        used = {q for p in predicates for q, _ in self.derived(p)}
        classes = stated.union(*(c for p in predicates for c in self.typed(p)))
        used |= {c for cls in classes for c in self.up(cls)}
        problems = [f"the bulk states axioms with {term}" for term in sorted(predicates)
                    if _is_axiom((None, term, None))]
        problems += [f"the bulk types a resource {term}" for term in sorted(stated) if _is_axiom((None, TYPE, term))]
        for s, p, o in self.axioms:
            if p == OWL.sameAs and s != o:
                problems.append(f"{s} owl:sameAs {o}")
            elif s in used and not ((p == RDF.type and o in SIMPLE_TYPES)
                                    or (p in SIMPLE_AXIOMS and isinstance(o, URIRef))):
                problems.append(f"{s} {p} {o}")
            elif o in used and not (p == RDF.type or (p in SIMPLE_AXIOMS and isinstance(s, URIRef))):
                problems.append(f"{s} {p} {o}")
        return problems

    def close(self, bulk: list[Triple], core: list[Triple], core_inferred: list[Triple],
              asserted: set | None = None) -> list[Triple]:
        """`core_inferred` plus what `bulk` entails with the core, none of it asserted (see `unsupported`);
        `asserted` is the set of the core and the bulk, if the caller has it."""
        asserted = {*core, *bulk} if asserted is None else asserted
        found = dict.fromkeys(core_inferred)
        edges: dict[object, dict[object, set]] = {q: defaultdict(set) for q in self.transitive}
        emit = _Emitter(self, asserted, found, edges)
        # grouped by predicate (and class, for rdf:type) as text: rdflib's own term comparison is slow
        groups: dict[tuple[str, str], list[Triple]] = defaultdict(list)
        for t in bulk:
            predicate = str(t[1])
            groups[predicate, str(t[2]) if predicate == TYPE_TEXT else ""].append(t)
        for triples in groups.values():
            emit.facts(triples)
        for s, p, o in (*core, *core_inferred):  # the core's part of each transitive relation
            if p in edges:
                edges[p][s].add(o)
        while emit.grown:  # the relations that gained edges since their closure was last taken
            q = min(emit.grown)
            emit.grown.discard(q)
            emit.facts([(x, q, z) for x, z in _closure_pairs(edges[q])])
        return list(found)


class _Emitter:
    """Adds what data triples entail to `found` (once, never an asserted triple), feeding transitive edges."""

    def __init__(self, schema: Schema, asserted: set, found: dict, edges: dict[object, dict[object, set]]) -> None:
        self.schema, self.asserted, self.found, self.edges = schema, asserted, found, edges
        self.grown: set = set()  # transitive properties given new edges

    def _add_types(self, nodes: Iterable, classes: Iterable) -> None:
        asserted, found = self.asserted, self.found
        for c in sorted(classes):
            for node in nodes:
                t = (node, TYPE, c)
                if t not in found and t not in asserted:
                    found[t] = None

    def facts(self, triples: list[Triple]) -> None:
        """Everything each of `triples` (one predicate, or rdf:type and one class) entails alone, given the
        schema; a triple itself only when it is not asserted (a closure's pair)."""
        if not triples:
            return
        _, p, o = triples[0]
        if p in TYPES:
            self._add_types([s for s, _, _ in triples], self.schema.up(o) - {o})
            return
        for q, flipped in sorted(self.schema.derived(p)):
            edges = self.edges.get(q)
            if (q, flipped) != (p, False) or edges is not None:  # not just the triples themselves
                self._derive(triples, q, flipped, edges)
        subject_classes, object_classes = self.schema.typed(p)
        if subject_classes:
            self._add_types([s for s, _, _ in triples], subject_classes)
        if object_classes:
            self._add_types([o for _, _, o in triples if not _literal(o)], object_classes)

    def _derive(self, triples: list[Triple], q: object, flipped: bool, edges: dict | None) -> None:
        """x q y for each x p y (flipped: y q x), and the edge x -> y of a transitive q."""
        asserted, found = self.asserted, self.found
        for s, _, o in triples:
            if flipped:
                if _literal(o):
                    continue
                x, y = o, s
            else:
                x, y = s, _normalise(o)
            t = (x, q, y)
            if t not in found and t not in asserted:
                found[t] = None
            if edges is not None and y not in edges[x]:
                edges[x].add(y)
                self.grown.add(q)
