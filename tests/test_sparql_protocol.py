"""The SPARQL 1.1 Protocol at /sparql, edge by edge, through the Flask test client.

One test per protocol edge, with exact statuses, content types and bodies (in the style of
Oxigraph's server tests). The answers come from the real built snapshot: 95990 is
mc:notReportedWith 62367, 62368, 62369 and 62370, and all four of those triples are inferred.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import rdflib
from rdflib import Literal, Namespace, URIRef
from rdflib.namespace import RDF, SKOS, XSD

from server import create_app

MC = Namespace("https://w3id.org/medcode/ontology#")
CPT = "https://w3id.org/medcode/id/cpt/"
ASSERTED = "https://w3id.org/medcode/graph/asserted"
INFERRED = "https://w3id.org/medcode/graph/inferred"
DERIVATIONS = "https://w3id.org/medcode/graph/derivations"  # why each inferred triple holds (test_why.py)
OWL_RL = URIRef("http://www.w3.org/ns/entailment/OWL-RL")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
VOID = Namespace("http://rdfs.org/ns/void#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
SRX = "{http://www.w3.org/2005/sparql-results#}"

CODES = ["62367", "62368", "62369", "62370"]
EXPECTED = [CPT + code for code in CODES]
SELECT_Q = "SELECT ?c WHERE { cpt:95990 mc:notReportedWith ?c } ORDER BY ?c"
SELECT_NOTATION_Q = ("SELECT ?c ?n WHERE { cpt:95990 mc:notReportedWith ?c . ?c skos:notation ?n } "
                     "ORDER BY ?c")
ASK_TRUE = "ASK { cpt:95990 mc:notReportedWith cpt:62367 }"
ASK_FALSE = "ASK { cpt:95990 mc:notReportedWith cpt:96522 }"
CONSTRUCT_Q = "CONSTRUCT { cpt:95990 mc:notReportedWith ?c } WHERE { cpt:95990 mc:notReportedWith ?c }"
EXPECTED_TRIPLES = {(URIRef(CPT + "95990"), MC.notReportedWith, URIRef(iri)) for iri in EXPECTED}
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def app(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir), "QUERY_TIMEOUT": 3, "MAX_RESULTS": 1000,
                      "MAX_CONTENT_LENGTH": MAX_BODY})
    yield app
    app.extensions["medcode.store"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def get(client, query: str | None = None, accept: str | None = None, **params):
    args = dict(params)
    if query is not None:
        args["query"] = query
    headers = {"Accept": accept} if accept is not None else {}
    return client.get("/sparql", query_string=args, headers=headers)


def json_codes(response) -> list[str]:
    data = json.loads(response.get_data(as_text=True))
    assert data["head"]["vars"] == ["c"]
    return [row["c"]["value"] for row in data["results"]["bindings"]]


def text(response) -> str:
    return response.get_data(as_text=True)


def assert_select_json(response) -> None:
    assert response.status_code == 200, text(response)
    assert response.mimetype == "application/sparql-results+json"
    assert json_codes(response) == EXPECTED


def parse_graph(response, fmt: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=response.get_data(as_text=True), format=fmt)
    return graph


# --- the three ways of sending a query --------------------------------------------------------


def test_get_query(client):
    assert_select_json(get(client, SELECT_Q))


def test_post_form_query(client):
    assert_select_json(client.post("/sparql", data={"query": SELECT_Q}))


def test_post_direct_query(client):
    assert_select_json(client.post("/sparql", data=SELECT_Q.encode(), content_type="application/sparql-query"))


def test_post_direct_query_with_charset_parameter(client):
    response = client.post("/sparql", data=SELECT_Q.encode(),
                           content_type="application/sparql-query; charset=utf-8")
    assert_select_json(response)


def test_post_direct_query_non_ascii_utf8(client):
    query = 'SELECT ?x WHERE { BIND("Grüße ✓" AS ?x) }'
    response = client.post("/sparql", data=query.encode("utf-8"), content_type="application/sparql-query")
    assert response.status_code == 200
    data = json.loads(text(response))
    assert data["results"]["bindings"] == [{"x": {"type": "literal", "value": "Grüße ✓"}}]


# --- SELECT / ASK result formats ---------------------------------------------------------------


def test_select_json_terms(client):
    query = ("SELECT ?code ?label ?mue WHERE { BIND(cpt:96522 AS ?code) ?code skos:prefLabel ?label ; "
             "mc:mue ?mue }")
    response = get(client, query, accept="application/sparql-results+json")
    assert response.status_code == 200
    assert response.mimetype == "application/sparql-results+json"
    data = json.loads(text(response))
    assert data["head"]["vars"] == ["code", "label", "mue"]
    assert data["results"]["bindings"] == [{
        "code": {"type": "uri", "value": CPT + "96522"},
        "label": {"type": "literal", "xml:lang": "en",
                  "value": "Refilling and maintenance of implantable pump or reservoir for drug delivery, "
                           "systemic (eg, intravenous, intra-arterial)"},
        "mue": {"type": "literal", "datatype": str(XSD.integer), "value": "1"},
    }]


def test_select_json_unbound_variable_is_omitted(client):
    response = get(client, "SELECT ?c ?missing WHERE { cpt:95990 mc:notReportedWith ?c } ORDER BY ?c")
    data = json.loads(text(response))
    assert data["head"]["vars"] == ["c", "missing"]
    assert data["results"]["bindings"] == [{"c": {"type": "uri", "value": iri}} for iri in EXPECTED]


def test_select_xml(client):
    response = get(client, SELECT_NOTATION_Q, accept="application/sparql-results+xml")
    assert response.status_code == 200
    assert response.mimetype == "application/sparql-results+xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == SRX + "sparql"
    assert [v.get("name") for v in root.find(SRX + "head").findall(SRX + "variable")] == ["c", "n"]
    rows = []
    for result in root.find(SRX + "results").findall(SRX + "result"):
        bindings = {b.get("name"): b for b in result.findall(SRX + "binding")}
        assert set(bindings) == {"c", "n"}
        rows.append((bindings["c"].find(SRX + "uri").text, bindings["n"].find(SRX + "literal").text))
    assert rows == list(zip(EXPECTED, CODES, strict=False))


def test_select_csv(client):
    response = get(client, SELECT_NOTATION_Q, accept="text/csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    body = text(response)
    assert body.startswith("c,n\r\n")
    assert body.endswith("\r\n")
    lines = body.split("\r\n")
    assert lines[-1] == ""
    assert lines[:-1] == ["c,n"] + [f"{iri},{code}" for iri, code in zip(EXPECTED, CODES, strict=False)]
    assert list(csv.reader(io.StringIO(body))) == [["c", "n"]] + [[i, c] for i, c in zip(EXPECTED, CODES, strict=False)]


def test_select_tsv(client):
    response = get(client, SELECT_NOTATION_Q, accept="text/tab-separated-values")
    assert response.status_code == 200
    assert response.mimetype == "text/tab-separated-values"
    lines = text(response).splitlines()
    assert lines[0] == "?c\t?n"
    assert lines[1:] == [f'<{iri}>\t"{code}"' for iri, code in zip(EXPECTED, CODES, strict=False)]


def test_ask_true_json(client):
    response = get(client, ASK_TRUE, accept="application/sparql-results+json")
    assert response.status_code == 200
    assert response.mimetype == "application/sparql-results+json"
    assert json.loads(text(response))["boolean"] is True


def test_ask_false_json(client):
    response = get(client, ASK_FALSE, accept="application/sparql-results+json")
    assert response.status_code == 200
    assert json.loads(text(response))["boolean"] is False


@pytest.mark.parametrize(("query", "expected"), [(ASK_TRUE, "true"), (ASK_FALSE, "false")])
def test_ask_xml(client, query, expected):
    response = get(client, query, accept="application/sparql-results+xml")
    assert response.status_code == 200
    assert response.mimetype == "application/sparql-results+xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == SRX + "sparql"
    assert root.find(SRX + "boolean").text == expected
    assert root.find(SRX + "results") is None


# --- CONSTRUCT / DESCRIBE formats --------------------------------------------------------------


@pytest.mark.parametrize(("accept", "mimetype", "rdflib_format"), [
    ("text/turtle", "text/turtle", "turtle"),
    ("application/n-triples", "application/n-triples", "nt"),
    ("application/rdf+xml", "application/rdf+xml", "xml"),
    ("application/ld+json", "application/ld+json", "json-ld"),
])
def test_construct_graph_formats(client, accept, mimetype, rdflib_format):
    response = get(client, CONSTRUCT_Q, accept=accept)
    assert response.status_code == 200, text(response)
    assert response.mimetype == mimetype
    assert set(parse_graph(response, rdflib_format)) == EXPECTED_TRIPLES


@pytest.mark.parametrize(("accept", "mimetype", "rdflib_format"), [
    ("application/trig", "application/trig", "trig"),
    ("application/n-quads", "application/n-quads", "nquads"),
])
def test_construct_dataset_formats(client, accept, mimetype, rdflib_format):
    response = get(client, CONSTRUCT_Q, accept=accept)
    assert response.status_code == 200, text(response)
    assert response.mimetype == mimetype
    dataset = rdflib.Dataset()
    dataset.parse(data=text(response), format=rdflib_format)
    assert {(s, p, o) for s, p, o, _g in dataset.quads((None, None, None, None))} == EXPECTED_TRIPLES


def test_construct_ntriples_lines(client):
    response = get(client, CONSTRUCT_Q, accept="application/n-triples")
    lines = sorted(text(response).splitlines())
    assert lines == [f"<{CPT}95990> <{MC}notReportedWith> <{iri}> ." for iri in EXPECTED]


def test_describe_turtle(client):
    response = get(client, "DESCRIBE cpt:96522", accept="text/turtle")
    assert response.status_code == 200
    assert response.mimetype == "text/turtle"
    graph = parse_graph(response, "turtle")
    code = URIRef(CPT + "96522")
    assert (code, SKOS.notation, Literal("96522")) in graph
    assert (code, RDF.type, MC.CPTCode) in graph


def test_describe_jsonld(client):
    response = get(client, "DESCRIBE <https://w3id.org/medcode/id/cpt/96522>", accept="application/ld+json")
    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    graph = parse_graph(response, "json-ld")
    assert (URIRef(CPT + "96522"), SKOS.notation, Literal("96522")) in graph


# --- content negotiation -----------------------------------------------------------------------


def test_conneg_q_values(client):
    response = get(client, SELECT_Q, accept="application/sparql-results+xml;q=0.5, text/csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert text(response) == "c\r\n" + "".join(iri + "\r\n" for iri in EXPECTED)


def test_conneg_q_values_prefer_higher_even_if_listed_last(client):
    response = get(client, SELECT_Q, accept="text/csv;q=0.2, application/sparql-results+xml;q=0.9")
    assert response.status_code == 200
    assert response.mimetype == "application/sparql-results+xml"


def test_conneg_q_zero_excludes(client):
    response = get(client, SELECT_Q, accept="application/sparql-results+json;q=0, */*;q=0.1")
    assert response.status_code == 200
    assert response.mimetype != "application/sparql-results+json"


def test_conneg_wildcard_select_is_json(client):
    assert_select_json(get(client, SELECT_Q, accept="*/*"))


def test_conneg_no_accept_select_is_json(client):
    assert_select_json(client.get("/sparql", query_string={"query": SELECT_Q}))


def test_conneg_wildcard_construct_is_turtle(client):
    response = get(client, CONSTRUCT_Q, accept="*/*")
    assert response.status_code == 200
    assert response.mimetype == "text/turtle"
    assert set(parse_graph(response, "turtle")) == EXPECTED_TRIPLES


def test_conneg_format_parameter_beats_accept(client):
    response = get(client, SELECT_Q, accept="application/sparql-results+xml", format="csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert text(response).split("\r\n")[0] == "c"


def test_conneg_format_parameter_for_construct(client):
    response = get(client, CONSTRUCT_Q, accept="text/turtle", format="ntriples")
    assert response.status_code == 200
    assert response.mimetype == "application/n-triples"


def test_conneg_unknown_format_is_406(client):
    response = get(client, SELECT_Q, format="yaml")
    assert response.status_code == 406
    assert "yaml" in text(response)
    assert "json" in text(response)


def test_conneg_graph_format_for_select_is_406(client):
    response = get(client, SELECT_Q, format="turtle")
    assert response.status_code == 406


def test_conneg_unacceptable_accept_is_406_naming_acceptable_type(client):
    response = get(client, SELECT_Q, accept="image/png")
    assert response.status_code == 406
    assert "application/sparql-results+json" in text(response)


def test_conneg_unacceptable_accept_for_construct_names_graph_types(client):
    response = get(client, CONSTRUCT_Q, accept="image/png")
    assert response.status_code == 406
    assert "text/turtle" in text(response)


def test_conneg_malformed_q_is_400(client):
    response = get(client, SELECT_Q, accept="text/csv;q=abc")
    assert response.status_code == 400
    assert "abc" in text(response)


def test_conneg_malformed_media_range_is_400(client):
    response = get(client, SELECT_Q, accept="nonsense")
    assert response.status_code == 400


def test_vary_accept_on_select(client):
    response = get(client, SELECT_Q)
    assert "Accept" in [v.strip() for v in response.headers.get("Vary", "").split(",")]


def test_vary_accept_on_construct(client):
    response = get(client, CONSTRUCT_Q)
    assert "Accept" in [v.strip() for v in response.headers.get("Vary", "").split(",")]


def test_vary_accept_on_service_description(client):
    response = client.get("/sparql", headers={"Accept": "text/turtle"})
    assert "Accept" in [v.strip() for v in response.headers.get("Vary", "").split(",")]


# --- no query: service description or the query page ----------------------------------------


def test_service_description_turtle(client, app):
    response = client.get("/sparql", headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    assert response.mimetype == "text/turtle"
    graph = parse_graph(response, "turtle")
    services = list(graph.subjects(RDF.type, SD.Service))
    assert len(services) == 1
    service = services[0]
    assert (service, SD.endpoint, service) in graph
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in graph
    assert (service, SD.defaultEntailmentRegime, OWL_RL) in graph
    result_formats = set(graph.objects(service, SD.resultFormat))
    assert {FORMATS.SPARQL_Results_JSON, FORMATS.SPARQL_Results_XML, FORMATS.SPARQL_Results_CSV,
            FORMATS.SPARQL_Results_TSV, FORMATS.Turtle, FORMATS["N-Triples"], FORMATS.RDF_XML,
            FORMATS["JSON-LD"]} <= result_formats

    meta = app.extensions["medcode.store"].meta
    dataset = graph.value(service, SD.defaultDataset)
    assert dataset is not None
    counts = {}
    for named in graph.objects(dataset, SD.namedGraph):
        name = graph.value(named, SD.name)
        counts[str(name)] = graph.value(graph.value(named, SD.graph), VOID.triples).toPython()
    assert counts == {g: n for g, n in meta["triples"].items() if g in {ASSERTED, INFERRED, DERIVATIONS}}
    assert set(counts) == {ASSERTED, INFERRED, DERIVATIONS}  # not the dated states' graphs (as_of)
    assert all(count > 0 for count in counts.values())
    default_graph = graph.value(dataset, SD.defaultGraph)
    # the default graph is the asserted and inferred graphs' union; the derivations graph is only named
    assert graph.value(default_graph, VOID.triples).toPython() == counts[ASSERTED] + counts[INFERRED]


def test_service_description_jsonld(client):
    response = client.get("/sparql", headers={"Accept": "application/ld+json"})
    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    graph = parse_graph(response, "json-ld")
    assert len(list(graph.subjects(RDF.type, SD.Service))) == 1


def test_no_query_browser_gets_html_page(client):
    response = client.get("/sparql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "<html" in text(response).lower()


def test_no_query_plain_text_html_accept(client):
    response = client.get("/sparql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.mimetype == "text/html"


# --- protocol errors: 4xx with a message, never a 500 ----------------------------------------


def test_syntax_error_is_400_with_position(client):
    response = get(client, "SELECT * WHERE {")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    body = text(response)
    assert "syntax error" in body.lower()
    assert "1:" in body


def test_syntax_error_on_line_two_reports_line_two(client):
    response = get(client, "SELECT *\nWHERE { ?s ?p }")
    assert response.status_code == 400
    assert "2:" in text(response)


def test_syntax_error_json_when_json_asked(client):
    response = get(client, "SELECT * WHERE {", accept="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    data = json.loads(text(response))
    assert data["status"] == 400
    assert "1:" in data["error"]


def test_post_without_query_is_400(client):
    response = client.post("/sparql", data={"default-graph-uri": ASSERTED})
    assert response.status_code == 400
    assert "query" in text(response)


def test_post_empty_direct_body_is_400(client):
    response = client.post("/sparql", data=b"", content_type="application/sparql-query")
    assert response.status_code == 400


def test_query_and_update_is_400(client):
    response = client.post("/sparql", data={"query": SELECT_Q, "update": "CLEAR ALL"})
    assert response.status_code == 400


def test_update_parameter_is_403(client):
    response = client.post("/sparql", data={"update": "INSERT DATA { <http://a/s> <http://a/p> <http://a/o> }"})
    assert response.status_code == 403
    assert "read-only" in text(response)


def test_update_parameter_on_get_is_403(client):
    response = client.get("/sparql", query_string={"update": "CLEAR ALL"})
    assert response.status_code == 403


def test_sparql_update_content_type_is_403(client):
    response = client.post("/sparql", data=b"CLEAR ALL", content_type="application/sparql-update")
    assert response.status_code == 403
    assert "read-only" in text(response)


def test_unsupported_content_type_is_415(client):
    response = client.post("/sparql", data=SELECT_Q.encode(), content_type="text/plain")
    assert response.status_code == 415
    assert "text/plain" in text(response)


def test_post_without_content_type_is_400(client):
    response = client.post("/sparql", data=SELECT_Q.encode())
    assert response.request.headers.get("Content-Type") is None
    assert response.status_code == 400
    assert "Content-Type" in text(response)


def test_repeated_query_parameter_is_400(client):
    response = client.get("/sparql?query=ASK%7B%7D&query=ASK%7B%7D")
    assert response.status_code == 400
    assert "more than once" in text(response)


def test_query_in_url_and_direct_body_is_400(client):
    response = client.post("/sparql?query=ASK%7B%7D", data=b"ASK {}", content_type="application/sparql-query")
    assert response.status_code == 400


def test_query_in_url_and_form_body_is_400(client):
    response = client.post("/sparql?query=ASK%7B%7D", data={"query": "ASK {}"})
    assert response.status_code == 400


def test_invalid_utf8_body_is_400(client):
    response = client.post("/sparql", data=b"ASK { \xff\xfe }", content_type="application/sparql-query")
    assert response.status_code == 400
    assert "UTF-8" in text(response)


def test_direct_body_over_limit_is_413(client):
    body = ("ASK {} #" + "x" * MAX_BODY).encode()
    response = client.post("/sparql", data=body, content_type="application/sparql-query")
    assert response.status_code == 413
    assert "limit" in text(response)


def test_form_body_over_limit_is_413(client):
    response = client.post("/sparql", data={"query": "ASK {} #" + "x" * MAX_BODY})
    assert response.status_code == 413


def test_body_just_under_limit_is_accepted(client):
    body = "ASK { cpt:95990 mc:notReportedWith cpt:62367 } #"
    body = (body + "x" * (MAX_BODY - 1024 - len(body))).encode()
    response = client.post("/sparql", data=body, content_type="application/sparql-query")
    assert response.status_code == 200
    assert json.loads(text(response))["boolean"] is True


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client, method):
    response = client.open("/sparql", method=method, data=b"x")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


# --- inference / dataset parameters -------------------------------------------------------------


def test_inference_asserted_has_no_inferred_answers(client):
    response = get(client, SELECT_Q, inference="asserted")
    assert response.status_code == 200
    assert json_codes(response) == []


def test_inference_inferred_has_all_four(client):
    response = get(client, SELECT_Q, inference="inferred")
    assert response.status_code == 200
    assert json_codes(response) == EXPECTED


def test_inference_all_has_all_four(client):
    response = get(client, SELECT_Q, inference="all")
    assert response.status_code == 200
    assert json_codes(response) == EXPECTED


def test_inference_asserted_still_has_asserted_facts(client):
    response = get(client, 'ASK { cpt:96522 skos:notation "96522" }', inference="asserted")
    assert json.loads(text(response))["boolean"] is True


def test_inference_bad_value_is_400(client):
    response = get(client, SELECT_Q, inference="maybe")
    assert response.status_code == 400
    assert "asserted" in text(response)


def test_default_graph_uri_asserted_like_inference_asserted(client):
    response = get(client, SELECT_Q, **{"default-graph-uri": ASSERTED})
    assert response.status_code == 200
    assert json_codes(response) == []
    assert json.loads(text(get(client, 'ASK { cpt:96522 skos:notation "96522" }',
                               **{"default-graph-uri": ASSERTED})))["boolean"] is True


def test_default_graph_uri_inferred(client):
    response = get(client, SELECT_Q, **{"default-graph-uri": INFERRED})
    assert response.status_code == 200
    assert json_codes(response) == EXPECTED


def test_default_graph_uri_non_local_is_400(client):
    response = get(client, SELECT_Q, **{"default-graph-uri": "http://example.org/remote"})
    assert response.status_code == 400
    assert "http://example.org/remote" in text(response)


def test_named_graph_uri_non_local_is_400(client):
    response = get(client, "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } } LIMIT 1",
                   **{"named-graph-uri": "http://example.org/remote"})
    assert response.status_code == 400


def test_named_graph_uri_restricts_graph_patterns(client):
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { cpt:95990 ?p ?o } }"
    response = get(client, query, **{"named-graph-uri": INFERRED})
    assert response.status_code == 200
    data = json.loads(text(response))
    assert [row["g"]["value"] for row in data["results"]["bindings"]] == [INFERRED]


# --- refusals: nothing leaves the process, nothing is written -----------------------------------


def test_service_is_refused(client):
    response = get(client, "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }")
    assert response.status_code == 400
    assert "outbound" in text(response)


def test_service_lowercase_is_refused(client):
    response = get(client, "SELECT * WHERE { service\n<http://example.org/sparql> { ?s ?p ?o } }")
    assert response.status_code == 400
    assert "outbound" in text(response)


def test_service_silent_with_prefixed_name_is_refused(client):
    query = "PREFIX ex: <http://example.org/> SELECT * WHERE { SERVICE SILENT ex:sparql { ?s ?p ?o } }"
    response = get(client, query)
    assert response.status_code == 400
    assert "outbound" in text(response)


def test_service_with_empty_prefix_name_is_refused(client):
    # `SERVICE :sparql` is a SERVICE call to a prefixed name with the empty prefix
    query = "PREFIX : <http://example.invalid/> SELECT * WHERE { SERVICE :sparql { ?s ?p ?o } }"
    response = get(client, query)
    assert response.status_code == 400, text(response)
    assert "outbound" in text(response)


def test_load_in_query_is_refused(client):
    response = get(client, "LOAD <http://example.org/x.ttl>")
    assert response.status_code in (400, 403)
    assert "read-only" in text(response)


def test_insert_data_in_query_is_refused(client):
    response = client.post("/sparql", data={"query": "INSERT DATA { <http://a/s> <http://a/p> <http://a/o> }"})
    assert response.status_code in (400, 403)
    assert "read-only" in text(response)
    # and nothing was written
    assert json.loads(text(get(client, "ASK { <http://a/s> <http://a/p> <http://a/o> }")))["boolean"] is False


def test_from_remote_graph_is_refused(client):
    response = get(client, "SELECT * FROM <http://example.org/remote> WHERE { ?s ?p ?o }")
    assert response.status_code == 400
    assert "http://example.org/remote" in text(response)


def test_from_named_remote_graph_is_refused(client):
    response = get(client, "SELECT * FROM NAMED <http://example.org/remote> WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert response.status_code == 400


def test_from_local_graph_defines_the_dataset(client):
    asserted = get(client, f"SELECT ?c FROM <{ASSERTED}> WHERE {{ cpt:95990 mc:notReportedWith ?c }} ORDER BY ?c")
    inferred = get(client, f"SELECT ?c FROM <{INFERRED}> WHERE {{ cpt:95990 mc:notReportedWith ?c }} ORDER BY ?c")
    assert asserted.status_code == inferred.status_code == 200
    assert json_codes(asserted) == []
    assert json_codes(inferred) == EXPECTED


def test_from_local_graph_as_prefixed_name_defines_the_dataset(client):
    query = ("PREFIX g: <https://w3id.org/medcode/graph/> "
             "SELECT ?c FROM g:asserted WHERE { cpt:95990 mc:notReportedWith ?c } ORDER BY ?c")
    response = get(client, query)
    assert response.status_code == 200
    assert json_codes(response) == []  # the asserted graph alone has none of the inferred answers


def test_from_remote_graph_as_prefixed_name_is_refused(client):
    query = "PREFIX r: <http://example.org/> SELECT * FROM r:remote WHERE { ?s ?p ?o } LIMIT 3"
    response = get(client, query)
    assert response.status_code == 400, text(response)
    assert "http://example.org/remote" in text(response)


def test_service_inside_string_literal_is_not_refused(client):
    response = get(client, 'SELECT ?x WHERE { BIND("SERVICE LOAD FROM <http://example.org/>" AS ?x) }')
    assert response.status_code == 200
    data = json.loads(text(response))
    assert data["results"]["bindings"] == [
        {"x": {"type": "literal", "value": "SERVICE LOAD FROM <http://example.org/>"}}]


def test_service_inside_comment_is_not_refused(client):
    response = get(client, "# SERVICE <http://example.org/sparql>\n" + ASK_TRUE)
    assert response.status_code == 200
    assert json.loads(text(response))["boolean"] is True


# --- result-size limit: an error, never a truncated answer -------------------------------------


def test_select_over_result_limit_is_4xx(client):
    response = get(client, "SELECT * WHERE { ?s ?p ?o } LIMIT 2000")
    assert 400 <= response.status_code < 500
    body = text(response)
    assert "limit" in body
    assert "1,000" in body or "1000" in body


def test_construct_over_result_limit_is_4xx(client):
    response = get(client, "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 2000")
    assert 400 <= response.status_code < 500
    assert "limit" in text(response)


def test_select_at_result_limit_is_complete(client):
    response = get(client, "SELECT * WHERE { ?s ?p ?o } LIMIT 1000")
    assert response.status_code == 200
    assert len(json.loads(text(response))["results"]["bindings"]) == 1000


def test_select_limit_10_has_exactly_10(client):
    response = get(client, "SELECT * WHERE { ?s ?p ?o } LIMIT 10")
    assert response.status_code == 200
    data = json.loads(text(response))
    assert sorted(data["head"]["vars"]) == ["o", "p", "s"]  # SELECT * fixes no variable order
    assert len(data["results"]["bindings"]) == 10
    assert all(set(row) == {"s", "p", "o"} for row in data["results"]["bindings"])


# --- security headers and CORS -------------------------------------------------------------------


DOCUMENT_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy")


def test_security_headers(client):
    """A data answer is never sniffed as a page; a document (HTML, any XML) gets the page protections too."""
    response = get(client, SELECT_Q)
    assert response.mimetype == "application/sparql-results+json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    for accept in ("application/sparql-results+xml", "text/html"):
        document = get(client, SELECT_Q if "xml" in accept else None, accept=accept)
        assert document.status_code == 200, accept
        assert document.headers["X-Content-Type-Options"] == "nosniff"
        assert document.headers["X-Frame-Options"] in ("DENY", "SAMEORIGIN")
        assert "default-src" in document.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in document.headers["Content-Security-Policy"]
        assert document.headers["Referrer-Policy"] == "no-referrer"


def test_security_headers_on_errors(client):
    response = get(client, "SELECT * WHERE {")
    assert response.status_code == 400
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = client.get("/id/cpt/00000", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert all(name in page.headers for name in DOCUMENT_HEADERS)


def test_cors_on_get(client):
    response = client.get("/sparql", query_string={"query": SELECT_Q}, headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Access-Control-Max-Age" not in response.headers  # preflight-only headers stay on the preflight


def test_cors_preflight(client):
    response = client.options("/sparql", headers={
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type",
    })
    assert 200 <= response.status_code < 300
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert "POST" in methods and "GET" in methods
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("inference", ["asserted", "inferred"])
def test_inference_with_default_graph_uri_or_from_is_a_400_not_dropped(client, inference):
    asserted = "https://w3id.org/medcode/graph/asserted"
    ask = "ASK { ?s ?p ?o }"
    response = client.get("/sparql", query_string={"query": ask, "inference": inference,
                                                   "default-graph-uri": asserted})
    assert response.status_code == 400 and "default-graph-uri" in response.get_data(as_text=True)
    response = client.get("/sparql", query_string={"query": f"ASK FROM <{asserted}> {{ ?s ?p ?o }}",
                                                   "inference": inference})
    assert response.status_code == 400 and "FROM" in response.get_data(as_text=True)
    # inference=all (the default, as the form sends it) leaves the dataset to what names it
    response = client.get("/sparql", query_string={"query": ask, "inference": "all", "default-graph-uri": asserted})
    assert response.status_code == 200
