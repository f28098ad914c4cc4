"""Running the check: each rule's query with the claim bound, through the app's store, then words.

Every rule is a query through `run_query`, the same call in embedded and remote mode; the rules'
queries run side by side, the findings are then worded in the request's own thread. The rows of a
rule that name the same finding (same rule id and wording) become one finding: its lines and
`collect` values gathered and sorted, so the answer does not depend on the engine's row order.
Findings come denials first, then warnings, then information, each by line, rule and message.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..pages.suggest import suggest
from ..store import run_query
from .claim import Claim
from .dated import STATE_RULES, WORDINGS, judge_diagnoses, listed
from .rules import SEVERITIES, Rule, Wording, current_rules, template_fields
from .tables import bound_queries

NEAR = 5  # near matches suggested for a code the graph does not know
WORKERS = 8  # rule queries put to the store at once


@dataclass(frozen=True)
class Finding:
    """One problem with the claim; `links` are IRIs of the codes it names (for the HTML form)."""

    rule: str
    severity: str
    lines: tuple[int, ...]
    message: str
    edit: str | None = None
    source: str | None = None
    instead: str | None = None
    links: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The finding in the public JSON contract's names."""
        return {"rule": self.rule, "severity": self.severity, "lines": list(self.lines), "message": self.message,
                "edit": self.edit, "source": self.source, "instead": self.instead}

    def order(self) -> tuple:
        return SEVERITIES.index(self.severity), self.lines, self.rule, self.message


@dataclass(frozen=True)
class Result:
    """The findings of one claim; clean when none of them denies or warns."""

    claim: Claim
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def clean(self) -> bool:
        return not any(f.severity in ("deny", "warn") for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """The answer of POST /check."""
        return {"clean": self.clean, "findings": [f.to_json() for f in self.findings]}


class _Pool:
    """Threads that put the rules' queries to the store at once (both stores answer several at a time:
    Oxigraph evaluates without the GIL, a remote engine is a round trip); one pool per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid, self.executor = 0, None  # type: tuple[int, ThreadPoolExecutor | None]

    def get(self) -> ThreadPoolExecutor:
        with self.lock:
            if self.executor is None or self.pid != os.getpid():  # threads do not survive a fork
                self.pid, self.executor = os.getpid(), ThreadPoolExecutor(WORKERS, "medcode-check")
            return self.executor


_POOL = _Pool()


def check(claim: Claim) -> Result:
    """Every rule on the claim, through the app's store (in a request, or an app context for the CLI).

    Each query runs in a copy of this thread's context, so it is this request's: its time limit
    retires a gunicorn worker as any other query's does.
    """
    rules, pool = current_rules(), _POOL.get()
    dated = pool.submit(contextvars.copy_context().run, judge_diagnoses, claim)
    jobs = [[pool.submit(contextvars.copy_context().run, _rows, text)
             for text in bound_queries(rule.query, rule.table, claim, rule.together)] for rule in rules]
    findings = [finding for rule, futures in zip(rules, jobs, strict=True)
                for finding in _findings(rule, [row for future in futures for row in future.result()])]
    replaced, judged = dated.result()
    findings = [f for f in findings if not (f.rule in STATE_RULES and f.links[:1] and f.links[0] in replaced)]
    findings += [_dated(*found) for found in judged]
    return Result(claim, tuple(sorted(findings, key=Finding.order)))


def _dated(rule_id: str, lines: tuple[int, ...], values: dict[str, str], links: tuple[str, ...],
           source: str) -> Finding:
    """A finding of the diagnoses' dated judgement (dated.py), worded as its rule id says."""
    wording = WORDINGS[rule_id]
    return Finding(rule_id, wording.severity, lines, wording.message.format_map(values), None, source,
                   _instead(wording, values), links)


def _rows(text: str) -> list[dict[str, str]]:
    """The answer rows (lexical values) of one bound rule query."""
    payload = run_query(text, fmt="json", named=None)
    return [{k: v["value"] for k, v in b.items()} for b in json.loads(payload)["results"]["bindings"]]


def _findings(rule: Rule, rows: list[dict[str, str]]) -> list[Finding]:
    groups: dict[tuple, list[dict[str, str]]] = {}
    for row in rows:
        rule_id = row.get("rule") or next(iter(rule.wordings))
        key = (rule_id, *(row.get(v) for v in (*rule.grouped, rule.edit, rule.source, rule.near) if v))
        groups.setdefault(key, []).append(row)
    return [_finding(rule, key[0], group) for key, group in groups.items() if key[0] in rule.wordings]


def _finding(rule: Rule, rule_id: str, rows: list[dict[str, str]]) -> Finding:
    first, wording = rows[0], rule.wordings[rule_id]
    values = {name: first.get(name, "") for name in rule.grouped}
    values.update({name: listed(row.get(name) for row in rows) for name in rule.collect})
    links = [iri for row in rows for v in rule.links for iri in (row.get(v) or "").split("|") if iri]
    if rule.near and first.get(rule.near):
        near = [link for link in suggest(first[rule.near]) if link.notation][:NEAR]
        values["near"] = ", ".join(link.notation for link in near)
        links += [link.iri for link in near]
    lines = sorted({int(n) for row in rows for v in rule.lines for n in (row.get(v) or "").split()})
    return Finding(rule_id, wording.severity, tuple(lines), wording.message.format_map(values),
                   first.get(rule.edit) if rule.edit else None, first.get(rule.source) if rule.source else None,
                   _instead(wording, values), tuple(dict.fromkeys(links)))


def _instead(wording: Wording, values: dict[str, str]) -> str | None:
    """What to do instead, when every value its template needs is known."""
    if wording.instead is None or not all(values.get(name) for name in template_fields(wording.instead)):
        return None
    return wording.instead.format_map(values)
