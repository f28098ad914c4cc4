"""The app in remote mode against a scripted SPARQL engine: what reaches the engine, and how its failures
are answered (502 for an engine error, 503 for unavailable or out of time, never a hang or a 500).

The engine is a small WSGI app on a loopback port whose behaviour is chosen by a word in the query, so
every failure Virtuoso was seen to produce can be replayed without Virtuoso."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import free_port
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kg.namespaces import GRAPH_ASSERTED, GRAPH_DERIVATIONS, GRAPH_INFERRED
from server import create_app

META = {"snapshot": "20260101T000000-1", "built_at": "2026-01-01T00:00:00+0000", "reasoner": "reasonable",
        "triples": {str(GRAPH_ASSERTED): 10, str(GRAPH_INFERRED): 5}, "versions": {}, "python": "3.11",
        "icd10cm_release": "test"}
ROW = {"head": {"vars": ["b", "n"]}, "results": {"bindings": [
    {"b": {"type": "typed-literal", "datatype": "http://www.w3.org/2001/XMLSchema#boolean", "value": "1"},
     "n": {"type": "literal", "value": "x"}},
    {"b": {"type": "bnode", "value": "nodeID://b10004"}}]}}


class Engine:
    """Records every form it receives; answers as the query's marker word says."""

    def __init__(self) -> None:
        self.received: list[dict[str, list[str]]] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        form = {k: request.form.getlist(k) for k in request.form}
        query = form.get("query", [""])[0]
        if "dc/terms/description" in query:  # the app reading the published snapshot's metadata
            body = {"head": {"vars": ["meta"]},
                    "results": {"bindings": [{"meta": {"type": "literal", "value": json.dumps(META)}}]}}
            return Response(json.dumps(body), content_type="application/sparql-results+json")(environ, start_response)
        self.received.append(form)
        if "SLOW" in query:
            time.sleep(4)
        if "PARTIAL" in query:
            response = Response(json.dumps({"head": {"vars": ["b"]}, "results": {"bindings": []}}),
                                content_type="application/sparql-results+json")
            response.headers["X-SQL-State"] = "S1TAT"
        elif "BOOM" in query:
            response = Response("Virtuoso 42000 Error SR186: out of memory\n\nSPARQL query:\n" + query, status=500,
                                content_type="text/plain")
        elif "HUGE" in query:
            rows = [{"n": {"type": "literal", "value": "x" * 100}}] * 100
            response = Response(json.dumps({"head": {"vars": ["n"]}, "results": {"bindings": rows}}),
                                content_type="application/sparql-results+json")
        elif "TURTLE" in query:
            response = Response("<a> <b> <c> .", content_type="text/turtle")
        elif request.headers.get("Accept") == "text/csv":
            response = Response('"b","n"\n"1","x"\n', content_type="text/csv; charset=UTF-8")
        elif "TIMEDOUT" in query:
            response = Response("Virtuoso S1T00 Error SR171: Transaction timed out\n\nSPARQL query:\n" + query,
                                status=500, content_type="text/plain")
        elif "BUSY" in query:
            response = Response("<html>maintenance</html>", status=503, content_type="text/html")
        else:
            response = Response(json.dumps(ROW), content_type="application/sparql-results+json")
        return response(environ, start_response)


@pytest.fixture
def engine() -> Iterator[tuple[Engine, str]]:
    app = Engine()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/sparql"
    server.shutdown()


@pytest.fixture
def client(engine):
    _, url = engine
    app = create_app({"MEDCODE_STORE": f"sparql+{url}", "QUERY_TIMEOUT": 1.5})
    return app.test_client()


def ask(client, query: str, accept: str = "application/sparql-results+json"):
    return client.post("/sparql", data={"query": query}, headers={"Accept": accept})


def test_the_engine_gets_a_form_post_with_the_time_limit_and_the_pinned_dataset(client, engine):
    response = ask(client, "SELECT ?b ?n WHERE { ?s mc:billable ?b }")
    assert response.status_code == 200
    form = engine[0].received[-1]
    assert form["timeout"] == ["1500"]
    assert form["default-graph-uri"] == [str(GRAPH_ASSERTED), str(GRAPH_INFERRED)]
    # GRAPH ?g sees the local graphs, the derivations graph among them (as embedded)
    assert sorted(form["named-graph-uri"]) == sorted([str(GRAPH_ASSERTED), str(GRAPH_INFERRED), str(GRAPH_DERIVATIONS)])
    # the endpoint's default prefixes are declared for the engine
    assert form["query"][0].startswith("PREFIX mc: <https://w3id.org/medcode/ontology#>")


