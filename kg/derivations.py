"""Why each inferred triple holds: for every one, an OWL 2 RL rule instance whose premises hold before it.

Neither reasoning engine records provenance, so this justifier replays the rules after the fact, goal
first: given the asserted triples and the inferred ones, it looks for each inferred triple for one rule
(named as in the W3C OWL 2 RL profile, tables 4-9) whose premises are asserted or already justified.
It goes through the inferred triples grouped so that premises mostly come first (schema, then
properties, transitive ones bottom-up, then types from the most specific class), then again over what
is left until nothing more is justified. A justification only ever uses triples justified before it,
so the derivations are well-founded and every tree is finite.

The derivations graph it fills is written by kg.derivation_graph.

Terms are handled as plain strings (IRIs) while justifying: rdflib's term equality runs in Python and
cost most of the time when the triples' terms were distinct objects.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from sys import intern

from rdflib import BNode, URIRef
from rdflib.namespace import OWL, RDF, RDFS

from .namespaces import ID_BASE, MC
from .reasoning import _property_chains

Triple = tuple
DERIVATION_BASE = ID_BASE + "derivation/"
# the terms the rules read, as the plain strings the justifier compares
TYPE, SUB_CLASS, SUB_PROPERTY = str(RDF.type), str(RDFS.subClassOf), str(RDFS.subPropertyOf)
DOMAIN, RANGE, INVERSE = str(RDFS.domain), str(RDFS.range), str(OWL.inverseOf)
EQ_CLASS, EQ_PROPERTY, CHAIN = str(OWL.equivalentClass), str(OWL.equivalentProperty), str(OWL.propertyChainAxiom)
TRANSITIVE, SYMMETRIC = str(OWL.TransitiveProperty), str(OWL.SymmetricProperty)
CLASS, THING, NOTHING = str(OWL.Class), str(OWL.Thing), str(OWL.Nothing)
OBJECT_PROPERTY, DATATYPE_PROPERTY = str(OWL.ObjectProperty), str(OWL.DatatypeProperty)
SUBJECT, OBJECT, VIA = str(MC.conclusionSubject), str(MC.conclusionObject), str(MC.viaNode)
AXIOMS = frozenset({SUB_CLASS, EQ_CLASS, SUB_PROPERTY, EQ_PROPERTY, INVERSE, DOMAIN, RANGE, CHAIN})
SCHEMA = AXIOMS | {str(RDF.first), str(RDF.rest)}
#: the OWL 2 RL rules the justifier applies (those the ontology's axioms call for, and their kin)
RULES = ("cls-thing", "cls-nothing1", "cax-sco", "cax-eqc1", "cax-eqc2", "prp-dom", "prp-rng", "prp-spo1",
         "prp-eqp1", "prp-eqp2", "prp-inv1", "prp-inv2", "prp-symp", "prp-trp", "prp-spo2", "scm-cls", "scm-sco",
         "scm-eqc1", "scm-op", "scm-dp", "scm-spo", "scm-eqp1", "scm-dom1", "scm-dom2", "scm-rng1", "scm-rng2")


def _key(term: object) -> object:
    """An IRI as a plain string, interned (hashed and compared in C, held once); literals and blank nodes stay."""
    return intern(str(term)) if type(term) is URIRef else term


def _keys(triples: Iterable[Triple]) -> list[Triple]:
    return [(_key(s), intern(str(p)), _key(o)) for s, p, o in triples]


def _term(key: object) -> object:
    return URIRef(key) if type(key) is str else key


def _digest(terms: Iterable[object]) -> str:
    """A stable 16-hex-digit name for a tuple of terms (their N-Triples forms), the same in every build: a blank
    node (an owl:propertyChainAxiom's list, named anew by every parse) counts as `_:`, not by its label."""
    text = "\x1f".join(f"<{t}>" if type(t) is str else "_:" if isinstance(t, BNode) else t.n3() for t in terms)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Instance:
    """A rule with everything but the derived triple's own subject and object fixed; named by its content."""

    __slots__ = ("iri", "predicate", "premises", "rule", "via")

    def __init__(self, rule: str, predicate: str, premises: tuple[Triple, ...], via: object = None) -> None:
        self.rule, self.predicate, self.premises, self.via = rule, predicate, premises, via
        parts = (rule, predicate, *(x for t in premises for x in t), *(() if via is None else (via,)))
        self.iri = URIRef(DERIVATION_BASE + _digest(parts))


class _Schema:
    """The axioms among the asserted and inferred triples, indexed by the term a rule reaches them from."""

    def __init__(self, axioms: list[Triple], chains: list[tuple[object, list]]) -> None:
        self.sub_classes: dict = defaultdict(list)  # D -> [C] for C ⊑ D
        #: D -> [(C, rule, axiom)]: x a C gives x a D (cax-sco, cax-eqc1/2)
        self.class_steps: dict = defaultdict(list)
        #: q -> [(p, rule, axiom)]: x p y gives x q y (prp-spo1, prp-eqp1/2)
        self.property_steps: dict = defaultdict(list)
        #: q -> [(p, rule, axiom)]: y p x gives x q y (prp-inv1/2)
        self.inverses: dict = defaultdict(list)
        self.domain_of: dict = defaultdict(list)  # C -> [q] for q domain C
        self.range_of: dict = defaultdict(list)  # C -> [q] for q range C
        self.chain_axioms = {s: (s, p, o) for s, p, o in axioms if p == CHAIN}
        self.chains: dict = defaultdict(list)  # P -> [[p1, ..., pn]]
        for prop, steps in chains:
            self.chains[_key(prop)].append([_key(step) for step in steps])
        both_ways = {EQ_CLASS: (self.class_steps, "cax-eqc"), EQ_PROPERTY: (self.property_steps, "prp-eqp"),
                     INVERSE: (self.inverses, "prp-inv")}
        for s, p, o in axioms:
            if type(s) is not str or type(o) is not str:
                continue
            if p == SUB_CLASS:
                self.sub_classes[o].append(s)
                self.class_steps[o].append((s, "cax-sco", (s, p, o)))
            elif p == SUB_PROPERTY:
                self.property_steps[o].append((s, "prp-spo1", (s, p, o)))
            elif p in (DOMAIN, RANGE):
                (self.domain_of if p == DOMAIN else self.range_of)[o].append(s)
            elif p in both_ways:
                index, rule = both_ways[p]
                index[o].append((s, rule + "1", (s, p, o)))
                index[s].append((o, rule + "2", (s, p, o)))

    def depth(self, cls: str) -> int:
        """How many super-classes `cls` has (a sub-class has more than any of its super-classes)."""
        supers: dict = defaultdict(list)
        for d, cs in self.sub_classes.items():
            for c in cs:
                supers[c].append(d)
        seen, todo = {cls}, [cls]
        while todo:
            for d in supers.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return len(seen)


def _bottom_up(edges: dict[object, list]) -> list | None:
    """The nodes with successors in `edges`, each after all of its successors; None if the edges have a cycle."""
    waiting = {x: len(set(ys)) for x, ys in edges.items()}
    before: dict = defaultdict(list)
    for x, ys in edges.items():
        for y in set(ys):
            before[y].append(x)
    ready = [y for y in before if y not in edges]
    order = []
    while ready:
        y = ready.pop()
        if y in edges:
            order.append(y)
        for x in before.get(y, ()):
            waiting[x] -= 1
            if waiting[x] == 0:
                ready.append(x)
    return order if len(order) == len(edges) else None


class Justifier:
    """Finds one rule instance for each inferred triple (see the module's docstring)."""

    def __init__(self, asserted: Iterable[Triple], inferred: list[Triple]) -> None:
        stated: dict[str, list[Triple]] = defaultdict(list)  # the asserted triples by predicate
        for t in asserted:
            stated[intern(str(t[1]))].append(t)
        self.inferred = [(intern(str(s)), intern(str(p)), intern(str(o)) if type(o) is URIRef else o)
                         for s, p, o in inferred]  # (subjects are IRIs: the reasoning keeps no other)
        by_predicate: dict[str, list[Triple]] = {p: _keys(stated.get(p, ())) for p in (*AXIOMS, TYPE)}
        # the schema, asserted or inferred (an inferred axiom is a premise once it is justified itself)
        schema = [t for t in self.inferred if t[1] in AXIOMS or (t[1] == TYPE and t[2] in (TRANSITIVE, SYMMETRIC))]
        schema += [t for p in AXIOMS for t in by_predicate[p]]
        lists = [t for p in (CHAIN, str(RDF.first), str(RDF.rest)) for t in stated.get(p, ())]
        self.schema = _Schema([t for t in schema if t[1] in AXIOMS], _property_chains(lists))
        characteristics = [(s, o) for s, p, o in (*schema, *by_predicate[TYPE]) if p == TYPE
                           and o in (TRANSITIVE, SYMMETRIC)]
        self.transitive = {s for s, o in characteristics if o == TRANSITIVE}
        self.symmetric = {s for s, o in characteristics if o == SYMMETRIC}
        chained = {step for chains in self.schema.chains.values() for steps in chains for step in steps}
        domains = {q for qs in self.schema.domain_of.values() for q in qs}
        ranges = {q for qs in self.schema.range_of.values() for q in qs}
        #: q -> s -> [y] for every known s q y of the properties a rule searches forward (and backward)
        self.forward: dict = {q: defaultdict(list) for q in (*self.transitive, *chained, *domains,
                                                             SUB_CLASS, SUB_PROPERTY)}
        self.backward: dict = {q: defaultdict(list) for q in ranges}
        # only what a rule can take as a premise is converted and kept
        premises = {*by_predicate, *self.forward, *self.backward, *self.symmetric,
                    *(q for steps in (*self.schema.property_steps.values(), *self.schema.inverses.values())
                      for q, _, _ in steps)}
        for p in premises - set(by_predicate):
            by_predicate[p] = _keys(stated.get(p, ()))
        #: what is known so far: the asserted premises, then each inferred triple once it is justified
        self.facts: set = {t for triples in by_predicate.values() for t in triples}
        for q, index in self.forward.items():
            for s, _, o in by_predicate[q]:
                index[s].append(o)
        for q, index in self.backward.items():
            for s, _, o in by_predicate[q]:
                index[o].append(s)
        self.chosen: list[Instance | None] = [None] * len(self.inferred)
        self._instances: dict[tuple, Instance] = {}

    def _index(self, t: Triple) -> None:
        s, p, o = t
        if p in self.forward:
            self.forward[p][s].append(o)
        if p in self.backward:
            self.backward[p][o].append(s)

    def _record(self, i: int, instance: Instance) -> None:
        t = self.inferred[i]
        self.chosen[i] = instance
        self.facts.add(t)
        self._index(t)

    def _instance(self, key: tuple, rule: str, predicate: str, premises: tuple, via: object = None) -> Instance:
        """The one Instance per `key` (the rule, its predicate and what else tells its instances apart)."""
        found = self._instances.get(key)
        if found is None:
            found = self._instances[key] = Instance(rule, predicate, premises, via)
        return found

    def run(self) -> list[Instance | None]:
        """The instance of each inferred triple (in their order), None where no rule reaches it."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (_, p, o) in enumerate(self.inferred):
            groups[p, o if p == TYPE else None].append(i)
        pending: list[int] = []
        for (p, _), indices in sorted(groups.items(), key=lambda item: self._rank(*item[0])):
            if p in self.transitive:
                pending += self._transitive(p, indices)
            else:
                pending += self._attempt(indices)
        while pending:
            left = self._attempt(pending)
            if len(left) == len(pending):
                break
            pending = left
        return self.chosen

    def _rank(self, p: str, cls: str | None) -> tuple[int, int]:
        """Schema first, then properties (transitive ones last), then types from the most specific class."""
        if cls is not None:
            return 3, -self.schema.depth(cls)
        if p in AXIOMS:
            return 0, 0
        return (2 if p in self.transitive else 1), 0

    def _attempt(self, indices: list[int]) -> list[int]:
        """Justify what can be of `indices` now; the rest."""
        left = []
        for i in indices:
            instance = self._justify(*self.inferred[i])
            if instance is None:
                left.append(i)
            else:
                self._record(i, instance)
        return left

    def _transitive(self, p: str, indices: list[int]) -> list[int]:
        """A transitive property's triples: by the other rules first; then by prp-trp subject by subject, from
        the top of the relation down, so that y p o is settled before any x p o through x p y."""
        rest = [i for i in indices if not self._attempt_without_transitivity(i)]
        base = {x: list(ys) for x, ys in self.forward[p].items()}
        order = _bottom_up(base)
        if order is None or (p, TYPE, TRANSITIVE) not in self.facts:
            return rest  # a cycle (symmetric and transitive): the passes over what is left settle it
        by_subject: dict = defaultdict(list)
        for i in rest:
            by_subject[self.inferred[i][0]].append(i)
        left = []
        for x in order:
            for i in by_subject.pop(x, ()):
                o = self.inferred[i][2]
                y = next((y for y in base[x] if y != o and (y, p, o) in self.facts), None)
                if y is None:
                    left.append(i)
                else:
                    self._record(i, self._trp(p, y))
        return left + [i for indices in by_subject.values() for i in indices]

    def _attempt_without_transitivity(self, i: int) -> bool:
        instance = self._property(*self.inferred[i], transitivity=False)
        if instance is not None:
            self._record(i, instance)
        return instance is not None

    def _trp(self, p: str, y: object) -> Instance:
        return self._instance(("prp-trp", p, y), "prp-trp", p,
                              ((SUBJECT, p, VIA), (VIA, p, OBJECT), (p, TYPE, TRANSITIVE)), y)

    def _justify(self, s: object, p: str, o: object) -> Instance | None:
        if p == TYPE:
            return self._typed(s, o)
        if p in AXIOMS:
            return self._schema_rule(s, p, o)
        return self._property(s, p, o)

    def _typed(self, s: object, cls: object) -> Instance | None:
        """s a cls: cls-thing, cls-nothing1, cax-sco, cax-eqc1/2, prp-dom, prp-rng."""
        if s in (THING, NOTHING) and cls == CLASS:
            rule = "cls-thing" if s == THING else "cls-nothing1"
            return self._instance((rule,), rule, TYPE, ())
        for c, rule, axiom in self.schema.class_steps.get(cls, ()):
            if (s, TYPE, c) in self.facts and axiom in self.facts:
                return self._instance((rule, c, cls), rule, TYPE, ((SUBJECT, TYPE, c), axiom))
        for q in self.schema.domain_of.get(cls, ()):
            axiom = (q, DOMAIN, cls)
            if (ys := self.forward[q].get(s)) and axiom in self.facts:
                return self._instance(("prp-dom", q, cls, ys[0]), "prp-dom", TYPE, ((SUBJECT, q, VIA), axiom), ys[0])
        for q in self.schema.range_of.get(cls, ()):
            axiom = (q, RANGE, cls)
            if (xs := self.backward[q].get(s)) and axiom in self.facts:
                return self._instance(("prp-rng", q, cls, xs[0]), "prp-rng", TYPE, ((VIA, q, SUBJECT), axiom), xs[0])
        return None

    def _property(self, s: object, p: str, o: object, transitivity: bool = True) -> Instance | None:
        """s p o: prp-spo1, prp-eqp1/2, prp-inv1/2, prp-symp, prp-trp, prp-spo2."""
        for q, rule, axiom in self.schema.property_steps.get(p, ()):
            if (s, q, o) in self.facts and axiom in self.facts:
                return self._instance((rule, q, p), rule, p, ((SUBJECT, q, OBJECT), axiom))
        for q, rule, axiom in self.schema.inverses.get(p, ()):
            if (o, q, s) in self.facts and axiom in self.facts:
                return self._instance((rule, q, p), rule, p, ((OBJECT, q, SUBJECT), axiom))
        if p in self.symmetric and (o, p, s) in self.facts and (p, TYPE, SYMMETRIC) in self.facts:
            return self._instance(("prp-symp", p), "prp-symp", p, ((OBJECT, p, SUBJECT), (p, TYPE, SYMMETRIC)))
        if transitivity and p in self.transitive and (p, TYPE, TRANSITIVE) in self.facts:
            y = next((y for y in self.forward[p].get(s, ()) if y != o and (y, p, o) in self.facts), None)
            if y is not None:
                return self._trp(p, y)
        for steps in self.schema.chains.get(p, ()):
            found = self._chain(s, steps, o)
            if found is not None:
                via = found[0][0][2] if len(steps) == 2 else None
                key = ("prp-spo2", p, found[0] if via is None else via)
                return self._instance(key, "prp-spo2", p, (*found[1], self.schema.chain_axioms[p]), via)
        return None

    def _chain(self, s: object, steps: list, o: object) -> tuple[tuple, tuple] | None:
        """A path s p1 y1 ... pn o of known triples: (the path's triples, their patterns), or None. A two-step
        chain's middle node is the instance's `mc:via`; a longer one's nodes are stated in its patterns."""
        paths = [[s]]
        for step in steps[:-1]:
            paths = [[*path, y] for path in paths for y in self.forward[step].get(path[-1], ())]
        for path in paths:
            if (path[-1], steps[-1], o) in self.facts:
                nodes = [*path, o]
                named = [SUBJECT, VIA, OBJECT] if len(steps) == 2 else [SUBJECT, *path[1:], OBJECT]
                return (tuple((nodes[i], step, nodes[i + 1]) for i, step in enumerate(steps)),
                        tuple((named[i], step, named[i + 1]) for i, step in enumerate(steps)))
        return None

    def _schema_rule(self, s: object, p: str, o: object) -> Instance | None:
        """Schema triples: scm-cls, scm-op/dp, scm-eqc1/eqp1, scm-sco/spo, scm-dom1/2, scm-rng1/2."""
        if p in (SUB_CLASS, SUB_PROPERTY) and (s == o or (p == SUB_CLASS and (o == THING or s == NOTHING))):
            return self._reflexive(s, p, o)
        if p in (SUB_CLASS, SUB_PROPERTY):
            equivalent, rule = (EQ_CLASS, "scm-eqc1") if p == SUB_CLASS else (EQ_PROPERTY, "scm-eqp1")
            for axiom, node in (((s, equivalent, o), SUBJECT), ((o, equivalent, s), OBJECT)):
                if axiom in self.facts:
                    pattern = (SUBJECT, equivalent, OBJECT) if node == SUBJECT else (OBJECT, equivalent, SUBJECT)
                    return self._stated(rule, s, p, o, (pattern,))
            rule = "scm-sco" if p == SUB_CLASS else "scm-spo"
            y = next((y for y in self.forward[p].get(s, ()) if y != o and (y, p, o) in self.facts), None)
            return None if y is None else self._stated(rule, s, p, o, ((SUBJECT, p, VIA), (VIA, p, OBJECT)), y)
        if p in (DOMAIN, RANGE):
            return self._domain_range(s, p, o)
        return None

    def _reflexive(self, s: object, p: str, o: object) -> Instance | None:
        """scm-cls (C ⊑ C, C ⊑ owl:Thing, owl:Nothing ⊑ C) and scm-op/scm-dp (p ⊑ p)."""
        cls, node = (o, OBJECT) if s == NOTHING else (s, SUBJECT)
        kinds = (((CLASS, "scm-cls"),) if p == SUB_CLASS
                 else ((OBJECT_PROPERTY, "scm-op"), (DATATYPE_PROPERTY, "scm-dp")))
        for kind, rule in kinds:
            if (cls, TYPE, kind) in self.facts:
                return self._stated(rule, s, p, o, ((node, TYPE, kind),))
        return None

    def _domain_range(self, s: object, p: str, o: object) -> Instance | None:
        """scm-dom1/scm-rng1 (q domain C, C ⊑ D) and scm-dom2/scm-rng2 (q2 domain C, q ⊑ q2)."""
        name = "dom" if p == DOMAIN else "rng"
        for c in self.schema.sub_classes.get(o, ()):
            if (s, p, c) in self.facts and (c, SUB_CLASS, o) in self.facts:
                return self._stated(f"scm-{name}1", s, p, o, ((SUBJECT, p, c), (c, SUB_CLASS, OBJECT)))
        for q in self.forward[SUB_PROPERTY].get(s, ()):
            if (q, p, o) in self.facts:
                return self._stated(f"scm-{name}2", s, p, o, ((q, p, OBJECT), (SUBJECT, SUB_PROPERTY, q)))
        return None


    def _stated(self, rule: str, s: object, p: str, o: object, patterns: tuple, via: object = None) -> Instance:
        """A schema triple's instance, its premises stated in full: the few axioms they are then carry their source."""
        filled = tuple(tuple(s if t == SUBJECT else o if t == OBJECT else via if t == VIA else t for t in pattern)
                       for pattern in patterns)
        return self._instance((rule, s, p, o), rule, p, filled, via)
