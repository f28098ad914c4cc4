"""Crosswalk exports: each crosswalk is a named query (queries/crosswalk-*.rq) plus one writer per format.

The query runs through the store like any named query (a worker process with a time limit) and
answers in SPARQL CSV; the exports read that answer row by row and stream it out in the asked-for
format, so even the ~98.5k-row ICD-10-CM hierarchy is never held as one output string.

Formats: CSV (the columns each crosswalk documents, in that order), JSON (the same rows as objects),
SSSOM TSV with its YAML metadata block, FHIR ConceptMap JSON (R5, or R4B on request), SKOS Turtle
and JSON-LD. Mappings (device, indication, ICD-10-CM hierarchy) come in all of them; tables (NCCI
PTP edits, fee-schedule indicators) in CSV and JSON only.

How SKOS maps to SSSOM and FHIR (one table, RELATIONSHIPS): a procedure is never the same concept as
a device, so procedure-to-device rows are skos:relatedMatch (FHIR R5 related-to, R4 relatedto); the
curated C-code/E-code pairs are skos:closeMatch (R5 related-to, R4 inexact: R5 has no "inexact");
code-to-ICD rows through an indication are skos:relatedMatch; ICD-10-CM child-to-parent rows are
skos:broader (R5 source-is-narrower-than-target, R4 wider).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    has_app_context,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from kg.contract import ID_BASE, PREFIXES, QUERIES_DIR

from ..http.errors import error_response
from ..http.formats import BadAccept, Format, NotAcceptable, negotiate
from ..named_queries import NamedQuery, bind_values, load_named_queries
from ..store import INFERENCE_GRAPHS, QueryError

bp = Blueprint("exports", __name__, template_folder="templates")
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"

LICENSE = "https://creativecommons.org/licenses/by/4.0/"  # the ontology's dcterms:license
SEMAPV = "https://w3id.org/semapv/vocab/"
SKOS = PREFIXES["skos"]
EXPORT_TIMEOUT = 60.0        # seconds; app config EXPORT_TIMEOUT overrides
EXPORT_MAX_ROWS = 1_000_000  # app config EXPORT_MAX_ROWS overrides
#: Prefixes for CURIEs in SSSOM, Turtle and JSON-LD (the longest matching namespace wins).
CURIE_MAP = {
    "cpt": ID_BASE + "cpt/", "hcpcs": ID_BASE + "hcpcs/", "modifier": ID_BASE + "modifier/",
    "icd10cm": ID_BASE + "icd10cm/", "icd10cm.block": ID_BASE + "icd10cm/block/",
    "icd10cm.chapter": ID_BASE + "icd10cm/chapter/", "medcode": ID_BASE, "mc": PREFIXES["mc"],
    "skos": SKOS, "semapv": SEMAPV,
}
_BY_LENGTH = sorted(((ns, p) for p, ns in CURIE_MAP.items()), key=lambda item: -len(item[0]))
#: SKOS mapping predicate -> (FHIR R5 relationship, FHIR R4/R4B equivalence).
RELATIONSHIPS = {
    "skos:exactMatch": ("equivalent", "equivalent"),
    "skos:closeMatch": ("related-to", "inexact"),
    "skos:relatedMatch": ("related-to", "relatedto"),
    "skos:broadMatch": ("source-is-narrower-than-target", "wider"),
    "skos:broader": ("source-is-narrower-than-target", "wider"),
    "skos:narrowMatch": ("source-is-broader-than-target", "narrower"),
}
SYMMETRIC = {"skos:exactMatch", "skos:closeMatch", "skos:relatedMatch"}
MAPPING_COLUMNS = ("subject_system", "subject_code", "subject_label", "predicate",
                   "object_system", "object_code", "object_label")


class ExportError(Exception):
    """The crosswalk's query failed or timed out (the message says which)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------ crosswalks

@dataclass(frozen=True)
class Table:
    """A crosswalk's rows, ready to write: keys in `columns` order, CSV header names in `headers`."""

    columns: list[str]
    headers: list[str]
    rows: Iterator[dict[str, str]]


