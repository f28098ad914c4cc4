"""What the graph says about one resource, with provenance, and the RDF documents the pages serve.

A `Description` is every triple with the resource as subject, each marked asserted or inferred and
given the sources of its `mc:Assertion`s; an inferred fact with no source of its own names the
sourced statements that entail it. The CONSTRUCT builders give the same content as RDF.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..http.formats import Format
from .fanout import gather
from .terms import INFERRED, SKOS, TYPE, Term, iri_list, natural, not_itself, run, select_terms, sparql_iri, valid_iri
from .vocab import vocab

# inverse links the reasoner adds for every member of a scheme or child of a concept: pages list
# those members and children paged (from the other direction), never all at once
UNBOUNDED = (SKOS + "hasTopConcept", SKOS + "narrower", SKOS + "narrowerTransitive")
_NOT_UNBOUNDED = f"FILTER(?p NOT IN ({', '.join(f'<{p}>' for p in UNBOUNDED)}))"


@dataclass
class Fact:
    """One value of one property, with where it comes from."""

    prop: str
    value: Term
    inferred: bool
    sources: list[str] = field(default_factory=list)
    via: list[tuple[str, str, str, bool]] = field(default_factory=list)  # (other, predicate, source, reverse)
    subject: str = ""  # the resource the fact is about (its "why?" link names the whole triple)


@dataclass
class Description:
    """The facts about `iri`, also grouped by property."""

    iri: str
    facts: list[Fact]
    by_prop: dict[str, list[Fact]]

    def get(self, prop: str) -> list[Fact]:
        return self.by_prop.get(prop, [])

    def iris(self) -> set[str]:
        """Every IRI a page of this description links to (properties, values, sources)."""
        found = set()
        for f in self.facts:
            found.add(f.prop)
            if f.value.is_iri:
                found.add(f.value.value)
            found.update(f.sources)
            found.update(x for v in f.via for x in (v[0], v[2]))
        return found

    def types(self) -> set[str]:
        return {f.value.value for f in self.get(TYPE)}


def empty(iri: str) -> Description:
    """The description of a resource the graph states nothing about (it is only linked to)."""
    return Description(iri, [], {})


def _assertions(s: str) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[tuple[str, str, bool]]]]:
    """Sources per (property, value) of the resource's assertions, and the sourced statements per
    resource it is linked with: (predicate, source, True when the other resource is the subject)."""
    direct: dict[tuple[str, str], list[str]] = defaultdict(list)
    related: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    # the direction is a string: some engines (Virtuoso) answer BIND(true ...) with the integer 1
    for row in select_terms(f"""SELECT ?x ?p ?o ?src ?dir WHERE {{
        {{ ?a rdf:subject {s} ; rdf:predicate ?p ; rdf:object ?o ; dcterms:source ?src . BIND("out" AS ?dir) }}
        UNION {{ ?a rdf:object {s} ; rdf:subject ?x ; rdf:predicate ?p ; dcterms:source ?src . BIND("in" AS ?dir) }}
    }}"""):
        if row["dir"].value == "in":
            related[row["x"].value].append((row["p"].value, row["src"].value, True))
            continue
        o = row["o"]
        direct[(row["p"].value, o.value)].append(row["src"].value)
        if o.is_iri:
            related[o.value].append((row["p"].value, row["src"].value, False))
    return direct, related


def describe(iri: str) -> Description | None:
    """Every triple with `iri` as subject (less UNBOUNDED and those relating it to itself), marked inferred or
    not, with its sources."""
    s = sparql_iri(iri)
    rows, (direct, related) = gather(
        lambda: select_terms(f"SELECT ?p ?o ?g WHERE {{ GRAPH ?g {{ {s} ?p ?o }} {_NOT_UNBOUNDED} "
                             f"{not_itself('?o', iri)} }}"),
        lambda: _assertions(s))
    if not rows and not exists(iri):
        return None
    graphs: dict[tuple[str, Term], set[str]] = {}
    for row in rows:
        graphs.setdefault((row["p"].value, row["o"]), set()).add(row["g"].value)
    facts = []
    v = vocab()
    for (p, o), gs in graphs.items():
        fact = Fact(p, o, gs == {INFERRED}, sorted(set(direct.get((p, o.value), []))), subject=iri)
        if fact.inferred and not fact.sources and o.is_iri:
            # the sourced statements between the same two resources that entail this one
            candidates = sorted(set(related.get(o.value, [])))
            fact.via = [(o.value, vp, src, rev) for vp, src, rev in candidates if v.explains(p, vp, rev)]
        facts.append(fact)
    facts.sort(key=lambda f: (f.prop, natural(f.value.value)))
    by_prop: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        by_prop[f.prop].append(f)
    return Description(iri, facts, dict(by_prop))


def exists(iri: str) -> bool:
    """Does the graph mention `iri` at all (as subject or object)?"""
    if not valid_iri(iri):
        return False
    s = sparql_iri(iri)
    return bool(select_terms(f"SELECT ?x WHERE {{ {{ {s} ?p ?o }} UNION {{ ?x ?p {s} }} }} LIMIT 1"))


def group(facts: list[Fact], skip: Iterable[str] = frozenset()) -> list[tuple[str, list[Fact]]]:
    """Facts by property, in the order they come, less the properties in `skip`."""
    skipped = set(skip)
    groups: dict[str, list[Fact]] = {}
    for f in facts:
        if f.prop not in skipped:
            groups.setdefault(f.prop, []).append(f)
    return list(groups.items())


# ------------------------------------------------------------------------------------ RDF output


def rdf_body(construct: str, fmt: Format, graphs: str = "all") -> bytes:
    """Run a CONSTRUCT and serialise it; JSON-LD is compacted with the published context."""
    if fmt.name != "jsonld":
        return run(construct, fmt.name, graphs)
    import rdflib

    graph = rdflib.Graph()
    graph.parse(data=run(construct, "ntriples", graphs).decode(), format="nt")
    return graph.serialize(format="json-ld", context=vocab().context, auto_compact=True).encode()


LINK_PROPERTIES = ("skos:notation", "skos:prefLabel", "rdfs:label", "dcterms:title", "mc:billable")


def _label_branch(pattern: str) -> str:
    """Labels of the ?s that `pattern` binds, one UNION branch per property (`?s ?p ?o FILTER(?p IN …)` makes
    Virtuoso read every property of every ?s)."""
    union = " UNION ".join(f"{{ ?s {p} ?o BIND({p} AS ?p) }}" for p in LINK_PROPERTIES)
    return f"{{ {{ SELECT DISTINCT ?s WHERE {{ {pattern} FILTER(isIRI(?s)) }} }} {{ {union} }} }}"


def describe_rdf(iri: str, fmt: Format, extra: Iterable[tuple[str, str, str]] = ()) -> bytes:
    """The resource (less what relates it to itself), the nodes it owns (profiles, steps, indications, history,
    ICD-10-CM notes), its edits, its sourced assertions, the labels of what it links to, and `extra` triples
    (the current page of reverse links)."""
    s = sparql_iri(iri)
    extra = list(extra)
    linked = " ".join(f"({sparql_iri(a)} {sparql_iri(b)} {sparql_iri(c)})" for a, b, c in extra)
    extra_iris = {x for a, _, c in extra for x in (a, c)}
    query = f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
      {{ VALUES ?s {{ {s} }} ?s ?p ?o {_NOT_UNBOUNDED} {not_itself('?o', iri)} }}
      UNION {{ {s} (mc:profile|mc:indication|mc:history|mc:profile/mc:procedureStep) ?s OPTIONAL {{ ?s ?p ?o }} }}
      UNION {{ {s} ?note ?s . ?s a mc:TabularNote ; ?p ?o }}
      UNION {{ ?s (mc:column1|mc:column2) {s} ; a mc:CodePairEdit ; ?p ?o }}
      UNION {{ ?s rdf:subject {s} ; a mc:Assertion ; ?p ?o }}
      UNION {_label_branch(f"{s} ?q ?s . FILTER(?q NOT IN ({', '.join(f'<{p}>' for p in UNBOUNDED)}))")}
      UNION {_label_branch(f"{s} (mc:indication/(mc:condition|mc:encounterReason)) ?s .")}
      {f"UNION {{ VALUES (?s ?p ?o) {{ {linked} }} ?s ?p ?o }}" if linked else ""}
      {f"UNION {_label_branch(f'VALUES ?s {{ {iri_list(extra_iris)} }}')}" if extra_iris else ""}
    }}"""
    return rdf_body(query, fmt)
