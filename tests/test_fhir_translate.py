"""ConceptMap/$translate by POST (a Parameters resource or a form) as well as GET, and in reverse: R4's
`reverse=true`, R5's `targetCode`/`targetCoding`. The GET answers stay those of test_exports.py; every
answer validates with fhir.resources (R5, or R4B where asked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.parameters import Parameters
from fhir.resources.R4B.parameters import Parameters as ParametersR4B

from server import create_app

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
TRANSLATE = "/fhir/ConceptMap/$translate"
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def client(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir)})
    yield app.test_client()
    app.extensions["medcode.store"].close()


def post(client, *entries: dict, path: str = TRANSLATE, headers: dict | None = None):
    return client.post(path, data=json.dumps({"resourceType": "Parameters", "parameter": list(entries)}),
                       content_type=FHIR_JSON, headers=headers or {})


def found(params: dict, relation: str = "relationship") -> dict[tuple[str, str], str]:
    """(system, code) -> relationship of each match."""
    out = {}
    for match in (p for p in params["parameter"] if p["name"] == "match"):
        parts = {part["name"]: part for part in match["part"]}
        coding = parts["concept"]["valueCoding"]
        out[coding["system"], coding["code"]] = parts[relation]["valueCode"]
    return out


def result(params: dict) -> tuple[bool, str]:
    values = {p["name"]: p for p in params["parameter"] if p["name"] in ("result", "message")}
    return values["result"]["valueBoolean"], values["message"]["valueString"]


def test_post_parameters_answers_as_get(client):
    by_get = client.get(f"{TRANSLATE}?system={CPT}&code=62362&targetsystem={HCPCS}")
    by_post = post(client, {"name": "system", "valueUri": CPT}, {"name": "code", "valueCode": "62362"},
                   {"name": "targetsystem", "valueUri": HCPCS})
    by_form = client.post(TRANSLATE, data={"system": CPT, "code": "62362", "targetsystem": HCPCS})
    assert by_get.status_code == by_post.status_code == by_form.status_code == 200
    assert by_post.get_json() == by_get.get_json() == by_form.get_json()
    Parameters.model_validate(by_post.get_json())
    assert set(found(by_post.get_json())) == {(HCPCS, "C1772"), (HCPCS, "E0783"), (HCPCS, "E0786")}


def test_coding_and_codeable_concept_name_the_source(client):
    by_code = post(client, {"name": "sourceSystem", "valueUri": HCPCS}, {"name": "sourceCode", "valueCode": "E0783"})
    by_coding = post(client, {"name": "coding", "valueCoding": {"system": HCPCS, "code": "E0783"}})
    by_concept = post(client, {"name": "sourceCodeableConcept", "valueCodeableConcept": {
        "coding": [{"system": HCPCS, "code": "E0783"}]}})
    assert by_code.get_json() == by_coding.get_json() == by_concept.get_json()
    assert (CPT, "62362") in found(by_code.get_json())


def test_reverse_r4_finds_the_sources(client):
    """reverse=true: which CPT codes map to E0783? 62362 and the pump analyses 62367-62370; R4B names."""
    response = post(client, {"name": "system", "valueUri": HCPCS}, {"name": "code", "valueCode": "E0783"},
                    {"name": "reverse", "valueBoolean": True}, {"name": "targetsystem", "valueUri": CPT},
                    headers={"Accept": f"{FHIR_JSON}; fhirVersion=4.3"})
    assert response.status_code == 200
    params = response.get_json()
    ParametersR4B.model_validate(params)
    assert found(params, "equivalence") == {(CPT, code): "relatedto" for code in
                                            ("62362", "62367", "62368", "62369", "62370")}
    ok, message = result(params)
    assert ok and message.startswith("5 codes in") and "map to E0783" in message


def test_reverse_reads_a_map_backwards_only_where_it_has_that_direction(client):
    """E0783 is a source of the indication map (HCPCS -> ICD-10-CM), never its target: no ICD-10-CM code maps to
    it, though relatedMatch is symmetric; the HCPCS closeMatch C1772 <-> E0783 goes both ways."""
    params = client.get(f"{TRANSLATE}?system={HCPCS}&code=E0783&reverse=true").get_json()
    Parameters.model_validate(params)
    systems = {system for system, _ in found(params)}
    assert ICD not in systems
    assert {(CPT, code) for code in ("62362", "62367", "62368", "62369", "62370")} <= set(found(params))
    assert (HCPCS, "C1772") in found(params)
    forward = client.get(f"{TRANSLATE}?system={HCPCS}&code=E0783").get_json()
    assert ICD in {system for system, _ in found(forward)}  # forward, E0783's indications still translate


def test_reverse_r5_by_target_code(client):
    """R5: targetCode + targetSystem name the target concept; sourceSystem restricts the codes returned."""
    by_code = post(client, {"name": "targetCode", "valueCode": "G89.3"}, {"name": "targetSystem", "valueUri": ICD},
                   {"name": "sourceSystem", "valueUri": HCPCS})
    by_coding = post(client, {"name": "targetCoding", "valueCoding": {"system": ICD, "code": "G89.3"}},
                     {"name": "sourceSystem", "valueUri": HCPCS})
    by_r4 = client.get(f"{TRANSLATE}?system={ICD}&code=G89.3&reverse=true&targetsystem={HCPCS}")
    assert by_code.get_json() == by_coding.get_json() == by_r4.get_json()
    params = by_code.get_json()
    Parameters.model_validate(params)
    assert found(params) and all(system == HCPCS for system, _ in found(params))
    every = post(client, {"name": "targetCoding", "valueCoding": {"system": ICD, "code": "G89.3"}}).get_json()
    assert (CPT, "62362") in found(every) and set(found(params)) < set(found(every))


def test_reverse_of_a_code_nothing_maps_to(client):
    params = client.get(f"{TRANSLATE}?system={ICD}&code=A00.0&reverse=true").get_json()
    Parameters.model_validate(params)
    assert result(params) == (False, f"No code maps to A00.0 ({ICD}) in these crosswalks.")


@pytest.mark.parametrize("body,content_type,status,code", [
    ({"resourceType": "Parameters", "parameter": [{"name": "code", "valueCode": "62362"}]}, FHIR_JSON, 400,
     "required"),
    ({"resourceType": "Parameters", "parameter": [{"name": "system", "valueUri": CPT},
                                                  {"name": "code", "valueCode": "62362"},
                                                  {"name": "reverse", "valueString": "maybe"}]}, FHIR_JSON, 400,
     "invalid"),
    ({"resourceType": "Patient"}, FHIR_JSON, 400, "invalid"),
    ("{not json", FHIR_JSON, 400, "invalid"),
    ("system=x", "text/plain", 415, "not-supported"),
    ({"resourceType": "Parameters", "parameter": [{"name": "targetCode", "valueCode": "' OR 1=1 }"},
                                                  {"name": "targetSystem", "valueUri": ICD}]}, FHIR_JSON, 404,
     "not-found"),
])
def test_bad_posts_are_operation_outcomes(client, body, content_type, status, code):
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post(TRANSLATE, data=data, content_type=content_type)
    assert response.status_code == status
    outcome = response.get_json()
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["code"] == code
