"""The FHIR terminology service judged by cases in the HL7 terminology-ecosystem test format
(tests/fhir_tx/<group>/*.json, run by tests/fhir_tx.py): every case found is sent by POST Parameters
and, where its values allow, by GET; each answer must have the expected status, validate with
fhir.resources (R5, or R4B when the case asks for it) and match the expected response template."""

from __future__ import annotations

import json

import pytest
from fhir import resources as r5
from fhir.resources import R4B as r4b
from fhir_tx import Case, Matcher, load_cases, requests_of, scrub, status_matches

from server.app import create_app

CASES = load_cases()
VERSIONS = {"r5": "5.0.0", "r4b": "4.3.0"}


@pytest.fixture(scope="module")
def client(data_dir):
    app = create_app({"MEDCODE_DATA": str(data_dir), "QUERY_TIMEOUT": 10})
    yield app.test_client()
    app.extensions["medcode.store"].close()


def validated(body: dict, version: str) -> None:
    """The answer is a valid FHIR resource of its type (fhir.resources raises otherwise)."""
    models = r4b if version == "r4b" else r5
    models.get_fhir_model_class(body["resourceType"]).model_validate(body)


def test_cases_are_found_for_each_group_this_service_answers():
    groups = {case.group for case in CASES}
    assert {"metadata", "lookup", "validate", "subsumes"} <= groups
    assert all(case.response for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group}/{c.name}" for c in CASES])
def test_case(client, case: Case):
    version = case.query.get("fhir", "r5")
    matcher = Matcher(VERSIONS[version])
    sent = requests_of(case)
    assert sent, f"{case.name}: no way to send this request"
    for method, url, body in sent:
        response = client.open(url, method=method, data=json.dumps(body) if body is not None else None,
                               content_type="application/fhir+json" if body is not None else None)
        assert response.content_type.startswith("application/fhir+json"), (method, url, response.data[:300])
        answer = response.get_json()
        assert status_matches(case.http_code, response.status_code), (method, url, answer)
        validated(answer, version)
        difference = matcher.compare(case.response, scrub(answer))
        assert difference is None, f"{method} {url}: {difference}"
