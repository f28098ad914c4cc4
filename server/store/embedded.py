"""The embedded store: a read-only snapshot in this process, every query under a hard time limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kg.contract import LOCAL_GRAPHS, PREFIXES, current_snapshot, dated_graphs, open_store, pin, read_meta

from ..named_queries import bind_values
from . import query_worker
from .base import AnsweringStore, QueryError, SnapshotMissing
from .cache import AnswerCache
from .timelimit import TimeLimitExceeded, run_with_limit

#: worker outcome -> (HTTP status, message prefix)
_OUTCOMES = {"syntax": (400, "SPARQL syntax error: "), "limit": (400, ""),
             "error": (500, "The query could not be evaluated: ")}


def _supervised() -> bool:
    """Whether this request is served by a gunicorn worker (which may retire and be replaced)."""
    from flask import has_request_context, request

    return has_request_context() and "gunicorn.socket" in request.environ


class EmbeddedStore(AnsweringStore):
    """One snapshot, opened read-only once per process and pinned for as long as the process serves it.

    `snapshot` is the directory to serve; by default the data directory's live one at opening time.
    A later build changes nothing here: switching is the server's explicit reload (README).
    """

    def __init__(self, data_dir: Path, snapshot: Path | None = None, *, answers: AnswerCache | None = None,
                 memory: int = 0) -> None:
        snapshot = snapshot or current_snapshot(data_dir)
        if snapshot is None:
            raise SnapshotMissing(f"no snapshot in {data_dir}; run `medcode build` first")
        self.snapshot = snapshot
        self.meta: dict[str, Any] = read_meta(snapshot)
        self.etag = self.meta["snapshot"]
        self.graphs = set(LOCAL_GRAPHS) | dated_graphs(self.meta)  # the graphs a query may name
        self.prefixes = dict(PREFIXES)
        self._pin = pin(snapshot)
        self._store = open_store(snapshot)
        self.answers = answers or AnswerCache(0)
        self.memory = memory  # bytes a query may add to this process (0: not watched)

    def _evaluate(self, query: str, fmt: str, limit: int, timeout: float, default_graph: list[str] | None,
                  named_graphs: list[str] | None, bindings: dict[str, tuple] | None) -> bytes:
        request = {"query": bind_values(query, bindings or {}), "format": fmt, "limit": limit,
                   "prefixes": self.prefixes, "default_graph": default_graph, "named_graphs": named_graphs}
        try:
            status, payload = run_with_limit(lambda: query_worker.run(self._store, request), timeout,
                                             supervised=_supervised(), memory=self.memory)
        except TimeLimitExceeded as exc:
            raise QueryError(503, f"Query stopped: {exc}.") from exc
        if status != "ok":
            code, prefix = _OUTCOMES.get(status, _OUTCOMES["error"])
            raise QueryError(code, f"{prefix}{payload}")
        return payload

    def close(self) -> None:
        self._pin.close()
