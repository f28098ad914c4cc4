"""Turn the curated YAML sources into the asserted RDF graph, checking every record on the way.

Each fact about a code is asserted directly (so queries stay simple) and also as an
``mc:Assertion`` that names its source, so pages and exports can show where it came from.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS, XSD

from .namespaces import DCTERMS, ID, ID_BASE, MC, code_iri, ref_iri
from .records import Record, SourceError, fact, load_yaml

ROUTES = ("Intrathecal", "Epidural", "Intraventricular", "Intravenous", "IntraArterial", "Subcutaneous")
CODE_SYSTEM_META = {
    # system: (label, FHIR canonical URI, OID, release) -- domain.md §3.2 (HL7 THO)
    "cpt": ("CPT (Current Procedural Terminology)", "http://www.ama-assn.org/go/cpt",
            "2.16.840.1.113883.6.12", "curated subset, descriptors only where a seed quotes them (2026)"),
    "hcpcs": ("HCPCS Level II", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
              "2.16.840.1.113883.6.285", "descriptors from the 2019 alpha-numeric file; OPPS SI April 2026"),
    "modifier": ("CPT and HCPCS Level II modifiers", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                 "2.16.840.1.113883.6.285", "modifiers listed by the seeds, plus the X{EPSU} subset and KD"),
}
KIND_CLASS = {"procedure": MC.ProcedureCode, "device": MC.DeviceCode, "supply": MC.SupplyCode,
              "drug": MC.DrugCode, "modifier": None}
SYSTEM_CLASS = {"cpt": MC.CPTCode, "hcpcs": MC.HCPCSCode, "modifier": MC.Modifier}
ROLE_CLASS = {"core": MC.PumpFamilyCode, "adjacent": MC.AdjacentCode}
PROFILE_TEXT = {
    "title": MC.pageTitle, "summary": MC.summary, "purpose": MC.purpose, "preparation": MC.preparation,
    "equipment": MC.equipment, "anesthesia": MC.anesthesia, "duration": MC.duration, "setting": MC.setting,
    "personnel": MC.personnel, "risks": MC.risk, "benefits": MC.benefit, "recovery": MC.recovery,
    "alternatives": MC.alternative, "pros_and_cons": MC.prosAndCons, "patient_experience": MC.patientExperience,
    "common_language_description": MC.commonLanguageDescription, "post_procedure": MC.postProcedure,
    "billing_guidelines": MC.billingGuideline, "common_names": MC.commonName, "technical_term": MC.technicalTerm,
}
PROFILE_KEYS = set(PROFILE_TEXT) | {"source", "indications", "procedure_steps"}
CODE_KEYS = {
    "code", "system", "label", "role", "source", "alt_labels", "descriptors", "kind", "routes", "uses_devices",
    "denotes_devices", "fee_schedule", "mue", "listed_modifiers", "added", "history", "performers",
    "indications", "profiles", "note", "status", "modifier_system", "permanence", "replacement",
    "includes_components", "coverage_policy",
}
DATE = re.compile(r"^\d{4}(-\d{2}-\d{2})?$")
EN = "en"


def _slug(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:16]


def _text(value: Any) -> Literal:
    return Literal(str(value).strip(), lang=EN)


def _date(record: Record, field_name: str, value: Any) -> Literal:
    text = str(value)
    if not DATE.match(text):
        raise record.error(field_name, f"'{text}' is not a date (YYYY-MM-DD) or a year (YYYY)")
    return Literal(text, datatype=XSD.date if len(text) == 10 else XSD.gYear)


@dataclass
class Curation:
    """What the curated sources define; the ICD-10-CM references are checked by the importer."""

    graph: Graph = field(default_factory=Graph)
    sources: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    conditions: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    value_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    icd_references: list[tuple[Record, str, str]] = field(default_factory=list)


class CuratedBuilder:
    """Reads kg/sources/ in dependency order and builds the asserted graph."""

    def __init__(self, sources_dir: Path) -> None:
        self.dir = sources_dir
        self.c = Curation()
        self.g = self.c.graph
        self._later: list[Callable[[], None]] = []

    # -- helpers ---------------------------------------------------------------------------
    def _records(self, name: str) -> list[Record]:
        path = self.dir / name
        data = load_yaml(path)
        if not isinstance(data, list) or not all(isinstance(r, Record) for r in data):
            raise SourceError(path, 1, None, "expected a YAML list of records")
        return data

    def _require(self, record: Record, *names: str) -> None:
        for name in names:
            if record.get(name) in (None, "", []):
                raise record.error(name, "is required")

    def _check_keys(self, record: Record, allowed: set[str]) -> None:
        for key in record:
            if key not in allowed:
                raise record.error(key, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def _source(self, record: Record, field_name: str, source: str) -> URIRef:
        if source not in self.c.sources:
            raise record.error(field_name, f"unknown source '{source}' (defined in sources.yaml)")
        return ID[f"source/{source}"]

    def _code_ref(self, record: Record, field_name: str, ref: Any) -> URIRef:
        ref = str(ref)
        system, _, code = ref.partition("/")
        if system == "icd10cm":
            self.c.icd_references.append((record, field_name, code))
            return ref_iri(ref)
        if system not in SYSTEM_CLASS or not code:
            raise record.error(field_name, f"'{ref}' is not a code reference like cpt/96522 or hcpcs/C1772")
        # codes may be defined in any file: resolve once every file is read
        self._later.append(lambda: None if ref in self.c.codes else (_ for _ in ()).throw(
            record.error(field_name, f"unknown code '{ref}'")))
        return ref_iri(ref)

    def _assert(self, subject: URIRef, predicate: URIRef, obj: Any, source: URIRef) -> None:
        """Assert a fact and its provenance as an mc:Assertion."""
        self.g.add((subject, predicate, obj))
        node = ID[f"assertion/{_slug(str(subject), str(predicate), str(obj), str(source))}"]
        self.g.add((node, RDF.type, MC.Assertion))
        self.g.add((node, RDF.subject, subject))
        self.g.add((node, RDF.predicate, predicate))
        self.g.add((node, RDF.object, obj))
        self.g.add((node, DCTERMS.source, source))

    # -- files -----------------------------------------------------------------------------
    def build(self) -> Curation:
        self._read_sources()
        self._read_value_sets()
        self._read_devices()
        self._read_conditions()
        self._code_systems()
        for path in sorted((self.dir / "codes").glob("*.yaml")):
            for record in self._records(f"codes/{path.name}"):
                self._read_code(record)
        self._read_relations()
        for check in self._later:
            check()
        return self.c

    def _read_sources(self) -> None:
        for r in self._records("sources.yaml"):
            self._check_keys(r, {"id", "kind", "file", "title", "url"})
            self._require(r, "id", "kind", "title")
            node = ID[f"source/{r['id']}"]
            kinds = {"seed": MC.SeedDocument, "public": MC.PublicSource, "curated": MC.Source}
            if r["kind"] not in kinds:
                raise r.error("kind", f"must be one of {sorted(kinds)}")
            self.c.sources.add(str(r["id"]))
            self.g.add((node, RDF.type, kinds[r["kind"]]))
            self.g.add((node, SKOS.notation, Literal(str(r["id"]))))
            self.g.add((node, DCTERMS.title, _text(r["title"])))
            self.g.add((node, RDFS.label, _text(r["title"])))
            if r.get("file"):
                self.g.add((node, MC.fileName, Literal(r["file"])))
            if r.get("url"):
                self.g.add((node, RDFS.seeAlso, URIRef(r["url"])))

    def _read_value_sets(self) -> None:
        for r in self._records("value_sets.yaml"):
            self._check_keys(r, {"id", "property", "label", "applies_to", "multi_valued", "source",
                                 "definition", "values", "note"})
            self._require(r, "id", "property", "label", "source", "values", "applies_to")
            set_id = str(r["id"])
            scheme = ID[f"valueset/{set_id.replace('_', '-')}"]
            prop = MC[r["property"]]
            source = self._source(r, "source", r["source"])
            self.g.add((scheme, RDF.type, MC.IndicatorScheme))
            self.g.add((scheme, SKOS.prefLabel, _text(r["label"])))
            self.g.add((scheme, MC.indicatorProperty, prop))
            self.g.add((scheme, DCTERMS.source, source))
            if r.get("definition"):
                self.g.add((scheme, SKOS.definition, _text(r["definition"])))
            self.g.add((prop, RDF.type, OWL.ObjectProperty))
            self.g.add((prop, RDFS.label, _text(r["label"])))
            self.g.add((prop, RDFS.range, MC.IndicatorValue))
            if r["applies_to"] == "code":
                self.g.add((prop, RDFS.subPropertyOf, MC.feeScheduleIndicator))
            values: dict[str, URIRef] = {}
            for v in r["values"]:
                self._check_keys(v, {"notation", "label", "definition", "not_applicable", "note"})
                self._require(v, "notation", "label")
                notation = str(v["notation"])
                if notation in values:
                    raise v.error("notation", f"duplicate value '{notation}' in value set '{set_id}'")
                node = ID[f"valueset/{set_id.replace('_', '-')}/{notation}"]
                values[notation] = node
                self.g.add((node, RDF.type, MC.NotApplicableValue if v.get("not_applicable") else MC.IndicatorValue))
                self.g.add((node, SKOS.notation, Literal(notation)))
                self.g.add((node, SKOS.prefLabel, _text(v["label"])))
                self.g.add((node, SKOS.inScheme, scheme))
                self.g.add((node, SKOS.topConceptOf, scheme))
                if v.get("definition"):
                    self.g.add((node, SKOS.definition, _text(v["definition"])))
            self.c.value_sets[set_id] = {"property": prop, "values": values, "multi": bool(r.get("multi_valued"))}

    def _read_devices(self) -> None:
        for r in self._records("devices.yaml"):
            self._check_keys(r, {"id", "class", "label", "source", "note"})
            self._require(r, "id", "class", "label", "source")
            node = ID[f"device/{r['id']}"]
            self.c.devices.add(str(r["id"]))
            self.g.add((node, RDF.type, MC[r["class"]]))
            self.g.add((node, RDF.type, OWL.NamedIndividual))
            self.g.add((node, RDFS.label, _text(r["label"])))
            self.g.add((node, DCTERMS.source, self._source(r, "source", r["source"])))
            if r.get("note"):
                self.g.add((node, SKOS.note, _text(r["note"])))

    def _read_conditions(self) -> None:
        for r in self._records("conditions.yaml"):
            self._check_keys(r, {"id", "label", "source", "note", "exact_match", "close_match"})
            self._require(r, "id", "label", "source")
            node = ID[f"condition/{r['id']}"]
            self.c.conditions.add(str(r["id"]))
            source = self._source(r, "source", r["source"])
            self.g.add((node, RDF.type, MC.Condition))
            self.g.add((node, SKOS.prefLabel, _text(r["label"])))
            self.g.add((node, DCTERMS.source, source))
            if r.get("note"):
                self.g.add((node, SKOS.note, _text(r["note"])))
            for key, prop in (("exact_match", SKOS.exactMatch), ("close_match", SKOS.closeMatch)):
                for ref in r.get(key) or []:
                    self._assert(node, prop, self._code_ref(r, key, ref), source)

    def _code_systems(self) -> None:
        for system, (label, fhir, oid, release) in CODE_SYSTEM_META.items():
            scheme = ID_BASE + system
            self._scheme(URIRef(scheme), label, fhir, oid, release)

    def _scheme(self, scheme: URIRef, label: str, fhir: str, oid: str, release: str) -> None:
        self.g.add((scheme, RDF.type, MC.CodeSystem))
        self.g.add((scheme, SKOS.prefLabel, _text(label)))
        self.g.add((scheme, MC.fhirSystem, Literal(fhir, datatype=XSD.anyURI)))
        self.g.add((scheme, MC.oid, Literal(oid)))
        self.g.add((scheme, MC.release, Literal(release)))
        self.g.add((scheme, DCTERMS.source, ID["source/HL7-THO"]))

    # -- code records ----------------------------------------------------------------------
    def _read_code(self, r: Record) -> None:
        self._check_keys(r, CODE_KEYS)
        self._require(r, "code", "system", "label", "source")
        system, code = str(r["system"]), str(r["code"])
        if system not in SYSTEM_CLASS:
            raise r.error("system", f"'{system}' is not one of {sorted(SYSTEM_CLASS)}")
        ref = f"{system}/{code}"
        if ref in self.c.codes:
            raise r.error("code", f"'{ref}' is defined twice")
        self.c.codes.add(ref)
        node = code_iri(system, code)
        default = str(r["source"])
        src = self._source(r, "source", default)

        def sourced(field_name: str, raw: Any) -> tuple[Any, URIRef]:
            value, s = fact(raw, default)
            return value, self._source(r, field_name, str(s))

        g = self.g
        g.add((node, RDF.type, SYSTEM_CLASS[system]))
        g.add((node, SKOS.notation, Literal(code)))
        g.add((node, SKOS.inScheme, URIRef(ID_BASE + system)))
        g.add((node, SKOS.topConceptOf, URIRef(ID_BASE + system)))
        g.add((node, DCTERMS.source, src))
        label, label_src = sourced("label", r["label"])
        self._assert(node, SKOS.prefLabel, _text(label), label_src)
        kind = r.get("kind", "procedure")
        if kind not in KIND_CLASS:
            raise r.error("kind", f"'{kind}' is not one of {sorted(KIND_CLASS)}")
        if KIND_CLASS[kind] is not None:
            g.add((node, RDF.type, KIND_CLASS[kind]))
        role = r.get("role", "core")
        if role not in ROLE_CLASS:
            raise r.error("role", f"'{role}' is not one of {sorted(ROLE_CLASS)}")
        g.add((node, RDF.type, ROLE_CLASS[role]))
        if system == "modifier":
            ms = r.get("modifier_system")
            if ms not in ("cpt", "hcpcs"):
                raise r.error("modifier_system", "must be cpt or hcpcs")
            g.add((node, MC.modifierSystem, URIRef(ID_BASE + ms)))
        for alt in r.get("alt_labels") or []:
            value, s = sourced("alt_labels", alt)
            self._assert(node, SKOS.altLabel, _text(value), s)
        if r.get("note"):
            value, s = sourced("note", r["note"])
            self._assert(node, SKOS.note, _text(value), s)
        if r.get("descriptors"):
            d = r["descriptors"]
            d_src = self._source(r, "descriptors", str(d.get("source", default)))
            for key, prop in (("short", MC.shortDescriptor), ("medium", MC.mediumDescriptor),
                              ("long", MC.longDescriptor)):
                if d.get(key):
                    self._assert(node, prop, Literal(str(d[key]).strip()), d_src)
        if r.get("status"):
            value, s = sourced("status", r["status"])
            self._assert(node, MC.codeStatus, Literal(str(value)), s)
        for raw in r.get("routes") or []:
            value, s = sourced("routes", raw)
            if value not in ROUTES:
                raise r.error("routes", f"unknown route '{value}' (one of {', '.join(ROUTES)})")
            self._assert(node, MC.route, MC[value], s)
        for key, prop in (("uses_devices", MC.usesDevice), ("denotes_devices", MC.denotesDevice)):
            for raw in r.get(key) or []:
                value, s = sourced(key, raw)
                if value not in self.c.devices:
                    raise r.error(key, f"unknown device '{value}' (defined in devices.yaml)")
                self._assert(node, prop, ID[f"device/{value}"], s)
        self._fee_schedule(r, node, default)
        if r.get("mue") is not None:
            value, s = sourced("mue", r["mue"])
            if not isinstance(value, int) or value < 0:
                raise r.error("mue", f"'{value}' is not a non-negative integer")
            self._assert(node, MC.mue, Literal(value, datatype=XSD.integer), s)
        for raw in r.get("listed_modifiers") or []:
            value, s = sourced("listed_modifiers", raw)
            self._assert(node, MC.listedModifier, self._code_ref(r, "listed_modifiers", f"modifier/{value}"), s)
        if r.get("added") is not None:
            value, s = sourced("added", r["added"])
            self._assert(node, MC.addedDate, _date(r, "added", value), s)
        for i, h in enumerate(r.get("history") or [], 1):
            self._check_keys(h, {"date", "action", "note", "source"})
            self._require(h, "date", "action")
            event = URIRef(f"{node}/history/{i}")
            g.add((node, MC.history, event))
            g.add((event, RDF.type, MC.HistoryEvent))
            g.add((event, MC.eventDate, _date(h, "date", h["date"])))
            g.add((event, MC.action, Literal(str(h["action"]))))
            if h.get("note"):
                g.add((event, RDFS.comment, _text(h["note"])))
            g.add((event, DCTERMS.source, self._source(h, "source", str(h.get("source", default)))))
        for raw in r.get("performers") or []:
            value, s = sourced("performers", raw)
            self._assert(node, MC.performer, _text(value), s)
        if r.get("permanence"):
            self._assert(node, MC.permanence, Literal(str(r["permanence"])), src)
        for key, prop in (("replacement", MC.isReplacement), ("includes_components", MC.includesComponents)):
            if r.get(key) is not None:
                self._assert(node, prop, Literal(bool(r[key])), src)
        if r.get("coverage_policy"):
            self._assert(node, MC.coveragePolicy, self._source(r, "coverage_policy", str(r["coverage_policy"])), src)
        for i, ind in enumerate(r.get("indications") or [], 1):
            self._indication(ind, node, URIRef(f"{node}/indication/{i}"), str(ind.get("source", default)))
        for p in r.get("profiles") or []:
            self._profile(p, node)

    def _fee_schedule(self, r: Record, node: URIRef, default: str) -> None:
        fs = r.get("fee_schedule") or {}
        if fs and not isinstance(fs, Record):
            raise r.error("fee_schedule", "must be a mapping of indicator id to value")
        for set_id, raw in fs.items():
            if set_id == "source":
                continue
            if set_id not in self.c.value_sets:
                raise fs.error(set_id, f"unknown indicator (one of {', '.join(sorted(self.c.value_sets))})")
            vs = self.c.value_sets[set_id]
            value, s = fact(raw, str(fs.get("source", default)))
            values = value if isinstance(value, list) else [value]
            if len(values) > 1 and not vs["multi"]:
                raise fs.error(set_id, "takes one value")
            for v in values:
                if str(v) not in vs["values"]:
                    raise fs.error(set_id, f"'{v}' is not a value of {set_id} ({', '.join(vs['values'])})")
                self._assert(node, vs["property"], vs["values"][str(v)], self._source(fs, set_id, str(s)))

    def _indication(self, ind: Record, code: URIRef, node: URIRef, source_id: str) -> None:
        self._check_keys(ind, {"text", "conditions", "source"})
        self._require(ind, "text")
        source = self._source(ind, "source", source_id)
        self.g.add((code, MC.indication, node))
        self.g.add((node, RDF.type, MC.Indication))
        self.g.add((node, RDFS.label, _text(ind["text"])))
        self.g.add((node, DCTERMS.source, source))
        for cond in ind.get("conditions") or []:
            if cond not in self.c.conditions:
                raise ind.error("conditions", f"unknown condition '{cond}' (defined in conditions.yaml)")
            self.g.add((node, MC.condition, ID[f"condition/{cond}"]))

    def _profile(self, p: Record, code: URIRef) -> None:
        self._check_keys(p, PROFILE_KEYS)
        self._require(p, "source")
        source_id = str(p["source"])
        source = self._source(p, "source", source_id)
        node = URIRef(f"{code}/profile/{source_id}")
        self.g.add((code, MC.profile, node))
        self.g.add((node, RDF.type, MC.CodeProfile))
        self.g.add((node, DCTERMS.source, source))
        for key, prop in PROFILE_TEXT.items():
            values = p.get(key)
            for v in values if isinstance(values, list) else ([values] if values else []):
                self.g.add((node, prop, _text(v)))
        for i, step in enumerate(p.get("procedure_steps") or [], 1):
            s = URIRef(f"{node}/step/{i}")
            self.g.add((node, MC.procedureStep, s))
            self.g.add((s, RDF.type, MC.ProcedureStep))
            self.g.add((s, MC.stepNumber, Literal(i)))
            self.g.add((s, RDFS.label, _text(step)))
        for i, ind in enumerate(p.get("indications") or [], 1):
            self._indication(ind, code, URIRef(f"{node}/indication/{i}"), source_id)

    # -- relations -------------------------------------------------------------------------
    def _read_relations(self) -> None:
        path = self.dir / "relations.yaml"
        data = load_yaml(path)
        if not isinstance(data, Record):
            raise SourceError(path, 1, None, "expected a mapping with edits, relations, mappings")
        ptp = self.c.value_sets.get("ptp_modifier_indicator")
        for e in data.get("edits") or []:
            self._check_keys(e, {"column1", "column2", "modifier_indicator", "basis", "rationale", "source",
                                 "effective", "deleted", "note"})
            self._require(e, "column1", "column2", "modifier_indicator", "source")
            c1 = self._code_ref(e, "column1", e["column1"])
            c2 = self._code_ref(e, "column2", e["column2"])
            node = ID[f"edit/{str(e['column1']).split('/')[1]}_{str(e['column2']).split('/')[1]}"]
            mi = str(e["modifier_indicator"])
            if ptp is None or mi not in ptp["values"]:
                raise e.error("modifier_indicator", f"'{mi}' is not a PTP modifier indicator (0, 1, 9)")
            g = self.g
            g.add((node, RDF.type, MC.CodePairEdit))
            g.add((node, MC.column1, c1))
            g.add((node, MC.column2, c2))
            g.add((node, MC.modifierIndicator, ptp["values"][mi]))
            g.add((node, DCTERMS.source, self._source(e, "source", str(e["source"]))))
            for key, prop in (("basis", MC.editBasis), ("rationale", MC.rationale)):
                if e.get(key):
                    g.add((node, prop, Literal(str(e[key]))))
            for key, prop in (("effective", MC.effectiveDate), ("deleted", MC.deletionDate)):
                if e.get(key):
                    g.add((node, prop, _date(e, key, e[key])))
            if e.get("note"):
                g.add((node, SKOS.note, _text(e["note"])))
        allowed = {str(p) for p, _, _ in self._ontology_properties()}
        for section, namespace in (("relations", MC), ("mappings", SKOS)):
            for rel in data.get(section) or []:
                self._check_keys(rel, {"subject", "property", "object", "source", "note"})
                self._require(rel, "subject", "property", "object", "source")
                prop = namespace[rel["property"]]
                if namespace is MC and str(prop) not in allowed:
                    raise rel.error("property", f"'{rel['property']}' is not an ontology object property")
                if namespace is SKOS and rel["property"] not in ("exactMatch", "closeMatch", "broadMatch",
                                                                  "narrowMatch", "relatedMatch"):
                    raise rel.error("property", "must be a SKOS mapping property")
                s = self._code_ref(rel, "subject", rel["subject"])
                o = self._code_ref(rel, "object", rel["object"])
                self._assert(s, prop, o, self._source(rel, "source", str(rel["source"])))

    def _ontology_properties(self) -> Iterable[tuple[URIRef, Any, Any]]:
        from .ontology import load_ontology

        return load_ontology().triples((None, RDF.type, OWL.ObjectProperty))


def build_curated(sources_dir: Path) -> Curation:
    """Read every curated file; raise SourceError on the first bad record."""
    return CuratedBuilder(sources_dir).build()

