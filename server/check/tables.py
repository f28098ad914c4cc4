"""The claim as tables of RDF terms, bound into a rule's query as one VALUES block.

A rule (queries/check-*.rq) names the table it reads in its `check:` header and declares that
table's columns it uses as its parameters, so the same file is also an ordinary named query (one row:
its parameters) at /api/{name}. For the check, each row of the table is bound by the parameter's own
type (`Param.to_term`: integers, dates and strings as typed RDF literals), never pasted into the text.
Pairs of lines are a table of their own because a VALUES block can be joined only once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..http.guard import FORMS, TOKENS
from ..named_queries import NamedQuery, _term
from .claim import Claim

Row = dict[str, str]


def _common(claim: Claim) -> Row:
    return {"date": claim.date_of_service.isoformat(), "setting": claim.setting,
            "claim_codes": " ".join(dict.fromkeys(line.code for line in claim.lines))}


def lines(claim: Claim) -> Iterator[Row]:
    """One row per line: its code, units and modifiers (space-separated)."""
    for i, line in enumerate(claim.lines):
        yield {**_common(claim), "line": str(i), "code": line.code, "units": str(line.units),
               "modifiers": " ".join(line.modifiers)}


def pairs(claim: Claim) -> Iterator[Row]:
    """One row per two lines with different codes (each pair once; a rule looks in both directions)."""
    rows = list(lines(claim))
    for i, first in enumerate(rows):
        for second in rows[i + 1:]:
            if first["code"] != second["code"]:
                yield {**_common(claim), **{f"{k}1": first[k] for k in ("line", "code", "modifiers")},
                       **{f"{k}2": second[k] for k in ("line", "code", "modifiers")}}


def modifiers(claim: Claim) -> Iterator[Row]:
    """One row per modifier on a line."""
    for row in lines(claim):
        for modifier in row["modifiers"].split():
            yield {**row, "modifier": modifier}


def diagnoses(claim: Claim) -> Iterator[Row]:
    """One row per diagnosis a line points to."""
    for i, line in enumerate(claim.lines):
        for diagnosis in line.diagnoses:
            yield {**_common(claim), "line": str(i), "code": line.code, "diagnosis": diagnosis}


def diagnosis_pairs(claim: Claim) -> Iterator[Row]:
    """One row per two different diagnoses of the claim, in both orders, and a line pointing to each."""
    rows = list(diagnoses(claim))
    for first in rows:
        for second in rows:
            if first["diagnosis"] != second["diagnosis"]:
                yield {**_common(claim), "line1": first["line"], "diagnosis1": first["diagnosis"],
                       "line2": second["line"], "diagnosis2": second["diagnosis"]}


TABLES: dict[str, Callable[[Claim], Iterator[Row]]] = {
    "lines": lines, "pairs": pairs, "modifiers": modifiers, "diagnoses": diagnoses,
    "diagnosis-pairs": diagnosis_pairs,
}
#: the columns of each table (a rule's parameters must be among its table's)
COLUMNS = {
    "lines": {"line", "code", "units", "modifiers", "date", "setting", "claim_codes"},
    "pairs": {"line1", "code1", "modifiers1", "line2", "code2", "modifiers2", "date", "setting", "claim_codes"},
    "modifiers": {"line", "code", "units", "modifiers", "modifier", "date", "setting", "claim_codes"},
    "diagnoses": {"line", "code", "diagnosis", "date", "setting", "claim_codes"},
    "diagnosis-pairs": {"line1", "diagnosis1", "line2", "diagnosis2", "date", "setting", "claim_codes"},
}


def bound_query(query: NamedQuery, table: str, claim: Claim) -> str | None:
    """The query with the claim's rows of `table` bound to its parameters; None when the table is empty."""
    rows = list(dict.fromkeys(tuple(p.to_term(row[p.name]) for p in query.params)
                              for row in TABLES[table](claim)))
    if not rows:
        return None
    names = " ".join("?" + p.name for p in query.params)
    values = " ".join("(" + " ".join(str(_term(spec)) for spec in row) + ")" for row in rows)
    return _open_where(query.text, f" VALUES ({names}) {{ {values} }} ")


def _open_where(query: str, block: str) -> str:
    """`block` first in the WHERE group, where named_queries.bind_values puts a single row (so that the
    engine starts its joins from the claim)."""
    tokens = [m for m in TOKENS.finditer(query) if m.lastgroup != "comment"]
    start = next((i for i, m in enumerate(tokens) if m.lastgroup == "word" and m.group().upper() == "WHERE"), None)
    if start is None:
        start = next((i for i, m in enumerate(tokens) if m.lastgroup == "word" and m.group().upper() in FORMS), 0)
    brace = next(m for m in tokens[start:] if m.group() == "{")
    return query[:brace.end()] + block + query[brace.end():]
