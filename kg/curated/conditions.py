"""conditions.yaml: normalised conditions that indications name, matched to ICD-10-CM codes."""

from __future__ import annotations

from rdflib.namespace import RDF, SKOS

from ..namespaces import DCTERMS, ID, MC
from ..records import Record
from .reader import Reader, text

MATCH_PROPERTY = {"exact_match": SKOS.exactMatch, "close_match": SKOS.closeMatch}


def read_conditions(reader: Reader, records: list[Record]) -> None:
    """Define each condition; its ICD-10-CM matches are checked against the release by kg.icd10cm."""
    graph = reader.graph
    for r in records:
        reader.check_keys(r, {"id", "label", "source", "note", *MATCH_PROPERTY})
        reader.require(r, "id", "label", "source")
        node = ID[f"condition/{r['id']}"]
        reader.curation.conditions.add(str(r["id"]))
        source = reader.source(r, "source", r["source"])
        graph.add((node, RDF.type, MC.Condition))
        graph.add((node, SKOS.prefLabel, text(r["label"])))
        graph.add((node, DCTERMS.source, source))
        if r.get("note"):
            graph.add((node, SKOS.note, text(r["note"])))
        for key, prop in MATCH_PROPERTY.items():
            for ref in r.get(key) or []:
                reader.assert_fact(node, prop, reader.code_ref(r, key, ref), source)
