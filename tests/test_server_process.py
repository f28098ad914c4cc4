"""The endpoint as it is deployed: `medcode serve` (gunicorn) in a real process on a loopback port.

Checked from outside: SPARQLWrapper interoperability, the hard per-query time limit (a runaway
query is killed and its worker replaced while other requests keep being answered), and that no
query can make the server open a connection anywhere.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import rdflib
import requests
from helpers import Server, cpu_busy, descendants, proc_stat, start_server, stop_server
from rdflib import Literal, URIRef
from rdflib.namespace import SKOS
from SPARQLWrapper import JSON, JSONLD, POST, RDFXML, XML, SPARQLWrapper

MC = "https://w3id.org/medcode/ontology#"
CPT = "https://w3id.org/medcode/id/cpt/"
ASSERTED = "https://w3id.org/medcode/graph/asserted"
EXPECTED = {CPT + code for code in ("62367", "62368", "62369", "62370")}
QUERY_TIMEOUT = 3.0
LOOKUP = "ASK { cpt:95990 mc:notReportedWith cpt:62367 }"
PATHOLOGICAL = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
# takes well under a second, long enough that two at once occupy both gunicorn workers
MEDIUM = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{ASSERTED}> {{ ?s ?p ?o }} }}"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and process groups")


@pytest.fixture(scope="module")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = start_server(data_dir, tmp_path_factory.mktemp("medcode-serve") / "serve.log",
                       {"MEDCODE_QUERY_TIMEOUT": str(QUERY_TIMEOUT)})
    try:
        yield srv
    finally:
        stop_server(srv)


def lookup(server: Server, timeout: float = 10) -> requests.Response:
    return requests.get(server.url, params={"query": LOOKUP}, headers={"Accept": "application/sparql-results+json"},
                        timeout=timeout)


def assert_lookup_ok(response: requests.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["boolean"] is True


# --- SPARQLWrapper -------------------------------------------------------------------------------


def wrapper(server: Server, query: str, fmt=JSON, only_conneg: bool = False) -> SPARQLWrapper:
    sparql = SPARQLWrapper(server.url)
    sparql.setQuery(query)
    sparql.setReturnFormat(fmt)
    sparql.setOnlyConneg(only_conneg)
    sparql.setTimeout(20)
    return sparql


def test_sparqlwrapper_select_json(server):
    result = wrapper(server, "SELECT ?c WHERE { cpt:95990 mc:notReportedWith ?c }").queryAndConvert()
    assert result["head"]["vars"] == ["c"]
    assert {row["c"]["value"] for row in result["results"]["bindings"]} == EXPECTED
    assert len(result["results"]["bindings"]) == 4


def test_sparqlwrapper_select_post(server):
    sparql = wrapper(server, "SELECT ?c WHERE { cpt:95990 mc:notReportedWith ?c }")
    sparql.setMethod(POST)
    result = sparql.queryAndConvert()
    assert {row["c"]["value"] for row in result["results"]["bindings"]} == EXPECTED
    assert len(result["results"]["bindings"]) == 4


def test_sparqlwrapper_ask(server):
    assert wrapper(server, LOOKUP).queryAndConvert()["boolean"] is True
    assert wrapper(server, "ASK { cpt:95990 mc:notReportedWith cpt:96522 }").queryAndConvert()["boolean"] is False


CONSTRUCT = "CONSTRUCT { cpt:95990 mc:notReportedWith ?c } WHERE { cpt:95990 mc:notReportedWith ?c }"
KNOWN_TRIPLE = (URIRef(CPT + "95990"), URIRef(MC + "notReportedWith"), URIRef(CPT + "62367"))


def assert_construct_graph(graph) -> None:
    assert isinstance(graph, rdflib.Graph)
    assert KNOWN_TRIPLE in graph
    assert len(graph) == 4


def test_sparqlwrapper_construct_default_settings(server):
    # SPARQLWrapper's defaults: return format XML, sent as Accept *and* as format=xml&output=xml&results=xml
    assert_construct_graph(wrapper(server, CONSTRUCT, fmt=XML).queryAndConvert())


def test_sparqlwrapper_construct_conneg_only(server):
    assert_construct_graph(wrapper(server, CONSTRUCT, fmt=XML, only_conneg=True).queryAndConvert())


@pytest.mark.parametrize("fmt", [RDFXML, JSONLD])
def test_sparqlwrapper_construct_other_return_formats(server, fmt):
    # for these SPARQLWrapper sends the format twice, e.g. format=json-ld&format=application/ld+json
    assert_construct_graph(wrapper(server, CONSTRUCT, fmt=fmt).queryAndConvert())


def test_sparqlwrapper_construct_post(server):
    sparql = wrapper(server, CONSTRUCT, fmt=XML, only_conneg=True)
    sparql.setMethod(POST)
    assert_construct_graph(sparql.queryAndConvert())


def assert_describe_96522(graph) -> None:
    assert isinstance(graph, rdflib.Graph)
    assert len(graph) > 0
    assert (URIRef(CPT + "96522"), SKOS.notation, Literal("96522")) in graph


def test_sparqlwrapper_describe_default_settings(server):
    assert_describe_96522(wrapper(server, "DESCRIBE <https://w3id.org/medcode/id/cpt/96522>", fmt=XML)
                          .queryAndConvert())


def test_sparqlwrapper_describe_conneg_only(server):
    assert_describe_96522(wrapper(server, "DESCRIBE <https://w3id.org/medcode/id/cpt/96522>", fmt=XML,
                                  only_conneg=True).queryAndConvert())


# --- the per-query time limit ----------------------------------------------------------------------


@pytest.mark.embedded_only  # watches the embedded store's query worker processes
def test_time_limit_stops_runaway_query_and_keeps_serving(server):
    for _ in range(4):  # warm both gunicorn workers
        assert_lookup_ok(lookup(server))
    # let fresh workers finish warming their search index, so that CPU use below is the query's
    deadline = time.monotonic() + 60
    while any(share > 0.2 for share in cpu_busy(descendants(server.process.pid), 0.5).values()):
        assert time.monotonic() < deadline, "the server's workers never went idle"
    baseline = requests.get(server.url, params={"query": MEDIUM}, timeout=30)
    assert baseline.status_code == 200, baseline.text
    expected_rows = baseline.json()["results"]["bindings"]
    outcome: dict[str, object] = {}

    def run_pathological() -> None:
        start = time.monotonic()
        try:
            response = requests.get(server.url, params={"query": PATHOLOGICAL},
                                    headers={"Accept": "application/sparql-results+json, text/plain;q=0.5"},
                                    timeout=QUERY_TIMEOUT + 30)
            outcome["response"] = response
        except requests.RequestException as exc:  # pragma: no cover - reported below
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=run_pathological, daemon=True)
    thread.start()
    time.sleep(0.5)

    # while it runs, lookups are answered promptly
    start = time.monotonic()
    response = lookup(server, timeout=5)
    assert time.monotonic() - start < 2.0
    assert_lookup_ok(response)

    # the runaway query is burning a CPU in the gunicorn worker that serves it: by far the busiest of the
    # server's processes (on a loaded machine it may get well under a core, so no fixed share is asked)
    before = descendants(server.process.pid)
    shares = sorted(((s, pid) for pid, s in cpu_busy(before, 0.5).items()), reverse=True)
    assert thread.is_alive(), f"the pathological query ended early: {outcome}"
    assert shares and shares[0][0] > 0.05, f"no process is running the query: {shares}"
    assert len(shares) == 1 or shares[0][0] > 2 * shares[1][0] + 0.02, f"no single process runs the query: {shares}"
    hog = shares[0][1]
    arbiter = proc_stat(hog)[0]

    thread.join(QUERY_TIMEOUT + 10)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert response.status_code == 503, response.text
    assert "stopped" in response.text
    assert outcome["elapsed"] <= QUERY_TIMEOUT + 1  # the time limit, plus at most one second

    # the query really was stopped: its worker process is gone and nothing keeps spinning
    deadline = time.monotonic() + 5
    while proc_stat(hog) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc_stat(hog) is None, "the worker running the stopped query is still alive"
    # (a replacement worker started since may be busy warming its search index: only old processes count)
    survivors = [pid for pid in descendants(server.process.pid) if pid in before]
    still_busy = {pid: s for pid, s in cpu_busy(survivors, 1.0).items() if s > 0.5}
    assert still_busy == {}

    # afterwards everything still answers, from the surviving worker and from the one the arbiter
    # started in place of the retired worker (a process that did not exist before the runaway query)
    replaced = False
    for _ in range(6):
        results: list[requests.Response] = []
        pair = [threading.Thread(target=lambda sink=results: sink.append(
            requests.get(server.url, params={"query": MEDIUM}, timeout=30))) for _ in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join(40)
        assert len(results) == 2
        for result in results:
            assert result.status_code == 200, result.text
            assert result.json()["results"]["bindings"] == expected_rows
        workers = descendants(arbiter)
        if hog not in workers and any(pid not in before for pid in workers):
            replaced = True
            break
    assert replaced, "the worker that ran the stopped query was never replaced by a new one"
    for _ in range(5):
        assert_lookup_ok(lookup(server))


def test_timeout_answer_is_json_when_json_is_preferred(server):
    response = requests.get(server.url, params={"query": PATHOLOGICAL},
                            headers={"Accept": "application/json"}, timeout=QUERY_TIMEOUT + 30)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == 503
    assert "stopped" in body["error"]
    assert_lookup_ok(lookup(server))


# --- no outbound requests, whatever the query says ----------------------------------------------


class Listener:
    """A plain TCP listener that records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, address = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(address)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def listener():
    listener = Listener()
    yield listener
    listener.close()


