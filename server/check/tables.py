"""The claim as tables of RDF terms, bound into a rule's query as one VALUES block.

A rule (queries/check-*.rq) names the table it reads in its `check:` header and declares that
table's columns it uses as its parameters, so the same file is also an ordinary named query (one row:
its parameters) at /api/{name}. For the check, each row of the table is bound by the parameter's own
type (`Param.to_term`: integers, dates and strings as typed RDF literals), never pasted into the text.

A code's IRI is bound beside its notation (`c`, `one`, `two`, `m`, `d`...): engines look a code up by
its IRI well (Virtuoso plans a lookup by notation from a VALUES block of several columns as a scan).
A row stands for every line that has the same values in it: its `line` column holds their numbers,
space-separated (and `count` how many), so a claim repeating a code or a diagnosis on many lines binds
few rows. Pairs are tables of their own because a VALUES block can be joined only once. A large
claim binds its rows in several queries (`bound_queries`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

from kg.namespaces import pair_key

from ..named_queries import NamedQuery, Param, bind_rows, rdf_term
from .claim import Claim, diagnosis_iri, modifier_iri

Row = dict[str, str]
#: rows bound in one query: Oxigraph looks each row up at first but, past about a thousand rows of
#: VALUES, evaluates the patterns on their own and joins them (measured: 13 ms at 1,000 rows, 4.3 s at
#: 1,500), so a large claim is checked in several queries
CHUNK = 256


def _kinds(claim: Claim, items: Iterable[tuple[int, Row]], line: str = "line") -> list[Row]:
    """One row per distinct value set among `items` (line number, values), with its lines and the claim's
    date, setting and codes."""
    found: dict[tuple, tuple[Row, list[str]]] = {}
    for number, values in items:
        found.setdefault(tuple(values.items()), (values, []))[1].append(str(number))
    common = {"date": claim.date_of_service.isoformat(), "setting": claim.setting,
              "claim_codes": " ".join(dict.fromkeys(ln.code for ln in claim.lines))}
    return [{**common, **values, line: " ".join(numbers), "count": str(len(numbers))}
            for values, numbers in found.values()]


def lines(claim: Claim) -> list[Row]:
    """Each kind of line: a code with its units and modifiers (space-separated)."""
    return _kinds(claim, ((i, {"c": ln.node, "code": ln.code, "units": str(ln.units),
                               "modifiers": " ".join(ln.modifiers)}) for i, ln in enumerate(claim.lines)))


def codes(claim: Claim) -> list[Row]:
    """Each code on the claim's lines."""
    return _kinds(claim, ((i, {"c": ln.node, "code": ln.code}) for i, ln in enumerate(claim.lines)))


def pairs(claim: Claim) -> list[Row]:
    """Two kinds of line (a code and its modifiers) with different codes, in both orders (a rule asks
    about the first as column 1 and the second as column 2); `line1`, `line2` are their lines, `pair` the
    mc:pairKey of an edit with the first as column 1 and the second as column 2."""
    kinds = _kinds(claim, ((i, {"c": ln.node, "code": ln.code, "modifiers": " ".join(ln.modifiers)})
                           for i, ln in enumerate(claim.lines)))
    return [{**first, **{f"{k}1": first[k] for k in ("line", "code", "modifiers")}, "one": first["c"],
             **{f"{k}2": second[k] for k in ("line", "code", "modifiers")}, "two": second["c"],
             "pair": str(pair_key(first["c"], second["c"]))}
            for first in kinds for second in kinds if first["c"] != second["c"]]


def modifiers(claim: Claim) -> list[Row]:
    """Each modifier with the code of a line it is on."""
    return _kinds(claim, ((i, {"c": ln.node, "code": ln.code, "m": modifier_iri(m), "modifier": m})
                          for i, ln in enumerate(claim.lines) for m in ln.modifiers))


def diagnoses(claim: Claim) -> list[Row]:
    """Each diagnosis the lines point to."""
    return _kinds(claim, ((i, {"d": diagnosis_iri(d), "diagnosis": d}) for i, ln in enumerate(claim.lines)
                          for d in ln.diagnoses))


def line_diagnoses(claim: Claim) -> list[Row]:
    """Each diagnosis of each kind of line (a code and the diagnoses it points to): `line` tells the kinds
    apart, so a rule can ask about all the diagnoses of one line."""
    kinds = _kinds(claim, ((i, {"c": ln.node, "code": ln.code, "diagnoses": " ".join(ln.diagnoses)})
                           for i, ln in enumerate(claim.lines) if ln.diagnoses))
    return [{**kind, "d": diagnosis_iri(d), "diagnosis": d} for kind in kinds for d in kind["diagnoses"].split()]


def diagnosis_pairs(claim: Claim) -> list[Row]:
    """Two different diagnoses of the claim, in both orders, with the lines pointing to each."""
    found = diagnoses(claim)
    return [{**first, "line1": first["line"], "diagnosis1": first["diagnosis"], "d1": first["d"],
             "line2": second["line"], "diagnosis2": second["diagnosis"], "d2": second["d"]}
            for first in found for second in found if first is not second]


TABLES: dict[str, Callable[[Claim], list[Row]]] = {
    "lines": lines, "codes": codes, "pairs": pairs, "modifiers": modifiers, "diagnoses": diagnoses,
    "line-diagnoses": line_diagnoses, "diagnosis-pairs": diagnosis_pairs,
}
COMMON = {"date", "setting", "claim_codes"}
#: the columns of each table (a rule's parameters must be among its table's)
COLUMNS = {
    "lines": {"line", "count", "c", "code", "units", "modifiers", *COMMON},
    "codes": {"line", "count", "c", "code", *COMMON},
    "pairs": {"line1", "one", "code1", "modifiers1", "line2", "two", "code2", "modifiers2", "pair", *COMMON},
    "modifiers": {"line", "count", "c", "code", "m", "modifier", *COMMON},
    "diagnoses": {"line", "count", "d", "diagnosis", *COMMON},
    "line-diagnoses": {"line", "count", "c", "code", "d", "diagnosis", *COMMON},
    "diagnosis-pairs": {"line1", "d1", "diagnosis1", "line2", "d2", "diagnosis2", *COMMON},
}


def bound_queries(query: NamedQuery, table: str, claim: Claim, together: tuple[str, ...] = ()) -> list[str]:
    """The query with the claim's rows of `table` bound to its parameters, CHUNK rows a query (rows with
    the same values in the `together` columns, in any order, stay in one: a rule that aggregates over
    them sees all of them); no query for an empty table."""
    chunks: dict[object, list[tuple]] = {}
    for number, row in enumerate(_rows(table, claim)):
        key = frozenset(row[name] for name in together) if together else number
        chunks.setdefault(key, []).append(tuple(_term_text(p.name, p.type, row[p.name]) for p in query.params))
    names = [p.name for p in query.params]
    queries, rows = [], []
    for group in chunks.values():
        if rows and len(rows) + len(group) > CHUNK:
            queries.append(bind_rows(query.text, names, rows))
            rows = []
        rows += group
    return queries + ([bind_rows(query.text, names, rows)] if rows else [])


@lru_cache(maxsize=64)
def _rows(table: str, claim: Claim) -> tuple[Row, ...]:
    """A table of the claim, made once for the rules that read it (read-only)."""
    return tuple(TABLES[table](claim))


@lru_cache(maxsize=16384)
def _term_text(name: str, kind: str, value: str) -> str:
    """A value of a table as its parameter's SPARQL term: checked and written once per value (the claims' codes,
    dates and line numbers recur), not once per row of every rule."""
    return str(rdf_term(Param(name, kind).to_term(value)))
