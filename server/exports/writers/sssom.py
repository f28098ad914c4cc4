"""SSSOM TSV: a YAML metadata block (the one CURIE map, set id, version, license), then one mapping per row."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

import yaml

from kg.contract import ID_BASE

from ...codes import CURIE_MAP, system_of
from .base import LICENSE, ExportMeta, short

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk
    from ..rows import Table

COLUMNS = ("subject_id", "subject_label", "predicate_id", "object_id", "object_label", "mapping_justification",
           "subject_source", "object_source", "comment", "see_also")


def _tsv(value: str) -> str:
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _line(values: tuple[str, ...]) -> str:
    """One TSV line, tabs and line breaks in a value made spaces (checked on the joined line: rarely needed)."""
    line = "\t".join(values)
    if line.count("\t") == len(values) - 1 and "\n" not in line and "\r" not in line:
        return line + "\n"
    return "\t".join(map(_tsv, values)) + "\n"


@lru_cache(maxsize=64)
def _scheme(system: str) -> str:
    return short(ID_BASE + system) if system else ""


def _source(iri: str) -> str:
    """The code system (concept scheme) of a code IRI: .../id/icd10cm/block/G35 -> id:icd10cm."""
    return _scheme(system_of(iri))


def write_sssom(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """The mapping set; justification, comment and see_also come from the crosswalk's header."""
    header = {
        "curie_map": dict(CURIE_MAP),
        "mapping_set_id": meta.url(xw, "sssom.tsv"),
        "mapping_set_version": meta.version,
        "mapping_set_title": f"medcode-kg: {xw.title}",
        "mapping_set_description": xw.description,
        "license": LICENSE,
        "mapping_provider": meta.base,
        "mapping_date": meta.date[:10] or None,
    }
    block = yaml.safe_dump({k: v for k, v in header.items() if v}, sort_keys=False, allow_unicode=True, width=10_000)
    yield "".join(f"# {line}\n" for line in block.splitlines())
    yield "\t".join(COLUMNS) + "\n"
    for row in table.rows:
        values = (short(row["subject_iri"]), row["subject_label"], row["predicate"], short(row["object_iri"]),
                  row["object_label"], row["mapping_justification"], _source(row["subject_iri"]),
                  _source(row["object_iri"]), xw.mapping_comment(row), row[xw.see_also] if xw.see_also else "")
        yield _line(values)
