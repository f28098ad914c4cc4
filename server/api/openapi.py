"""OpenAPI 3.1 description of the named-query API, generated from the queries themselves."""

from __future__ import annotations

from typing import Any

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
    return {"openapi": "3.1.0",
            "info": {"title": "medcode-kg named queries", "version": "1",
                     "description": "Each named SPARQL query in queries/ as a GET operation; parameters are bound "
                                    "as RDF terms."},
            "servers": [{"url": server}], "paths": paths}
