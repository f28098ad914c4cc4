"""The derivation tree of one triple, read from the derivations graph that kg.derivations writes.

Each inferred triple `s p o` is stated there as `s D o`, D a rule instance (`mc:Derivation`) with
`mc:conclusionPredicate p`, its rule and its premise patterns; a pattern's `mc:conclusionSubject`,
`mc:conclusionObject` and `mc:viaNode` stand for s, o and D's `mc:via`; a triple stated with no D of its
own is derived by its conclusion's default (`D mc:defaultFor p`). The tree follows premises down
to asserted triples, each with the document it comes from: its `mc:Assertion`'s source, else its
subject's own (a code pair edit, an ICD-10-CM note), else its code system's (the ICD-10-CM release),
and for an ontology axiom the ontology. The build made every derivation use only triples justified
before it, so the tree is finite; a node limit guards the page all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.contract import GRAPH_DERIVATIONS, INFERENCE_GRAPHS, MC, ONTOLOGY_IRI, PREFIXES

from ..pages.terms import Term, term_of
from ..store import QueryError, select

MAX_NODES = 300  # triples shown in one tree
DERIVATIONS = [str(GRAPH_DERIVATIONS)]
PLACEHOLDERS = {str(MC.conclusionSubject): 0, str(MC.conclusionObject): 2}
VIA = str(MC.viaNode)
TYPE = PREFIXES["rdf"] + "type"
VOCABULARIES = tuple(PREFIXES[p] for p in ("mc", "skos", "owl", "rdf", "rdfs"))
# the terms are written in by Oxigraph (`_nt`, escaped): a VALUES block made Oxigraph scan every derivation
# (3.3 s a question on the full graph, against 3 ms with the terms in place)
STATUS_QUERY = "SELECT ?g WHERE {{ GRAPH ?g {{ {s} {p} {o} }} }}"
DERIVATION_QUERY = """SELECT ?d ?rule ?via WHERE {{ GRAPH {graph} {{ {s} ?d {o} .
  ?d mc:conclusionPredicate {p} ; mc:rule ?rule . OPTIONAL {{ ?d mc:via ?via }} }} }} LIMIT 1"""
# a triple with no derivation of its own is derived by its conclusion's default (kg.derivations.defaults)
# (two queries, not one FILTER over an OPTIONAL class: Virtuoso answered that with nothing)
DEFAULT_QUERY = "SELECT ?d ?rule WHERE {{ GRAPH {graph} {{ ?d mc:defaultFor {p} ; mc:rule ?rule }} }} LIMIT 1"
DEFAULT_TYPE_QUERY = """SELECT ?d ?rule WHERE {{ GRAPH {graph} {{
  ?d mc:defaultFor rdf:type ; mc:concludedClass {o} ; mc:rule ?rule }} }} LIMIT 1"""
PREMISES_QUERY = """SELECT ?pattern ?ps ?pp ?po ?src WHERE {{ GRAPH {graph} {{
  {d} mc:premise ?pattern . ?pattern rdf:subject ?ps ; rdf:predicate ?pp .
  OPTIONAL {{ ?pattern rdf:object ?po }} OPTIONAL {{ ?pattern dcterms:source ?src }} }} }} ORDER BY ?pattern"""
# the string kinds order the answers (Virtuoso gives BIND(true ...) back as an integer)
SOURCES_QUERY = """SELECT DISTINCT ?src ?kind WHERE {{
  {{ ?a rdf:subject {s} ; rdf:predicate {p} ; rdf:object {o} ; dcterms:source ?src . BIND("1" AS ?kind) }}
  UNION {{ {s} dcterms:source ?src . BIND("2" AS ?kind) }}
  UNION {{ {s} skos:inScheme ?scheme . ?scheme dcterms:source ?src . BIND("3" AS ?kind) }} }}"""


class TreeTooLarge(Exception):
    """More than MAX_NODES triples below one question."""


@dataclass
class Node:
    """One triple of a tree: asserted (with its sources) or inferred (with its rule and premises)."""

    triple: tuple[Term, Term, Term | None]  # no object: a property chain axiom (its list is a blank node)
    status: str  # asserted | inferred
    sources: list[str] = field(default_factory=list)
    rule: str = ""
    derivation: str = ""
    via: Term | None = None
    premises: list[Node] = field(default_factory=list)

    def documents(self) -> set[str]:
        """Every source document the tree ends in."""
        return set(self.sources).union(*(p.documents() for p in self.premises))


def _nt(term: Term) -> str:
    """A term as SPARQL writes it, serialised (and so escaped) by Oxigraph; ValueError for a bad IRI."""
    if term.is_iri:
        return str(ox.NamedNode(term.value))
    if term.lang:
        return str(ox.Literal(term.value, language=term.lang))
    return str(ox.Literal(term.value, datatype=ox.NamedNode(term.datatype) if term.datatype else None))


def _select(query: str, named: list[str], **terms: Term) -> list[dict[str, Term]]:
    rows = select(query.format(graph=f"<{GRAPH_DERIVATIONS}>", **{k: _nt(v) for k, v in terms.items()}), named=named)
    return [{k: term_of(v) for k, v in row.items()} for row in rows]


def status(s: Term, p: Term, o: Term) -> str | None:
    """'asserted', 'inferred', or None when the graph holds no such triple."""
    graphs = {row["g"].value for row in _select(STATUS_QUERY, INFERENCE_GRAPHS["all"], s=s, p=p, o=o)}
    if INFERENCE_GRAPHS["asserted"][0] in graphs:
        return "asserted"
    return "inferred" if graphs else None


class Explainer:
    """Builds trees, asking the store once per triple and once per rule instance."""

    def __init__(self) -> None:
        self.nodes = 0
        self.patterns: dict[str, list[dict[str, Term]]] = {}

    def explain(self, s: Term, p: Term, o: Term, state: str, path: frozenset = frozenset()) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise TreeTooLarge(f"the derivation has more than {MAX_NODES} triples")
        if state == "asserted":
            return Node((s, p, o), state, self._sources(s, p, o))
        rows = (_select(DERIVATION_QUERY, DERIVATIONS, s=s, p=p, o=o)
                or _select(DEFAULT_TYPE_QUERY if p.value == TYPE else DEFAULT_QUERY, DERIVATIONS, p=p, o=o))
        if not rows:
            return Node((s, p, o), state)  # no derivation recorded (the build said so)
        row = rows[0]
        node = Node((s, p, o), state, rule=row["rule"].value, derivation=row["d"].value, via=row.get("via"))
        below = path | {(s, p, o)}
        for pattern in self._premises(row["d"]):
            node.premises.append(self._premise(node, pattern, below))
        return node

    def _premises(self, derivation: Term) -> list[dict[str, Term]]:
        if derivation.value not in self.patterns:
            self.patterns[derivation.value] = _select(PREMISES_QUERY, DERIVATIONS, d=derivation)
        return self.patterns[derivation.value]

    def _premise(self, node: Node, pattern: dict[str, Term], path: frozenset) -> Node:
        s, p, o = (self._fill(node, pattern.get(k)) for k in ("ps", "pp", "po"))
        if o is None or "src" in pattern:  # an ontology axiom: asserted, its source recorded with it
            self.nodes += 1
            return Node((s, p, o), "asserted", [pattern["src"].value] if "src" in pattern else [])
        if (s, p, o) in path:
            raise QueryError(500, "the recorded derivations have a cycle")
        state = status(s, p, o)
        if state is None:
            raise QueryError(500, f"a premise of {node.derivation} is not in the graph")
        return self.explain(s, p, o, state, path)

    @staticmethod
    def _fill(node: Node, term: Term | None) -> Term | None:
        if term is None:
            return None
        if term.value in PLACEHOLDERS and term.is_iri:
            return node.triple[PLACEHOLDERS[term.value]]
        return node.via if term.is_iri and term.value == VIA else term

    @staticmethod
    def _sources(s: Term, p: Term, o: Term) -> list[str]:
        rows = _select(SOURCES_QUERY, INFERENCE_GRAPHS["all"], s=s, p=p, o=o)
        if not rows and s.value.startswith(VOCABULARIES):  # a term of the ontology (or of the SKOS axioms it states)
            return [str(ONTOLOGY_IRI)]
        best = min((row["kind"].value for row in rows), default=None)
        return sorted({row["src"].value for row in rows if row["kind"].value == best})
