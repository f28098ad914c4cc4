"""How `medcode publish` cuts a snapshot dump into Graph Store posts (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from kg.publish import _chunks, default_urls


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
