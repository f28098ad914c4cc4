"""conditions.yaml: what indications name, matched to ICD-10-CM codes a coder can bill.

A condition is a clinical state (mc:Condition); an encounter reason is why the patient is seen or a
status that bears on care (mc:EncounterReason), coded with chapter 21 (Z) codes and never taken for
the condition. Exact and close matches are billable codes; a condition that is a whole category
names it with `category_match` and lists the category's billable codes as close matches (the
billable flags are checked by the shapes, against the release).
"""

from __future__ import annotations

from rdflib import URIRef
from rdflib.namespace import RDF, SKOS

from ..namespaces import DCTERMS, ID, MC
from ..records import Record, fact
from .reader import Reader, text

MATCH_PROPERTY = {"exact_match": SKOS.exactMatch, "close_match": SKOS.closeMatch, "category_match": MC.categoryMatch}
#: kind -> (class, IRI path segment, the property an indication names it by, whether its codes are Z codes)
KINDS = {
    "condition": (MC.Condition, "condition", MC.condition, False),
    "encounter-reason": (MC.EncounterReason, "encounter-reason", MC.encounterReason, True),
}
ENCOUNTER_CHAPTER = "Z"  # ICD-10-CM chapter 21: factors influencing health status and contact with health services


def read_conditions(reader: Reader, records: list[Record]) -> None:
    """Define each condition or encounter reason; its ICD-10-CM codes are checked against the release by kg.icd10cm."""
    for r in records:
        reader.check_keys(r, {"id", "kind", "label", "source", "note", *MATCH_PROPERTY})
        reader.require(r, "id", "label", "source")
        kind = r.get("kind", "condition")
        if kind not in KINDS:
            raise r.error("kind", f"'{kind}' is not one of {', '.join(KINDS)}")
        if str(r["id"]) in reader.curation.conditions:
            raise r.error("id", f"'{r['id']}' is defined twice")
        cls, segment, link, encounter = KINDS[kind]
        node = ID[f"{segment}/{r['id']}"]
        reader.curation.conditions[str(r["id"])] = (link, node)
        graph = reader.graph
        graph.add((node, RDF.type, cls))
        graph.add((node, SKOS.prefLabel, text(r["label"])))
        graph.add((node, DCTERMS.source, reader.source(r, "source", r["source"])))
        if r.get("note"):
            graph.add((node, SKOS.note, text(r["note"])))
        _matches(reader, r, node, encounter)


def _matches(reader: Reader, r: Record, node: URIRef, encounter: bool) -> None:
    """The record's ICD-10-CM codes, each `system/code` or {value, source}; Z codes only for an encounter reason."""
    for key, prop in MATCH_PROPERTY.items():
        for item in r.get(key) or []:
            ref, source_id = fact(item, r["source"])
            in_chapter = str(ref).startswith(f"icd10cm/{ENCOUNTER_CHAPTER}")
            if in_chapter != encounter or (encounter and prop == MC.categoryMatch):
                raise r.error(key, f"'{ref}': a condition is matched to codes outside chapter 21 (Z), an "
                                   "encounter reason (kind: encounter-reason) to billable Z codes")
            reader.assert_fact(node, prop, reader.code_ref(r, key, ref), reader.source(r, key, source_id))
