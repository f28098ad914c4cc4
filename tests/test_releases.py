"""Code sets over time: a small build with two fixture releases (tests/data/releases) before the installed one.

The expected additions, deletions and revisions are computed here from the release files themselves,
through the package's public functions, never written down; the real April 2025 -> April 2026 diff is
checked the same way in test_releases_real.py when a build with the real releases is at hand.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from pathlib import Path
from xml.etree import ElementTree

import pytest
import simple_icd_10_cm as cm
from click.testing import CliRunner
from rdflib import Graph, URIRef

from kg.contract import current_snapshot, read_meta
from kg.release_files import fetch, release_files
from kg.releases import loaded, release_state
from medcode.cli import main
from server import create_app

RELEASES = Path(__file__).parent / "data" / "releases"
GETTERS = (cm.get_inclusion_term, cm.get_includes, cm.get_excludes1, cm.get_excludes2)
TEXT_GETTERS = (cm.get_code_first, cm.get_use_additional_code, cm.get_code_also, cm.get_notes, cm.get_seven_chr_note)


def package_state(only: set[str] | None = None) -> dict[str, tuple]:
    """Each category and subcategory of the release the package has loaded (of `only`, when given): label, leaf,
    notes (public API)."""
    state = {}
    for code in dict.fromkeys(cm.get_all_codes(True)):
        if (only is None or code in only) and (cm.is_category(code) or cm.is_subcategory(code)):
            notes = () if cm.is_extended_subcategory(code) else (
                tuple(tuple(g(code)) for g in GETTERS) + tuple(g(code, False) for g in TEXT_GETTERS))
            state[code] = (cm.get_description(code), cm.is_leaf(code), notes)
    return state


def fixture_state(notation: str) -> dict[str, tuple]:
    folder = RELEASES / notation
    try:
        cm.change_version(str(folder / "code-list.txt"), str(folder / "tabular.xml"))
        return package_state()
    finally:
        with warnings.catch_warnings():  # the package reads its own files with a deprecated importlib call
            warnings.simplefilter("ignore", DeprecationWarning)
            cm.change_version()


def expected(before: dict[str, tuple], after: dict[str, tuple]) -> dict[str, set[str]]:
    return {"added": set(after) - set(before), "deleted": set(before) - set(after),
            "revised": {c for c in set(before) & set(after) if before[c] != after[c]}}


@pytest.fixture(scope="module")
def client(history_data: Path):
    # the fixture build's own snapshot, embedded also in remote mode (the session's engine serves the full graph)
    return create_app({"MEDCODE_DATA": str(history_data), "MEDCODE_STORE": "embedded", "TESTING": True}).test_client()


@pytest.fixture(scope="module")
def states(history_data: Path) -> dict[str, dict[str, tuple]]:
    """The fixture releases and the installed one, cut as the build cuts them: the items it imported, and the codes
    of their categories that the installed release no longer holds."""
    items = set(read_meta(current_snapshot(history_data))["icd10cm_items"])
    now = set(cm.get_all_codes(True))
    current = package_state(items)
    categories = {c[:3] for c in current}

    def cut(state: dict[str, tuple]) -> dict[str, tuple]:
        return {c: s for c, s in state.items() if c in items or (c[:3] in categories and c not in now)}

    return {"2021-01": cut(fixture_state("2021-01")), "2025-04": cut(fixture_state("2025-04")), "2026-04": current}


def _diff(client, **args) -> dict:
    response = client.get("/diff", query_string={**args, "format": "json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize(("earlier", "later"), [("2021-01", "2025-04"), ("2025-04", "2026-04"), ("2021-01", "2026-04")])
def test_diff_matches_the_release_files(client, states, earlier: str, later: str) -> None:
    answer = _diff(client, system="icd10cm", **{"from": earlier, "to": later})
    want = expected(states[earlier], states[later])
    got = {kind: {c["code"] for c in answer["changes"] if c["change"] == kind} for kind in want}
    assert got == want
    assert answer["counts"] == {kind: len(codes) for kind, codes in want.items()}


def test_g35_billable_in_2025_a_category_in_2026(client) -> None:
    changes = {c["code"]: c for c in _diff(client, **{"from": "2025-04", "to": "2026-04"})["changes"]}
    g35 = changes["G35"]
    assert g35["change"] == "revised" and g35["billable"] is False
    assert {"property": "mc:billable", "before": "true", "after": "false"} in g35["revisions"]
    added = {code for code, c in changes.items() if c["change"] == "added" and code.startswith("G35.")}
    assert {code for code in added if changes[code]["billable"]} >= {"G35.A", "G35.B0", "G35.C0", "G35.D"}
    assert all(cm.is_descendant(code, "G35") for code in added)


def test_deleted_code_resolves_marked_deleted_with_its_replacement(client) -> None:
    changes = {c["code"]: c for c in _diff(client, **{"from": "2021-01", "to": "2025-04"})["changes"]}
    assert changes["G89.27"]["change"] == "deleted" and changes["G89.27"]["replaced_by"] == ["G89.28"]
    page = client.get("/id/icd10cm/G89.27")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Deleted" in html and "/id/icd10cm/G89.28" in html
    turtle = Graph().parse(data=client.get("/id/icd10cm/G89.27?format=turtle").get_data(as_text=True), format="turtle")
    mc = "https://w3id.org/medcode/ontology#"
    iri = URIRef("https://w3id.org/medcode/id/icd10cm/G89.27")
    assert (iri, URIRef(mc + "replacedBy"), URIRef("https://w3id.org/medcode/id/icd10cm/G89.28")) in turtle
    assert (iri, URIRef(mc + "deletedIn"), URIRef("https://w3id.org/medcode/id/release/icd10cm/2025-04")) in turtle


def test_membership_follows_the_release_files(client, states) -> None:
    query = """SELECT ?n WHERE { ?c mc:inRelease <https://w3id.org/medcode/id/release/icd10cm/2021-01> ;
                                    skos:notation ?n }"""
    rows = client.get("/sparql", query_string={"query": query}, headers={"Accept": "text/csv"}).get_data(as_text=True)
    assert set(rows.split()[1:]) == set(states["2021-01"])


def test_formats_agree(client) -> None:
    args = {"from": "2021-01", "to": "2025-04"}
    table = list(csv.DictReader(io.StringIO(client.get("/diff", query_string={**args, "format": "csv"})
                                            .get_data(as_text=True))))
    answer = _diff(client, **args)
    assert {(r["code"], r["change"]) for r in table} == {(c["code"], c["change"]) for c in answer["changes"]}
    label = next(r for r in table if r["code"] == "G89.3")
    assert (label["property"], label["before"], label["after"]) == (
        "skos:prefLabel", "Neoplasm related pain", "Neoplasm related pain (acute) (chronic)")
    rdf = client.get("/diff", query_string=args, headers={"Accept": "text/turtle"})
    assert rdf.content_type.startswith("text/turtle")
    graph = Graph().parse(data=rdf.get_data(as_text=True), format="turtle")
    changes = {str(s) for s in graph.subjects(URIRef("https://w3id.org/medcode/ontology#changeIn"))}
    assert len(changes) == len(table)  # one record per added/deleted code and per revised property
    html = client.get("/diff", query_string=args, headers={"Accept": "text/html"})
    assert html.status_code == 200 and "G89.27" in html.get_data(as_text=True)
    assert client.get("/diff", query_string=args, headers={"If-None-Match": html.headers["ETag"],
                                                            "Accept": "text/html"}).status_code == 304


@pytest.mark.parametrize(("args", "status", "words"), [
    ({"from": "someday"}, 400, "neither a release"),
    ({"from": "2024-10"}, 404, "2021-01, 2025-04, 2026-04"),
    ({"from": "2025-13"}, 400, "neither a release"),
    ({"from": "2026-04", "to": "2025-04"}, 400, "earlier"),
    ({"from": "2019-06-30"}, 404, "before the first"),
    ({"system": "cpt"}, 404, "icd10cm"),
    ({"system": "<script>"}, 404, "No release history"),
])
def test_bad_requests_say_why(client, args: dict, status: int, words: str) -> None:
    for accept in ("application/json", "text/html"):
        response = client.get("/diff", query_string=args, headers={"Accept": accept})
        assert response.status_code == status
        assert words in response.get_data(as_text=True)
    # what the request said comes back only in plain text or JSON, never as HTML markup
    assert response.mimetype in ("text/plain", "application/json") or "<script>" not in response.get_data(as_text=True)


def test_repeated_parameter_is_refused(client) -> None:
    response = client.get("/diff?from=2021-01&from=2025-04")
    assert response.status_code == 400 and "more than once" in response.get_data(as_text=True)


def test_cli_diff_is_the_same(history_data: Path, client) -> None:
    runner = CliRunner(env={"MEDCODE_STORE": "embedded"})  # the fixture build, as the client reads it
    args = ["diff", "--data", str(history_data), "--from", "2025-04", "--to", "2026-04"]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    over_http = client.get("/diff?from=2025-04&to=2026-04&format=csv").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(text.output))) == list(csv.reader(io.StringIO(over_http)))
    as_json = runner.invoke(main, [*args, "--format", "json"])
    assert json.loads(as_json.output) == _diff(client, **{"from": "2025-04", "to": "2026-04"})
    failed = runner.invoke(main, ["diff", "--data", str(history_data), "--from", "2024-10"])
    assert failed.exit_code == 1 and "2024-10" in failed.output


def test_missing_releases_are_skipped_and_said(tmp_path: Path) -> None:
    with release_files(tmp_path) as (found, skipped):
        assert found == [] and skipped == ["2021-01", "2025-04"]


def test_offline_fetch_says_what_it_could_not_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No index and nothing to find: pip fails at once, without the network, and the build goes on without them."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "none"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    said: list[str] = []
    fetch(tmp_path / "cache", said.append)
    assert [line for line in said if "could not fetch" in line and ("1.2.0" in line or "1.4.0" in line)]
    assert len(said) == 2


def test_a_release_that_does_not_load_leaves_the_installed_one(tmp_path: Path) -> None:
    (tmp_path / "codes.txt").write_text("A00\n", encoding="utf-8")
    (tmp_path / "tabular.xml").write_text("<ICD10CM.tabular><version>", encoding="utf-8")
    before = cm.get_all_codes(True)
    with pytest.raises(ElementTree.ParseError), loaded(tmp_path / "codes.txt", tmp_path / "tabular.xml"):
        pass
    assert cm.get_all_codes(True) == before and not cm.is_leaf("G35") and cm.is_leaf("G35.A")


def test_the_tree_walk_reads_what_the_getters_say() -> None:
    """release_state reads the package's tree directly (fast); the public getters say the same, code by code."""
    states = release_state()
    assert set(states) == {c for c in cm.get_all_codes(True) if cm.is_category(c) or cm.is_subcategory(c)}
    for code in list(states)[::211]:
        label, billable, notes = states[code]
        assert (label, billable) == (cm.get_description(code), cm.is_leaf(code)), code
        if notes:
            assert notes[2] == tuple(line.strip() for line in cm.get_excludes1(code)), code


