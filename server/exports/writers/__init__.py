"""One writer per export format; each turns a crosswalk's rows into text chunks, streamed as they come.

Mappings come in every format; tables (not mappings) in CSV and JSON only (`ExportFormat.mappings_only`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import ExportMeta, buffered
from .fhir import write_fhir
from .rdf import write_jsonld, write_turtle
from .sssom import write_sssom
from .tables import write_csv, write_json

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk
    from ..rows import Table

Writer = Callable[["Crosswalk", "Table", ExportMeta, str], Iterator[str]]


@dataclass(frozen=True)
class ExportFormat:
    ext: str            # /export/{name}.{ext}
    media_type: str
    writer: Writer
    label: str
    mappings_only: bool = True  # needs the mapping columns (subject, predicate, object)


FORMATS: dict[str, ExportFormat] = {f.ext: f for f in (
    ExportFormat("csv", "text/csv; charset=utf-8", write_csv, "CSV", mappings_only=False),
    ExportFormat("json", "application/json", write_json, "JSON", mappings_only=False),
    ExportFormat("sssom.tsv", "text/tab-separated-values; charset=utf-8", write_sssom, "SSSOM TSV"),
    ExportFormat("fhir.json", "application/fhir+json", write_fhir, "FHIR ConceptMap"),
    ExportFormat("ttl", "text/turtle; charset=utf-8", write_turtle, "SKOS Turtle"),
    ExportFormat("jsonld", "application/ld+json", write_jsonld, "SKOS JSON-LD"),
)}
#: other names the command line takes for a format
FORMAT_NAMES = {"sssom": "sssom.tsv", "fhir": "fhir.json", "turtle": "ttl", "json-ld": "jsonld"}


def resolve_format(value: str) -> ExportFormat:
    """The format an extension or a name stands for; KeyError naming the choices."""
    key = FORMAT_NAMES.get(value.lower(), value.lower())
    if key not in FORMATS:
        raise KeyError(f"unknown format '{value}'; one of {', '.join(FORMATS)} (or {', '.join(FORMAT_NAMES)})")
    return FORMATS[key]


def export_text(xw: Crosswalk, fmt: ExportFormat, payload: bytes, meta: ExportMeta, fhir: str = "r5") -> Iterator[str]:
    """The export as text chunks (about 64 KB each), from the query's SPARQL CSV answer."""
    return buffered(fmt.writer(xw, xw.table(payload), meta, fhir))
