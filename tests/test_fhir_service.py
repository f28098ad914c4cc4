"""The FHIR service's resources and failures outside the HL7-format cases: the CodeSystem resources
read from the graph (one per system, modifiers under their own systems), search by url, and an
OperationOutcome (never HTML) for every failure under /fhir/. Every answer validates with fhir.resources."""

from __future__ import annotations

import pytest
from fhir import resources as r5
from fhir.resources import R4B as r4b

from server.app import create_app

ICD, CPT = "http://hl7.org/fhir/sid/icd-10-cm", "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


@pytest.fixture(scope="module")
def client(data_dir):
    app = create_app({"MEDCODE_DATA": str(data_dir), "QUERY_TIMEOUT": 10})
    yield app.test_client()
    app.extensions["medcode.store"].close()


def fhir(response, status: int = 200, version: str = "r5") -> dict:
    """The answer's JSON, after checking status, media type and that it is a valid FHIR resource."""
    assert response.status_code == status, response.data[:500]
    assert response.content_type == f"application/fhir+json; fhirVersion={'4.3' if version == 'r4b' else '5.0'}"
    body = response.get_json()
    (r4b if version == "r4b" else r5).get_fhir_model_class(body["resourceType"]).model_validate(body)
    return body


@pytest.mark.parametrize("version", ["r5", "r4b"])
def test_each_code_system_is_a_valid_codesystem(client, version):
    found = {}
    for resource_id in ("icd10cm", "cpt", "hcpcs"):
        body = fhir(client.get(f"/fhir/CodeSystem/{resource_id}?fhir={version}"), version=version)
        found[body["url"]] = body
    assert set(found) == {ICD, CPT, HCPCS}
    # the whole of ICD-10-CM is served, but its resource does not list the 98,186 codes: not-present, with
    # their count (the whole-system expansion's total) and the value set of all of them
    assert found[ICD]["content"] == "not-present" and found[ICD]["hierarchyMeaning"] == "is-a"
    assert "concept" not in found[ICD] and found[ICD]["valueSet"] == f"{ICD}?fhir_vs"
    every = fhir(client.get(f"/fhir/ValueSet/$expand?url={ICD}?fhir_vs&count=1"), version="r5")
    assert found[ICD]["count"] == every["expansion"]["total"] > 98_000
    assert {p["code"] for p in found[ICD]["property"]} >= {"parent", "child", "notSelectable", "excludes1"}
    assert found[ICD]["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.90"}]
    cpt = {c["code"] for c in found[CPT]["concept"]}
    hcpcs = {c["code"] for c in found[HCPCS]["concept"]}
    assert found[CPT]["content"] == found[HCPCS]["content"] == "fragment"
    assert {"62362", "59", "95"} <= cpt and not {"XU", "E0783"} & cpt  # modifiers under their own systems
    assert {"E0783", "XU", "KD"} <= hcpcs and not {"59", "62362"} & hcpcs
    assert found[CPT]["count"] == len(found[CPT]["concept"])


def test_terminology_capabilities_say_the_service_holds_icd10cm_complete(client):
    systems = {cs["uri"]: cs for cs in fhir(client.get("/fhir/metadata?mode=terminology"))["codeSystem"]}
    assert systems[ICD]["content"] == "complete" and systems[CPT]["content"] == "fragment"


SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}


@pytest.mark.parametrize("version", ["r5", "r4b"])
def test_summary_and_elements_subset_a_code_system(client, version):
    whole = fhir(client.get(f"/fhir/CodeSystem/cpt?fhir={version}"), version=version)
    summary = fhir(client.get(f"/fhir/CodeSystem/cpt?_summary=true&fhir={version}"), version=version)
    assert "concept" not in summary and "description" not in summary and summary["count"] == whole["count"]
    assert summary["meta"]["tag"] == [SUBSETTED] and summary["url"] == whole["url"]
    picked = fhir(client.get(f"/fhir/CodeSystem/icd10cm?_elements=url,count&fhir={version}"), version=version)
    assert set(picked) == {"resourceType", "id", "meta", "url", "count", "status", "content"}  # mandatory kept
    text = fhir(client.get(f"/fhir/CodeSystem/hcpcs?_summary=text&fhir={version}"), version=version)
    assert set(text) == {"resourceType", "id", "meta", "status", "content"}
    assert fhir(client.get("/fhir/CodeSystem/cpt?_summary=false")) == whole
    twice = fhir(client.get("/fhir/CodeSystem/cpt?_elements=url&_elements=count"))
    assert twice["url"] == whole["url"] and twice["count"] == whole["count"] and "concept" not in twice
    assert fhir(client.get("/fhir/CodeSystem/hcpcs?_elements=concept"))["concept"] == \
        fhir(client.get("/fhir/CodeSystem/hcpcs"))["concept"]


