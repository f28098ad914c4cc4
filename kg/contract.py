"""The snapshot contract: everything `server` may know of `kg` (graph IRIs, file layout, read-only access).

A snapshot is a directory holding an on-disk Oxigraph store (opened read-only in a fraction of a
second), a portable N-Quads dump, ``meta.json``, the search index and the exports' answers
(``answers/``). ``<data>/current`` is a symlink to the live
one. `kg` writes snapshots; everything here only reads them, or names where a published one lives.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import IO, Any, NamedTuple

import pyoxigraph as ox
import yaml

from .namespaces import (
    DCTERMS,
    GRAPH_ASSERTED,
    GRAPH_DERIVATIONS,
    GRAPH_INFERRED,
    GRAPH_META,
    ID_BASE,
    MC,
    ONTOLOGY_IRI,
    PREFIXES,
    QUERIES_DIR,
)

__all__ = [
    "ANSWERS_DIR", "ANSWERS_INDEX", "CURRENT", "DCTERMS", "DUMP_FILE", "ENGINE_SCHEME", "GRAPH_ASSERTED",
    "GRAPH_DERIVATIONS", "GRAPH_INFERRED", "GRAPH_META", "ID_BASE", "INFERENCE_GRAPHS", "LOCAL_GRAPHS", "MC",
    "META_FILE", "ONTOLOGY_IRI", "PIN_FILE", "PREFIXES", "QUERIES_DIR", "SEARCH_INDEX",
    "STORE_DIR", "DatedState", "current_snapshot", "dated_graphs", "dated_state", "first_dated",
    "answer_digest", "default_data_dir", "engine_message", "engine_url", "is_pinned", "kept_answer", "open_store",
    "pin", "query_header", "read_meta", "verify_snapshot",
]

CURRENT = "current"  # <data>/current -> snapshots/<id>, the live snapshot
STORE_DIR = "store"  # <snapshot>/store: the on-disk Oxigraph store
DUMP_FILE = "medcode.nq"  # <snapshot>/medcode.nq: the portable N-Quads dump
META_FILE = "meta.json"  # <snapshot>/meta.json: id, build time, versions, triple counts
SEARCH_INDEX = "search.sqlite"  # <snapshot>/search.sqlite: the code search index (SQLite FTS5), read-only
PIN_FILE = ".pin"  # <snapshot>/.pin: every process serving the snapshot holds a shared lock on it
#: <snapshot>/answers/<digest>.csv: the exports' query answers in SPARQL CSV (kg/export_answers.py); its
#: index.json maps each digest to the answer's size in bytes
ANSWERS_DIR = "answers"
ANSWERS_INDEX = "index.json"
#: the default graph a query sees for each `inference=` choice
INFERENCE_GRAPHS = {
    "all": [str(GRAPH_ASSERTED), str(GRAPH_INFERRED)],
    "asserted": [str(GRAPH_ASSERTED)],
    "inferred": [str(GRAPH_INFERRED)],
}
#: every graph a query may name (FROM, FROM NAMED, GRAPH): the two above and the derivations graph
LOCAL_GRAPHS = [*INFERENCE_GRAPHS["all"], str(GRAPH_DERIVATIONS)]


def query_header(text: str) -> Any:
    """The YAML of a named query's `#+ ` lines (None when there are none): the one reading of the header of
    queries/ files, for the build (the exports' kept answers) and the server alike; yaml.YAMLError when bad."""
    return yaml.safe_load("\n".join(line[3:] for line in text.splitlines() if line.startswith("#+ ")))
#: meta.json's key for the graphs of each ICD-10-CM release's state: {notation: {effective, asserted, inferred}}
DATED = "icd10cm_dated"
ENGINE_SCHEME = "sparql+"  # MEDCODE_STORE=sparql+http://host:port/sparql names a remote engine


def default_data_dir() -> Path:
    """$MEDCODE_DATA, else ./data under the working directory."""
    return Path(os.environ.get("MEDCODE_DATA", "data")).resolve()


def current_snapshot(data_dir: Path) -> Path | None:
    """The live snapshot's directory, or None before the first build."""
    link = data_dir / CURRENT
    return link.resolve() if link.exists() else None


def read_meta(snapshot: Path) -> dict[str, Any]:
    """The snapshot's id, build time, versions and triple counts."""
    return json.loads((snapshot / META_FILE).read_text(encoding="utf-8"))


def open_store(snapshot: Path) -> ox.Store:
    """Open a snapshot's store read-only (the server never writes it)."""
    return ox.Store.read_only(str(snapshot / STORE_DIR))


def answer_digest(query: str, default_graph: list[str]) -> str:
    """What names a kept answer: the query's exact text and the default graph it reads."""
    return hashlib.sha256("\n".join([query, *default_graph]).encode()).hexdigest()[:32]


def kept_answer(snapshot: Path, query: str, default_graph: list[str]) -> bytes | None:
    """The SPARQL CSV answer the build kept for `query` over `default_graph` (the local graphs as named graphs,
    the contract's prefixes); None when it kept none (another query text, a dated state, an older snapshot) or
    the file is not the one the build wrote."""
    digest = answer_digest(query, default_graph)
    try:
        size = json.loads((snapshot / ANSWERS_DIR / ANSWERS_INDEX).read_text(encoding="utf-8")).get(digest)
        answer = (snapshot / ANSWERS_DIR / f"{digest}.csv").read_bytes() if size is not None else None
    except (OSError, ValueError):
        return None
    return answer if answer is not None and len(answer) == size else None


def verify_snapshot(snapshot: Path) -> list[str]:
    """What is wrong with a snapshot, if anything: unreadable metadata, a store that does not open, or graphs
    whose triple counts differ from what the build recorded (a truncated or half-copied snapshot)."""
    try:
        meta = read_meta(snapshot)
        expected = dict(meta["triples"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{snapshot / META_FILE}: unreadable ({exc})"]
    if not (snapshot / DUMP_FILE).is_file():
        return [f"{snapshot / DUMP_FILE}: missing (publish needs it)"]
    try:
        store = open_store(snapshot)
    except (OSError, RuntimeError, ValueError) as exc:
        return [f"{snapshot / STORE_DIR}: the store does not open ({str(exc).splitlines()[0]})"]
    problems = []
    for graph, count in expected.items():
        query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
        try:
            found = int(next(iter(store.query(query)))["n"].value)
        except (OSError, RuntimeError, ValueError) as exc:
            problems.append(f"<{graph}>: unreadable ({exc})")
            continue
        if found != count:
            problems.append(f"<{graph}>: {found:,} triples where the build wrote {count:,}")
    return problems


def pin(snapshot: Path) -> IO[bytes]:
    """Hold a shared lock on the snapshot for as long as the returned file stays open.

    Pruning old snapshots skips any snapshot someone holds (see `is_pinned`), so a running server never
    loses the files it serves; the lock goes with the process, however it ends.
    """
    handle = (snapshot / PIN_FILE).open("a+b")
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def is_pinned(snapshot: Path) -> bool:
    """Whether any process holds the snapshot (a non-blocking exclusive lock fails)."""
    try:
        with (snapshot / PIN_FILE).open("a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    except FileNotFoundError:
        return False
    return False


class DatedState(NamedTuple):
    """The state of the graph on a date: the ICD-10-CM release in force (notation, the date it took effect) and the
    default graph a query sees then (for the `inference=` choice asked)."""

    release: str
    effective: str
    graphs: list[str]

    @property
    def named_graphs(self) -> list[str]:
        """The graphs `GRAPH` may name on that date: the state's own and the derivations graph (today's on every
        date)."""
        return [*self.graphs, str(GRAPH_DERIVATIONS)]


def dated_state(meta: dict[str, Any], when: date, inference: str = "all") -> DatedState | None:
    """The state on `when`: that of the latest release held that took effect on or before it (a later date: the
    current state, whose graphs are INFERENCE_GRAPHS'); None before the first release held (or in a snapshot built
    before dated states existed, which holds none)."""
    held = sorted(meta.get(DATED, {}).items(), key=lambda item: item[1]["effective"])
    earlier = [(notation, state) for notation, state in held if date.fromisoformat(state["effective"]) <= when]
    if not earlier:
        return None
    notation, state = earlier[-1]
    parts = ("asserted", "inferred") if inference == "all" else (inference,)
    return DatedState(notation, state["effective"], list(dict.fromkeys(g for part in parts for g in state[part])))


def first_dated(meta: dict[str, Any]) -> tuple[str, str] | None:
    """The first release held: (notation, the date it took effect), or None."""
    held = sorted(((s["effective"], n) for n, s in meta.get(DATED, {}).items()))
    return (held[0][1], held[0][0]) if held else None


def dated_graphs(meta: dict[str, Any]) -> set[str]:
    """Every graph of a dated state (which FROM, GRAPH and default-graph-uri may name, as the local graphs)."""
    return {g for state in meta.get(DATED, {}).values() for part in ("asserted", "inferred") for g in state[part]}


def engine_url(location: str) -> str:
    """The engine's HTTP URL from a MEDCODE_STORE-style location (`sparql+http://...`) or a plain URL."""
    return location[len(ENGINE_SCHEME):] if location.startswith(ENGINE_SCHEME) else location


def engine_message(text: str) -> str:
    """An engine's error text, short: Virtuoso echoes the whole query after its message."""
    return text.strip().replace("\r", "").split("\n\nSPARQL query:", 1)[0][:500]
