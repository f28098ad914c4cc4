"""Named queries are data: each `.rq` in queries/ with a `#+ ` YAML header becomes an API operation,
a CLI command, a tab in the query UI and, when its header has an `export:` block, a crosswalk export.
Parameters are bound as RDF terms, never spliced into text.

The header is YAML in the file's leading `#+ ` lines, so the file stays valid SPARQL: `title`
(required), `description`, `params` (name -> {type, default, description}); other blocks (such as
`export:`) are kept in `header` for the surface that reads them. Bad YAML or a bad field is a
`HeaderError` naming the file, raised when the queries are loaded (the app does so at start-up).
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml
from flask import current_app, has_app_context

from kg.contract import INFERENCE_GRAPHS, PREFIXES, QUERIES_DIR, query_header

from .http.errors import HTTPError
from .http.guard import FORMS, TOKENS

TYPES = ("string", "integer", "iri", "date", "boolean")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class HeaderError(ValueError):
    """A query file's `#+ ` header is not valid YAML or misses a field (the message names the file)."""


class ParamError(HTTPError):
    """A parameter value does not fit its declared type: a 400 naming the parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(400, f"parameter '{name}': {message}")
        self.name = name


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"
    default: Any = None
    description: str = ""

    def to_term(self, raw: str) -> tuple[str, str, str | None]:
        """A picklable RDF term spec (kind, lexical value, datatype or language)."""
        value = str(raw)
        if self.type == "string":
            return ("literal", value, None)
        if self.type == "integer":
            if not re.fullmatch(r"[+-]?\d+", value.strip()):
                raise ParamError(self.name, f"'{value}' is not an integer")
            if abs(int(value)) >= 1 << 63:  # every engine's integers are 64-bit (Virtuoso refuses more: a 502)
                raise ParamError(self.name, f"'{value}' is outside the 64-bit integer range")
            return ("literal", str(int(value)), "http://www.w3.org/2001/XMLSchema#integer")
        if self.type == "date":
            try:
                datetime.date.fromisoformat(value)
            except ValueError as exc:
                raise ParamError(self.name, f"'{value}' is not a date (YYYY-MM-DD)") from exc
            return ("literal", value, "http://www.w3.org/2001/XMLSchema#date")
        if self.type == "boolean":
            if value.lower() not in ("true", "false"):
                raise ParamError(self.name, f"'{value}' is not true or false")
            return ("literal", value.lower(), "http://www.w3.org/2001/XMLSchema#boolean")
        if self.type == "iri":
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|^`\\]*", value):
                raise ParamError(self.name, f"'{value}' is not an absolute IRI")
            return ("iri", value, None)
        raise ParamError(self.name, f"unknown type {self.type}")


@dataclass(frozen=True)
class NamedQuery:
    name: str          # the file's stem: /api/{name}, `medcode query {name}`
    title: str
    description: str
    text: str
    path: Path         # the file it was read from (error messages name it)
    params: tuple[Param, ...] = field(default_factory=tuple)
    header: dict[str, Any] = field(default_factory=dict, compare=False)  # the whole `#+ ` YAML header

    def bindings(self, given: dict[str, str]) -> dict[str, tuple]:
        """Bind every declared parameter (given value or default); unknown names are an error."""
        known = {p.name for p in self.params}
        for name in given:
            if name not in known:
                raise ParamError(name, f"unknown parameter (this query takes: {', '.join(sorted(known)) or 'none'})")
        out = {}
        for p in self.params:
            raw = given.get(p.name, p.default)
            if raw is None or raw == "":
                raise ParamError(p.name, "is required")
            out[p.name] = p.to_term(raw)
        return out


def _header(path: Path, text: str) -> dict[str, Any]:
    """The YAML of the file's `#+ ` lines, as a mapping."""
    try:
        meta = query_header(text) or {}
    except yaml.YAMLError as exc:
        raise HeaderError(f"{path}: the '#+ ' header is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise HeaderError(f"{path}: the '#+ ' header must be a YAML mapping")
    if not isinstance(meta.get("title"), str) or not meta["title"].strip():
        raise HeaderError(f"{path}: the '#+ ' header needs a title")
    return meta


def _params(path: Path, specs: Any) -> tuple[Param, ...]:
    if not isinstance(specs, dict):
        raise HeaderError(f"{path}: 'params' must map each parameter name to its type, default and description")
    params = []
    for name, spec in specs.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise HeaderError(f"{path}: parameter '{name}' must be a mapping (type, default, description)")
        ptype = spec.get("type", "string")
        if ptype not in TYPES:
            raise HeaderError(f"{path}: parameter '{name}' has unknown type '{ptype}' (one of {', '.join(TYPES)})")
        params.append(Param(str(name), ptype, spec.get("default"), str(spec.get("description", ""))))
    return tuple(params)


def parse_named_query(path: Path) -> NamedQuery:
    """One query file; a HeaderError naming the file when its header is not right."""
    if not NAME.match(path.stem):
        raise HeaderError(f"{path}: query names are lowercase words joined by '-'")
    text = path.read_text(encoding="utf-8")
    meta = _header(path, text)
    return NamedQuery(path.stem, meta["title"], str(meta.get("description", "")), text, path,
                      _params(path, meta.get("params") or {}), meta)


def rdf_term(spec: tuple[str, str, str | None]) -> ox.NamedNode | ox.Literal:
    """The Oxigraph term of a spec from `Param.to_term`; `str()` of it is its escaped SPARQL form."""
    kind, value, extra = spec
    if kind == "iri":
        return ox.NamedNode(value)
    if kind == "lang":
        return ox.Literal(value, language=extra)
    return ox.Literal(value, datatype=ox.NamedNode(extra)) if extra else ox.Literal(value)


@lru_cache(maxsize=256)
def where_group(query: str) -> int:
    """Where a VALUES block goes: just inside the brace that opens the WHERE group (comments skipped)."""
    tokens = [m for m in TOKENS.finditer(query) if m.lastgroup != "comment"]
    start = next((i for i, m in enumerate(tokens) if m.lastgroup == "word" and m.group().upper() == "WHERE"), None)
    if start is None:  # SELECT * { ... } without the WHERE keyword
        start = next((i for i, m in enumerate(tokens) if m.lastgroup == "word" and m.group().upper() in FORMS), 0)
    brace = next((m for m in tokens[start:] if m.group() == "{"), None)
    if brace is None:
        raise ValueError("the query has no WHERE group to bind parameters in")
    return brace.end()


def bind_rows(query: str, names: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Bind the variables `names` to each row of terms (each `str(rdf_term(spec))`, so escaped) with one
    VALUES block opening the WHERE group; a row given twice is bound once.

    A VALUES block first in the group lets Oxigraph start its join from the bound values; its
    `substitutions` argument and a trailing VALUES were both measured 5,000x slower here (2.3 s vs
    0.4 ms on a notation lookup), because the binding is applied after the pattern is evaluated.
    """
    values = " ".join("(" + " ".join(row) + ")" for row in dict.fromkeys(tuple(row) for row in rows))
    at = where_group(query)
    return f"{query[:at]} VALUES ({' '.join('?' + n for n in names)}) {{ {values} }} {query[at:]}"


def bind_values(query: str, bindings: dict[str, tuple[str, str, str | None]]) -> str:
    """Bind variables to one row of values (specs from `Param.to_term`, serialised by Oxigraph, never text
    pasted into the query): `bind_rows` with a single row."""
    if not bindings:
        return query
    names = list(bindings)
    return bind_rows(query, names, [[str(rdf_term(bindings[n])) for n in names]])


@lru_cache(maxsize=4)
def load_named_queries(directory: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    """Every query file of `directory`, by name (read once per process)."""
    return {q.name: q for q in (parse_named_query(p) for p in sorted(Path(directory).glob("*.rq")))}


def queries_dir() -> Path:
    """The app's QUERIES_DIR, or the project's queries/ outside an app (the CLI)."""
    return Path(current_app.config["QUERIES_DIR"]) if has_app_context() else QUERIES_DIR


def current_queries() -> dict[str, NamedQuery]:
    """The named queries of `queries_dir()`."""
    return load_named_queries(queries_dir())


def run_local(store: ox.Store, query: NamedQuery, given: dict[str, str], *, fmt: str, graphs: str = "all",
              dataset: tuple[list[str], list[str] | None] | None = None) -> bytes:
    """A named query on an opened snapshot store, in this process and without limits (the CLI); `dataset` (the
    default and named graphs, e.g. a date's state) instead of the `graphs` of inference."""
    from .store.query_worker import run  # here, not above: the store package imports this module

    status, payload = run(store, {"query": bind_values(query.text, query.bindings(given)), "format": fmt,
                                  "limit": sys.maxsize, "prefixes": PREFIXES,
                                  "default_graph": dataset[0] if dataset else INFERENCE_GRAPHS[graphs],
                                  "named_graphs": dataset[1] if dataset else None})
    if status != "ok":
        raise HTTPError(400 if status == "syntax" else 500, f"named query {query.name} failed: {payload}")
    return payload
