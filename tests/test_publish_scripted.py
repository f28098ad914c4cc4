"""`medcode publish` without Virtuoso: how a dump is cut into Graph Store posts, the URLs derived from the one a
user gives, and publishing against a scripted engine that refuses one big transaction, asks for a password,
answers slowly or dies in the middle of a publish."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import free_port
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import kg.publish
from kg.contract import CURRENT, DUMP_FILE, META_FILE
from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, GRAPH_META
from kg.publish import STAGING, PublishError, _chunks, default_urls, publish
from medcode.cli import main

LIVE = (str(GRAPH_ASSERTED), str(GRAPH_INFERRED), str(GRAPH_META))


def test_chunks_are_full_per_graph_even_when_the_dump_interleaves_graphs(tmp_path: Path) -> None:
    dump = tmp_path / "medcode.nq"
    lines = [f'<http://e/{i}> <http://e/p> "x" <http://g/{i % 2}> .\n' for i in range(25)]
    lines += ['_:b <http://e/p> "y" <http://g/0> .\n', "<http://e/s> <http://e/q> _:b <http://g/0> .\n"]
    dump.write_text("".join(lines))
    chunks = [(graph, len(triples)) for graph, triples in _chunks(dump, 5)]
    assert chunks[:4] == [("http://g/0", 5), ("http://g/1", 5), ("http://g/0", 5), ("http://g/1", 5)]
    assert sum(n for _, n in chunks) == 27
    # both triples with the blank node travel in one post, so they keep meaning one node
    assert chunks[-1] == ("http://g/0", 2)


def test_virtuoso_urls_next_to_the_query_endpoint() -> None:
    assert default_urls("http://h:8890/sparql", True) == ("http://h:8890/sparql-auth",
                                                          "http://h:8890/sparql-graph-crud-auth")
    assert default_urls("http://h:8890/sparql", False) == ("http://h:8890/sparql", "http://h:8890/sparql-graph-crud")


@pytest.mark.parametrize("endpoint", ["http://h:8890/sparql", "http://h:8890/sparql/", "http://h:8890/sparql-auth",
                                      "http://h:8890/sparql-auth/"])
def test_every_virtuoso_endpoint_gives_its_update_and_graph_store_urls(endpoint: str) -> None:
    assert default_urls(endpoint, True) == ("http://h:8890/sparql-auth", "http://h:8890/sparql-graph-crud-auth")


@pytest.mark.parametrize("endpoint", ["http://h:3030/ds/sparql", "http://h:3030/ds/sparql/", "http://h:3030/ds/query"])
def test_a_fuseki_endpoint_gives_the_dataset_update_and_data_urls(endpoint: str) -> None:
    assert default_urls(endpoint, True) == ("http://h:3030/ds/update", "http://h:3030/ds/data")


@pytest.mark.parametrize("endpoint", ["http://h:8890/", "http://h:8890/endpoint", "http://h/a/b/sparql-auth"])
def test_an_endpoint_of_no_known_layout_names_the_options_to_pass(endpoint: str) -> None:
    with pytest.raises(PublishError, match="pass --update-url and --graph-store-url"):
        default_urls(endpoint, True)


class ScriptedEngine:
    """A SPARQL engine over an in-memory dict of graphs, at Virtuoso's URLs (`/sparql`, `/sparql-auth`,
    `/sparql-graph-crud[-auth]`) and Fuseki's (`/ds/sparql`, `/ds/update`, `/ds/data`).

    `-auth` paths ask for Basic credentials when `credentials` is set. It refuses multi-MOVE updates the way
    Virtuoso refuses a transaction that is too large; once `posts_left` Graph Store posts are done it drops
    every connection (an engine that died in the middle of a publish); it answers posts `delay` seconds late.
    """

    QUERY, UPDATE, GRAPH_STORE = {"sparql", "sparql-auth", "query"}, {"sparql", "sparql-auth", "update"}, {
        "graph-crud", "sparql-graph-crud", "sparql-graph-crud-auth", "data"}

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.graphs: dict[str, set[str]] = {}
        self.updates: list[str] = []
        self.credentials = credentials
        self.posts_left: int | None = None
        self.delay = 0.0

    def __call__(self, environ, start_response):
        request = Request(environ)
        endpoint = request.path.rstrip("/").rsplit("/", 1)[-1]
        if self.posts_left == 0:  # dead: the connection closes without an answer
            start_response("200 OK", [])
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            return []
        if endpoint.endswith("-auth") and self.credentials and not self._authorised(request):
            return Response("Unauthorized", status=401,
                            headers={"WWW-Authenticate": 'Basic realm="scripted"'})(environ, start_response)
        return self._answer(request, endpoint)(environ, start_response)

    def _authorised(self, request: Request) -> bool:
        auth = request.authorization
        return auth is not None and (auth.username, auth.password) == self.credentials

    def _answer(self, request: Request, endpoint: str) -> Response:
        if endpoint in self.GRAPH_STORE and "graph" in request.args:
            return self._post(request)
        if endpoint in self.UPDATE and "update" in request.form:
            return self._update(request.form["update"])
        if endpoint in self.QUERY and "query" in request.form:
            return self._query(request.form["query"])
        if endpoint in self.QUERY | self.UPDATE | self.GRAPH_STORE:
            return Response("no query, update or graph given", status=400)
        return Response(f"{request.path} not found", status=404)

    def _post(self, request: Request) -> Response:
        if self.delay:
            threading.Event().wait(self.delay)
        self.graphs.setdefault(request.args["graph"], set()).update(request.get_data(as_text=True).splitlines())
        if self.posts_left is not None:
            self.posts_left -= 1
        return Response(status=201)

    def _update(self, text: str) -> Response:
        self.updates.append(text)
        if text.count("MOVE") > 1:
            return Response("Virtuoso 40005 Error SR325: Transaction aborted because it's log after image size "
                            "went above the limit", status=500, content_type="text/plain")
        for source, target in re.findall(r"MOVE SILENT <([^>]+)> TO <([^>]+)>", text):
            self.graphs[target] = self.graphs.pop(source, set())
        for graph in re.findall(r"DROP SILENT GRAPH <([^>]+)>", text):
            self.graphs.pop(graph, None)
        return Response("ok", content_type="text/plain")

    def _query(self, query: str) -> Response:
        if "identifier" in query:  # which snapshot is served: one once a meta graph exists
            rows = [{"id": {"type": "literal", "value": self.served() or "old"}}] if str(GRAPH_META) in self.graphs \
                else []
            body = {"head": {"vars": ["id"]}, "results": {"bindings": rows}}
            return Response(json.dumps(body), content_type="application/sparql-results+json")
        match = re.search(r"GRAPH <([^>]+)> \{ \?s \?p \?o", query)
        rows = [{"n": {"type": "literal", "value": str(len(self.graphs.get(match.group(1), ())))}}] if match else []
        body = {"head": {"vars": ["n"]}, "results": {"bindings": rows}}
        return Response(json.dumps(body), content_type="application/sparql-results+json")

    def served(self) -> str | None:
        """The snapshot id in the live meta graph."""
        found = re.findall(r'identifier> "([^"]+)"', "\n".join(self.graphs.get(str(GRAPH_META), ())))
        return found[0] if found else None

    def live(self) -> dict[str, set[str]]:
        return {graph: set(self.graphs.get(graph, ())) for graph in LIVE}


@contextmanager
def running(engine: ScriptedEngine) -> Iterator[str]:
    """The engine served on a loopback port; yields its base URL."""
    server = make_server("127.0.0.1", free_port(), engine, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _snapshot(parent: Path, name: str = "s1", graphs: dict[str, int] | None = None) -> Path:
    """A snapshot directory holding `graphs` ({graph IRI: triple count}) and its meta.json."""
    graphs = graphs or {str(GRAPH_ASSERTED): 3, str(GRAPH_INFERRED): 2}
    snapshot = parent / name
    snapshot.mkdir(parents=True)
    (snapshot / DUMP_FILE).write_text("".join(f'<http://e/{name}/{g[-1]}{i}> <http://e/p> "x" <{g}> .\n'
                                              for g, n in graphs.items() for i in range(n)))
    (snapshot / META_FILE).write_text(json.dumps({"snapshot": name, "triples": graphs}))
    return snapshot


def _publish(tmp_path: Path, engine: ScriptedEngine) -> tuple[dict[str, int], list[str], dict[str, int]]:
    snapshot = _snapshot(tmp_path)
    graphs = json.loads((snapshot / META_FILE).read_text())["triples"]
    with running(engine) as base:
        lines: list[str] = []
        live = publish(snapshot, f"{base}/sparql", graph_store_url=f"{base}/graph-crud", echo=lines.append)
    return live, lines, graphs


def test_a_swap_too_big_for_one_transaction_goes_graph_by_graph_meta_last(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    engine.graphs[str(GRAPH_META)] = {"an older snapshot"}
    live, lines, graphs = _publish(tmp_path, engine)
    assert live == {**graphs, str(GRAPH_META): 2}
    single_moves = [u for u in engine.updates if u.count("MOVE") == 1]
    assert [m.rsplit("TO ", 1)[1] for m in single_moves] == [f"<{GRAPH_ASSERTED}>", f"<{GRAPH_INFERRED}>",
                                                             f"<{GRAPH_META}>"]
    assert any("graph by graph" in line for line in lines)
    assert not any(g.startswith(STAGING) for g in engine.graphs)


def test_a_first_publish_loads_the_live_graphs_directly_and_the_meta_graph_last(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    live, lines, graphs = _publish(tmp_path, engine)
    assert live == {**graphs, str(GRAPH_META): 2}
    assert not any("MOVE" in u for u in engine.updates)
    assert "loading into the live graphs" in lines[0]
    assert list(engine.graphs)[-1] == str(GRAPH_META)  # the app sees a snapshot only once it is complete


def _quiet(_line: str) -> None:
    """An echo that drops publish's progress lines."""


