"""The store the app reads: the embedded snapshot or a remote SPARQL engine, behind one interface.

Flask's resource pattern: `init_app(app)` opens the store named by the settings once per process,
`get_store()` is how every surface reaches it, and the store is closed when the process exits.
"""

from __future__ import annotations

import atexit
import json
from datetime import date
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from kg.contract import INFERENCE_GRAPHS, default_data_dir

from .base import QueryError, SnapshotMissing, Store
from .cache import AnswerCache
from .dated import parse_as_of, state_on
from .embedded import EmbeddedStore
from .remote import RemoteStore, is_remote

__all__ = ["INFERENCE_GRAPHS", "EmbeddedStore", "QueryError", "RemoteStore", "SnapshotMissing", "Store",
           "get_store", "init_app", "open_store", "parse_as_of", "run_query", "select", "state_on"]

EXTENSION = "medcode.store"


def open_store(config: dict[str, Any]) -> Store:
    """The store the settings name: the embedded snapshot (default) or a remote SPARQL engine."""
    location = config["MEDCODE_STORE"] or "embedded"
    answers = AnswerCache(config["ANSWER_CACHE_BYTES"])
    if is_remote(location):
        return RemoteStore(location, answers=answers)
    if location != "embedded":
        raise ValueError(f"MEDCODE_STORE must be 'embedded' or sparql+http(s)://host/path, not {location!r}")
    snapshot = config.get("MEDCODE_SNAPSHOT")
    return EmbeddedStore(Path(config["MEDCODE_DATA"] or default_data_dir()), Path(snapshot) if snapshot else None,
                         answers=answers, memory=config["QUERY_MEMORY"])


def init_app(app: Flask) -> None:
    """Open the app's store; it is closed when the process exits (workers, pools, connections)."""
    store = open_store(app.config)
    app.extensions[EXTENSION] = store
    atexit.register(store.close)


def get_store() -> Store:
    """The current app's store."""
    return current_app.extensions[EXTENSION]


def run_query(query: str, *, fmt: str, graphs: str = "all", named: str | list[str] | None = "all",
              bindings: dict[str, tuple] | None = None, bulk: bool = False, as_of: date | None = None) -> bytes:
    """A surface's own query through the app's store, under the app's limits.

    `graphs`/`named` pick the default and named graphs by `inference=` name (`named` may also list graph
    IRIs, such as the derivations graph); `as_of` reads the state of that date instead (its graphs for the
    `graphs` choice, as default and named graphs); `bulk` uses the export limits (rows, time) instead of the
    interactive ones.
    """
    cfg = current_app.config
    store = get_store()
    state = None if as_of is None else state_on(store.meta, as_of, graphs)
    default = INFERENCE_GRAPHS[graphs] if state is None else state.graphs
    if state is not None:
        named = state.named_graphs
    return store.query(
        query, fmt=fmt, bindings=bindings,
        limit=cfg["EXPORT_MAX_ROWS"] if bulk else cfg["MAX_RESULTS"],
        timeout=cfg["EXPORT_TIMEOUT"] if bulk else cfg["QUERY_TIMEOUT"],
        default_graph=default,
        named_graphs=(INFERENCE_GRAPHS[named] if isinstance(named, str) else list(named)) if named else None)


def select(query: str, **options: Any) -> list[dict[str, dict[str, str]]]:
    """The rows of a SELECT as SPARQL JSON bindings (`run_query` options)."""
    return json.loads(run_query(query, fmt="json", **options))["results"]["bindings"]
