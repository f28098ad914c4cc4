"""Named queries are data: each `.rq` in queries/ with a `#+ ` YAML header becomes an API operation,
a CLI command and a tab in the query UI. Parameters are bound as RDF terms, never spliced into text."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml

from kg.contract import QUERIES_DIR

from .http.guard import FORMS, TOKENS

TYPES = ("string", "integer", "iri", "date", "boolean")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ParamError(ValueError):
    """A parameter value does not fit its declared type (the message names the parameter)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter '{name}': {message}")
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
    name: str
    title: str
    description: str
    text: str
    params: tuple[Param, ...] = field(default_factory=tuple)

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


def parse_named_query(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    header = "\n".join(line[3:] for line in text.splitlines() if line.startswith("#+ "))
    meta = yaml.safe_load(header) or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the '#+ ' header must be a YAML mapping")
    params = []
    for name, spec in (meta.get("params") or {}).items():
        spec = spec or {}
        ptype = spec.get("type", "string")
        if ptype not in TYPES:
            raise ValueError(f"{path}: parameter '{name}' has unknown type '{ptype}' (one of {', '.join(TYPES)})")
        params.append(Param(str(name), ptype, spec.get("default"), str(spec.get("description", ""))))
    name = path.stem
    if not NAME.match(name):
        raise ValueError(f"{path}: query names are lowercase words joined by '-'")
    return NamedQuery(name, str(meta.get("title", name)), str(meta.get("description", "")), text, tuple(params))


def _term(spec: tuple[str, str, str | None]):
    kind, value, extra = spec
    if kind == "iri":
        return ox.NamedNode(value)
    if kind == "lang":
        return ox.Literal(value, language=extra)
    return ox.Literal(value, datatype=ox.NamedNode(extra)) if extra else ox.Literal(value)


def bind_values(query: str, bindings: dict[str, tuple[str, str, str | None]]) -> str:
    """Bind variables with a VALUES block opening the WHERE group.

    The values are RDF terms serialised by Oxigraph (so escaped), never text pasted into the query.
    A VALUES block first in the group lets Oxigraph start its join from the bound values; its
    `substitutions` argument and a trailing VALUES were both measured 5,000x slower here (2.3 s vs
    0.4 ms on a notation lookup), because the binding is applied after the pattern is evaluated.
    """
    if not bindings:
        return query
    names = list(bindings)
    row = " ".join(str(_term(bindings[n])) for n in names)
    block = f" VALUES ({' '.join('?' + n for n in names)}) {{ ({row}) }} "
    tokens = [m for m in TOKENS.finditer(query) if m.lastgroup != "comment"]
    start = next((i for i, m in enumerate(tokens) if m.lastgroup == "word" and m.group().upper() == "WHERE"), None)
    if start is None:  # SELECT * { ... } without the WHERE keyword
        start = next((i for i, m in enumerate(tokens) if m.lastgroup == "word" and m.group().upper() in FORMS), 0)
    brace = next((m for m in tokens[start:] if m.group() == "{"), None)
    if brace is None:
        raise ValueError("the query has no WHERE group to bind parameters in")
    return query[:brace.end()] + block + query[brace.end():]


@lru_cache(maxsize=4)
def load_named_queries(directory: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    return {q.name: q for q in (parse_named_query(p) for p in sorted(directory.glob("*.rq")))}
