"""codes/*.yaml: the code records (CPT, HCPCS Level II, modifiers) and the code systems they belong to.

Each fact about a code is asserted directly (so queries stay simple) and also as an ``mc:Assertion``
that names its source: the record's `source`, or the fact's own where it is written
``{value: ..., source: ...}`` (see kg/sources/README.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD

from ..namespaces import DCTERMS, ID, ID_BASE, MC, code_iri
from ..records import Record, fact
from .profiles import read_indication, read_profile
from .reader import SYSTEM_CLASS, Reader, date, text

ROUTES = ("Intrathecal", "Epidural", "Intraventricular", "Intravenous", "IntraArterial", "Subcutaneous")
CODE_SYSTEM_META = {
    # system: (label, FHIR canonical URI, OID, release) -- domain.md §3.2 (HL7 THO). The modifiers are
    # a list, not a code system: each is defined by CPT or HCPCS Level II (mc:modifierSystem), whose
    # FHIR system and OID are the modifier's, so the list carries none of its own.
    "cpt": ("CPT (Current Procedural Terminology)", "http://www.ama-assn.org/go/cpt",
            "2.16.840.1.113883.6.12", "curated subset, descriptors only where a seed quotes them (2026)"),
    "hcpcs": ("HCPCS Level II", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
              "2.16.840.1.113883.6.285", "descriptors from the 2019 alpha-numeric file; OPPS SI April 2026"),
    "modifier": ("CPT and HCPCS Level II modifiers", None, None,
                 "modifiers listed by the seeds, plus the X{EPSU} subset and KD"),
}
MODIFIER_SYSTEMS = ("cpt", "hcpcs")
KIND_CLASS = {"procedure": MC.ProcedureCode, "device": MC.DeviceCode, "supply": MC.SupplyCode,
              "drug": MC.DrugCode, "modifier": None}
ROLE_CLASS = {"core": MC.PumpFamilyCode, "adjacent": MC.AdjacentCode}
DESCRIPTOR_PROPERTY = {"short": MC.shortDescriptor, "medium": MC.mediumDescriptor, "long": MC.longDescriptor}
CODE_KEYS = {
    "code", "system", "label", "role", "source", "alt_labels", "descriptors", "kind", "routes", "uses_devices",
    "denotes_devices", "fee_schedule", "mue", "listed_modifiers", "added", "history", "performers",
    "indications", "profiles", "note", "status", "modifier_system", "permanence", "replacement",
    "includes_components", "coverage_policy",
}


def add_code_systems(reader: Reader) -> None:
    """The curated code systems as mc:CodeSystem schemes (ICD-10-CM's comes with its release)."""
    graph = reader.graph
    for system, (label, fhir, oid, release) in CODE_SYSTEM_META.items():
        scheme = URIRef(ID_BASE + system)
        graph.add((scheme, RDF.type, MC.CodeSystem))
        graph.add((scheme, SKOS.prefLabel, text(label)))
        if fhir:
            graph.add((scheme, MC.fhirSystem, Literal(fhir, datatype=XSD.anyURI)))
            graph.add((scheme, MC.oid, Literal(oid)))
        graph.add((scheme, MC.release, Literal(release)))
        graph.add((scheme, DCTERMS.source, ID["source/HL7-THO"]))


@dataclass
class _Code:
    """One code record being read: where its facts go and the source they default to."""

    reader: Reader
    record: Record
    node: URIRef
    default: str

    def facts(self, field_name: str, many: bool) -> Iterator[tuple[Any, URIRef]]:
        """(value, source IRI) of each value a fact field holds, each bare or written {value, source}."""
        raw = self.record.get(field_name)
        items = (raw or []) if many else ([] if raw in (None, "", []) else [raw])
        for item in items:
            value, source_id = fact(item, self.default)
            yield value, self.reader.source(self.record, field_name, source_id)


def _as_text(code: _Code, field_name: str, value: Any) -> Literal:
    return text(value)


def _as_plain(code: _Code, field_name: str, value: Any) -> Literal:
    return Literal(str(value))


def _as_route(code: _Code, field_name: str, value: Any) -> URIRef:
    if value not in ROUTES:
        raise code.record.error(field_name, f"unknown route '{value}' (one of {', '.join(ROUTES)})")
    return MC[value]


def _as_device(code: _Code, field_name: str, value: Any) -> URIRef:
    if value not in code.reader.curation.devices:
        raise code.record.error(field_name, f"unknown device '{value}' (defined in devices.yaml)")
    return ID[f"device/{value}"]


def _as_count(code: _Code, field_name: str, value: Any) -> Literal:
    if not isinstance(value, int) or value < 0:
        raise code.record.error(field_name, f"'{value}' is not a non-negative integer")
    return Literal(value, datatype=XSD.integer)


def _as_modifier(code: _Code, field_name: str, value: Any) -> URIRef:
    return code.reader.code_ref(code.record, field_name, f"modifier/{value}")


def _as_date(code: _Code, field_name: str, value: Any) -> Literal:
    return date(code.record, field_name, value)


def _as_modifier_system(code: _Code, field_name: str, value: Any) -> URIRef:
    if str(code.record["system"]) != "modifier" or value not in MODIFIER_SYSTEMS:
        raise code.record.error(field_name, "is cpt or hcpcs, and only on a modifier")
    return URIRef(ID_BASE + value)


#: field: (property, whether it holds a list, the RDF term of one value)
FACTS: dict[str, tuple[URIRef, bool, Callable[[_Code, str, Any], Any]]] = {
    "label": (SKOS.prefLabel, False, _as_text),
    "alt_labels": (SKOS.altLabel, True, _as_text),
    "note": (SKOS.note, False, _as_text),
    "status": (MC.codeStatus, False, _as_plain),
    "routes": (MC.route, True, _as_route),
    "uses_devices": (MC.usesDevice, True, _as_device),
    "denotes_devices": (MC.denotesDevice, True, _as_device),
    "mue": (MC.mue, False, _as_count),
    "listed_modifiers": (MC.listedModifier, True, _as_modifier),
    "added": (MC.addedDate, False, _as_date),
    "performers": (MC.performer, True, _as_text),
    "modifier_system": (MC.modifierSystem, False, _as_modifier_system),
}


def read_code(reader: Reader, r: Record) -> None:
    """One code record: its identity and classes, then every fact it states, each with its source."""
    reader.check_keys(r, CODE_KEYS)
    reader.require(r, "code", "system", "label", "source")
    code = _Code(reader, r, _define(reader, r), str(r["source"]))
    _classify(code)
    for field_name, (prop, many, term) in FACTS.items():
        for value, source in code.facts(field_name, many):
            reader.assert_fact(code.node, prop, term(code, field_name, value), source)
    _descriptors(code)
    _fee_schedule(code)
    _history(code)
    _record_facts(code)
    for i, ind in enumerate(r.get("indications") or [], 1):
        read_indication(reader, ind, code.node, URIRef(f"{code.node}/indication/{i}"),
                        str(ind.get("source", code.default)))
    for profile in r.get("profiles") or []:
        read_profile(reader, profile, code.node)


def _define(reader: Reader, r: Record) -> URIRef:
    """The code's node in its scheme; a code defined twice is an error."""
    system, notation = str(r["system"]), str(r["code"])
    if system not in SYSTEM_CLASS:
        raise r.error("system", f"'{system}' is not one of {sorted(SYSTEM_CLASS)}")
    ref = f"{system}/{notation}"
    if ref in reader.curation.codes:
        raise r.error("code", f"'{ref}' is defined twice")
    reader.curation.codes.add(ref)
    node, scheme = code_iri(system, notation), URIRef(ID_BASE + system)
    graph = reader.graph
    graph.add((node, RDF.type, SYSTEM_CLASS[system]))
    graph.add((node, SKOS.notation, Literal(notation)))
    graph.add((node, SKOS.inScheme, scheme))
    graph.add((node, SKOS.topConceptOf, scheme))
    graph.add((node, DCTERMS.source, reader.source(r, "source", r["source"])))
    return node


def _classify(code: _Code) -> None:
    """The code's kind (procedure, device, ...) and its role in the family; a modifier must name its code set."""
    r, graph = code.record, code.reader.graph
    kind = r.get("kind", "procedure")
    if kind not in KIND_CLASS:
        raise r.error("kind", f"'{kind}' is not one of {sorted(KIND_CLASS)}")
    if KIND_CLASS[kind] is not None:
        graph.add((code.node, RDF.type, KIND_CLASS[kind]))
    role = r.get("role", "core")
    if role not in ROLE_CLASS:
        raise r.error("role", f"'{role}' is not one of {sorted(ROLE_CLASS)}")
    graph.add((code.node, RDF.type, ROLE_CLASS[role]))
    if str(r["system"]) == "modifier":
        code.reader.require(r, "modifier_system")


def _descriptors(code: _Code) -> None:
    """The short, medium and long descriptors, with one source for all three."""
    descriptors = code.record.get("descriptors")
    if not descriptors:
        return
    source = code.reader.source(code.record, "descriptors", descriptors.get("source", code.default))
    for key, prop in DESCRIPTOR_PROPERTY.items():
        if descriptors.get(key):
            code.reader.assert_fact(code.node, prop, Literal(str(descriptors[key]).strip()), source)


def _fee_schedule(code: _Code) -> None:
    """Indicator values by value-set id; `source:` in the map is the default for its values."""
    r, value_sets = code.record, code.reader.curation.value_sets
    fs = r.get("fee_schedule") or {}
    if fs and not isinstance(fs, Record):
        raise r.error("fee_schedule", "must be a mapping of indicator id to value")
    for set_id, raw in fs.items():
        if set_id == "source":
            continue
        if set_id not in value_sets:
            raise fs.error(set_id, f"unknown indicator (one of {', '.join(sorted(value_sets))})")
        value_set = value_sets[set_id]
        value, source_id = fact(raw, str(fs.get("source", code.default)))
        values = value if isinstance(value, list) else [value]
        if len(values) > 1 and not value_set["multi"]:
            raise fs.error(set_id, "takes one value")
        for v in values:
            if str(v) not in value_set["values"]:
                raise fs.error(set_id, f"'{v}' is not a value of {set_id} ({', '.join(value_set['values'])})")
            code.reader.assert_fact(code.node, value_set["property"], value_set["values"][str(v)],
                                    code.reader.source(fs, set_id, source_id))


def _history(code: _Code) -> None:
    """Dated history events (added, changed, ...) as mc:HistoryEvent nodes under the code."""
    reader, graph = code.reader, code.reader.graph
    for i, h in enumerate(code.record.get("history") or [], 1):
        reader.check_keys(h, {"date", "action", "note", "source"})
        reader.require(h, "date", "action")
        event = URIRef(f"{code.node}/history/{i}")
        graph.add((code.node, MC.history, event))
        graph.add((event, RDF.type, MC.HistoryEvent))
        graph.add((event, MC.eventDate, date(h, "date", h["date"])))
        graph.add((event, MC.action, Literal(str(h["action"]))))
        if h.get("note"):
            graph.add((event, RDFS.comment, text(h["note"])))
        graph.add((event, DCTERMS.source, reader.source(h, "source", h.get("source", code.default))))


def _record_facts(code: _Code) -> None:
    """Device-code attributes, always sourced by the record itself."""
    r, reader = code.record, code.reader
    source = reader.source(r, "source", code.default)
    if r.get("permanence"):
        reader.assert_fact(code.node, MC.permanence, Literal(str(r["permanence"])), source)
    for key, prop in (("replacement", MC.isReplacement), ("includes_components", MC.includesComponents)):
        if r.get(key) is not None:
            reader.assert_fact(code.node, prop, Literal(bool(r[key])), source)
    if r.get("coverage_policy"):
        policy = reader.source(r, "coverage_policy", r["coverage_policy"])
        reader.assert_fact(code.node, MC.coveragePolicy, policy, source)