def test_summary_count_searches_only_count(client):
    body = fhir(client.get("/fhir/CodeSystem?_summary=count"))
    assert body["total"] == 3 and "entry" not in body
    entries = fhir(client.get(f"/fhir/CodeSystem?url={CPT}&_summary=true"))["entry"]
    assert [e["resource"]["meta"]["tag"] for e in entries] == [[SUBSETTED]] and "concept" not in entries[0]["resource"]


@pytest.mark.parametrize("query, named", [("_summary=count", "_summary"), ("_summary=maybe", "_summary"),
                                          ("_elements=url,$x", "_elements"), ("_elements=", "_elements"),
                                          ("_summary=true&_elements=url", "_elements"),
                                          ("_summary=true&_summary=false", "_summary")])
def test_a_bad_subset_is_a_400_naming_it(client, query, named):
    body = fhir(client.get(f"/fhir/CodeSystem/cpt?{query}"), 400)
    assert body["issue"][0]["expression"] == [named] and named in body["issue"][0]["details"]["text"]


def test_search_by_url_is_a_searchset_of_one(client):
    body = fhir(client.get(f"/fhir/CodeSystem?url={HCPCS}"))
    assert body["type"] == "searchset" and body["total"] == 1
    assert body["entry"][0]["resource"]["url"] == HCPCS and body["entry"][0]["fullUrl"].endswith("/CodeSystem/hcpcs")
    assert fhir(client.get("/fhir/CodeSystem?url=http://example.org/none"))["total"] == 0
    assert fhir(client.get(f"/fhir/CodeSystem?url={ICD}&version=2019"))["total"] == 0
    assert fhir(client.get("/fhir/CodeSystem"))["total"] == 3


@pytest.mark.parametrize(("method", "url", "status", "issue"), [
    ("GET", "/fhir/CodeSystem/modifier", 404, "not-found"),  # the modifier list is not a FHIR code system
    ("GET", "/fhir/Patient/1", 404, "not-found"),
    ("GET", "/fhir", 404, "not-found"),
    ("POST", "/fhir/metadata", 405, "not-supported"),
    ("DELETE", "/fhir/CodeSystem/icd10cm", 405, "not-supported"),
    ("PUT", "/fhir/CodeSystem/$lookup", 405, "not-supported"),
    ("GET", "/fhir/CodeSystem?name=ICD", 400, "not-supported"),
    ("GET", "/fhir/metadata?mode=everything", 400, "invalid"),
    ("GET", "/fhir/metadata?fhir=dstu2", 400, "not-supported"),
    ("GET", f"/fhir/CodeSystem/$lookup?system={ICD}&code=G35&code=G36", 400, "invalid"),
    ("GET", f"/fhir/CodeSystem/$lookup?system={ICD}&coding={ICD}|G35&code=G35", 400, "invalid"),
    ("GET", "/fhir/CodeSystem/$validate-code?code=G35", 400, "invalid"),
    ("GET", f"/fhir/CodeSystem/$subsumes?system={ICD}&codeA=G35", 400, "invalid"),
])
def test_failures_are_operation_outcomes(client, method, url, status, issue):
    body = fhir(client.open(url, method=method, headers={"Accept": "text/html"}), status)
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == issue
    assert body["issue"][0]["details"]["text"]


def test_a_wrong_method_names_the_allowed_ones(client):
    response = client.delete("/fhir/CodeSystem/icd10cm")
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert client.put("/fhir/CodeSystem/$lookup").headers["Allow"] == "GET, POST"


