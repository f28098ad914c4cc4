"""The ontology document at /ontology: every class, property and individual of `mc:`, each at its
anchor (`/ontology#Term`), property chains written out, as HTML or as the asserted RDF."""

from __future__ import annotations

from collections import defaultdict

from ..codes import curie
from ..http.formats import Format
from .describe import rdf_body
from .labels import ONTOLOGY_KINDS
from .respond import render
from .terms import ASSERTED, DEFINITION, LABEL, MCNS, ONTOLOGY, OWL, TYPE, Term, select_terms
from .view import View

ONTOLOGY_TERMS = f"""GRAPH <{ASSERTED}> {{
    {{ SELECT DISTINCT ?t WHERE {{ VALUES ?k {{ {" ".join(ONTOLOGY_KINDS)} mc:Route }} ?t a ?k
       FILTER(STRSTARTS(STR(?t), "{ONTOLOGY}")) }} }} ?t ?p ?o }}"""
SECTIONS = ("Classes", "Object properties", "Datatype properties", "Individuals", "Other terms")
#: the section of a term by the first of its kinds found here
SECTION_OF_KIND = ((OWL + "Class", "Classes"), (OWL + "ObjectProperty", "Object properties"),
                   (OWL + "DatatypeProperty", "Datatype properties"), (OWL + "NamedIndividual", "Individuals"),
                   (MCNS + "Route", "Individuals"))
MAX_CHAIN = 50  # links followed in one property chain (a malformed list never loops)


def ontology_rdf(fmt: Format) -> bytes:
    """The ontology's terms and their property-chain lists, from the asserted graph."""
    query = f"""CONSTRUCT {{ ?t ?p ?o }} WHERE {{
      {{ {ONTOLOGY_TERMS} }}
      UNION {{ GRAPH <{ASSERTED}> {{ ?x owl:propertyChainAxiom ?l . ?l rdf:rest* ?t . ?t ?p ?o }} }} }}"""
    return rdf_body(query, fmt, graphs="asserted")


def _chain_nodes() -> dict[str, dict[str, str]]:
    """The RDF list nodes of every property chain: node -> {first, rest}."""
    chains: dict[str, dict[str, str]] = defaultdict(dict)
    for row in select_terms(f"""SELECT ?n ?first ?rest WHERE {{ GRAPH <{ASSERTED}> {{
        ?x owl:propertyChainAxiom ?l . ?l rdf:rest* ?n . ?n rdf:first ?first ; rdf:rest ?rest }} }}"""):
        chains[row["n"].value] = {"first": row["first"].value, "rest": row["rest"].value}
    return chains


def _chain(start: str, nodes: dict[str, dict[str, str]]) -> list[str]:
    """The properties of the chain whose list starts at `start`, in order."""
    out, node = [], start
    while node in nodes and len(out) < MAX_CHAIN:
        out.append(nodes[node]["first"])
        node = nodes[node]["rest"]
    return out


def _entry(t: str, facts: list[tuple[str, Term]], nodes: dict[str, dict[str, str]], view: View) -> dict:
    label = view.vocab.label
    return {
        "iri": t, "anchor": t.partition("#")[2], "label": label(t), "curie": curie(t),
        "definition": [o.value for p, o in facts if p == DEFINITION],
        "facts": sorted([(p, o) for p, o in facts if p not in (LABEL, DEFINITION) and not o.type == "bnode"],
                        key=lambda x: (label(x[0]), x[1].value)),
        "chains": [_chain(o.value, nodes) for p, o in facts if o.type == "bnode" and p == OWL + "propertyChainAxiom"],
    }


def _section(kinds: set[str]) -> str:
    return next((section for kind, section in SECTION_OF_KIND if kind in kinds), "Other terms")


def ontology_html() -> str:
    """The ontology as one page: its header, then a section per kind of term."""
    view = View()
    terms: dict[str, list[tuple[str, Term]]] = defaultdict(list)
    for row in select_terms(f"SELECT ?t ?p ?o WHERE {{ {ONTOLOGY_TERMS} }}"):
        terms[row["t"].value].append((row["p"].value, row["o"]))
    nodes = _chain_nodes()
    iris = {o.value for facts in terms.values() for _, o in facts if o.is_iri} | set(terms)
    view.load(iris | {x for node in nodes.values() for x in node.values()})
    sections: dict[str, list[dict]] = {k: [] for k in SECTIONS}
    header = None
    for t, facts in terms.items():
        entry = _entry(t, facts, nodes, view)
        if t == ONTOLOGY:
            header = entry
        else:
            sections[_section({o.value for p, o in facts if p == TYPE})].append(entry)
    for entries in sections.values():
        entries.sort(key=lambda e: e["anchor"].lower())
    return render("pages/ontology.html", V=view, header=header, sections=[(k, e) for k, e in sections.items() if e],
                  iri=ONTOLOGY)
