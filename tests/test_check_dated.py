"""The claim check judges each diagnosis by the ICD-10-CM release in force on the date of service, truthfully.

G35 is billable in the releases before April 2026 and a category with billable codes G35.A-G35.D below it
from then on (the FY2026 release of October 2025 made the change, but no package ships it, so the graph
cannot tell the state between 2025-10-01 and 2026-04-01). The fixture build (tests/data/releases: 2021-01
and 2025-04 cut to a few categories, then the installed 2026-04 release) is enough for most cases, embedded;
the same cases on the real graph's release history run through the session's store, embedded or on
Virtuoso, and are skipped when its build lacks the April 2025 release.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from kg.contract import QUERIES_DIR, current_snapshot, read_meta
from medcode.cli import main
from server import create_app
from server.check.dated import unheld_releases
from server.check.rules import load_rules

G35_BELOW = ("G35.A", "G35.B0", "G35.B1", "G35.B2", "G35.C0", "G35.C1", "G35.C2", "G35.D")
DIAGNOSIS_RULES = {"diagnosis-not-billable", "diagnosis-deleted", "diagnosis-unknown", "diagnosis-not-yet-valid",
                   "diagnosis-release-uncertain", "diagnosis-before-releases"}


@pytest.fixture(scope="module")
def fixture_client(history_data):  # noqa: F811
    return create_app({"MEDCODE_DATA": str(history_data), "MEDCODE_STORE": "embedded", "TESTING": True}).test_client()


@pytest.fixture(scope="module")
def real_client(data_dir):
    if "2025-04" not in read_meta(current_snapshot(data_dir)).get("icd10cm_releases", []):
        pytest.skip(f"the snapshot in {data_dir} was built without the April 2025 release")
    return create_app({"MEDCODE_DATA": str(data_dir), "QUERY_TIMEOUT": 10}).test_client()


@pytest.fixture(params=["fixture", "real"])
def client(request):
    return request.getfixturevalue(f"{request.param}_client")


def diagnosis_findings(client, when: str, *diagnoses: str) -> list[dict]:
    """The diagnosis findings of a one-line claim (96522 pointing to `diagnoses`) on `when`."""
    response = client.post("/check", json={"date_of_service": when,
                                           "lines": [{"code": "96522", "diagnoses": list(diagnoses)}]})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [f for f in response.get_json()["findings"] if f["rule"] in DIAGNOSIS_RULES]


def test_unheld_releases_are_the_october_and_april_firsts_the_graph_lacks():
    held = [date(2021, 1, 1), date(2025, 4, 1), date(2026, 4, 1)]
    assert unheld_releases(date(2025, 4, 1), date(2026, 3, 2), held) == [date(2025, 10, 1)]
    assert unheld_releases(date(2025, 4, 1), date(2025, 9, 30), held) == []
    assert unheld_releases(date(2025, 4, 1), date(2025, 10, 1), held) == [date(2025, 10, 1)]
    assert unheld_releases(date(2026, 4, 1), date(2026, 6, 1), held) == []
    assert unheld_releases(date(2021, 1, 1), date(2022, 4, 1), held) == [date(2021, 4, 1), date(2021, 10, 1),
                                                                         date(2022, 4, 1)]


def test_g35_in_the_april_2025_release_is_billable(client):
    assert diagnosis_findings(client, "2025-06-01", "G35") == []


def test_g35_in_the_april_2026_release_is_denied_naming_its_billable_codes(client):
    [finding] = diagnosis_findings(client, "2026-06-01", "G35")
    assert finding["rule"] == "diagnosis-not-billable" and finding["severity"] == "deny"
    for code in G35_BELOW:
        assert code in finding["message"] and code in finding["instead"]


def test_g35_between_two_held_releases_that_disagree_is_a_warning_naming_both(client):
    [finding] = diagnosis_findings(client, "2026-03-02", "G35")
    assert finding["rule"] == "diagnosis-release-uncertain" and finding["severity"] == "warn"
    message = finding["message"]
    assert "cannot tell" in message and "2025-04" in message and "2026-04" in message and "2025-10-01" in message
    assert "has it as a billable code" in message and "a category that is not billable" in message
    assert all(code in message for code in G35_BELOW)
    assert finding["source"].endswith("/id/release/icd10cm/2025-04")


def test_a_code_the_april_2026_release_added_is_not_yet_a_code_in_2025(client):
    [finding] = diagnosis_findings(client, "2025-06-01", "G35.A")
    assert finding["rule"] == "diagnosis-not-yet-valid" and finding["severity"] == "deny"
    assert "not yet an ICD-10-CM code on 2025-06-01" in finding["message"] and "2026-04 release added it" in \
        finding["message"]
    assert diagnosis_findings(client, "2026-06-01", "G35.A") == []
    [uncertain] = diagnosis_findings(client, "2026-03-02", "G35.A")
    assert uncertain["rule"] == "diagnosis-release-uncertain" and "as no code" in uncertain["message"]


def test_a_date_before_the_first_held_release_says_the_graph_cannot_tell(client):
    found = diagnosis_findings(client, "2020-06-01", "G35", "G35.A")
    by_rule = {f["rule"]: f for f in found}
    assert set(by_rule) == {"diagnosis-before-releases", "diagnosis-not-yet-valid"}, found
    note = by_rule["diagnosis-before-releases"]
    assert note["severity"] == "info" and "2021-01" in note["message"] and "G35, G35.A" in note["message"]
    assert by_rule["diagnosis-not-yet-valid"]["message"].startswith("G35.A ")  # judged by 2021-01; G35 billable then


def test_a_deleted_diagnosis_is_judged_by_the_release_in_force(fixture_client):
    # the fixture's 2025-04 release deleted G89.27 (tests/test_releases.py), added G89.28 in its place
    assert diagnosis_findings(fixture_client, "2021-03-01", "G89.27") == []
    [deleted] = diagnosis_findings(fixture_client, "2025-06-01", "G89.27")
    assert deleted["rule"] == "diagnosis-deleted" and "2025-04" in deleted["message"]
    assert "G89.28" in deleted["instead"]
    [uncertain] = diagnosis_findings(fixture_client, "2023-06-01", "G89.27")
    assert uncertain["rule"] == "diagnosis-release-uncertain" and "2021-04-01" in uncertain["message"]


def test_a_subcategory_of_an_earlier_release_is_denied_naming_that_release_s_billable_codes(fixture_client):
    """The fixture's 2021-01 release has G89.4 as a subcategory with G89.40 and G89.41 below it; the 2025-04 one
    deleted them and made G89.4 billable, as it is now: on a date of 2021 the denial names the codes of 2021-01
    and says to report one, as the current state's rule does for a category."""
    assert diagnosis_findings(fixture_client, "2025-06-01", "G89.4") == []
    [finding] = diagnosis_findings(fixture_client, "2021-03-01", "G89.4")
    assert finding["rule"] == "diagnosis-not-billable" and finding["severity"] == "deny"
    assert "G89.4 (Chronic pain syndrome) is a subcategory" in finding["message"] and "(2021-01)" in finding["message"]
    assert finding["message"].endswith("in that release: G89.40, G89.41.")
    [current] = next(r for r in load_rules(QUERIES_DIR) if r.query.name == "check-diagnosis-billable").wordings.values()
    assert finding["instead"] == current.instead.format(billable="G89.40, G89.41")
    assert finding["source"].endswith("/id/release/icd10cm/2021-01")
    [uncertain] = diagnosis_findings(fixture_client, "2021-06-01", "G89.4")  # 2021-04-01's release not held
    assert uncertain["rule"] == "diagnosis-release-uncertain"
    assert "as a subcategory that is not billable (billable codes below it: G89.40, G89.41)" in uncertain["message"]


