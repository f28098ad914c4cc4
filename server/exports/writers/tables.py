"""CSV and JSON: the crosswalk's rows as they are, for mappings and tables alike."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .base import LICENSE, ExportMeta

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk
    from ..rows import Table


def write_csv(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """RFC 4180 (CRLF line ends, quotes only where needed), one header row, columns in their documented order."""
    buf = io.StringIO()
    out = csv.writer(buf)

    def line(values: list[str]) -> str:
        buf.seek(0)
        buf.truncate()
        out.writerow(values)
        return buf.getvalue()

    yield line(table.headers)
    for row in table.rows:
        yield line([row[c] for c in table.columns])


def write_json(xw: Crosswalk, table: Table, meta: ExportMeta, fhir: str) -> Iterator[str]:
    """The same rows as objects (only the documented columns), after a head naming the crosswalk and its columns."""
    head = {"crosswalk": xw.name, "title": xw.title, "description": xw.description, "version": meta.version,
            "license": LICENSE, "columns": table.columns}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": ['
    sep = "\n"
    for row in table.rows:
        yield sep + json.dumps({c: row[c] for c in table.columns}, ensure_ascii=False)
        sep = ",\n"
    yield "\n]}\n"