@dataclass(frozen=True)
class Crosswalk:
    name: str                  # /export/{name}.{ext}
    query: str                 # named query in queries/
    title: str
    kind: str                  # "mapping" (all formats) or "table" (CSV and JSON)
    columns: tuple[str, ...]   # row keys = CSV columns, in order (for "table" pivots: the fixed ones)
    headers: dict[str, str] = field(default_factory=dict)  # CSV header when it differs from the key
    graphs: str = "all"        # which graphs the query reads: all (asserted + inferred) or asserted
    transform: Callable[[dict[str, str]], dict[str, str]] | None = None
    pivot: Callable[[Iterator[dict[str, str]]], Table] | None = None
    comment: Callable[[dict[str, str]], str] = lambda row: ""
    justification: Callable[[dict[str, str]], str] = lambda row: "semapv:ManualMappingCuration"
    see_also: str = ""         # a column holding a per-mapping URL (SSSOM see_also)
    summary: str = ""          # describes the export when it differs from the query's description
    count_query: str = ""      # a cheaper SPARQL count of the rows, for the /export listing
    translate: bool = False    # answers FHIR $translate

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(FORMATS) if self.kind == "mapping" else ("csv", "json")

    def named_query(self) -> NamedQuery:
        return load_named_queries(current_app.config["QUERIES_DIR"] if has_app_context() else QUERIES_DIR)[self.query]

    def table(self, payload: bytes) -> Table:
        raw = csv.DictReader(io.TextIOWrapper(io.BytesIO(payload), encoding="utf-8", newline=""))
        if self.pivot is not None:
            return self.pivot(raw)
        if self.transform is None and not set(self.columns) <= set(raw.fieldnames or ()):
            missing = sorted(set(self.columns) - set(raw.fieldnames or ()))
            raise ExportError(f"query {self.query} does not select {', '.join(missing)}")
        rows = raw if self.transform is None else map(self.transform, raw)
        return Table(list(self.columns), [self.headers.get(c, c) for c in self.columns], rows)


def _sorted_list(value: str) -> str:
    return "; ".join(sorted(set(filter(None, value.split("; ")))))


def _device_row(row: dict[str, str]) -> dict[str, str]:
    return {**row, "basis": _sorted_list(row["basis"]), "source": _sorted_list(row["source"])}


def _device_justification(row: dict[str, str]) -> str:
    # curated statements are manual curation; a pair linked only through a shared device is derived
    curated = "usual device code" in row["basis"] or "close match" in row["basis"]
    return "semapv:ManualMappingCuration" if curated else "semapv:LogicalReasoning"


def _icd_kind(iri: str) -> str:
    return "chapter" if "/icd10cm/chapter/" in iri else "block" if "/icd10cm/block/" in iri else "code"


def _hierarchy_row(row: dict[str, str]) -> dict[str, str]:
    s, o = row["subject_iri"], row["object_iri"]
    return {"subject_system": ICD10CM_SYSTEM, "subject_code": s.rsplit("/", 1)[1],
            "subject_label": row["subject_label"], "predicate": "skos:broader",
            "object_system": ICD10CM_SYSTEM, "object_code": o.rsplit("/", 1)[1], "object_label": row["object_label"],
            "subject_kind": _icd_kind(s), "object_kind": _icd_kind(o), "subject_iri": s, "object_iri": o}


def _fee_schedule_pivot(raw: Iterator[dict[str, str]]) -> Table:
    """One row per code; for each indicator (alphabetical by property name) its value and meaning."""
    indicators: set[str] = set()
    codes: dict[tuple[str, str], dict[str, Any]] = {}
    for row in raw:
        name = row["indicator"].rsplit("#", 1)[-1]
        indicators.add(name)
        if not row["code"]:
            continue
        entry = codes.setdefault((row["system"], row["code"]), {
            "system": row["system"], "code": row["code"], "label": row["label"], "code_iri": row["code_iri"]})
        entry.setdefault(name, []).append(row["value"])
        entry.setdefault(name + "_meaning", []).append(row["meaning"])
    names = sorted(indicators)
    columns = ["system", "code", "label", *(c for n in names for c in (n, n + "_meaning")), "code_iri"]
    rows = ({c: " | ".join(v) if isinstance(v := entry.get(c, ""), list) else v for c in columns}
            for _, entry in sorted(codes.items()))
    return Table(columns, columns, rows)


