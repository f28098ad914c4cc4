"""A code record's indications and seed-page profiles (`indications:` and `profiles:` in codes/*.yaml).

A profile is what one seed page says about a code, section by section; an indication is free text
that names normalised conditions and encounter reasons (conditions.yaml), never an ICD-10-CM code itself.
"""

from __future__ import annotations

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS

from ..namespaces import DCTERMS, MC
from ..records import Record
from .reader import Reader, text

PROFILE_TEXT = {
    "title": MC.pageTitle, "summary": MC.summary, "purpose": MC.purpose, "preparation": MC.preparation,
    "equipment": MC.equipment, "anesthesia": MC.anesthesia, "duration": MC.duration, "setting": MC.setting,
    "personnel": MC.personnel, "risks": MC.risk, "benefits": MC.benefit, "recovery": MC.recovery,
    "alternatives": MC.alternative, "pros_and_cons": MC.prosAndCons, "patient_experience": MC.patientExperience,
    "common_language_description": MC.commonLanguageDescription, "post_procedure": MC.postProcedure,
    "billing_guidelines": MC.billingGuideline, "common_names": MC.commonName, "technical_term": MC.technicalTerm,
}
PROFILE_KEYS = set(PROFILE_TEXT) | {"source", "indications", "procedure_steps"}


def read_indication(reader: Reader, ind: Record, code: URIRef, node: URIRef, source_id: str) -> None:
    """One indication of `code`, at `node`, whose source is `source_id`."""
    reader.check_keys(ind, {"text", "conditions", "source"})
    reader.require(ind, "text")
    graph = reader.graph
    graph.add((code, MC.indication, node))
    graph.add((node, RDF.type, MC.Indication))
    graph.add((node, RDFS.label, text(ind["text"])))
    graph.add((node, DCTERMS.source, reader.source(ind, "source", source_id)))
    for condition in ind.get("conditions") or []:
        if condition not in reader.curation.conditions:
            raise ind.error("conditions", f"unknown condition '{condition}' (defined in conditions.yaml)")
        link, target = reader.curation.conditions[condition]
        graph.add((node, link, target))


def read_profile(reader: Reader, p: Record, code: URIRef) -> None:
    """What one seed page (the profile's `source`) says about `code`."""
    reader.check_keys(p, PROFILE_KEYS)
    reader.require(p, "source")
    source_id = str(p["source"])
    node = URIRef(f"{code}/profile/{source_id}")
    graph = reader.graph
    graph.add((code, MC.profile, node))
    graph.add((node, RDF.type, MC.CodeProfile))
    graph.add((node, DCTERMS.source, reader.source(p, "source", source_id)))
    for key, prop in PROFILE_TEXT.items():
        values = p.get(key)
        for value in values if isinstance(values, list) else ([values] if values else []):
            graph.add((node, prop, text(value)))
    for i, step in enumerate(p.get("procedure_steps") or [], 1):
        step_node = URIRef(f"{node}/step/{i}")
        graph.add((node, MC.procedureStep, step_node))
        graph.add((step_node, RDF.type, MC.ProcedureStep))
        graph.add((step_node, MC.stepNumber, Literal(i)))
        graph.add((step_node, RDFS.label, text(step)))
    for i, ind in enumerate(p.get("indications") or [], 1):
        read_indication(reader, ind, code, URIRef(f"{node}/indication/{i}"), source_id)