def test_a_body_of_another_type_is_415(client):
    body = fhir(client.post("/fhir/CodeSystem/$lookup", data="<Parameters/>", content_type="application/fhir+xml"), 415)
    assert "application/fhir+xml" in body["issue"][0]["details"]["text"]


def test_lookup_is_the_same_by_get_form_and_parameters(client):
    query = f"system={ICD}&code=G35.A&property=parent"
    by_get = fhir(client.get(f"/fhir/CodeSystem/$lookup?{query}"))
    by_form = fhir(client.post("/fhir/CodeSystem/$lookup", data={"system": ICD, "code": "G35.A", "property": "parent"}))
    by_resource = fhir(client.post("/fhir/CodeSystem/$lookup", json={"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": ICD, "code": "G35.A"}},
        {"name": "property", "valueCode": "parent"}]}))
    assert by_get == by_form == by_resource
    parent = [{"name": "code", "valueCode": "parent"}, {"name": "value", "valueCode": "G35"}]
    assert {"name": "property", "part": parent} in by_get["parameter"]


def test_only_json_is_served(client):
    assert fhir(client.get("/fhir/metadata?_format=xml"), 406)["issue"][0]["code"] == "not-supported"
    assert fhir(client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406)
    assert fhir(client.get("/fhir/metadata?_format=json"))["resourceType"] == "CapabilityStatement"
    assert fhir(client.get("/fhir/metadata", headers={"Accept": "application/fhir+json; fhirVersion=4.3"}),
                version="r4b")["fhirVersion"] == "4.3.0"


def test_instance_operations_take_the_system_of_the_url(client):
    lookup = fhir(client.get("/fhir/CodeSystem/icd10cm/$lookup?code=G35&property=notSelectable"))
    assert {"name": "system", "valueUri": ICD} in lookup["parameter"]
    assert fhir(client.get("/fhir/CodeSystem/hcpcs/$validate-code?code=XU"))["parameter"][0] == {
        "name": "result", "valueBoolean": True}
    assert fhir(client.post("/fhir/CodeSystem/icd10cm/$subsumes", data={"codeA": "G35", "codeB": "G35.D"}))[
        "parameter"] == [{"name": "outcome", "valueCode": "subsumes"}]
    other = fhir(client.get(f"/fhir/CodeSystem/cpt/$lookup?system={ICD}&code=G35"), 400)
    assert other["issue"][0]["expression"] == ["system"]
    assert fhir(client.get("/fhir/CodeSystem/cpt/$expand"), 404)["issue"][0]["code"] == "not-found"
    assert fhir(client.get("/fhir/CodeSystem/modifier/$lookup?code=59"), 404)["issue"][0]["code"] == "not-found"


def test_versions_names_the_fhir_versions_served(client):
    body = fhir(client.get("/fhir/$versions"))
    assert body["parameter"] == [{"name": "version", "valueCode": "4.3"}, {"name": "version", "valueCode": "5.0"},
                                 {"name": "default", "valueCode": "5.0"}]
    assert fhir(client.post("/fhir/$versions?fhir=r4b"), version="r4b") == body


def test_a_body_over_the_size_limit_is_an_operation_outcome(data_dir):
    # the body limit refuses before any view runs, whatever the framing; under /fhir/ it still answers FHIR
    small = create_app({"MEDCODE_DATA": str(data_dir), "MAX_CONTENT_LENGTH": 200}).test_client()
    body = b'{"resourceType": "Parameters", "parameter": [' + b" " * 500 + b"]}"
    for headers in ({}, {"Transfer-Encoding": "chunked"}):
        response = small.post("/fhir/CodeSystem/$lookup", data=body, content_type="application/fhir+json",
                              headers=headers)
        issue = fhir(response, 413)["issue"][0]
        assert issue["code"] == "too-costly" and "request-size limit" in issue["details"]["text"]
        assert response.headers["Connection"] == "close" and response.headers["X-Content-Type-Options"] == "nosniff"
    plain = small.post("/sparql", data={"query": "ASK {}", "pad": "x" * 300})
    assert plain.status_code == 413 and plain.content_type.startswith("text/plain")


