"""value_sets.yaml: one skos:ConceptScheme per fee-schedule, OPPS, HCPCS-file or NCCI indicator.

Each set also declares its ontology property (mc:<property>), and code records' `fee_schedule` maps
name the set by id and a value by its notation (see kg.curated.codes).
"""

from __future__ import annotations

from rdflib import Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from ..namespaces import DCTERMS, ID, MC
from ..records import Record
from .reader import Reader, text

SET_KEYS = {"id", "property", "label", "applies_to", "multi_valued", "source", "definition", "values", "note"}
VALUE_KEYS = {"notation", "label", "definition", "not_applicable", "note"}


def read_value_sets(reader: Reader, records: list[Record]) -> None:
    """Define each value set, its property and its values; remember them for the code records."""
    for r in records:
        reader.check_keys(r, SET_KEYS)
        reader.require(r, "id", "property", "label", "source", "values", "applies_to")
        set_id = str(r["id"])
        scheme = ID[f"valueset/{set_id.replace('_', '-')}"]
        prop = MC[r["property"]]
        _scheme(reader, r, scheme, prop)
        values = _values(reader, r, scheme, set_id)
        reader.curation.value_sets[set_id] = {"property": prop, "values": values, "multi": bool(r.get("multi_valued"))}


def _scheme(reader: Reader, r: Record, scheme: URIRef, prop: URIRef) -> None:
    graph = reader.graph
    graph.add((scheme, RDF.type, MC.IndicatorScheme))
    graph.add((scheme, SKOS.prefLabel, text(r["label"])))
    graph.add((scheme, MC.indicatorProperty, prop))
    graph.add((scheme, DCTERMS.source, reader.source(r, "source", r["source"])))
    if r.get("definition"):
        graph.add((scheme, SKOS.definition, text(r["definition"])))
    graph.add((prop, RDF.type, OWL.ObjectProperty))
    graph.add((prop, RDFS.label, text(r["label"])))
    graph.add((prop, RDFS.range, MC.IndicatorValue))
    if r["applies_to"] == "code":
        graph.add((prop, RDFS.subPropertyOf, MC.feeScheduleIndicator))


def _values(reader: Reader, r: Record, scheme: URIRef, set_id: str) -> dict[str, URIRef]:
    graph = reader.graph
    values: dict[str, URIRef] = {}
    for v in r["values"]:
        reader.check_keys(v, VALUE_KEYS)
        reader.require(v, "notation", "label")
        notation = str(v["notation"])
        if notation in values:
            raise v.error("notation", f"duplicate value '{notation}' in value set '{set_id}'")
        node = values[notation] = ID[f"valueset/{set_id.replace('_', '-')}/{notation}"]
        graph.add((node, RDF.type, MC.NotApplicableValue if v.get("not_applicable") else MC.IndicatorValue))
        graph.add((node, SKOS.notation, Literal(notation)))
        graph.add((node, SKOS.prefLabel, text(v["label"])))
        graph.add((node, SKOS.inScheme, scheme))
        graph.add((node, SKOS.topConceptOf, scheme))
        if v.get("definition"):
            graph.add((node, SKOS.definition, text(v["definition"])))
    return values