@pytest.mark.parametrize("path", ["/sparql", "/sparql/", "/sparql-auth", "/sparql-auth/", "/ds/sparql", "/ds/sparql/"])
def test_publish_to_any_endpoint_url_a_user_would_give(tmp_path: Path, path: str) -> None:
    engine = ScriptedEngine(credentials=("dba", "dba"))
    engine.graphs[str(GRAPH_META)] = {"an older snapshot"}  # so the second publish below swaps
    with running(engine) as base:
        publish(_snapshot(tmp_path, "s1"), base + path, user="dba", password="dba", echo=_quiet)
        live = publish(_snapshot(tmp_path, "s2"), base + path, user="dba", password="dba", echo=_quiet)
    assert live == {str(GRAPH_ASSERTED): 3, str(GRAPH_INFERRED): 2, str(GRAPH_META): 2}
    assert engine.served() == "s2"
    assert not any(g.startswith(STAGING) for g in engine.graphs)


def _served_before(engine: ScriptedEngine, base: str, tmp_path: Path) -> dict[str, set[str]]:
    """Publish snapshot s0 to the engine; its live graphs."""
    publish(_snapshot(tmp_path, "s0"), f"{base}/sparql-auth", user="dba", password="dba", echo=_quiet)
    assert engine.served() == "s0"
    return engine.live()