def outbound_cases(port: int) -> dict[str, dict]:
    base = f"http://127.0.0.1:{port}"
    return {
        "service": {"query": f"SELECT * WHERE {{ SERVICE <{base}/sparql> {{ ?s ?p ?o }} }}"},
        "service-silent": {"query": f"SELECT * WHERE {{ SERVICE SILENT <{base}/sparql> {{ ?s ?p ?o }} }}"},
        "service-prefixed": {"query": f"PREFIX r: <{base}/> SELECT * WHERE {{ SERVICE r:sparql {{ ?s ?p ?o }} }}"},
        "service-empty-prefix": {"query": f"PREFIX : <{base}/> SELECT * WHERE {{ SERVICE :sparql {{ ?s ?p ?o }} }}"},
        "from": {"query": f"SELECT * FROM <{base}/g.ttl> WHERE {{ ?s ?p ?o }}"},
        "from-named": {"query": f"SELECT * FROM NAMED <{base}/g.ttl> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"},
        "load-as-query": {"query": f"LOAD <{base}/x.ttl>"},
        "load-as-update": {"update": f"LOAD <{base}/x.ttl>"},
    }


CASES = ["service", "service-silent", "service-prefixed", "service-empty-prefix", "from", "from-named",
         "load-as-query", "load-as-update"]


