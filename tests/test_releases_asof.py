"""`as_of` on /sparql and the exports, on the small fixture build of test_releases.py (two fixture releases
before the installed one).

The expected state of each date is computed here from the release files (through the package's public
functions) and from the change records (server.diff.history, which composes them), never written down:
the dated graphs must say what both say, asserted and inferred facts alike, and nothing else may move.
"""

from __future__ import annotations

import csv
import io
import warnings
from datetime import date

import pytest
import simple_icd_10_cm as cm
from rdflib import RDF, Graph, URIRef
from test_releases import RELEASES, client, states  # noqa: F401 (fixtures)

from kg.contract import DATED, ID_BASE, LOCAL_GRAPHS, dated_state
from server.diff.history import records, state_at, values_now
from server.http.errors import HTTPError
from server.store import state_on

ICD = f"{ID_BASE}icd10cm/"
#: a date in force of each release the fixture build holds
DATES = {"2021-01": "2021-06-01", "2025-04": "2025-06-01", "2026-04": "2026-06-01"}
CODES = """SELECT ?code ?label ?billable WHERE {
  ?c a mc:ICD10CMCode ; skos:notation ?code ; skos:prefLabel ?label . OPTIONAL { ?c mc:billable ?billable } }"""


def sparql(client, query: str, **params) -> list[dict[str, str]]:  # noqa: F811
    answer = client.get("/sparql", query_string={"query": query, **params}, headers={"Accept": "text/csv"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def ancestors(notation: str, codes: set[str]) -> dict[str, set[str]]:
    """Each of `codes`' ancestors that are codes (categories, subcategories) in a release's files (or, for the
    installed release, the package's own)."""
    def walk() -> dict[str, set[str]]:
        return {c: {a for a in cm.get_ancestors(c) if a != c and (cm.is_category(a) or cm.is_subcategory(a))}
                for c in codes}  # (a single-category block has its category's name)

    if notation == "2026-04":
        return walk()
    folder = RELEASES / notation
    try:
        cm.change_version(str(folder / "code-list.txt"), str(folder / "tabular.xml"))
        return walk()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cm.change_version()


@pytest.mark.parametrize("notation", DATES)
def test_labels_and_billable_flags_are_the_release_files(client, states, notation: str) -> None:  # noqa: F811
    rows = sparql(client, CODES, as_of=DATES[notation])
    got = {r["code"]: (r["label"], r["billable"] == "true") for r in rows}
    assert got == {code: (label, leaf) for code, (label, leaf, _) in states[notation].items()}


@pytest.mark.parametrize("notation", ["2021-01", "2025-04"])
def test_a_code_not_added_yet_has_no_fact_at_all(client, states, notation: str) -> None:  # noqa: F811
    later = sorted(set(states["2026-04"]) - set(states[notation]))
    assert later, "the fixture releases lack codes the installed one holds"
    values = " ".join(f"<{ICD}{c}>" for c in later)
    query = f"SELECT DISTINCT ?c WHERE {{ VALUES ?c {{ {values} }} {{ ?c ?p ?o }} UNION {{ ?s ?p ?c }} }}"
    assert sparql(client, query, as_of=DATES[notation]) == []
    assert len(sparql(client, query)) == len(later)  # today they all have facts


@pytest.mark.parametrize("notation", DATES)
def test_the_broader_closure_follows_the_state(client, states, notation: str) -> None:  # noqa: F811
    query = """SELECT ?code ?up WHERE { ?c a mc:ICD10CMCode ; skos:notation ?code ; skos:broaderTransitive ?a .
                                        ?a a mc:ICD10CMCode ; skos:notation ?up }"""
    got: dict[str, set[str]] = {}
    for row in sparql(client, query, as_of=DATES[notation]):
        got.setdefault(row["code"], set()).add(row["up"])
    want = {c: up for c, up in ancestors(notation, set(states[notation])).items() if up}
    assert got == want


@pytest.mark.parametrize("notation", DATES)
def test_billable_descendants_follow_the_state(client, states, notation: str) -> None:  # noqa: F811
    query = "SELECT ?code WHERE { ?d skos:broaderTransitive icd10cm:G35 ; mc:billable true ; skos:notation ?code }"
    got = {r["code"] for r in sparql(client, query, as_of=DATES[notation])}
    assert got == {c for c, (_, leaf, _) in states[notation].items() if c.startswith("G35.") and leaf}
    assert bool(got) == (notation == "2026-04")  # G35 itself was billable before April 2026


@pytest.mark.parametrize("notation", DATES)
def test_the_change_records_compose_to_the_same_state(client, notation: str) -> None:  # noqa: F811
    when = date.fromisoformat(DATES[notation])
    rows = sparql(client, CODES, as_of=DATES[notation])
    graph = {f"{ICD}{r['code']}": (r["label"], r["billable"]) for r in rows}
    with client.application.app_context():
        changed = records()
        deleted = {r["c"] for r in sparql(client, "SELECT ?c WHERE { ?c a mc:DeletedCode }")}
        for iri in changed:
            now = {**values_now(iri), "exists": "false" if iri in deleted else "true"}
            composed = state_at(iri, when, now)
            assert composed is not None and composed["release"] == notation
            if composed["exists"] == "true":
                assert graph[iri] == (composed["label"], composed["billable"]), iri
            else:
                assert iri not in graph, iri


def test_a_deleted_code_is_a_code_before_its_deletion(client) -> None:  # noqa: F811
    query = """SELECT ?type ?label WHERE { icd10cm:G89.27 skos:prefLabel ?label .
                                           OPTIONAL { icd10cm:G89.27 a ?type FILTER(?type = mc:DeletedCode) } }"""
    assert sparql(client, query, as_of="2021-06-01")[0]["type"] == ""  # a code then, not a deleted one
    assert sparql(client, query)[0]["type"].endswith("#DeletedCode")
    deletion = "ASK { icd10cm:G89.27 mc:deletedIn ?release }"
    assert sparql(client, deletion, as_of="2021-06-01")[0]["_askResult"] == "false"


def test_nothing_else_moves(client) -> None:  # noqa: F811
    outside = """SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o
                   FILTER(!STRSTARTS(STR(?s), STR(icd10cm:)) && !STRSTARTS(STR(?o), STR(icd10cm:))) }"""
    counts = {d: sparql(client, outside, as_of=d)[0]["n"] for d in DATES.values()}
    assert len(set(counts.values())) == 1 and counts["2026-06-01"] == sparql(client, outside)[0]["n"]


def test_without_as_of_the_answers_are_todays(client) -> None:  # noqa: F811
    listing = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    assert {r["g"] for r in sparql(client, listing)} == set(LOCAL_GRAPHS)
    for query in (CODES, "SELECT ?b WHERE { icd10cm:G35 mc:billable ?b }"):
        today = client.get("/sparql", query_string={"query": query}, headers={"Accept": "text/csv"})
        current = client.get("/sparql", query_string={"query": query, "as_of": date.today().isoformat()},
                             headers={"Accept": "text/csv"})
        assert today.data == current.data and current.headers["ICD10CM-Release"] == "2026-04"
        assert "ICD10CM-Release" not in today.headers


def test_post_and_negotiation(client) -> None:  # noqa: F811
    query = "SELECT ?b WHERE { icd10cm:G35 mc:billable ?b }"
    form = client.post("/sparql", data={"query": query, "as_of": "2025-06-01"},
                       headers={"Accept": "application/sparql-results+json"})
    assert form.get_json()["results"]["bindings"][0]["b"]["value"] == "true"
    direct = client.post("/sparql?as_of=2025-06-01", data=query, content_type="application/sparql-query",
                         headers={"Accept": "text/tab-separated-values"})
    assert direct.status_code == 200 and direct.headers["Content-Type"].startswith("text/tab-separated-values")
    assert "true" in direct.get_data(as_text=True) and direct.headers["ICD10CM-Release"] == "2025-04"
    asserted = client.get("/sparql", query_string={"query": "SELECT ?c WHERE { icd10cm:G35 a ?c }",
                                                   "as_of": "2025-06-01", "inference": "asserted"})
    assert "ICD10CMCode" not in asserted.get_data(as_text=True)  # inferred: not in the asserted part


@pytest.mark.parametrize(("params", "words"), [
    ([("as_of", "2025-06-01"), ("as_of", "2026-06-01")], "'as_of' was given more than once"),
    ([("as_of", "2025-6-1")], "as_of: '2025-6-1' is not a date"),
    ([("as_of", "<b>")], "as_of: '<b>' is not a date"),
    ([("as_of", "2020-12-31")], "before the first ICD-10-CM release the graph holds (2021-01, in force from 2021-"),
    ([("as_of", "2025-06-01"), ("default-graph-uri", LOCAL_GRAPHS[0])], "cannot be combined with default-graph-uri"),
    ([("as_of", "2025-06-01"), ("named-graph-uri", LOCAL_GRAPHS[0])], "cannot be combined with named-graph-uri"),
])
def test_bad_as_of_says_why(client, params: list, words: str) -> None:  # noqa: F811
    answer = client.get("/sparql", query_string=[("query", "ASK { ?s ?p ?o }"), *params])
    assert answer.status_code == 400 and words in answer.get_data(as_text=True)


def test_as_of_with_from_is_refused(client) -> None:  # noqa: F811
    query = f"ASK FROM <{LOCAL_GRAPHS[0]}> {{ ?s ?p ?o }}"
    answer = client.get("/sparql", query_string={"query": query, "as_of": "2025-06-01"})
    assert answer.status_code == 400 and "FROM" in answer.get_data(as_text=True)


@pytest.mark.parametrize("notation", DATES)
def test_the_hierarchy_export_is_the_state(client, states, notation: str) -> None:  # noqa: F811
    answer = client.get("/export/icd10cm-hierarchy.csv", query_string={"as_of": DATES[notation]})
    assert answer.status_code == 200 and answer.headers["ICD10CM-Release"] == notation
    assert f"icd10cm-{notation}" in answer.headers["ETag"] and f"icd10cm-{notation}" in answer.headers[
        "Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert {r["subject_code"] for r in rows if r["subject_kind"] == "code"} == set(states[notation])
    for ext in ("json", "sssom.tsv", "fhir.json", "ttl", "jsonld"):
        other = client.get(f"/export/icd10cm-hierarchy.{ext}", query_string={"as_of": DATES[notation]})
        assert other.status_code == 200 and other.headers["ICD10CM-Release"] == notation
    concept_map = client.get("/export/icd10cm-hierarchy.fhir.json", query_string={"as_of": DATES[notation]})
    assert f"(ICD-10-CM {notation})" in concept_map.get_json()["version"]


def test_exports_refuse_bad_as_of(client) -> None:  # noqa: F811
    for value, words in (("2020-01-01", "before the first"), ("soon", "not a date")):
        answer = client.get("/export/icd10cm-hierarchy.csv", query_string={"as_of": value})
        assert answer.status_code == 400 and words in answer.get_data(as_text=True)


def test_a_date_selects_the_release_in_force() -> None:
    meta = {DATED: {"2026-04": {"effective": "2026-04-01", "asserted": ["a"], "inferred": ["i"]},
                    "2021-01": {"effective": "2021-01-01", "asserted": ["s-a", "r-a"], "inferred": ["s-i", "r-i"]}}}
    assert dated_state(meta, date(2020, 12, 31)) is None
    assert dated_state(meta, date(2021, 1, 1)) == ("2021-01", "2021-01-01", ["s-a", "r-a", "s-i", "r-i"])
    assert dated_state(meta, date(2026, 3, 31), "inferred").graphs == ["s-i", "r-i"]
    assert dated_state(meta, date(2026, 4, 1), "asserted").graphs == ["a"]
    assert dated_state(meta, date(2999, 1, 1)).release == "2026-04"  # a later date: the current state
    with pytest.raises(HTTPError) as refused:
        state_on({}, date(2025, 6, 1))  # a snapshot built before dated states: says so, never today's answer
    assert refused.value.status == 400 and "no dated states" in str(refused.value)


def test_the_derivations_graph_is_todays_on_every_date(client) -> None:  # noqa: F811
    query = """SELECT ?d ?p ?o WHERE { GRAPH <https://w3id.org/medcode/graph/derivations> { ?d ?p ?o } }
               ORDER BY ?d ?p ?o LIMIT 20"""
    today = sparql(client, query)
    assert today and sparql(client, query, as_of="2021-06-01") == today


def test_a_page_with_as_of_has_its_own_etag_and_its_rdf_is_that_date_s_state(client) -> None:  # noqa: F811
    page = "/id/icd10cm/G89.27"
    today = client.get(page)
    dated = client.get(page, query_string={"as_of": "2021-06-01"})
    assert today.status_code == dated.status_code == 200
    assert dated.headers["ETag"] != today.headers["ETag"] and "2021-06-01" in dated.headers["ETag"]
    again = client.get(page, query_string={"as_of": "2021-06-01"}, headers={"If-None-Match": today.headers["ETag"]})
    assert again.status_code == 200
    assert b"describes the code as it is today" in dated.data
    rdf = client.get(page, query_string={"as_of": "2021-06-01"}, headers={"Accept": "text/turtle"})
    assert rdf.status_code == 303
    described = client.get(rdf.headers["Location"], headers={"Accept": "text/turtle"})
    assert described.status_code == 200 and described.mimetype == "text/turtle"
    graph = Graph().parse(data=described.get_data(as_text=True), format="turtle")
    code = URIRef(ICD + "G89.27")
    assert (code, None, None) in graph
    assert (code, RDF.type, URIRef("https://w3id.org/medcode/ontology#DeletedCode")) not in graph  # a code then
    assert client.get(page, headers={"Accept": "text/turtle"}).status_code == 200  # today's RDF as before


def test_two_dates_of_one_release_are_two_exports(client) -> None:  # noqa: F811
    """The export names its date (its version), so two dates in force of one release have two ETags."""
    first = client.get("/export/indication-icd10cm.json", query_string={"as_of": "2025-06-01"})
    second = client.get("/export/indication-icd10cm.json", query_string={"as_of": "2025-07-01"})
    assert first.headers["ICD10CM-Release"] == second.headers["ICD10CM-Release"] == "2025-04"
    assert first.headers["ETag"] != second.headers["ETag"]
    again = client.get("/export/indication-icd10cm.json", query_string={"as_of": "2025-07-01"},
                       headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200


@pytest.mark.parametrize("notation", ["2021-01", "2025-04"])
def test_the_cli_as_of_answers_what_the_endpoint_and_the_export_do(client, history_data, notation) -> None:  # noqa: F811
    from click.testing import CliRunner

    from medcode.cli import main

    when, query = DATES[notation], CODES + " ORDER BY ?code"
    http = client.get("/sparql", query_string={"query": query, "as_of": when}, headers={"Accept": "text/csv"})
    cli = CliRunner().invoke(main, ["sparql", query, "--format", "csv", "--as-of", when, "--data", str(history_data)])
    assert cli.exit_code == 0, cli.output
    assert cli.stdout.splitlines() == http.get_data(as_text=True).splitlines()  # the CLI writes \n, HTTP \r\n
    today = CliRunner().invoke(main, ["sparql", query, "--format", "csv", "--data", str(history_data)])
    assert today.stdout != cli.stdout  # the date changed the answer
    export = CliRunner().invoke(main, ["export", "icd10cm-hierarchy", "--as-of", when, "--data", str(history_data)])
    assert export.exit_code == 0, export.output
    served = client.get(f"/export/icd10cm-hierarchy.csv?as_of={when}").get_data(as_text=True)
    assert export.stdout.splitlines() == served.splitlines()


@pytest.mark.parametrize("command", [["sparql", "ASK {}"], ["export", "icd10cm-hierarchy"]])
@pytest.mark.parametrize("value, words", [("2025-13-01", "is not a date"), ("1999-01-01", "before the first")])
def test_the_cli_as_of_errors_name_the_option(history_data, command, value, words) -> None:
    from click.testing import CliRunner

    from medcode.cli import main

    result = CliRunner().invoke(main, [*command, "--as-of", value, "--data", str(history_data)])
    assert result.exit_code == 2 and "--as-of" in result.output and words in result.output