@pytest.mark.parametrize(("user", "password", "message"), [
    ("dba", "wrong", r"HTTP 401.*refused the user 'dba' or its password"),
    (None, None, r"HTTP 401.*asks for a user and password: pass --user and --password"),
])
def test_a_refused_password_is_one_clear_sentence_and_changes_nothing(tmp_path: Path, user: str | None,
                                                                      password: str | None, message: str) -> None:
    engine = ScriptedEngine(credentials=("dba", "dba"))
    with running(engine) as base:
        before = _served_before(engine, base, tmp_path)
        with pytest.raises(PublishError, match=message):
            publish(_snapshot(tmp_path, "s1"), f"{base}/sparql-auth", user=user, password=password, echo=_quiet)
    assert engine.live() == before


@pytest.mark.parametrize(("option", "message"), [("update_url", "pass its URL with --update-url"),
                                                  ("graph_store_url", "pass its URL with --graph-store-url")])
def test_a_wrong_update_or_graph_store_url_names_the_option(tmp_path: Path, option: str, message: str) -> None:
    engine = ScriptedEngine(credentials=("dba", "dba"))
    with running(engine) as base:
        before = _served_before(engine, base, tmp_path)
        with pytest.raises(PublishError, match=f"HTTP 404.*{message}"):
            publish(_snapshot(tmp_path, "s1"), f"{base}/sparql-auth", user="dba", password="dba", echo=_quiet,
                    **{option: f"{base}/no-such-service"})
    assert engine.live() == before