CROSSWALKS: dict[str, Crosswalk] = {x.name: x for x in (
    Crosswalk(
        "device-crosswalk", "crosswalk-device", "Procedure codes to HCPCS device codes", "mapping",
        (*MAPPING_COLUMNS, "basis", "source", "subject_iri", "object_iri"),
        transform=_device_row, justification=_device_justification, translate=True,
        comment=lambda r: f"{r['basis']} (source: {r['source']})"),
    Crosswalk(
        "indication-icd10cm", "crosswalk-indication-icd10cm", "Codes to ICD-10-CM codes through indications",
        "mapping",
        (*MAPPING_COLUMNS, "condition_match", "indication", "indication_source", "indication_source_kind",
         "condition", "condition_label", "subject_iri", "object_iri", "indication_iri"),
        justification=lambda r: "semapv:MappingChaining", see_also="indication_iri", translate=True,
        comment=lambda r: (f"indication ({r['indication_source']}, {r['indication_source_kind']}): {r['indication']}"
                           f" - condition: {r['condition_label']} ({r['condition_match']} match)")),
    Crosswalk(
        "icd10cm-hierarchy", "crosswalk-icd10cm-hierarchy", "The ICD-10-CM hierarchy (child to parent)", "mapping",
        (*MAPPING_COLUMNS, "subject_kind", "object_kind", "subject_iri", "object_iri"),
        graphs="asserted", transform=_hierarchy_row,
        count_query="SELECT (COUNT(*) AS ?n) WHERE { ?s <http://www.w3.org/2004/02/skos/core#broader> ?o "
                    f"FILTER(STRSTARTS(STR(?s), \"{ID_BASE}icd10cm/\")) }}"),
    Crosswalk(
        "ncci-ptp-edits", "crosswalk-ncci-ptp", "Code-pair edits in the NCCI PTP layout", "table",
        ("column_1", "column_2", "prior_1996", "effective_date", "deletion_date", "modifier_indicator", "rationale",
         "source", "basis", "edit"),
        headers={"column_1": "Column 1", "column_2": "Column 2", "prior_1996": "* = In existence prior to 1996",
                 "effective_date": "Effective Date", "deletion_date": "Deletion Date *=no data",
                 "modifier_indicator": "Modifier 0=not allowed 1=allowed 9=not applicable",
                 "rationale": "PTP Edit Rationale", "source": "Source", "basis": "Basis", "edit": "Edit"}),
    Crosswalk(
        "fee-schedule-indicators", "crosswalk-fee-schedule", "Fee-schedule indicators of each code", "table",
        ("system", "code", "label", "code_iri"), pivot=_fee_schedule_pivot,
        summary="One row per code that has a fee-schedule indicator: system, code, label, then for each indicator "
                "(each sub-property of mc:feeScheduleIndicator, alphabetical by property name) two columns, the "
                "value (its notation; several values joined by ' | ') and <indicator>_meaning (the value's "
                "skos:prefLabel), then code_iri. From the named query crosswalk-fee-schedule (long form)."),
)}


# ------------------------------------------------------------------------------ helpers for writers

@dataclass(frozen=True)
class ExportMeta:
    version: str      # the snapshot id
    date: str         # when the snapshot was built (ISO 8601 with a UTC offset)
    base: str         # public base IRI, e.g. https://w3id.org/medcode/

    @classmethod
    def from_snapshot(cls, meta: dict[str, Any], base: str) -> ExportMeta:
        built = str(meta.get("built_at", ""))
        try:
            built = datetime.datetime.strptime(built, "%Y-%m-%dT%H:%M:%S%z").isoformat()
        except ValueError:
            pass
        return cls(str(meta.get("snapshot", "")), built, base if base.endswith("/") else base + "/")

    def url(self, xw: Crosswalk, ext: str) -> str:
        return f"{self.base}export/{xw.name}.{ext}"

    def canonical(self, xw: Crosswalk) -> str:
        return f"{self.base}fhir/ConceptMap/{xw.name}"


def curie(iri: str) -> str:
    for namespace, prefix in _BY_LENGTH:
        if iri.startswith(namespace) and len(iri) > len(namespace):
            return f"{prefix}:{iri[len(namespace):]}"
    return iri


