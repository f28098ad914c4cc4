"""Faults met where users meet the server: `medcode serve` (gunicorn) on a loopback port, a tiny snapshot.

Over-limit bodies in every framing, a runaway query while a new build lands, SIGHUP, a worker killed
mid-request, and a damaged snapshot. Each test drives the real server from outside.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from helpers import cpu_busy, medcode_command, start_server, stop_server, workers_of
from rdflib import Literal, URIRef
from rdflib.namespace import RDF, SKOS

from kg.contract import GRAPH_ASSERTED, GRAPH_INFERRED, ID_BASE, MC, current_snapshot
from kg.snapshot import publish, write_snapshot
from server.http.body import DRAIN_SECONDS

pytestmark = [pytest.mark.embedded_only,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and process groups")]

TIME_LIMIT = 2.0
BODY_TIMEOUT = 2.0  # MEDCODE_BODY_TIMEOUT: seconds a request body may take
HEAD_TIMEOUT = 2.0  # MEDCODE_HEAD_TIMEOUT: seconds a request's head may take
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
PAGE = "/id/cpt/99999"


def tiny_snapshot(data: Path, label: str) -> Path:
    """A snapshot of a few hundred triples (enough for a runaway cartesian product), made live."""
    code = URIRef(ID_BASE + "cpt/99999")
    triples = [(code, RDF.type, MC.CPTCode), (code, SKOS.notation, Literal("99999")),
               (code, SKOS.prefLabel, Literal(label, lang="en")), (code, SKOS.inScheme, URIRef(ID_BASE + "cpt"))]
    triples += [(URIRef(ID_BASE + f"cpt/{n}"), SKOS.notation, Literal(str(n))) for n in range(10000, 10300)]
    snapshot = write_snapshot(data, {str(GRAPH_ASSERTED): triples, str(GRAPH_INFERRED): []}, {"reasoner": "none"})
    publish(data, snapshot)
    return snapshot


@pytest.fixture()
def tiny_server(tmp_path: Path):
    data = tmp_path / "data"
    first = tiny_snapshot(data, "first build")
    srv = start_server(data, tmp_path / "serve.log", {"MEDCODE_QUERY_TIMEOUT": str(TIME_LIMIT),
                                                          "MEDCODE_BODY_TIMEOUT": str(BODY_TIMEOUT),
                                                          "MEDCODE_HEAD_TIMEOUT": str(HEAD_TIMEOUT)})
    srv.data, srv.first = data, first
    try:
        yield srv
    finally:
        stop_server(srv)


def post_form(port: int, body: bytes, chunked: bool) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/sparql-results+json"}
    if chunked:
        parts = (body[i:i + 65536] for i in range(0, len(body), 65536))
        connection.request("POST", "/sparql", body=parts, headers=headers, encode_chunked=True)
    else:
        connection.request("POST", "/sparql", body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_an_over_limit_body_is_413_whatever_its_framing_and_nothing_runs(tiny_server, chunked):
    pad = b"A" * 3_000_000
    query = b"query=SELECT%20%3Fs%20WHERE%20%7B%3Fs%20%3Fp%20%3Fo%7D%20LIMIT%201"
    for body in (query + b"&pad=" + pad, b"pad=" + pad + b"&" + query):
        status, text = post_form(tiny_server.port, body, chunked)
        assert status == 413, text[:200]
        assert b"request-size limit" in text
    status, text = post_form(tiny_server.port, query + b"&pad=" + b"A" * 1000, chunked)
    assert status == 200 and b'"bindings"' in text


def slow_body(port: int, declared: int) -> socket.socket:
    """A connection that declares a form body of `declared` bytes and sends three of them."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(b"POST /sparql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 + f"Content-Length: {declared}\r\n\r\nque".encode())
    return sock


def test_clients_that_never_finish_their_bodies_do_not_silence_the_server(tiny_server):
    """Each request holds one of the workers' threads (2 x 4) while its body arrives: ten clients that declare a
    body and stall would hold them all for ever. Each body must arrive within its deadline (a 408)."""
    stalled = [slow_body(tiny_server.port, 100) for _ in range(10)]
    try:
        started = time.monotonic()
        answer = requests.get(tiny_server.url, params={"query": "ASK {}"}, timeout=BODY_TIMEOUT + 20)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < BODY_TIMEOUT + 15
        for sock in stalled:
            assert sock.recv(64).startswith(b"HTTP/1.1 408")
    finally:
        for sock in stalled:
            sock.close()