def test_answers_are_written_by_the_app_with_canonical_booleans(client):
    body = ask(client, "SELECT ?b ?n WHERE { ?s mc:billable ?b }").get_json()
    assert body["results"]["bindings"][0]["b"] == {
        "type": "literal", "value": "true", "datatype": "http://www.w3.org/2001/XMLSchema#boolean"}
    assert body["results"]["bindings"][1]["b"] == {"type": "bnode", "value": "b10004"}  # Virtuoso's nodeID://
    csv = ask(client, "SELECT ?b ?n WHERE { ?s mc:billable ?b }", "text/csv").get_data(as_text=True)
    assert csv.splitlines() == ["b,n", "1,x"]  # CSV carries lexical forms only, as the engine wrote them


@pytest.mark.parametrize("query", [
    "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
    "SELECT * FROM <http://example.org/data.ttl> WHERE { ?s ?p ?o }",
    "SELECT * WHERE { ?s ?p ?o",
])
def test_refused_and_malformed_queries_never_reach_the_engine(client, engine, query):
    response = ask(client, query)
    assert response.status_code == 400
    assert engine[0].received == []


def test_update_never_reaches_the_engine(client, engine):
    response = client.post("/sparql", data={"update": "DROP ALL"})
    assert response.status_code == 403
    assert engine[0].received == []


def test_engine_error_is_a_502_with_the_engine_message_but_not_the_echoed_query(client):
    response = ask(client, "SELECT ?b WHERE { ?s ?p ?b } # BOOM")
    assert response.status_code == 502
    text = response.get_data(as_text=True)
    assert "SR186: out of memory" in text
    assert "SPARQL query" not in text


def test_an_answer_in_another_format_than_asked_is_a_502(client):
    response = ask(client, "SELECT ?b WHERE { ?s ?p ?b } # TURTLE")
    assert response.status_code == 502
    assert "text/turtle instead of application/sparql-results+json" in response.get_data(as_text=True)


def test_an_engine_time_out_error_is_a_503(client):
    response = ask(client, "SELECT ?b WHERE { ?s ?p ?b } # TIMEDOUT")
    assert response.status_code == 503
    assert "time limit: Virtuoso S1T00 Error SR171" in response.get_data(as_text=True)


def test_engine_maintenance_page_is_a_503(client):
    assert ask(client, "SELECT ?b WHERE { ?s ?p ?b } # BUSY").status_code == 503


def test_partial_results_at_the_engine_time_limit_are_a_503_never_a_short_answer(client):
    response = ask(client, "SELECT ?b WHERE { ?s ?p ?b } # PARTIAL")
    assert response.status_code == 503
    assert "time limit" in response.get_data(as_text=True)


def test_a_hanging_engine_is_cut_off_after_the_time_limit(client):
    started = time.monotonic()
    response = ask(client, "SELECT ?b WHERE { ?s ?p ?b } # SLOW")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 4  # 1.5 s limit + the grace period, not the engine's 4 s


def test_an_engine_that_went_away_is_a_503(engine):
    app, url = engine
    flask_app = create_app({"MEDCODE_STORE": f"sparql+{url}"})
    port = url.split(":")[2].split("/")[0]
    flask_app.extensions["medcode.store"].url = url.replace(port, str(free_port()))  # nothing listens there
    response = flask_app.test_client().post("/sparql", data={"query": "ASK {}"})
    assert response.status_code == 503
    assert "unavailable" in response.get_data(as_text=True)


def test_bad_store_setting_is_refused_at_start():
    with pytest.raises(ValueError, match="MEDCODE_STORE"):
        create_app({"MEDCODE_STORE": "postgres://db"})


def test_a_publish_under_a_running_app_changes_its_etag(engine, monkeypatch):
    """The app re-reads the published snapshot id, so caches (ETags, the search index) follow a publish."""
    from server.store import remote as remote_store

    app = create_app({"MEDCODE_STORE": f"sparql+{engine[1]}"})
    store = app.extensions["medcode.store"]
    assert store.etag == META["snapshot"]
    monkeypatch.setitem(META, "snapshot", "20260202T000000-2")
    assert store.etag == "20260101T000000-1"  # within META_TTL
    monkeypatch.setattr(remote_store, "META_TTL", 0.0)
    assert store.etag == "20260202T000000-2"


def test_an_answer_past_the_byte_cap_is_refused_not_buffered(client, monkeypatch):
    from server.store import remote as remote_store

    monkeypatch.setattr(remote_store, "MIN_BODY_BYTES", 2000)
    monkeypatch.setattr(remote_store, "BYTES_PER_ROW", 0)
    response = ask(client, "SELECT ?n WHERE { ?s ?p ?n } # HUGE")
    assert response.status_code == 400
    assert "result-size limit" in response.get_data(as_text=True)
