"""The crosswalk model: a named query whose `#+ ` header has an `export:` block, read from queries/.

Adding one query file with an `export:` block adds its export, its download formats, its FHIR
ConceptMap and (with `translate: true`) its $translate answers; nothing is registered in Python.
The block's fields:

    name         required: /export/{name}.{ext} and /fhir/ConceptMap/{name}
    title        required
    kind         required: mapping (subject, predicate, object rows: every format) or table (CSV, JSON)
    columns      the row keys = CSV columns, in order (required unless a pivot makes its own)
    headers      CSV header names that differ from the keys
    description  describes the export when the query's description does not
    formats      the formats offered (default: every format the kind allows)
    graphs       the default graph the query reads: all (default), asserted or inferred
    values       fixed values for columns the query does not select (FHIR systems, predicate, ...)
    joined       GROUP_CONCAT columns whose '; '-separated values are sorted, each once
    rows         a row function by name (rows.ROW_FUNCTIONS)
    node_rows    true: the query answers one row per node and parent (subject_iri, subject_label,
                 object_iri), each node's label once; rows.node_links makes the links, the object_label
                 from the object's own row (about half the query's CPU for a large hierarchy)
    pivot        a pivot by name (rows.PIVOTS): the query's rows become another table
    comment      a per-mapping comment for SSSOM and FHIR, with {column} placeholders
    see_also     a column holding a per-mapping URL (SSSOM see_also)
    count        a cheaper SPARQL count of the rows, for the /export listing
    translate    true: the mapping answers FHIR $translate

A mapping row's SSSOM justification is its `mapping_justification` (selected by the query or fixed
in `values`), else semapv:ManualMappingCuration. A bad block is a HeaderError naming the file.
"""

from __future__ import annotations

import csv
import io
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kg.contract import INFERENCE_GRAPHS, QUERIES_DIR

from ..http.errors import HTTPError
from ..named_queries import NAME, HeaderError, NamedQuery, current_queries, load_named_queries, queries_dir
from .rows import LINK_COLUMNS, PIVOTS, ROW_FUNCTIONS, Table, node_links, sorted_list
from .writers import FORMATS

KINDS = ("mapping", "table")
MAPPING_COLUMNS = ("subject_system", "subject_code", "subject_label", "predicate",
                   "object_system", "object_code", "object_label", "subject_iri", "object_iri")
DEFAULT_JUSTIFICATION = "semapv:ManualMappingCuration"


@dataclass(frozen=True)
class Crosswalk:
    """One export: its named query and how its rows are shaped and written (the header's `export:` block)."""

    name: str
    title: str
    kind: str
    query: str                            # the named query (file stem) it runs
    description: str
    columns: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    formats: tuple[str, ...] = ()
    graphs: str = "all"
    values: dict[str, str] = field(default_factory=dict)
    joined: tuple[str, ...] = ()
    rows: str | None = None
    node_rows: bool = False
    pivot: str | None = None
    comment: str = ""
    see_also: str = ""
    count: str = ""
    translate: bool = False

    def named_query(self) -> NamedQuery:
        """The named query behind the export (the app's, or the project's outside an app)."""
        return current_queries()[self.query]

    def mapping_comment(self, row: dict[str, str]) -> str:
        """The row's comment from the `comment` template ('' without one)."""
        return self.comment.format_map(row) if self.comment else ""

    def table(self, payload: bytes) -> Table:
        """The rows of the query's SPARQL CSV answer, shaped as the header says (read lazily)."""
        if self.node_rows:
            raw: Iterator[dict[str, str]] = node_links(payload)
            selected: list[str] = LINK_COLUMNS
        else:
            reader = csv.DictReader(io.TextIOWrapper(io.BytesIO(payload), encoding="utf-8", newline=""))
            raw, selected = reader, list(reader.fieldnames or ())
        if self.pivot:
            return PIVOTS[self.pivot](raw)
        missing = [c for c in self.columns if c not in selected and c not in self.values]
        if missing and not self.rows:  # a row function may add them
            raise HTTPError(500, f"Export query {self.query} does not select {', '.join(missing)}")
        return Table(list(self.columns), [self.headers.get(c, c) for c in self.columns], self._shaped(raw))

    def _shaped(self, raw: Iterator[dict[str, str]]) -> Iterator[dict[str, str]]:
        shape = ROW_FUNCTIONS[self.rows] if self.rows else None
        for selected in raw:
            row = self.values | selected
            for name in self.joined:
                row[name] = sorted_list(row[name])
            yield shape(row) if shape else row


#: header field -> the YAML type it must have (each is the Crosswalk field of the same name)
FIELD_TYPES: dict[str, type] = {"name": str, "title": str, "kind": str, "columns": list, "headers": dict,
                                "description": str, "formats": list, "graphs": str, "values": dict, "joined": list,
                                "rows": str, "node_rows": bool, "pivot": str, "comment": str, "see_also": str,
                                "count": str, "translate": bool}
REQUIRED = ("name", "title", "kind")


