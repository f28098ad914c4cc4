"""The check's rules are named queries: every queries/*.rq whose `#+ ` header has a `check:` block.

The block says which table of the claim the query reads (`table`, see tables.py), which result
variables hold the lines involved (`lines`), the edit's IRI (`edit`) and its source (`source`),
which variables are gathered over the rows of one finding (`collect`), which hold IRIs of the codes a
finding is about (`links`, shown as links by the HTML form; a `collect` or `links` value may itself be
a list separated by "|", as GROUP_CONCAT makes it), which holds an IRI the graph does not know
(`near`: its near matches fill `{near}`) and which columns of the table the query aggregates over
(`together`: their rows are bound in the same query). `rules` maps each rule id the query reports (its `?rule`
column, or the only id) to a severity and message templates whose `{names}` are result variables.
What a rule means lives in the query; this module reads the headers, run.py binds, runs and words.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..named_queries import HeaderError, NamedQuery, load_named_queries, queries_dir
from .tables import COLUMNS

SEVERITIES = ("deny", "warn", "info")  # also the order findings come in
CHECK_KEYS = {"table", "lines", "edit", "source", "collect", "links", "near", "together", "rules"}
VARIABLE = re.compile(r"[?$]([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Wording:
    """How one rule id words its findings."""

    severity: str
    message: str
    instead: str | None = None


@dataclass(frozen=True)
class Rule:
    """One check query and what its `check:` header says about its results."""

    query: NamedQuery
    table: str
    lines: tuple[str, ...]
    wordings: dict[str, Wording]
    edit: str | None = None
    source: str | None = None
    collect: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    near: str | None = None
    together: tuple[str, ...] = ()  # table columns whose rows the query aggregates together
    grouped: tuple[str, ...] = field(default=(), compare=False)  # variables that tell findings apart


def _names(path: Path, spec: dict[str, Any], key: str) -> tuple[str, ...]:
    value = spec.get(key) or []
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HeaderError(f"{path}: check.{key} must name result variables")
    return tuple(value)


def template_fields(template: str) -> set[str]:
    """The `{names}` a message template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _wordings(path: Path, rules: Any, variables: set[str]) -> dict[str, Wording]:
    if not isinstance(rules, dict) or not rules:
        raise HeaderError(f"{path}: check.rules must map each rule id to its severity and message")
    wordings = {}
    for rule_id, spec in rules.items():
        if not isinstance(spec, dict) or spec.get("severity") not in SEVERITIES or not isinstance(
                spec.get("message"), str) or not isinstance(spec.get("instead", ""), str):
            raise HeaderError(f"{path}: check rule '{rule_id}' needs a severity ({', '.join(SEVERITIES)}), "
                              "a message and, optionally, an instead (strings)")
        unknown = (template_fields(spec["message"]) | template_fields(spec.get("instead") or "")) - variables - {"near"}
        if unknown:
            raise HeaderError(f"{path}: check rule '{rule_id}' words variables the query does not have: "
                              f"{', '.join(sorted(unknown))}")
        wordings[str(rule_id)] = Wording(spec["severity"], spec["message"], spec.get("instead") or None)
    return wordings


def parse_rule(query: NamedQuery) -> Rule:
    """The rule of a query with a `check:` header; a HeaderError naming the file when the header is wrong."""
    path, spec = query.path, query.header["check"]
    if not isinstance(spec, dict) or set(spec) - CHECK_KEYS or spec.get("table") not in COLUMNS:
        raise HeaderError(f"{path}: the check block takes {', '.join(sorted(CHECK_KEYS))}; "
                          f"table is one of {', '.join(COLUMNS)}")
    table = spec["table"]
    stray = [p.name for p in query.params if p.name not in COLUMNS[table]]
    if stray:
        raise HeaderError(f"{path}: parameters {', '.join(stray)} are not columns of the {table} table "
                          f"({', '.join(sorted(COLUMNS[table]))})")
    variables = set(VARIABLE.findall(query.text))
    names = {key: _names(path, spec, key) for key in ("lines", "collect", "links", "together")}
    if set(names["together"]) - COLUMNS[table]:
        raise HeaderError(f"{path}: check.together names columns of the {table} table")
    single = {key: spec.get(key) for key in ("edit", "source", "near")}
    used = {*names["lines"], *names["collect"], *names["links"], *(v for v in single.values() if v)}
    if not names["lines"] or used - variables:
        raise HeaderError(f"{path}: check.lines must name result variables, and every variable the check "
                          f"block names must be in the query ({', '.join(sorted(used - variables)) or 'lines'})")
    wordings = _wordings(path, spec.get("rules"), variables)
    if len(wordings) > 1 and "rule" not in variables:
        raise HeaderError(f"{path}: a query with several check rules reports each row's rule id as ?rule")
    fields = set().union(*(template_fields(w.message) | template_fields(w.instead or "") for w in wordings.values()))
    grouped = tuple(sorted(fields - set(names["collect"]) - {"near"}))
    return Rule(query, table, names["lines"], wordings, single["edit"], single["source"], names["collect"],
                names["links"], single["near"], names["together"], grouped)


@lru_cache(maxsize=4)
def load_rules(directory: Path) -> tuple[Rule, ...]:
    """Every check rule of the query directory, in name order (read once per process)."""
    return tuple(parse_rule(q) for q in load_named_queries(directory).values() if "check" in q.header)


def current_rules() -> tuple[Rule, ...]:
    """The rules of the app's QUERIES_DIR (or the project's queries/ outside an app)."""
    return load_rules(queries_dir())
