"""What pages need to know about the ontology (labels, kinds, sub- and inverse properties) and the
published JSON-LD context made from it, read once per snapshot from the store."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app

from ..codes import CURIE_MAP, curie
from ..store import get_store
from .labels import ONTOLOGY_KINDS, STANDARD_LABELS, STANDARD_TERMS
from .terms import ASSERTED, MCNS, OWL, select_terms

EXTENSION = "medcode.pages.vocab"


@dataclass
class Vocab:
    """The ontology as the pages use it: names for terms, and which properties entail which."""

    labels: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    supers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    inverses: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    context: dict = field(default_factory=dict)

    def sub_properties(self, prop: str) -> set[str]:
        """`prop` and every property below it."""
        found, changed = {prop}, True
        while changed:
            changed = False
            for p, ss in self.supers.items():
                if p not in found and ss & found:
                    found.add(p)
                    changed = True
        return found

    def label(self, iri: str) -> str:
        """The ontology's label, else a standard one, else the CURIE."""
        return self.labels.get(iri) or STANDARD_LABELS.get(iri) or curie(iri)

    def explains(self, prop: str, stated: str, reverse: bool) -> bool:
        """Could `stated` (subject→object, or object→subject when `reverse`) entail `prop`?"""
        if not reverse:
            return stated in self.sub_properties(prop)
        if stated == prop and OWL + "SymmetricProperty" in self.kinds.get(prop, ()):
            return True
        return any(stated in self.sub_properties(inv) for inv in self.inverses.get(prop, ()))


def vocab() -> Vocab:
    """The current snapshot's Vocab; a new snapshot (or a publish to the engine) reads it again."""
    extensions = current_app.extensions
    snapshot = get_store().etag
    cached = extensions.get(EXTENSION)
    if cached is not None and cached[0] == snapshot:
        return cached[1]
    v = _read_vocab()
    extensions[EXTENSION] = (snapshot, v)
    return v


def _read_vocab() -> Vocab:
    v = Vocab()
    kinds = " ".join(ONTOLOGY_KINDS + ("owl:SymmetricProperty", "owl:FunctionalProperty"))
    for row in select_terms(f"SELECT ?t ?k ?l WHERE {{ GRAPH <{ASSERTED}> {{ VALUES ?k {{ {kinds} }} ?t a ?k "
                            "OPTIONAL { ?t rdfs:label ?l } } }"):
        t = row["t"].value
        v.kinds[t].add(row["k"].value)
        if "l" in row and (t not in v.labels or row["l"].lang in ("en", "")):
            v.labels[t] = row["l"].value
    for row in select_terms(f"SELECT ?p ?s WHERE {{ GRAPH <{ASSERTED}> {{ ?p rdfs:subPropertyOf ?s }} }}"):
        v.supers[row["p"].value].add(row["s"].value)
    for row in select_terms(f"SELECT ?p ?q WHERE {{ GRAPH <{ASSERTED}> {{ ?p owl:inverseOf ?q }} }}"):
        v.inverses[row["p"].value].add(row["q"].value)
        v.inverses[row["q"].value].add(row["p"].value)
    v.context = _context(v)
    return v


def _context(v: Vocab) -> dict:
    """The published JSON-LD @context: the CURIE map, standard terms and every ontology property by name."""
    ctx: dict = {"@version": 1.1, **CURIE_MAP}
    for name, (iri, is_ref) in STANDARD_TERMS.items():
        ctx[name] = {"@id": curie(iri), "@type": "@id"} if is_ref else curie(iri)
    for term, kinds in sorted(v.kinds.items()):
        name = term[len(MCNS):]
        if not term.startswith(MCNS) or name in ctx or not name[:1].islower():
            continue
        if OWL + "ObjectProperty" in kinds:
            ctx[name] = {"@id": "mc:" + name, "@type": "@id"}
        elif OWL + "DatatypeProperty" in kinds:
            ctx[name] = "mc:" + name
    return ctx