@pytest.mark.parametrize("case", CASES)
def test_no_outbound_request(server, listener, case):
    before = len(listener.connections)
    response = requests.post(server.url, data=outbound_cases(listener.port)[case], timeout=30)
    time.sleep(0.3)  # a connection attempt would have been accepted by now
    assert listener.connections[before:] == [], f"the server connected to the listener for {case}"
    assert 400 <= response.status_code < 500, f"{case}: {response.status_code} {response.text}"


def test_no_outbound_request_sparql_update_body(server, listener):
    before = len(listener.connections)
    response = requests.post(server.url, data=f"LOAD <http://127.0.0.1:{listener.port}/x.ttl>".encode(),
                             headers={"Content-Type": "application/sparql-update"}, timeout=30)
    time.sleep(0.3)
    assert listener.connections[before:] == []
    assert response.status_code == 403


def test_describe_of_remote_iri_is_not_dereferenced(server, listener):
    before = len(listener.connections)
    response = requests.get(server.url, params={"query": f"DESCRIBE <http://127.0.0.1:{listener.port}/x>"},
                            headers={"Accept": "application/n-triples"}, timeout=30)
    time.sleep(0.3)
    assert listener.connections[before:] == []
    # describing an IRI means describing what the local graph says about it: nothing, not a fetch
    assert response.status_code == 200, response.text
    assert response.text.strip() == ""



# --- shutdown ----------------------------------------------------------------------------------------


def test_sigterm_shuts_down_every_process(data_dir, tmp_path):
    """SIGTERM to the master (what a process manager sends) leaves no worker or query worker behind."""
    srv = start_server(data_dir, tmp_path / "serve.log")
    try:
        for _ in range(4):
            assert_lookup_ok(lookup(srv))
        processes = descendants(srv.process.pid)
        assert len(processes) >= 2  # the two gunicorn workers (and any query worker they started)
        start = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        srv.process.wait(timeout=20)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(proc_stat(pid) is not None for pid in processes):
            time.sleep(0.1)
        leftovers = [pid for pid in processes if proc_stat(pid) is not None]
        assert leftovers == [], f"processes still alive after the server stopped: {leftovers}\n{srv.log_tail()}"
        assert time.monotonic() - start < 10, f"shutdown took {time.monotonic() - start:.1f} s"
    finally:
        stop_server(srv)
