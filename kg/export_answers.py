"""The exports' query answers, asked once by the build and kept in the snapshot.

A snapshot never changes, so a crosswalk's query over it always gives the same answer, and the largest (the
ICD-10-CM hierarchy, ~98.5k rows) is most of a first download's CPU: the on-disk store's look-up of every label
and IRI, seconds of it. The build asks each export query of queries/ (a named query with an `export:` block)
on the written store exactly as the server's exports ask it (its default graph, the local graphs as named
graphs, the contract's prefixes, Oxigraph's SPARQL CSV) and keeps the answer under `answers/`, named by a digest
of the query text and its default graph (kg.contract.kept_answer). The server gives a kept answer instead of
asking its store; an edited query, another queries directory, a dated state (`as_of`) or a remote engine is
asked as before. Not kept: an answer of one variable (Oxigraph's CSV writes an unbound one as an empty line,
the server's writer as `""`) or over MAX_BYTES (an NCCI-scale table: the server's row limit decides there).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyoxigraph as ox

from .contract import (
    ANSWERS_DIR,
    ANSWERS_INDEX,
    INFERENCE_GRAPHS,
    LOCAL_GRAPHS,
    PREFIXES,
    answer_digest,
    open_store,
    query_header,
)
from .namespaces import QUERIES_DIR

MAX_BYTES = 64 << 20


class _TooLarge(Exception):
    """The answer passed MAX_BYTES while it was being written."""


class _Capped(io.RawIOBase):
    """A sink for Oxigraph's writer that gives up past MAX_BYTES."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:  # type: ignore[override]
        self.size += len(chunk)
        if self.size > MAX_BYTES:
            raise _TooLarge
        self.parts.append(bytes(chunk))
        return len(chunk)


def export_queries(directory: Path = QUERIES_DIR) -> list[tuple[str, list[str]]]:
    """(text, default graph) of every export query in `directory`, in file order."""
    found = []
    for path in sorted(directory.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        header = query_header(text) or {}
        export = header.get("export") if isinstance(header, dict) else None
        if isinstance(export, dict) and not header.get("params"):
            found.append((text, INFERENCE_GRAPHS[export.get("graphs", "all")]))
    return found


def _answer(store: ox.Store, text: str, default_graph: list[str]) -> bytes | None:
    solutions = store.query(text, default_graph=[ox.NamedNode(g) for g in default_graph],
                            named_graphs=[ox.NamedNode(g) for g in LOCAL_GRAPHS], prefixes=PREFIXES)
    if not isinstance(solutions, ox.QuerySolutions) or len(solutions.variables) < 2:
        return None
    sink = _Capped()
    try:
        solutions.serialize(sink, format=ox.QueryResultsFormat.CSV)
    except _TooLarge:
        return None
    return b"".join(sink.parts)


def write_answers(snapshot: Path, directory: Path = QUERIES_DIR) -> dict[str, int]:
    """Ask each export query of `directory` on the complete `snapshot`'s store (opened read-only: the store
    being written answered the hierarchy about 3x slower, its compaction under way) and keep the answers under
    `snapshot`/answers with their index (digest -> bytes), which is returned."""
    kept: dict[str, int] = {}
    store = open_store(snapshot)
    (snapshot / ANSWERS_DIR).mkdir(exist_ok=True)
    for text, default_graph in export_queries(directory):
        answer = _answer(store, text, default_graph)
        if answer is None:
            continue
        digest = answer_digest(text, default_graph)
        (snapshot / ANSWERS_DIR / f"{digest}.csv").write_bytes(answer)
        kept[digest] = len(answer)
    (snapshot / ANSWERS_DIR / ANSWERS_INDEX).write_text(json.dumps(kept, indent=1), encoding="utf-8")
    return kept
