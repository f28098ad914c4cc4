"""`as_of` on the real releases: the state on 2025-06-01 (the April 2025 release in force) checked against the
package data of that release, in the style of test_releases_real.py.

Needs a built data directory whose snapshot holds the April 2025 release and its dated graphs
(MEDCODE_TEST_DATA, built by `medcode build`) and that release's wheel (MEDCODE_RELEASES, or the build's
cache); without either it is skipped, saying why. Runs against the app in remote mode too.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from test_releases_real import april_2025  # noqa: F401 (fixture)

from kg.contract import DATED, current_snapshot, read_meta
from server import create_app
from server.store import run_query

JUNE_2025 = date(2025, 6, 1)
BOOLEANS = {"1": "true", "0": "false"}


@pytest.fixture(scope="module")
def app(data_dir: Path):
    meta = read_meta(current_snapshot(data_dir))
    if "2025-04" not in meta.get(DATED, {}):
        pytest.skip(f"the snapshot in {data_dir} has no dated graphs of the April 2025 release")
    return create_app({"MEDCODE_DATA": str(data_dir), "TESTING": True})


def ask(app, query: str, as_of: str | None = None) -> list[dict[str, str]]:
    params = {"query": query} | ({"as_of": as_of} if as_of else {})
    answer = app.test_client().get("/sparql", query_string=params, headers={"Accept": "text/csv"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    # (a remote Virtuoso's CSV writes xsd:boolean as 1/0: README, remote-mode quirks)
    return [{k: BOOLEANS.get(v, v) for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(answer.get_data(as_text=True)))]


def test_g35_billable_in_june_2025_a_category_today(app) -> None:
    query = "SELECT ?b WHERE { icd10cm:G35 mc:billable ?b }"
    assert ask(app, query, "2025-06-01") == [{"b": "true"}]
    assert ask(app, query) == [{"b": "false"}]
    assert ask(app, "ASK { icd10cm:G35.A ?p ?o }", "2025-06-01") == [{"_askResult": "false"}]
    assert ask(app, "ASK { icd10cm:G35.A ?p ?o }") == [{"_askResult": "true"}]


def test_a_code_deleted_later_is_a_code_then(app, april_2025: dict[str, tuple]) -> None:  # noqa: F811
    query = """SELECT ?label ?billable ?up WHERE { icd10cm:S30.1XXA a mc:ICD10CMCode ; skos:prefLabel ?label ;
                 mc:billable ?billable ; skos:broaderTransitive ?up . ?up skos:notation "S30" }"""
    assert ask(app, query, "2025-06-01") == [{"label": april_2025["S30.1XXA"][0], "billable": "true",
                                              "up": "https://w3id.org/medcode/id/icd10cm/S30"}]
    assert ask(app, query) == []  # deleted in April 2026: no longer a code of the scheme
    assert ask(app, "ASK { icd10cm:S30.1XXA mc:deletedIn ?r }", "2025-06-01") == [{"_askResult": "false"}]


def test_every_code_on_june_2025_is_the_april_2025_release(app, april_2025: dict[str, tuple]) -> None:  # noqa: F811
    query = """SELECT ?code ?label ?billable WHERE {
      ?c a mc:ICD10CMCode ; skos:notation ?code ; skos:prefLabel ?label ; mc:billable ?billable }"""
    with app.app_context():
        payload = run_query(query, fmt="csv", bulk=True, as_of=JUNE_2025).decode("utf-8")
    got = {r["code"]: (r["label"], r["billable"] in ("true", "1")) for r in csv.DictReader(io.StringIO(payload))}
    assert got == {code: (label, leaf) for code, (label, leaf, _) in april_2025.items()}
