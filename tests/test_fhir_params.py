"""The one reader of FHIR operation input: the same parameters from a query string, a form and a
Parameters resource, typed values, and a 400 `invalid` naming the parameter for bad input."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from server.fhir.params import Coding, read_input
from server.fhir.resources import FHIRError

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.fixture(scope="module")
def app() -> Flask:
    return Flask(__name__)


def parameters(*entries: dict) -> str:
    return json.dumps({"resourceType": "Parameters", "parameter": list(entries)})


def given(app: Flask, method: str = "GET", query: str = "", **options):
    with app.test_request_context(f"/fhir/CodeSystem/$lookup?{query}", method=method, **options):
        return read_input()


def error(app: Flask, *args, **options) -> FHIRError:
    with pytest.raises(FHIRError) as caught:
        reader = given(app, *args, **options)
        reader.text("code"), reader.boolean("flag"), reader.integer("count"), reader.coding("coding")
    return caught.value


def test_the_three_ways_give_the_same_values(app):
    by_get = given(app, query=f"system={ICD}&code=G35&property=parent&property=child")
    by_form = given(app, "POST", data={"system": ICD, "code": " G35 ", "property": ["parent", "child"]})
    by_resource = given(app, "POST", content_type="application/fhir+json", data=parameters(
        {"name": "system", "valueUri": ICD}, {"name": "code", "valueCode": "G35"},
        {"name": "property", "valueCode": "parent"}, {"name": "property", "valueCode": "child"}))
    for reader in (by_get, by_form, by_resource):
        assert (reader.text("system"), reader.text("code")) == (ICD, "G35")
        assert reader.texts("property") == ["parent", "child"]
        assert reader.text("version") is None


def test_r5_names_are_read_after_r4_names(app):
    reader = given(app, query="sourceCode=62362&code=E0783")
    assert reader.text("code", "sourceCode") == "E0783"
    assert given(app, query="sourceCode=62362").text("code", "sourceCode") == "62362"


def test_typed_values(app):
    reader = given(app, "POST", content_type="application/json", data=parameters(
        {"name": "activeOnly", "valueBoolean": False}, {"name": "count", "valueInteger": 10},
        {"name": "coding", "valueCoding": {"system": ICD, "code": "G35", "display": "Multiple sclerosis"}},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [{"system": ICD, "code": "G89.3"}],
                                                             "text": "pain"}}))
    assert reader.boolean("activeOnly") is False and reader.integer("count") == 10
    assert reader.coding("coding") == Coding(ICD, "G35", None, "Multiple sclerosis")
    assert reader.codeable_concept("codeableConcept") == [Coding(ICD, "G89.3")]
    text = given(app, query=f"activeOnly=TRUE&count=3&coding={ICD}|G35")
    assert text.boolean("activeOnly") is True and text.integer("count") == 3
    assert text.coding("coding") == Coding(ICD, "G35")


@pytest.mark.parametrize(("options", "status", "names"), [
    ({"query": "code=G35&code=G36"}, 400, "'code'"),
    ({"query": "flag=maybe"}, 400, "'flag'"),
    ({"query": "count=-1"}, 400, "'count'"),
    ({"query": "count=--1"}, 400, "'count'"),
    ({"query": "coding=|G35"}, 400, "'coding'"),
    ({"method": "POST", "content_type": "application/fhir+json", "data": "{not json"}, 400, "not JSON"),
    ({"method": "POST", "content_type": "application/fhir+json", "data": "[" * 100_000}, 400, "not JSON"),
    ({"method": "POST", "content_type": "application/fhir+json", "data": '{"resourceType": "Patient"}'},
     400, "Parameters resource"),
    ({"method": "POST", "content_type": "application/fhir+json",
      "data": parameters({"name": "code", "valueCoding": {"code": "G35"}})}, 400, "'code'"),
    ({"method": "POST", "content_type": "application/fhir+json",
      "data": parameters({"name": "count", "valueInteger": True})}, 400, "'count'"),
    ({"method": "POST", "content_type": "application/fhir+json",
      "data": parameters({"name": "coding", "valueCoding": {"system": 5, "code": "G35"}})}, 400, "'coding'"),
    ({"method": "POST", "content_type": "application/fhir+json",
      "data": parameters({"name": "code", "valueQuantity": {"value": 1}})}, 400, "'code'"),
    ({"method": "POST", "content_type": "application/fhir+json", "data": parameters({"valueCode": "G35"})},
     400, "parameter[0]"),
    ({"method": "POST", "content_type": "text/plain", "data": "code=G35"}, 415, "text/plain"),
])
def test_bad_input_is_an_error_naming_the_parameter(app, options, status, names):
    failure = error(app, **options)
    assert failure.status == status and names in str(failure)
    assert failure.issue == ("not-supported" if status == 415 else "invalid")


def test_each_once_refuses_any_repeat(app):
    with pytest.raises(FHIRError, match="once"):
        given(app, query="x=1&x=2").each_once()
    given(app, query="x=1&y=2").each_once()