def test_claim_check_names_a_deleted_diagnosis_and_its_replacement(client) -> None:
    answer = client.post("/check", json={"date_of_service": "2026-05-04",
                                         "lines": [{"code": "62369", "diagnoses": ["G89.27", "G89.29"]}]}).get_json()
    rules = {f["rule"]: f for f in answer["findings"]}
    assert "diagnosis-unknown" not in rules
    deleted = rules["diagnosis-deleted"]
    assert deleted["severity"] == "deny" and "2025-04" in deleted["message"] and "G89.28" in deleted["instead"]


@pytest.mark.parametrize(("as_of", "words"), [
    ("2025-06-01", "release 2025-04 in force"), ("2021-01-01", "release 2021-01 in force"),
    ("2026-04-01", "release 2026-04 in force"), ("2020-12-31", "before the first release the graph holds (2021-01)")])
def test_code_page_as_of(client, as_of: str, words: str) -> None:
    page = client.get("/id/icd10cm/G35", query_string={"as_of": as_of})
    assert page.status_code == 200 and words in page.get_data(as_text=True)
    billable = "2026-04" not in words and "before" not in words
    assert ("Multiple sclerosis, billable" in page.get_data(as_text=True)) == billable


def test_code_page_as_of_refuses_bad_dates(client) -> None:
    assert client.get("/id/icd10cm/G35?as_of=%3Cb%3E").status_code == 400
    repeated = client.get("/id/icd10cm/G35?as_of=2025-06-01&as_of=2026-06-01")
    assert repeated.status_code == 400 and "more than once" in repeated.get_data(as_text=True)


def test_timeline_on_the_code_page(client) -> None:
    html = client.get("/id/icd10cm/G35").get_data(as_text=True)
    timeline = html[html.index('id="timeline"'):html.index("</section>", html.index('id="timeline"'))]
    assert timeline.count("<th scope=\"row\">") == 3 and timeline.count("<td>yes</td>") == 3  # 3 releases hold G35
    assert "<del>true</del> → <ins>false</ins>" in timeline
    assert "/id/icd10cm/G35.A" in timeline and "/id/icd10cm/G35.D" in timeline  # billable codes added below it
    added = client.get("/id/icd10cm/G35.A").get_data(as_text=True)
    assert "added (billable)" in added
