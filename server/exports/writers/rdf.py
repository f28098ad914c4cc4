"""SKOS Turtle and JSON-LD: the mapping triples and each code's notation and label once, CURIEs from the one map.

Provenance (basis, sources, justifications) stays in CSV, SSSOM and FHIR. Terms are serialised by
Oxigraph (`str()` of a pyoxigraph term is its N-Triples form, which is also Turtle), so literal and
IRI escaping is written once, there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox

from ...codes import CURIE_MAP
from .base import LICENSE, ExportMeta, short, to_json

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk
    from ..rows import Table

_LOCAL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")  # a local name Turtle takes unescaped


def _term(iri: str) -> str:
    name = short(iri)
    return name if name != iri and _LOCAL.match(name.partition(":")[2]) else str(ox.NamedNode(iri))


def _literal(value: str, language: str | None = None) -> str:
    return str(ox.Literal(value, language=language))


def _sides(row: dict[str, str]) -> tuple[tuple[str, str, str], ...]:
    """(IRI, code, label) of the row's subject and object."""
    return ((row["subject_iri"], row["subject_code"], row["subject_label"]),
            (row["object_iri"], row["object_code"], row["object_label"]))


def write_turtle(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """The prefixes, a dataset description, then per row its triple and first mentions' notation and label."""
    yield f"# medcode-kg: {xw.title} (snapshot {meta.version}); license {LICENSE}\n"
    yield "".join(f"@prefix {prefix}: <{namespace}> .\n" for prefix, namespace in CURIE_MAP.items()) + "\n"
    yield (f"<{meta.url(xw, 'ttl')}> dcterms:title {_literal('medcode-kg: ' + xw.title)} ; "
           f"dcterms:license <{LICENSE}> ; dcterms:hasVersion {_literal(meta.version)} .\n\n")
    terms: dict[str, str] = {}  # each IRI mentioned so far -> its Turtle term (made once)
    for row in table.rows:
        first = []
        for side in _sides(row):
            if side[0] not in terms:
                terms[side[0]] = _term(side[0])
                first.append(side)
        yield f"{terms[row['subject_iri']]} {row['predicate']} {terms[row['object_iri']]} .\n"
        for iri, code, label in first:
            labelled = f" ;\n    skos:prefLabel {_literal(label, 'en')}" if label else ""
            yield f"{terms[iri]} skos:notation {_literal(code)}{labelled} .\n"


def write_jsonld(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """One node per row: the subject with the mapping to the object; notation and label on first mention."""
    dataset = {"@id": meta.url(xw, "jsonld"), "dcterms:title": f"medcode-kg: {xw.title}",
               "dcterms:license": {"@id": LICENSE}, "dcterms:hasVersion": meta.version}
    yield '{"@context": ' + json.dumps(CURIE_MAP) + ', "@graph": [\n' + json.dumps(dataset, ensure_ascii=False)
    seen: set[str] = set()

    def node(iri: str, code: str, label: str) -> dict[str, Any]:
        out: dict[str, Any] = {"@id": short(iri)}
        if iri not in seen:
            seen.add(iri)
            out["skos:notation"] = code
            if label:
                out["skos:prefLabel"] = {"@value": label, "@language": "en"}
        return out

    for row in table.rows:
        subject_side, object_side = _sides(row)
        subject = node(*subject_side)
        subject[row["predicate"]] = node(*object_side)
        yield ",\n" + to_json(subject)
    yield "\n]}\n"