def _issue(response, status: int) -> dict:
    body = fhir(response, status)
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


@pytest.mark.parametrize("url, named", [
    (f"/fhir/CodeSystem/$lookup?system={ICD}&code=G35&code=G36", "code"),
    (f"/fhir/CodeSystem/$lookup?coding={ICD}|G35&code=G35", "coding"),
    (f"/fhir/CodeSystem/$lookup?system={ICD}&coding=G35|", "coding"),
    (f"/fhir/CodeSystem/$validate-code?url={ICD}&code=G35&abstract=maybe", "abstract"),
    (f"/fhir/CodeSystem/$subsumes?codingA={ICD}|G35&codingB={CPT}|62362", "codingB"),
    (f"/fhir/ValueSet/$expand?url={ICD}?fhir_vs&count=many", "count"),
    (f"/fhir/ValueSet/$validate-code?url={ICD}?fhir_vs&code=G35&code=G36", "code"),
    ("/fhir/ConceptMap/$translate", "system"),
    (f"/fhir/ConceptMap/$translate?system={CPT}&code=62362&code=62367", "code"),
    ("/fhir/CodeSystem?url=a&url=b", "url"),
    ("/fhir/metadata?mode=full&mode=terminology", "mode"),
])
def test_every_bad_parameter_is_named_in_the_issue_expression(client, url, named):
    # FHIR's OperationOutcome.issue.expression names the parameter at fault, on every 400 path
    assert _issue(client.get(url), 400)["expression"] == [named]


def test_a_bad_parameters_body_names_where_it_is_wrong(client):
    body = {"resourceType": "Parameters", "parameter": [{"name": "code", "valueCode": "G35"}, {"valueUri": ICD}]}
    found = _issue(client.post("/fhir/CodeSystem/$lookup", json=body), 400)
    assert found["expression"] == ["Parameters.parameter[1]"]


@pytest.mark.parametrize("name, values", [("_format", ("json", "json")), ("fhir", ("r4b", "r5"))])
def test_a_repeated_format_or_version_is_a_400_naming_it(client, name, values):
    query = "&".join(f"{name}={value}" for value in values)
    found = _issue(client.get(f"/fhir/CodeSystem/$lookup?system={ICD}&code=G35&{query}"), 400)
    assert found["expression"] == [name] and name in found["details"]["text"]


@pytest.mark.parametrize("how", ["accept", "_format"])
def test_a_fhir_version_not_served_is_a_406_and_a_served_one_is_answered_in_it(client, how):
    # the CapabilityStatement declares 5.0.0 or 4.3.0; R4 (4.0) is not served, so it is refused, never
    # answered as 4.3
    declared = {fhir(client.get(f"/fhir/metadata?fhir={v}"), version=v)["fhirVersion"] for v in ("r5", "r4b")}
    assert declared == {"5.0.0", "4.3.0"}

    def ask(version: str):
        mime = f"application/fhir+json; fhirVersion={version}"
        if how == "accept":
            return client.get(f"/fhir/CodeSystem/$lookup?system={ICD}&code=G35", headers={"Accept": mime})
        return client.get("/fhir/CodeSystem/$lookup", query_string={"system": ICD, "code": "G35", "_format": mime})

    assert "4.0" in _issue(ask("4.0"), 406)["details"]["text"]
    assert fhir(ask("4.3"), version="r4b")["resourceType"] == "Parameters"
    assert fhir(ask("5.0"))["resourceType"] == "Parameters"


@pytest.mark.parametrize("code", ["G35\u0000", "G35\u0001", "G\u001f35"])
def test_a_code_with_a_control_character_is_a_400_not_the_code_without_it(client, code):
    found = _issue(client.get("/fhir/CodeSystem/$lookup", query_string={"system": ICD, "code": code}), 400)
    assert found["expression"] == ["code"] and "control character" in found["details"]["text"]
    coding = {"system": ICD, "code": code}
    body = {"resourceType": "Parameters", "parameter": [{"name": "coding", "valueCoding": coding}]}
    assert _issue(client.post("/fhir/CodeSystem/$validate-code", json=body), 400)["expression"] == ["coding"]
