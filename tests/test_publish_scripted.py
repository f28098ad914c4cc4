"""`medcode publish` without Virtuoso: how a dump is cut into Graph Store posts, the default URLs, and the
swap against a scripted engine that refuses one big transaction."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from helpers import free_port
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, GRAPH_META
from kg.publish import STAGING, _chunks, default_urls, publish


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


class ScriptedEngine:
    """Graph Store posts, counts and updates over an in-memory dict of graphs; refuses multi-MOVE updates
    the way Virtuoso refuses a transaction that is too large."""

    def __init__(self) -> None:
        self.graphs: dict[str, set[str]] = {}
        self.updates: list[str] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.endswith("graph-crud"):
            graph = request.args["graph"]
            self.graphs.setdefault(graph, set()).update(request.get_data(as_text=True).splitlines())
            return Response(status=201)(environ, start_response)
        if "update" in request.form:
            text = request.form["update"]
            self.updates.append(text)
            if text.count("MOVE") > 1:
                return Response("Virtuoso 40005 Error SR325: Transaction aborted because it's log after image size "
                                "went above the limit", status=500, content_type="text/plain")(environ, start_response)
            for source, target in re.findall(r"MOVE SILENT <([^>]+)> TO <([^>]+)>", text):
                self.graphs[target] = self.graphs.pop(source, set())
            for graph in re.findall(r"DROP SILENT GRAPH <([^>]+)>", text):
                self.graphs.pop(graph, None)
            return Response("ok", content_type="text/plain")(environ, start_response)
        query = request.form["query"]
        if "identifier" in query:  # which snapshot is served: one once a meta graph exists
            rows = [{"id": {"type": "literal", "value": "old"}}] if str(GRAPH_META) in self.graphs else []
            body = {"head": {"vars": ["id"]}, "results": {"bindings": rows}}
            return Response(json.dumps(body), content_type="application/sparql-results+json")(environ, start_response)
        match = re.search(r"GRAPH <([^>]+)> \{ \?s \?p \?o", query)
        rows = [{"n": {"type": "literal", "value": str(len(self.graphs.get(match.group(1), ())))}}] if match else []
        body = {"head": {"vars": ["n"]}, "results": {"bindings": rows}}
        return Response(json.dumps(body), content_type="application/sparql-results+json")(environ, start_response)


def _publish(tmp_path: Path, engine: ScriptedEngine) -> tuple[dict[str, int], list[str], dict[str, int]]:
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    graphs = {str(GRAPH_ASSERTED): 3, str(GRAPH_INFERRED): 2}
    (snapshot / "medcode.nq").write_text("".join(f'<http://e/{g[-1]}{i}> <http://e/p> "x" <{g}> .\n'
                                                 for g, n in graphs.items() for i in range(n)))
    (snapshot / "meta.json").write_text(json.dumps({"snapshot": "s1", "triples": graphs}))
    server = make_server("127.0.0.1", free_port(), engine, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        lines: list[str] = []
        live = publish(snapshot, f"{base}/sparql", graph_store_url=f"{base}/graph-crud", echo=lines.append)
    finally:
        server.shutdown()
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
