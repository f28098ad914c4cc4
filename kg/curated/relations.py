"""relations.yaml: code-pair edits, directional code-to-code relations and SKOS mappings.

`edits` are first-class mc:CodePairEdit nodes in the NCCI PTP layout, from which the reasoner
derives the symmetric mc:notReportedWith; `relations` are named by ontology object property and
`mappings` by SKOS mapping property, each asserted with its source.
"""

from __future__ import annotations

from pathlib import Path

from rdflib import Literal, Namespace
from rdflib.namespace import OWL, RDF, SKOS, DefinedNamespace
from rdflib.term import Node

from ..namespaces import DCTERMS, ID, MC
from ..ontology import load_ontology
from ..records import Record, SourceError, fact, load_yaml
from .reader import Reader, date, text

EDIT_KEYS = {"column1", "column2", "modifier_indicator", "basis", "rationale", "source", "effective", "deleted",
             "note"}
EDIT_TEXT = {"basis": MC.editBasis, "rationale": MC.rationale}
EDIT_DATES = {"effective": MC.effectiveDate, "deleted": MC.deletionDate}
SKOS_MAPPINGS = ("exactMatch", "closeMatch", "broadMatch", "narrowMatch", "relatedMatch")


def read_relations(reader: Reader, path: Path) -> None:
    """The whole file: a mapping with the sections edits, relations and mappings."""
    data = load_yaml(path)
    if not isinstance(data, Record):
        raise SourceError(path, 1, None, "expected a mapping with edits, relations, mappings")
    for edit in data.get("edits") or []:
        _read_edit(reader, edit)
    object_properties = set(load_ontology().subjects(RDF.type, OWL.ObjectProperty))
    for section, namespace in (("relations", MC), ("mappings", SKOS)):
        for relation in data.get(section) or []:
            _read_relation(reader, relation, namespace, object_properties)


def _read_edit(reader: Reader, e: Record) -> None:
    """One code-pair edit: column 1, column 2 and a PTP modifier indicator from value_sets.yaml.

    The edit's `source` states the pair; its indicator, basis and rationale may name their own
    ({value, source}), since a source that states a pair need not state how it is classified.
    """
    reader.check_keys(e, EDIT_KEYS)
    reader.require(e, "column1", "column2", "modifier_indicator", "source")
    column1 = reader.code_ref(e, "column1", e["column1"])
    column2 = reader.code_ref(e, "column2", e["column2"])
    node = ID[f"edit/{str(e['column1']).split('/')[1]}_{str(e['column2']).split('/')[1]}"]
    ptp = reader.curation.value_sets.get("ptp_modifier_indicator")
    indicator, indicator_source = fact(e["modifier_indicator"], e["source"])
    if ptp is None or str(indicator) not in ptp["values"]:
        raise e.error("modifier_indicator", f"'{indicator}' is not a PTP modifier indicator (0, 1, 9)")
    graph = reader.graph
    graph.add((node, RDF.type, MC.CodePairEdit))
    graph.add((node, MC.column1, column1))
    graph.add((node, MC.column2, column2))
    graph.add((node, DCTERMS.source, reader.source(e, "source", e["source"])))
    reader.assert_fact(node, MC.modifierIndicator, ptp["values"][str(indicator)],
                       reader.source(e, "modifier_indicator", indicator_source))
    for key, prop in EDIT_TEXT.items():
        if e.get(key):
            value, source_id = fact(e[key], e["source"])
            reader.assert_fact(node, prop, Literal(str(value)), reader.source(e, key, source_id))
    for key, prop in EDIT_DATES.items():
        if e.get(key):
            graph.add((node, prop, date(e, key, e[key])))
    if e.get("note"):
        graph.add((node, SKOS.note, text(e["note"])))


def _read_relation(reader: Reader, rel: Record, namespace: Namespace | type[DefinedNamespace],
                   object_properties: set[Node]) -> None:
    """One relation (an mc: object property) or mapping (a SKOS mapping property) between two codes."""
    reader.check_keys(rel, {"subject", "property", "object", "source", "note"})
    reader.require(rel, "subject", "property", "object", "source")
    prop = namespace[rel["property"]]
    if namespace is MC and prop not in object_properties:
        raise rel.error("property", f"'{rel['property']}' is not an ontology object property")
    if namespace is SKOS and rel["property"] not in SKOS_MAPPINGS:
        raise rel.error("property", "must be a SKOS mapping property")
    subject = reader.code_ref(rel, "subject", rel["subject"])
    obj = reader.code_ref(rel, "object", rel["object"])
    reader.assert_fact(subject, prop, obj, reader.source(rel, "source", rel["source"]))