def _strings(value: Any) -> bool:
    """Whether a list holds only strings and a mapping maps strings to strings (other values pass)."""
    if isinstance(value, dict):
        value = [x for pair in value.items() for x in pair]
    return not isinstance(value, list) or all(isinstance(x, str) for x in value)


def _fields(query: NamedQuery) -> dict[str, Any]:
    """The `export:` block's fields, checked for presence and YAML type."""
    spec = query.header["export"]
    if not isinstance(spec, dict):
        raise HeaderError(f"{query.path}: 'export' must be a mapping of the export's fields")
    if unknown := sorted(set(spec) - set(FIELD_TYPES)):
        raise HeaderError(f"{query.path}: unknown export field {', '.join(unknown)} (known: {', '.join(FIELD_TYPES)})")
    if missing := [name for name in REQUIRED if not spec.get(name)]:
        raise HeaderError(f"{query.path}: the export needs {', '.join(missing)}")
    for name, value in spec.items():
        if not isinstance(value, FIELD_TYPES[name]) or not _strings(value):
            kind = FIELD_TYPES[name].__name__
            raise HeaderError(f"{query.path}: export field '{name}' must be a YAML {kind}"
                              + (" of strings" if kind in ("list", "dict") else ""))
    return spec


def _problems(xw: Crosswalk) -> list[str]:
    """What does not fit together in a crosswalk built from a header."""
    placeholders = {name for _, name, _, _ in string.Formatter().parse(xw.comment) if name is not None}
    named = {"comment": placeholders, "see_also": {xw.see_also} - {""}, "joined": set(xw.joined),
             "headers": set(xw.headers)}
    not_columns = {what: sorted(names - set(xw.columns)) for what, names in named.items()}
    unknown_formats = [f for f in xw.formats if f not in FORMATS]
    mapping_formats = [f for f in xw.formats if f in FORMATS and FORMATS[f].mappings_only]
    missing = [c for c in MAPPING_COLUMNS if c not in xw.columns]
    checks = [
        (NAME.match(xw.name), f"name '{xw.name}' must be lowercase words joined by '-'"),
        (xw.kind in KINDS, f"kind '{xw.kind}' must be one of {', '.join(KINDS)}"),
        (xw.graphs in INFERENCE_GRAPHS, f"graphs '{xw.graphs}' must be one of {', '.join(INFERENCE_GRAPHS)}"),
        (xw.columns or xw.pivot, "columns are required (unless a pivot makes them)"),
        (xw.kind != "mapping" or not missing, f"a mapping's columns need {', '.join(missing)}"),
        (not xw.rows or xw.rows in ROW_FUNCTIONS, f"rows '{xw.rows}' is not one of {', '.join(ROW_FUNCTIONS)}"),
        (not xw.pivot or xw.pivot in PIVOTS, f"pivot '{xw.pivot}' is not one of {', '.join(PIVOTS)}"),
        (not xw.node_rows or xw.kind == "mapping", "node_rows makes links: only a mapping has them"),
        (not unknown_formats, f"formats {', '.join(unknown_formats)} unknown (known: {', '.join(FORMATS)})"),
        (xw.kind == "mapping" or not mapping_formats, f"a table is not written as {', '.join(mapping_formats)}"),
        (xw.kind == "mapping" or not xw.translate, "only a mapping can answer $translate"),
        *((not names, f"{what} names {', '.join(names)}, not among the columns")
          for what, names in not_columns.items()),
    ]
    return [message for ok, message in checks if not ok]


def crosswalk(query: NamedQuery) -> Crosswalk:
    """The crosswalk a named query's `export:` block declares; a HeaderError naming the file if it is wrong."""
    spec = _fields(query)
    mapping = spec["kind"] == "mapping"
    xw = Crosswalk(**{
        "formats": tuple(ext for ext, f in FORMATS.items() if mapping or not f.mappings_only),
        **{name: tuple(value) if isinstance(value, list) else value for name, value in spec.items()},
        "query": query.name, "description": spec.get("description") or query.description,
        "values": {**({"mapping_justification": DEFAULT_JUSTIFICATION} if mapping else {}), **spec.get("values", {})},
    })
    if problems := _problems(xw):
        raise HeaderError(f"{query.path}: export {'; '.join(problems)}")
    return xw


@lru_cache(maxsize=4)
def load_crosswalks(directory: Path = QUERIES_DIR) -> dict[str, Crosswalk]:
    """Every crosswalk the query files of `directory` declare, by export name (read once per process)."""
    out: dict[str, Crosswalk] = {}
    for query in load_named_queries(Path(directory)).values():
        if "export" in query.header:
            xw = crosswalk(query)
            if xw.name in out:
                raise HeaderError(f"{query.path}: export name '{xw.name}' is also the export of "
                                  f"{out[xw.name].query}.rq")
            out[xw.name] = xw
    return out


class Crosswalks(Mapping[str, Crosswalk]):
    """The crosswalks of the current app's queries (the project's queries/ outside an app), by name."""

    def _current(self) -> dict[str, Crosswalk]:
        return load_crosswalks(queries_dir())

    def __getitem__(self, name: str) -> Crosswalk:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


CROSSWALKS = Crosswalks()
