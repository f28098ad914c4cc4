"""OpenAPI 3.1 description of the named-query API, generated from the queries themselves, and of POST /check."""

from __future__ import annotations

from typing import Any

from ..check.claim import MAX_DIAGNOSES, MAX_LINES, MAX_MODIFIERS, MAX_UNITS, MODIFIER, PROCEDURE_CODE, SETTINGS
from ..check.rules import SEVERITIES
from ..named_queries import NamedQuery

SCHEMAS = {"string": {"type": "string"}, "integer": {"type": "integer"}, "iri": {"type": "string", "format": "iri"},
           "date": {"type": "string", "format": "date"}, "boolean": {"type": "boolean"}}


def openapi_document(queries: dict[str, NamedQuery], server: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for name, q in queries.items():
        parameters = [{
            "name": p.name, "in": "query", "required": False, "description": p.description or p.name,
            "schema": {**SCHEMAS[p.type], **({"default": p.default} if p.default is not None else {})},
        } for p in q.params]
        parameters.append({"name": "format", "in": "query", "required": False,
                           "schema": {"type": "string", "enum": ["json", "xml", "csv", "tsv", "html"]}})
        paths[f"/api/{name}"] = {"get": {
            "operationId": name.replace("-", "_"), "summary": q.title, "description": q.description,
            "parameters": parameters,
            "responses": {
                "200": {"description": "SPARQL results", "content": {
                    "application/sparql-results+json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}},
                    "text/tab-separated-values": {"schema": {"type": "string"}},
                    "application/sparql-results+xml": {"schema": {"type": "string"}},
                    "text/html": {"schema": {"type": "string"}}}},
                "400": {"description": "A parameter does not fit its type", "content": {
                    "text/plain": {"schema": {"type": "string"}}}},
                "406": {"description": "No acceptable format", "content": {
                    "text/plain": {"schema": {"type": "string"}}}},
                "503": {"description": "Stopped at the time limit", "content": {
                    "text/plain": {"schema": {"type": "string"}}}},
            }}}
    paths["/check"] = CHECK_OPERATION
    return {"openapi": "3.1.0",
            "info": {"title": "medcode-kg named queries", "version": "1",
                     "description": "Each named SPARQL query in queries/ as a GET operation; parameters are bound "
                                    "as RDF terms. POST /check checks a claim against the check queries."},
            "servers": [{"url": server}], "paths": paths,
            "components": {"schemas": {"Claim": CLAIM_SCHEMA, "CheckResult": RESULT_SCHEMA}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}},
                                                    "application/json": {"schema": {"type": "object"}}}}


LINE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["code"],
    "properties": {
        "code": {"type": "string", "pattern": PROCEDURE_CODE.pattern, "description": "A CPT or HCPCS Level II code"},
        "modifiers": {"type": "array", "maxItems": MAX_MODIFIERS, "default": [],
                      "items": {"type": "string", "pattern": MODIFIER.pattern}},
        "units": {"type": "integer", "minimum": 1, "maximum": MAX_UNITS, "default": 1},
        "diagnoses": {"type": "array", "maxItems": MAX_DIAGNOSES, "default": [],
                      "description": "ICD-10-CM codes the line points to, with or without the dot (G89.3)",
                      "items": {"type": "string", "pattern": r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"}},
    }}
CLAIM_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["date_of_service", "lines"],
    "properties": {
        "date_of_service": {"type": "string", "format": "date"},
        "setting": {"type": "string", "enum": list(SETTINGS), "default": SETTINGS[0],
                    "description": "Which NCCI tables apply: practitioner or outpatient hospital"},
        "lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES, "items": LINE_SCHEMA},
    }}
FINDING_SCHEMA = {
    "type": "object", "required": ["rule", "severity", "lines", "message", "edit", "source", "instead"],
    "properties": {
        "rule": {"type": "string", "description": "A stable rule id (its check query's check: header)"},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "lines": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "message": {"type": "string"},
        "edit": {"type": ["string", "null"], "format": "iri"},
        "source": {"type": ["string", "null"], "format": "iri"},
        "instead": {"type": ["string", "null"]},
    }}
RESULT_SCHEMA = {
    "type": "object", "required": ["clean", "findings"],
    "properties": {"clean": {"type": "boolean", "description": "No finding denies or warns"},
                   "findings": {"type": "array", "items": FINDING_SCHEMA}}}
CHECK_OPERATION = {"post": {
    "operationId": "check_claim", "summary": "Check a claim",
    "description": "May these lines be billed together on this date, and why not: one finding per problem, from "
                   "the check queries in queries/ (code-pair edits, MUEs, code and modifier validity, diagnoses, "
                   "report-instead advice), in a stable order.",
    "requestBody": {"required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Claim"}}}},
    "responses": {
        "200": {"description": "The findings", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CheckResult"}}}},
        "400": _text("A field that is wrong, named by its path (lines[2].units)"),
        "413": _text(f"More than {MAX_LINES} lines, or a body over the request-size limit"),
        "415": _text("A body that is not JSON"),
        "503": _text("A check query was stopped at the time limit"),
    }}}
