"""FHIR ConceptMap JSON (R5, or R4B): one group per (source system, target system), one element per source code.

How SKOS maps to FHIR (one table, RELATIONSHIPS): a procedure is never the same concept as a device, so
procedure-to-device rows are skos:relatedMatch (R5 related-to, R4 relatedto); the curated C-code/E-code
pairs are skos:closeMatch (R5 related-to, R4 inexact: R5 has no "inexact"); code-to-ICD rows through an
indication are skos:relatedMatch; ICD-10-CM child-to-parent rows are skos:broader (R5
source-is-narrower-than-target, R4 wider).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .base import LICENSE, ExportMeta, to_json

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk
    from ..rows import Table

#: SKOS mapping predicate -> (FHIR R5 relationship, FHIR R4/R4B equivalence).
RELATIONSHIPS = {
    "skos:exactMatch": ("equivalent", "equivalent"),
    "skos:closeMatch": ("related-to", "inexact"),
    "skos:relatedMatch": ("related-to", "relatedto"),
    "skos:broadMatch": ("source-is-narrower-than-target", "wider"),
    "skos:broader": ("source-is-narrower-than-target", "wider"),
    "skos:narrowMatch": ("source-is-broader-than-target", "narrower"),
}
#: the mapping predicates that hold read from either side ($translate answers from the object too)
SYMMETRIC = {"skos:exactMatch", "skos:closeMatch", "skos:relatedMatch"}
#: the `fhirVersion` media-type parameter of each version served
FHIR_VERSIONS = {"r5": "5.0", "r4b": "4.3"}
COPYRIGHT = (f"Mappings: {LICENSE}. CPT is a registered trademark of the American Medical Association; "
             "CPT descriptors appear only where a seed quotes them, other labels are paraphrases.")


def _name(xw: Crosswalk) -> str:
    """A computer-friendly ConceptMap name: device-crosswalk -> DeviceCrosswalk."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", xw.name) if part)


def _target(xw: Crosswalk, row: dict[str, str], r5: bool) -> dict[str, Any]:
    r5_name, r4_name = RELATIONSHIPS[row["predicate"]]
    target: dict[str, Any] = {"code": row["object_code"]}
    if row["object_label"]:
        target["display"] = row["object_label"]
    target["relationship" if r5 else "equivalence"] = r5_name if r5 else r4_name
    if comment := xw.mapping_comment(row):
        target["comment"] = comment
    return target


def _element(xw: Crosswalk, rows: list[dict[str, str]], r5: bool) -> dict[str, Any]:
    element: dict[str, Any] = {"code": rows[0]["subject_code"]}
    if rows[0]["subject_label"]:
        element["display"] = rows[0]["subject_label"]
    element["target"] = [_target(xw, row, r5) for row in rows]
    return element


def write_fhir(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """The ConceptMap, streamed group by group (consecutive rows with the same systems), one element for each run
    of rows with the same source IRI: an ICD-10-CM block and its same-named category (block/B99 and B99) stay
    two elements whatever the rows' order, although their codes are equal."""
    r5 = fhir == "r5"
    head: dict[str, Any] = {
        "resourceType": "ConceptMap", "id": xw.name, "url": meta.canonical(xw), "version": meta.version,
        "name": _name(xw), "title": f"medcode-kg: {xw.title}", "status": "active", "experimental": False,
        "date": meta.date or None, "publisher": "medcode-kg", "description": xw.description, "copyright": COPYRIGHT,
    }
    yield json.dumps({k: v for k, v in head.items() if v is not None}, ensure_ascii=False)[:-1] + ', "group": ['
    systems = itemgetter("subject_system", "object_system")
    for n, ((source, target), rows) in enumerate(groupby(table.rows, key=systems)):
        yield ("," if n else "") + "\n" + json.dumps({"source": source, "target": target})[:-1] + ', "element": ['
        for m, (_, same_source) in enumerate(groupby(rows, key=itemgetter("subject_iri"))):
            yield ("," if m else "") + "\n" + to_json(_element(xw, list(same_source), r5))
        yield "\n]}"
    yield "\n]}\n"