def test_the_cli_gives_the_earlier_release_s_billable_codes(history_data):
    args = ["check", "96522", "--date", "2021-03-01", "--diagnosis", "G89.4", "--data", str(history_data),
            "--store", "embedded"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "diagnosis-not-billable" in result.output, result.output
    assert "G89.40, G89.41" in result.output
    [finding] = [f for f in json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)["findings"]
                 if f["rule"] in DIAGNOSIS_RULES]
    assert "G89.40, G89.41" in finding["instead"]


def test_the_check_is_clean_only_where_the_release_in_force_is_certain(client):
    def clean(when: str) -> bool:
        response = client.post("/check", json={"date_of_service": when,
                                               "lines": [{"code": "95990", "diagnoses": ["G35"]}]})
        return response.get_json()["clean"]
    assert clean("2025-06-01") and not clean("2026-03-02") and not clean("2026-06-01")


def test_multiple_sclerosis_is_an_indication_whichever_the_release(client):
    """The condition matches the category G35 and the codes below it: G35 itself (billable before April 2026)
    and G35.A are both among 96522's indications, on the dates each is a code."""
    def indicated(when: str, diagnosis: str) -> bool:
        response = client.post("/check", json={"date_of_service": when,
                                               "lines": [{"code": "96522", "diagnoses": [diagnosis]}]})
        return "diagnosis-not-indicated" not in {f["rule"] for f in response.get_json()["findings"]}
    assert indicated("2025-06-01", "G35") and indicated("2026-06-01", "G35.A")
    assert not indicated("2026-06-01", "G89.3")