def test_an_engine_that_stops_in_the_middle_of_publish_leaves_the_old_graphs_serving(tmp_path: Path) -> None:
    engine = ScriptedEngine(credentials=("dba", "dba"))
    with running(engine) as base:
        before = _served_before(engine, base, tmp_path)
        engine.posts_left = 2  # the engine dies after two of the five posts
        with pytest.raises(PublishError, match=r"loading into <[^>]+> failed: the engine closed the connection") \
                as failed:
            publish(_snapshot(tmp_path, "s1"), f"{base}/sparql-auth", user="dba", password="dba", chunk=1,
                    echo=_quiet)
        assert failed.value.live_intact
        assert engine.live() == before  # the live graphs are untouched
        engine.posts_left = None  # the engine is back
        live = publish(_snapshot(tmp_path, "s2"), f"{base}/sparql-auth", user="dba", password="dba", echo=_quiet)
    assert live == {str(GRAPH_ASSERTED): 3, str(GRAPH_INFERRED): 2, str(GRAPH_META): 2}
    assert engine.served() == "s2"
    assert not any(g.startswith(STAGING) for g in engine.graphs)


def test_an_engine_that_stops_during_the_swap_says_the_live_graphs_may_have_changed(tmp_path: Path) -> None:
    engine = ScriptedEngine(credentials=("dba", "dba"))
    with running(engine) as base:
        _served_before(engine, base, tmp_path)
        engine.posts_left = 6  # five one-triple posts and the meta graph: the engine dies before the MOVE
        with pytest.raises(PublishError, match=r"replacing the live graphs failed: the engine closed the connection "
                                               r".*may or may not have been replaced: publish again") as failed:
            publish(_snapshot(tmp_path, "s1"), f"{base}/sparql-auth", user="dba", password="dba", chunk=1,
                    echo=_quiet)
        assert not failed.value.live_intact
        engine.posts_left = None
        publish(_snapshot(tmp_path, "s2"), f"{base}/sparql-auth", user="dba", password="dba", echo=_quiet)
    assert engine.served() == "s2"
    assert not any(g.startswith(STAGING) for g in engine.graphs)


def test_an_engine_that_does_not_answer_in_time_is_a_clear_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ScriptedEngine(credentials=("dba", "dba"))
    with running(engine) as base:
        before = _served_before(engine, base, tmp_path)
        engine.delay = 2.0
        monkeypatch.setattr(kg.publish, "TIMEOUT", (5.0, 0.5))
        with pytest.raises(PublishError, match=r"loading into <[^>]+> failed: no answer from .* within 0.5 s"):
            publish(_snapshot(tmp_path, "s1"), f"{base}/sparql-auth", user="dba", password="dba", echo=_quiet)
        engine.delay = 0.0
    assert engine.live() == before


def test_an_engine_that_is_not_running_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match=r"cannot connect to http://127\.0\.0\.1:\d+/sparql \(.*refused\)"):
        publish(_snapshot(tmp_path), f"http://127.0.0.1:{free_port()}/sparql", echo=_quiet)


def _data_dir(tmp_path: Path) -> Path:
    """A data directory whose live snapshot is a tiny one."""
    data = tmp_path / "data"
    _snapshot(data / "snapshots", "s1")
    (data / CURRENT).symlink_to(Path("snapshots") / "s1")
    return data


@pytest.mark.parametrize("fault", ["wrong password", "not running", "drops every connection"])
def test_the_cli_fails_with_a_sentence_never_a_traceback(tmp_path: Path, fault: str) -> None:
    engine = ScriptedEngine(credentials=("dba", "dba"))
    with running(engine) as base:
        publish(_snapshot(tmp_path, "s0"), f"{base}/sparql-auth", user="dba", password="dba", echo=_quiet)
        engine.posts_left = 0 if fault == "drops every connection" else None
        to = f"http://127.0.0.1:{free_port()}/sparql-auth" if fault == "not running" else f"{base}/sparql-auth"
        password = "wrong" if fault == "wrong password" else "dba"
        result = CliRunner().invoke(main, ["publish", "--data", str(_data_dir(tmp_path)), "--to", to,
                                           "--user", "dba", "--password", password])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "publish failed" in result.output
    assert "Traceback" not in result.output
    assert engine.served() == "s0"