def slow_head(port: int) -> socket.socket:
    """A connection that starts a request's head and never finishes it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(b"GET /search?q=pump HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return sock


def test_clients_that_send_their_headers_slowly_do_not_silence_the_server(tiny_server):
    """Twelve connections each sending a header line every half second held every thread of the two workers (2 x 4)
    for as long as they went on (gunicorn reads a head without a time limit): each head must now arrive within
    its deadline, so the slow ones get a 408 and an ordinary request waits at most for the slow heads ahead of
    it in its worker (two rounds of them here), not for ever."""
    slow = [slow_head(tiny_server.port) for _ in range(12)]
    try:
        started, waits = time.monotonic(), []
        while time.monotonic() - started < 3 * HEAD_TIMEOUT + 1:
            for sock in slow:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass  # refused already
            sent = time.monotonic()
            answer = requests.get(tiny_server.url, params={"query": "ASK {}"}, timeout=4 * HEAD_TIMEOUT + 10)
            assert answer.status_code == 200, answer.text
            waits.append(time.monotonic() - sent)
            time.sleep(0.5)
        assert len(waits) >= 3 and max(waits) < 3 * HEAD_TIMEOUT + 2, waits
        for sock in slow:
            assert sock.recv(64).startswith(b"HTTP/1.1 408")
    finally:
        for sock in slow:
            sock.close()


def test_a_kept_alive_connection_has_a_fresh_head_deadline_for_each_request(tiny_server):
    """The deadline runs from a head's first read: a connection kept alive between requests is not cut."""
    with requests.Session() as session:
        for n in range(3):
            answer = session.get(tiny_server.url, params={"query": "ASK {}"}, timeout=30)
            assert answer.status_code == 200, answer.text
            if n < 2:
                time.sleep(HEAD_TIMEOUT + 0.5)  # past the head's limit, within the keep-alive time (5 s)


def test_a_declared_length_over_the_limit_is_413_without_waiting_for_the_body(tiny_server):
    sock = slow_body(tiny_server.port, 2_000_000)
    try:
        started = time.monotonic()
        assert sock.recv(64).startswith(b"HTTP/1.1 413")
        assert time.monotonic() - started < DRAIN_SECONDS + 5
    finally:
        sock.close()


def etag(server) -> str:
    response = requests.get(f"http://127.0.0.1:{server.port}{PAGE}", headers={"Accept": "text/turtle"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def test_every_worker_answers_from_one_snapshot_until_the_server_is_told_to_switch(tiny_server):
    before = {etag(tiny_server) for _ in range(10)}
    assert len(before) == 1
    for n in range(3):  # three more builds land while the server runs (pruning keeps two, and the pinned one)
        tiny_snapshot(tiny_server.data, f"build {n + 2}")
    latest = current_snapshot(tiny_server.data)
    # a worker retires at the time limit; its replacement must serve what its sibling serves
    runaway = requests.get(tiny_server.url, params={"query": RUNAWAY}, timeout=TIME_LIMIT + 30)
    assert runaway.status_code == 503, runaway.text
    assert {etag(tiny_server) for _ in range(30)} == before
    assert tiny_server.first.exists(), "a running server's snapshot was pruned"
    os.kill(tiny_server.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tags = {etag(tiny_server) for _ in range(10)}
        if all(tag.startswith(f'"{latest.name}') for tag in tags):
            break
        time.sleep(0.5)
    assert all(tag.startswith(f'"{latest.name}') for tag in tags), (tags, latest.name)


def test_a_runaway_query_is_answered_within_the_limit_plus_a_second(tiny_server):
    start = time.monotonic()
    response = requests.get(tiny_server.url, params={"query": RUNAWAY}, timeout=TIME_LIMIT + 30)
    elapsed = time.monotonic() - start
    assert response.status_code == 503 and "stopped" in response.text
    assert elapsed <= TIME_LIMIT + 1, elapsed
    assert requests.get(tiny_server.url, params={"query": "ASK {}"}, timeout=10).status_code == 200


def test_a_worker_killed_mid_request_never_sends_a_truncated_200(tiny_server):
    workers = workers_of(tiny_server.process.pid, 2)
    assert len(workers) == 2
    outcome: dict[str, object] = {}

    def slow() -> None:
        try:
            outcome["response"] = requests.get(tiny_server.url, params={"query": RUNAWAY}, timeout=30)
        except requests.RequestException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    busy = cpu_busy(workers, 0.5)
    victim = max(busy, key=busy.__getitem__)  # the worker running the slow query
    os.kill(victim, signal.SIGKILL)
    answered = [requests.get(tiny_server.url, params={"query": "ASK { ?s ?p ?o }"}, timeout=10).status_code
                for _ in range(20)]
    thread.join(40)
    assert answered == [200] * 20
    response = outcome.get("response")
    assert "error" in outcome or (response is not None and response.status_code != 200), outcome


def test_a_damaged_snapshot_is_refused_with_a_clear_message(tmp_path):
    data = tmp_path / "data"
    snapshot = tiny_snapshot(data, "to be damaged")
    biggest = max((snapshot / "store").glob("*.sst"), key=lambda f: f.stat().st_size)
    with biggest.open("r+b") as handle:
        handle.truncate(biggest.stat().st_size // 2)
    result = subprocess.run([medcode_command(), "serve", "--data", str(data), "--port", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "damaged" in result.stderr and "medcode build" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
