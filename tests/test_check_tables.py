"""The claim as tables (server/check/tables.py): rows stand for lines, and a large claim is bound in parts."""

from __future__ import annotations

import datetime
import re

from server.check.claim import Claim, Line
from server.check.rules import load_rules
from server.check.tables import CHUNK, bound_queries, diagnosis_pairs, lines, pairs
from server.named_queries import QUERIES_DIR

DATE = datetime.date(2026, 3, 2)


def claim(*lines_: Line) -> Claim:
    return Claim(DATE, "practitioner", lines_)


def rule(name: str):
    return next(r for r in load_rules(QUERIES_DIR) if r.query.name == name)


def test_a_row_stands_for_the_lines_with_the_same_values():
    rows = lines(claim(Line("96522"), Line("62369"), Line("96522"), Line("96522", units=2)))
    assert [(r["code"], r["units"], r["line"], r["count"]) for r in rows] == [
        ("96522", "1", "0 2", "2"), ("62369", "1", "1", "1"), ("96522", "2", "3", "1")]
    assert rows[0]["claim_codes"] == "96522 62369" and rows[0]["date"] == "2026-03-02"


def test_pairs_are_two_kinds_of_line_with_different_codes_in_both_orders():
    rows = pairs(claim(Line("62369"), Line("95990", ("59",)), Line("62369")))
    assert [(r["code1"], r["line1"], r["code2"], r["modifiers2"], r["line2"]) for r in rows] == [
        ("62369", "0 2", "95990", "59", "1"), ("95990", "1", "62369", "", "0 2")]
    assert rows[0]["one"] == "https://w3id.org/medcode/id/cpt/62369" and rows[0]["two"].endswith("/cpt/95990")


def test_diagnosis_pairs_come_in_both_orders_with_their_lines():
    rows = diagnosis_pairs(claim(Line("62362", diagnoses=("G89.29", "G89.3")), Line("62350", diagnoses=("G89.3",))))
    assert {(r["diagnosis1"], r["line1"], r["diagnosis2"], r["line2"]) for r in rows} == {
        ("G89.29", "0", "G89.3", "0 1"), ("G89.3", "0 1", "G89.29", "0")}


def test_a_large_claim_is_bound_in_parts_keeping_aggregated_rows_together():
    big = claim(*(Line(str(62000 + i % 150), units=1 + i // 150) for i in range(300)))
    queries = bound_queries(rule("check-mue").query, "lines", big, ("code",))
    assert len(queries) > 1
    bound = [re.findall(r'<https://w3id.org/medcode/id/cpt/(\d{5})>', q) for q in queries]
    assert all(len(codes) <= CHUNK for codes in bound)
    seen = [set(codes) for codes in bound]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])  # a code's rows in one query
    assert sum(len(codes) for codes in bound) == 300
