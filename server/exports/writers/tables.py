"""CSV and JSON: the crosswalk's rows as they are, for mappings and tables alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from operator import itemgetter
from typing import TYPE_CHECKING

from .base import LICENSE, ExportMeta, to_json

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk
    from ..rows import Table


def _quoted(value: str) -> str:
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(values: list[str]) -> str:
    """One record as `csv.writer` writes it (RFC 4180: quotes only where needed, CRLF), in about a fifth of its
    CPU: a record needing no quotes is one join (tests.test_exports checks the equality)."""
    line = ",".join(values)
    if line.count(",") == len(values) - 1 and '"' not in line and "\n" not in line and "\r" not in line:
        return line + "\r\n" if line or len(values) != 1 else '""\r\n'
    return ",".join(map(_quoted, values)) + "\r\n"


def write_csv(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """RFC 4180 (CRLF line ends, quotes only where needed), one header row, columns in their documented order."""
    yield csv_line(table.headers)
    pick = itemgetter(*table.columns)
    for row in table.rows:
        yield csv_line(list(pick(row)) if len(table.columns) > 1 else [pick(row)])


def write_json(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """The same rows as objects (only the documented columns), after a head naming the crosswalk and its columns."""
    head = {"crosswalk": xw.name, "title": xw.title, "description": xw.description, "version": meta.version,
            "license": LICENSE, "columns": table.columns}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": ['
    sep = "\n"
    for row in table.rows:
        yield sep + to_json({c: row[c] for c in table.columns})
        sep = ",\n"
    yield "\n]}\n"
