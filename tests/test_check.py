"""The claim check on the real graph: POST /check, the HTML form, `medcode check` and the gunicorn server.

Scenario claims come from the seed rules: 62369 with 95990 (S003: not reported together), 96522 with
two units (S004: MUE 1), G35 as a diagnosis (a category, not billable). Each rule is a query with a
`check:` header, so the same tests run against the embedded store and against Virtuoso
(MEDCODE_TEST_STORE=virtuoso). Edits from NCCI files (modifier indicator 1, deletion dates, the two
settings) are in tests/test_check_ncci.py.
"""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from helpers import start_server, stop_server

from kg.contract import ID_BASE, MC, current_snapshot, read_meta
from medcode.cli import main
from server import create_app

DATE = "2026-03-02"
EDIT = ID_BASE + "edit/95990_62369"
S003, S004 = ID_BASE + "source/S003", ID_BASE + "source/S004"


@pytest.fixture(scope="module")
def client(data_dir):
    return create_app({"MEDCODE_DATA": str(data_dir), "QUERY_TIMEOUT": 10}).test_client()


def check(client, *lines: dict, date: str = DATE, setting: str = "practitioner") -> dict:
    response = client.post("/check", json={"date_of_service": date, "setting": setting, "lines": list(lines)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def only(result: dict, rule: str) -> dict:
    found = [f for f in result["findings"] if f["rule"] == rule]
    assert len(found) == 1, result["findings"]
    return found[0]


def rules(result: dict) -> set[str]:
    return {f["rule"] for f in result["findings"]}


def test_62369_with_95990_is_denied_by_the_code_pair_edit(client):
    result = check(client, {"code": "62369"}, {"code": "95990"})
    finding = only(result, "ncci-ptp")
    assert result["clean"] is False
    assert finding["severity"] == "deny" and finding["lines"] == [0, 1]
    assert (finding["edit"], finding["source"]) == (EDIT, S003)
    assert "62369" in finding["message"] and "95990 (column 1)" in finding["message"]
    assert "modifier indicator 0" in finding["message"]
    assert finding["instead"].startswith("Report 95990, 95991 instead of 62369")
    assert set(finding) == {"rule", "severity", "lines", "message", "edit", "source", "instead"}


def test_the_edit_applies_in_both_orders_and_a_modifier_does_not_bypass_indicator_0(client):
    finding = only(check(client, {"code": "95990", "modifiers": ["XU"]}, {"code": "62369", "modifiers": ["59"]}),
                   "ncci-ptp")
    assert finding["severity"] == "deny" and finding["lines"] == [0, 1] and finding["edit"] == EDIT


def test_96522_with_two_units_is_over_its_mue(client):
    finding = only(check(client, {"code": "96522", "units": 2}), "mue")
    assert finding["severity"] == "deny" and finding["lines"] == [0] and finding["source"] == S004
    assert "2 units" in finding["message"] and "allows 1" in finding["message"]
    assert "adjudication indicator is not known" in finding["message"]
    assert finding["instead"].startswith("Report at most 1 unit")
    assert "mue" not in rules(check(client, {"code": "96522", "units": 1}))


def test_mue_sums_the_lines_of_a_code_per_date_of_service(client):
    finding = only(check(client, {"code": "96522"}, {"code": "62369"}, {"code": "96522"}), "mue")
    assert finding["lines"] == [0, 2] and "2 units" in finding["message"]


def test_g35_is_a_category_naming_its_billable_descendants(client):
    # on a date of the current release (the dates between two held releases: tests/test_check_dated.py)
    finding = only(check(client, {"code": "96522", "diagnoses": ["G35"]}, date="2026-06-01"), "diagnosis-not-billable")
    assert finding["severity"] == "deny" and finding["lines"] == [0]
    assert "G35 (Multiple sclerosis)" in finding["message"]
    for code in ("G35.A", "G35.B0", "G35.C2", "G35.D"):
        assert code in finding["message"] and code in finding["instead"]
    assert "diagnosis-not-billable" not in rules(check(client, {"code": "96522", "diagnoses": ["g35a"]},
                                                       date="2026-06-01"))


def test_an_unknown_code_is_a_finding_with_near_matches_not_an_error(client):
    finding = only(check(client, {"code": "62396"}), "code-unknown")
    assert finding["severity"] == "warn" and "62369" in finding["instead"]
    unknown = only(check(client, {"code": "96522", "diagnoses": ["G89.9"]}), "diagnosis-unknown")
    assert unknown["severity"] == "deny" and "G89." in unknown["instead"]


def test_codes_and_modifiers_are_checked_against_the_date_of_service(client):
    result = check(client, {"code": "96522", "modifiers": ["XU"]}, date="2005-06-01")
    assert "2006-01-01" in only(result, "code-not-yet-valid")["message"]
    assert "2015-01-01" in only(result, "modifier-not-yet-valid")["message"]
    assert not {"code-not-yet-valid", "modifier-not-yet-valid"} & rules(
        check(client, {"code": "96522", "modifiers": ["XU"]}))


def test_the_graph_s_report_instead_advice_is_information(client):
    portable = only(check(client, {"code": "96521"}, {"code": "62369"}), "report-instead")
    assert portable["severity"] == "info" and portable["lines"] == [1]
    assert "95990, 95991" in portable["instead"] and portable["source"] == S003
    advice = [f for f in check(client, {"code": "96522"})["findings"] if f["rule"] == "report-instead"]
    assert {f["instead"] for f in advice} == {"96521", "95990, 95991"}


def test_diagnoses_outside_the_known_indications_are_information_saying_they_are_not_policy(client):
    finding = only(check(client, {"code": "62369", "diagnoses": ["G89.3"]}), "diagnosis-not-indicated")
    assert finding["severity"] == "info" and "not payer policy" in finding["message"]
    assert "diagnosis-not-indicated" not in rules(check(client, {"code": "62369", "diagnoses": ["Z45.1"]}))


def test_a_clean_claim_says_so(client):
    result = check(client, {"code": "95990", "diagnoses": ["Z45.1"]})
    assert result["clean"] is True
    assert all(f["severity"] == "info" for f in result["findings"])


def test_findings_come_in_a_stable_order(client):
    lines = ({"code": "62369", "diagnoses": ["G35"]}, {"code": "95990", "units": 3},
             {"code": "96522", "units": 2}, {"code": "62396"})
    first = check(client, *lines)
    assert check(client, *lines) == first
    order = [("deny", "warn", "info").index(f["severity"]) for f in first["findings"]]
    assert order == sorted(order)


def graph_has(store, prop: str) -> bool:
    return bool(store.query(f"ASK {{ ?s <{MC}{prop}> ?o }}", use_default_graph_as_union=True))


def test_two_diagnoses_in_an_excludes1_relation_warn(client, store):
    if not graph_has(store, "excludes1"):
        pytest.skip("the graph has no ICD-10-CM Excludes1 notes (mc:excludes1 / mc:refersTo) yet")
    finding = only(check(client, {"code": "62362", "diagnoses": ["G89.29", "G89.3"]}), "diagnosis-excludes1")
    assert finding["severity"] == "warn" and finding["lines"] == [0] and "G89.2" in finding["message"]


def test_a_line_without_the_modifier_its_code_is_reported_with_warns(client, store):
    if not graph_has(store, "reportedWithModifier"):
        pytest.skip("the graph has no modifier a code is reported with (mc:reportedWithModifier, J7799 with KD)")
    finding = only(check(client, {"code": "J7799", "modifiers": ["59"]}), "modifier-missing")
    assert finding["severity"] == "warn" and "KD" in finding["message"] and finding["instead"].endswith("KD.")
    assert "modifier-missing" not in rules(check(client, {"code": "J7799", "modifiers": ["KD"]}))


@pytest.mark.parametrize(("claim", "path"), [
    ({"lines": [{"code": "62369"}]}, "date_of_service"),
    ({"date_of_service": "2026-02-30", "lines": [{"code": "62369"}]}, "date_of_service"),
    ({"date_of_service": DATE, "lines": [{"code": "62369"}], "patient": "x"}, "patient"),
    ({"date_of_service": DATE, "setting": "inpatient", "lines": [{"code": "62369"}]}, "setting"),
    ({"date_of_service": DATE, "lines": []}, "lines"),
    ({"date_of_service": DATE, "lines": [{"code": "62369"}, {"code": "623"}]}, "lines[1].code"),
    ({"date_of_service": DATE, "lines": [{"code": "62369", "modifiers": ["X"]}]}, "lines[0].modifiers[0]"),
    ({"date_of_service": DATE, "lines": [{"code": "62369", "diagnoses": ["G"]}]}, "lines[0].diagnoses[0]"),
    ({"date_of_service": DATE, "lines": [{"code": "62369"}, {"code": "95990"}, {"code": "96522", "units": 0}]},
     "lines[2].units"),
    ({"date_of_service": DATE, "lines": [{"code": "62369", "units": -2}]}, "lines[0].units"),
    ({"date_of_service": DATE, "lines": [{"code": "62369", "units": "2"}]}, "lines[0].units"),
    ({"date_of_service": DATE, "lines": [{"code": "62369", "qty": 2}]}, "lines[0].qty"),
])
def test_bad_input_is_400_naming_the_field(client, claim, path):
    response = client.post("/check", json=claim)
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith(f"{path}: ")


def test_more_than_200_lines_is_refused_saying_the_limit(client):
    response = client.post("/check", json={"date_of_service": DATE, "lines": [{"code": "62369"}] * 201})
    assert response.status_code == 413 and "at most 200 lines" in response.get_data(as_text=True)
    assert client.post("/check", json={"date_of_service": DATE, "lines": [{"code": "62369"}] * 200}).status_code == 200


def test_the_largest_claim_is_answered_within_the_time_limit(client, data_dir):
    """200 lines of different codes: 19,900 pairs, bound a few hundred rows a query."""
    diagnoses = ["G89.29", "G89.3", "G35", "Z45.1", "R52", "C18.9", "G80.0", "M62.838", "R25.2", "Z51.11", "G89.4",
                 "C22.0"]
    codes = ["95990", "96522", *(str(62200 + i) for i in range(198))]  # 62369 among them
    lines = [{"code": code, "modifiers": ["59", "XU", "RT", "76"], "units": 3, "diagnoses": diagnoses}
             for code in codes]
    result = check(client, *lines)
    # G35 on 2026-03-02: between two held releases that disagree about it (tests/test_check_dated.py), or a
    # category, when the build holds only the current release (the suite's own session build)
    releases = read_meta(current_snapshot(data_dir)).get("icd10cm_releases", [])
    g35 = "diagnosis-release-uncertain" if "2025-04" in releases else "diagnosis-not-billable"
    assert {"ncci-ptp", "mue", g35, "code-unknown"} <= rules(result)


def test_a_claim_points_to_at_most_12_diagnoses(client):
    lines = [{"code": "62369", "diagnoses": [f"G89.{n}" for n in (0, 21, 22, 28, 29, 3, 4)]},
             {"code": "95990", "diagnoses": ["G35.A", "G35.D", "Z45.1", "R52", "C18.9", "C22.0"]}]
    response = client.post("/check", json={"date_of_service": DATE, "lines": lines})
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("lines[1].diagnoses: a claim points to at most 12")


def test_a_form_field_given_twice_is_refused_naming_it(client):
    response = client.post("/check", data={"date_of_service": "2026-06-01", "code-0": ["62369", "95990"]})
    assert response.status_code == 400 and b"code-0: the field is given more than once." in response.data


def test_a_modifier_the_graph_does_not_know_is_named(client):
    finding = only(check(client, {"code": "62369", "modifiers": ["ZZ"]}), "modifier-unknown")
    assert finding["severity"] == "info" and finding["lines"] == [0] and "ZZ" in finding["message"]
    assert "modifier-unknown" not in rules(check(client, {"code": "62369", "modifiers": ["XU"]}))


def test_a_body_that_is_not_a_json_claim_is_refused(client):
    assert client.post("/check", data="{", content_type="application/json").status_code == 400
    assert client.post("/check", data="x", content_type="text/plain").status_code == 415
    nested = '{"date_of_service": "2026-03-02", "lines": [' + "[" * 5000 + "]" * 5000 + "]}"
    twice = client.post("/check", data='{"date_of_service": "2026-03-02", "date_of_service": "2025-03-02", '
                                      '"lines": [{"code": "62369"}]}', content_type="application/json")
    assert twice.status_code == 400 and twice.get_data(as_text=True).startswith("date_of_service: the key is given")
    deep = client.post("/check", data=nested, content_type="application/json")
    assert deep.status_code == 400 and deep.get_data(as_text=True).startswith("$: the JSON is nested too deeply")
    error = client.post("/check", json=[], headers={"Accept": "application/json"})
    assert error.status_code == 400 and error.get_json()["ok"] is False


def test_the_form_shows_findings_with_links_to_codes_edits_and_sources(client):
    assert b'<form class="claim"' in client.get("/check").data
    for page in ("/", "/search", "/check"):  # every page's navigation leads to the form
        assert '<a href="/check">Check</a>' in client.get(page).get_data(as_text=True)
    page = client.post("/check", data={"date_of_service": DATE, "setting": "practitioner", "code-0": "62369",
                                       "code-1": "95990", "modifiers-1": "59", "code-2": "96522", "units-2": "2"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="findings"' in html
    for href in ("/id/cpt/62369", "/id/cpt/95990", "/id/edit/95990_62369",
                 "/id/source/S003", "/id/source/S004"):
        assert f'href="{href}"' in html
    bad = client.post("/check", data={"date_of_service": DATE, "code-0": "62369", "units-0": "0"})
    assert bad.status_code == 400 and "lines[0].units" in bad.get_data(as_text=True)


def test_openapi_describes_post_check(client):
    doc = client.get("/api/openapi.json").get_json()
    operation = doc["paths"]["/check"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Claim"}
    claim = doc["components"]["schemas"]["Claim"]
    assert claim["properties"]["lines"]["maxItems"] == 200
    assert set(doc["components"]["schemas"]["CheckResult"]["properties"]["findings"]["items"]["required"]) == {
        "rule", "severity", "lines", "message", "edit", "source", "instead"}


def test_each_rule_is_also_a_named_query(client):
    rows = client.get("/api/check-ncci-ptp").get_json()["results"]["bindings"]
    assert {r["edit"]["value"] for r in rows} == {EDIT}


def test_cli_checks_the_issue_s_example(data_dir):
    args = ["check", "62369", "95990", "--date", DATE, "--units", "96522=2", "--modifier", "95990=59",
            "--data", str(data_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "DENY  ncci-ptp  (lines 0, 1)" in result.output and "DENY  mue  (line 2)" in result.output
    as_json = CliRunner().invoke(main, [*args, "--format", "json"])
    findings = json.loads(as_json.output)["findings"]
    assert [(f["rule"], f["lines"]) for f in findings][:2] == [("ncci-ptp", [0, 1]), ("mue", [2])]


def test_cli_exit_status_says_clean_wrong_or_failed(data_dir, tmp_path):
    clean = CliRunner().invoke(main, ["check", "95990", "--date", DATE, "--diagnosis", "Z45.1",
                                      "--data", str(data_dir)])
    assert clean.exit_code == 0 and "clean" in clean.output
    wrong = CliRunner().invoke(main, ["check", "62369", "--units", "62369=0", "--data", str(data_dir)])
    assert wrong.exit_code == 2 and "lines[0].units" in wrong.output
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"date_of_service": "2026-06-01", "lines": [{"code": "96522", "diagnoses": ["G35"]}]}))
    from_json = CliRunner().invoke(main, ["check", "--json", str(claim), "--data", str(data_dir), "--format", "json"])
    assert from_json.exit_code == 1 and json.loads(from_json.output)["findings"][0]["rule"] == "diagnosis-not-billable"
    failed = CliRunner().invoke(main, ["check", "62369", "--data", str(tmp_path / "empty"), "--store", "embedded"])
    assert failed.exit_code == 3 and "could not run" in failed.output


def test_the_gunicorn_server_answers_post_check(data_dir, tmp_path):
    srv = start_server(data_dir, tmp_path / "serve.log")
    try:
        url = f"http://127.0.0.1:{srv.port}/check"
        answer = requests.post(url, json={"date_of_service": DATE, "lines": [{"code": "62369"}, {"code": "95990"}]},
                               timeout=30)
        assert answer.status_code == 200 and answer.json()["findings"][0]["edit"] == EDIT
        refused = requests.post(url, json={"date_of_service": DATE, "lines": [{"code": "62369", "units": 0}]},
                                timeout=30)
        assert refused.status_code == 400 and refused.text.startswith("lines[0].units: ")
    finally:
        stop_server(srv)


@pytest.mark.parametrize("line, field", [({"code": "62369\u0000"}, "lines[0].code"),
                                         ({"code": "62369", "diagnoses": ["G35\u0000"]}, "lines[0].diagnoses[0]"),
                                         ({"code": "62369", "modifiers": ["5\u00019"]}, "lines[0].modifiers[0]")])
def test_a_code_with_a_control_character_is_a_400_not_the_code_without_it(client, line, field):
    response = client.post("/check", json={"date_of_service": "2026-03-02", "lines": [line]})
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith(f"{field}: holds a control character")