def scheme_curie(iri: str) -> str:
    """The code system (concept scheme) of a code IRI: .../id/icd10cm/block/G35 -> medcode:icd10cm."""
    if iri.startswith(ID_BASE):
        return "medcode:" + iri[len(ID_BASE):].split("/", 1)[0]
    return ""


def expand(value: str) -> str:
    prefix, sep, local = value.partition(":")
    return CURIE_MAP[prefix] + local if sep and prefix in CURIE_MAP else value


def _description(xw: Crosswalk) -> str:
    return xw.summary or xw.named_query().description


def _buffered(parts: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """Join small pieces into chunks of about `size` characters (fewer, larger writes)."""
    buf: list[str] = []
    n = 0
    for part in parts:
        buf.append(part)
        n += len(part)
        if n >= size:
            yield "".join(buf)
            buf, n = [], 0
    if buf:
        yield "".join(buf)


# ------------------------------------------------------------------------------ writers (one per format)

def write_csv(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    buf = io.StringIO()
    out = csv.writer(buf)  # RFC 4180: CRLF line ends, quotes only where needed

    def line(values: list[str]) -> str:
        buf.seek(0)
        buf.truncate()
        out.writerow(values)
        return buf.getvalue()

    yield line(table.headers)
    for row in table.rows:
        yield line([row[c] for c in table.columns])


def write_json(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    head = {"crosswalk": xw.name, "title": xw.title, "description": _description(xw), "version": meta.version,
            "license": LICENSE, "columns": table.columns}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": ['
    sep = "\n"
    for row in table.rows:
        yield sep + json.dumps(row, ensure_ascii=False)
        sep = ",\n"
    yield "\n]}\n"


SSSOM_COLUMNS = ("subject_id", "subject_label", "predicate_id", "object_id", "object_label", "mapping_justification",
                 "subject_source", "object_source", "comment", "see_also")


def _tsv(value: str) -> str:
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def write_sssom(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    header = {
        "curie_map": dict(CURIE_MAP),
        "mapping_set_id": meta.url(xw, "sssom.tsv"),
        "mapping_set_version": meta.version,
        "mapping_set_title": f"medcode-kg: {xw.title}",
        "mapping_set_description": _description(xw),
        "license": LICENSE,
        "mapping_provider": meta.base,
        "mapping_date": meta.date[:10] or None,
    }
    block = yaml.safe_dump({k: v for k, v in header.items() if v}, sort_keys=False, allow_unicode=True, width=10_000)
    yield "".join(f"# {line}\n" for line in block.splitlines())
    yield "\t".join(SSSOM_COLUMNS) + "\n"
    for row in table.rows:
        values = (curie(row["subject_iri"]), row["subject_label"], row["predicate"], curie(row["object_iri"]),
                  row["object_label"], xw.justification(row), scheme_curie(row["subject_iri"]),
                  scheme_curie(row["object_iri"]), xw.comment(row),
                  row.get(xw.see_also, "") if xw.see_also else "")
        yield "\t".join(_tsv(v) for v in values) + "\n"


def _concept_map_name(xw: Crosswalk) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", xw.name) if part)


def write_fhir(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """A ConceptMap: one group per (source system, target system), one element per source code."""
    r5 = fhir == "r5"
    head: dict[str, Any] = {
        "resourceType": "ConceptMap", "id": xw.name, "url": meta.canonical(xw), "version": meta.version,
        "name": _concept_map_name(xw), "title": f"medcode-kg: {xw.title}", "status": "active",
        "experimental": False, "date": meta.date or None, "publisher": "medcode-kg",
        "description": _description(xw),
        "copyright": f"Mappings: {LICENSE}. CPT is a registered trademark of the American Medical Association; "
                     "CPT descriptors appear only where a seed quotes them, other labels are paraphrases.",
    }
    head = {k: v for k, v in head.items() if v is not None}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "group": ['
    group_key: tuple[str, str] | None = None
    element: dict[str, Any] | None = None
    first_group = True
    first_element = True
    for row in table.rows:
        key = (row["subject_system"], row["object_system"])
        if element is not None and (key != group_key or row["subject_code"] != element["code"]):
            yield ("" if first_element else ",") + "\n" + json.dumps(element, ensure_ascii=False)
            first_element = False
            element = None
        if key != group_key:
            if group_key is not None:
                yield "\n]}"
            yield ("" if first_group else ",") + "\n" + json.dumps({"source": key[0], "target": key[1]})[:-1] \
                + ', "element": ['
            first_group, first_element, group_key = False, True, key
        if element is None:
            element = {"code": row["subject_code"]}
            if row["subject_label"]:
                element["display"] = row["subject_label"]
            element["target"] = []
        r5_name, r4_name = RELATIONSHIPS[row["predicate"]]
        target: dict[str, Any] = {"code": row["object_code"]}
        if row["object_label"]:
            target["display"] = row["object_label"]
        target["relationship" if r5 else "equivalence"] = r5_name if r5 else r4_name
        if comment := xw.comment(row):
            target["comment"] = comment
        element["target"].append(target)
    if element is not None:
        yield ("" if first_element else ",") + "\n" + json.dumps(element, ensure_ascii=False)
    if group_key is not None:
        yield "\n]}"
    yield "\n]}\n"


_LOCAL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")


def _ttl_term(iri: str) -> str:
    short = curie(iri)
    if short != iri and _LOCAL.match(short.partition(":")[2]):
        return short
    return f"<{iri}>"


def _ttl_string(value: str) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


def write_turtle(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """The mapping triples, each code's notation and label once; provenance stays in CSV/SSSOM/FHIR."""
    yield f"# medcode-kg: {xw.title} (snapshot {meta.version}); license {LICENSE}\n"
    for prefix, namespace in CURIE_MAP.items():
        yield f"@prefix {prefix}: <{namespace}> .\n"
    yield f"@prefix dcterms: <{PREFIXES['dcterms']}> .\n\n"
    yield (f"<{meta.url(xw, 'ttl')}> dcterms:title {_ttl_string('medcode-kg: ' + xw.title)} ; "
           f"dcterms:license <{LICENSE}> ; dcterms:hasVersion {_ttl_string(meta.version)} .\n\n")
    seen: set[str] = set()
    for row in table.rows:
        s, o = row["subject_iri"], row["object_iri"]
        yield f"{_ttl_term(s)} {row['predicate']} {_ttl_term(o)} .\n"
        for iri, code, label in ((s, row["subject_code"], row["subject_label"]),
                                 (o, row["object_code"], row["object_label"])):
            if iri not in seen:
                seen.add(iri)
                labelled = f" ;\n    skos:prefLabel {_ttl_string(label)}@en" if label else ""
                yield f"{_ttl_term(iri)} skos:notation {_ttl_string(code)}{labelled} .\n"


def write_jsonld(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """One node per row: the subject with the mapping to the object; labels on first mention."""
    context = {**CURIE_MAP, "dcterms": PREFIXES["dcterms"]}
    dataset = {"@id": meta.url(xw, "jsonld"), "dcterms:title": f"medcode-kg: {xw.title}",
               "dcterms:license": {"@id": LICENSE}, "dcterms:hasVersion": meta.version}
    yield '{"@context": ' + json.dumps(context) + ', "@graph": [\n' + json.dumps(dataset, ensure_ascii=False)
    seen: set[str] = set()

    def node(iri: str, code: str, label: str) -> dict[str, Any]:
        out: dict[str, Any] = {"@id": curie(iri)}
        if iri not in seen:
            seen.add(iri)
            out["skos:notation"] = code
            if label:
                out["skos:prefLabel"] = {"@value": label, "@language": "en"}
        return out

    for row in table.rows:
        subject = node(row["subject_iri"], row["subject_code"], row["subject_label"])
        subject[row["predicate"]] = node(row["object_iri"], row["object_code"], row["object_label"])
        yield ",\n" + json.dumps(subject, ensure_ascii=False)
    yield "\n]}\n"


@dataclass(frozen=True)
class ExportFormat:
    ext: str
    media_type: str
    writer: Callable[[Crosswalk, Table, ExportMeta, str], Iterator[str]]
    label: str


FORMATS: dict[str, ExportFormat] = {f.ext: f for f in (
    ExportFormat("csv", "text/csv; charset=utf-8", write_csv, "CSV"),
    ExportFormat("json", "application/json", write_json, "JSON"),
    ExportFormat("sssom.tsv", "text/tab-separated-values; charset=utf-8", write_sssom, "SSSOM TSV"),
    ExportFormat("fhir.json", "application/fhir+json", write_fhir, "FHIR ConceptMap"),
    ExportFormat("ttl", "text/turtle; charset=utf-8", write_turtle, "SKOS Turtle"),
    ExportFormat("jsonld", "application/ld+json", write_jsonld, "SKOS JSON-LD"),
)}
FORMAT_NAMES = {"sssom": "sssom.tsv", "fhir": "fhir.json", "turtle": "ttl", "json-ld": "jsonld"}
FHIR_VERSIONS = {"r5": "5.0", "r4b": "4.3"}


def resolve_format(value: str) -> ExportFormat:
    key = FORMAT_NAMES.get(value.lower(), value.lower())
    if key not in FORMATS:
        raise KeyError(f"unknown format '{value}'; one of {', '.join(FORMATS)} (or {', '.join(FORMAT_NAMES)})")
    return FORMATS[key]


def export_text(xw: Crosswalk, fmt: ExportFormat, payload: bytes, meta: ExportMeta, fhir: str = "r5") -> Iterator[str]:
    """The export as text chunks (about 64 KB each), from the query's CSV answer."""
    return _buffered(fmt.writer(xw, xw.table(payload), meta, fhir))


# ------------------------------------------------------------------------------ running the queries

def run_query(xw: Crosswalk, text: str | None = None) -> bytes:
    """Run the crosswalk's named query (or `text`) through the app's store; its SPARQL CSV answer."""
    store = current_app.extensions["medcode.store"]
    query = xw.named_query()
    try:
        return store.query(
            text or query.text, fmt="csv", limit=current_app.config.get("EXPORT_MAX_ROWS", EXPORT_MAX_ROWS),
            timeout=current_app.config.get("EXPORT_TIMEOUT", EXPORT_TIMEOUT),
            default_graph=INFERENCE_GRAPHS[xw.graphs], named_graphs=None, bindings=query.bindings({}))
    except QueryError as exc:
        raise ExportError(f"Export query {xw.query} failed: {exc}", exc.status) from exc


def run_query_local(store, xw: Crosswalk) -> bytes:
    """The same query on an already opened store, in this process and without limits (the CLI)."""
    from ..store.query_worker import run

    query = xw.named_query()
    status, payload = run(store, {"query": bind_values(query.text, query.bindings({})), "format": "csv",
                                  "limit": sys.maxsize, "prefixes": PREFIXES,
                                  "default_graph": INFERENCE_GRAPHS[xw.graphs], "named_graphs": None})
    if status != "ok":
        raise ExportError(f"Export query {xw.query} failed: {payload}")
    return payload


def export_meta() -> ExportMeta:
    store = current_app.extensions["medcode.store"]
    return ExportMeta.from_snapshot(store.meta, current_app.config["PUBLIC_BASE"])


def export_cache() -> dict:
    """Per-snapshot memo (row counts, $translate index, code systems), kept with the app."""
    memo = current_app.extensions.setdefault("medcode.exports", {})
    return memo.setdefault(current_app.extensions["medcode.store"].etag, {})


def row_count(xw: Crosswalk) -> int:
    cache = export_cache()
    key = ("count", xw.name)
    if key not in cache:
        if xw.count_query:
            table = csv.reader(io.StringIO(run_query(xw, xw.count_query).decode("utf-8")))
            cache[key] = int(list(table)[1][0])
        else:
            cache[key] = sum(1 for _ in xw.table(run_query(xw)).rows)
    return cache[key]


def translate_rows() -> list[dict[str, str]]:
    """The rows of every crosswalk that answers $translate (small: kept in memory), with their map."""
    cache = export_cache()
    if "translate" not in cache:
        rows = []
        for xw in CROSSWALKS.values():
            if xw.translate:
                rows += [{**row, "crosswalk": xw.name}
                         for row in xw.table(run_query(xw)).rows]
        cache["translate"] = rows
    return cache["translate"]


# ------------------------------------------------------------------------------ HTTP

def _listing() -> dict[str, Any]:
    out = {}
    for xw in CROSSWALKS.values():
        out[xw.name] = {
            "title": xw.title, "description": _description(xw), "kind": xw.kind, "rows": row_count(xw),
            "query": xw.query, "columns": list(xw.columns) if xw.pivot is None else None,
            "downloads": {ext: url_for("exports.download", filename=f"{xw.name}.{ext}", _external=True)
                          for ext in xw.formats},
        }
    return out


@bp.route("/export")
@bp.route("/export/")
def index() -> Response:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    if request.args.get("format") == "json" or best == "application/json":
        return index_json()
    try:
        listing = _listing()
    except ExportError as exc:
        return error_response(exc.status, str(exc))
    response = Response(render_template("exports/index.html", crosswalks=CROSSWALKS, listing=listing, formats=FORMATS),
                        mimetype="text/html")
    response.headers["Vary"] = "Accept"
    return response


@bp.route("/export.json")
def index_json() -> Response:
    try:
        listing = _listing()
    except ExportError as exc:
        return error_response(exc.status, str(exc))
    body = {"formats": {ext: {"media_type": f.media_type, "label": f.label} for ext, f in FORMATS.items()},
            "crosswalks": listing}
    response = Response(json.dumps(body, indent=2, ensure_ascii=False), mimetype="application/json")
    response.headers["Vary"] = "Accept"
    return response


def fhir_version_of(req) -> str:
    """r5 (default) or r4b: from ?fhir= or the Accept header's fhirVersion parameter."""
    value = (req.args.get("fhir") or "").strip().lower()
    if not value:
        match = re.search(r"fhirversion\s*=\s*\"?([0-9.]+)", req.headers.get("Accept", ""), re.IGNORECASE)
        value = match.group(1) if match else "r5"
    if value in ("r4b", "r4", "4.3", "4.0", "4.3.0", "4.0.1"):
        return "r4b"
    if value in ("r5", "5.0", "5.0.0"):
        return "r5"
    raise ValueError(f"FHIR version '{value}' is not served here: r5 (default) or r4b")


def _split(filename: str) -> tuple[str, str | None]:
    for ext in sorted(FORMATS, key=len, reverse=True):
        if filename.endswith("." + ext):
            return filename[: -len(ext) - 1], ext
    return filename, None


@bp.route("/export/<filename>")
def download(filename: str) -> Response:
    name, ext = _split(filename)
    xw = CROSSWALKS.get(name)
    if xw is None:
        stem = filename.split(".", 1)[0]
        if stem in CROSSWALKS and "." in filename:
            return error_response(404, f"'{filename}': unknown format; {stem} is available as "
                                       + ", ".join(f"{stem}.{e}" for e in CROSSWALKS[stem].formats))
        abort(404)
    if ext is None:  # content negotiation among what this crosswalk offers
        offered = tuple(Format(e, FORMATS[e].media_type.split(";")[0]) for e in xw.formats)
        try:
            ext = negotiate(offered, request.headers.get("Accept"), request.args.get("format")).name
        except BadAccept as exc:
            return error_response(400, str(exc))
        except NotAcceptable as exc:
            return error_response(406, f"{exc} (available: {', '.join(xw.formats)})")
    if ext not in xw.formats:
        return error_response(406, f"{xw.name} is a {xw.kind} and is not available as {FORMATS[ext].label}; "
                                   f"available: {', '.join(f'{xw.name}.{e}' for e in xw.formats)}")
    try:
        fhir = fhir_version_of(request) if ext == "fhir.json" else "r5"
    except ValueError as exc:
        return error_response(400, str(exc))
    fmt = FORMATS[ext]
    store = current_app.extensions["medcode.store"]
    etag = f"{store.etag}-{xw.name}-{ext}" + (f"-{fhir}" if ext == "fhir.json" else "")
    if etag in request.if_none_match:
        response = Response(status=304)
        response.set_etag(etag)
        return response
    try:
        payload = run_query(xw)
    except ExportError as exc:
        return error_response(exc.status, str(exc))
    chunks = export_text(xw, fmt, payload, export_meta(), fhir)
    media_type = fmt.media_type + (f"; fhirVersion={FHIR_VERSIONS[fhir]}" if ext == "fhir.json" else "")
    response = Response(stream_with_context(c.encode("utf-8") for c in chunks), content_type=media_type)
    response.set_etag(etag)
    response.headers["Content-Disposition"] = f'inline; filename="{xw.name}.{ext}"'
    response.headers["Vary"] = "Accept"
    return response
