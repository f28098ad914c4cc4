"""The embedded store: a read-only snapshot, every query under a hard time limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kg.contract import INFERENCE_GRAPHS, PREFIXES, current_snapshot, read_meta

from ..http.errors import error_body
from ..named_queries import bind_values
from .base import QueryError, SnapshotMissing
from .executor import QueryExecutor, QueryTimeout, WorkerFailed
from .watchdog import InProcessExecutor

#: worker outcome -> (HTTP status, message prefix)
_OUTCOMES = {"syntax": (400, "SPARQL syntax error: "), "limit": (400, ""),
             "error": (500, "The query could not be evaluated: ")}


def _gunicorn_socket():
    """The client socket when serving under gunicorn's sync worker, else None."""
    from flask import has_request_context, request

    return request.environ.get("gunicorn.socket") if has_request_context() else None


class EmbeddedStore:
    """Opens the live snapshot once; every query has a hard time limit.

    Under gunicorn a query runs in the serving process, watched by a thread that answers 503 and
    ends the worker if it overruns; anywhere else (tests, the dev server) it runs in a killable
    worker process.
    """

    def __init__(self, data_dir: Path, workers: int = 2) -> None:
        snapshot = current_snapshot(data_dir)
        if snapshot is None:
            raise SnapshotMissing(f"no snapshot in {data_dir}; run `medcode build` first")
        self.snapshot = snapshot
        self.meta: dict[str, Any] = read_meta(snapshot)
        self.etag = self.meta["snapshot"]
        self.graphs = set(INFERENCE_GRAPHS["all"])
        self.prefixes = dict(PREFIXES)
        self.executor = QueryExecutor(str(snapshot / "store"), size=workers)
        self.in_process = InProcessExecutor(str(snapshot / "store"))

    def query(self, query: str, *, fmt: str, limit: int, timeout: float,
              default_graph: list[str] | None, named_graphs: list[str] | None,
              bindings: dict[str, tuple] | None = None) -> bytes:
        """The serialised answer; raises QueryError (400 syntax/size, 500 engine, 503 time limit)."""
        request = {"query": bind_values(query, bindings or {}), "format": fmt, "limit": limit,
                   "prefixes": self.prefixes, "default_graph": default_graph, "named_graphs": named_graphs}
        sock = _gunicorn_socket()
        if sock is not None:
            answer = error_body(503, f"Query stopped: the query did not finish within the {timeout:g} s time "
                                     "limit and was stopped.")
            status, payload = self.in_process.run(request, timeout, sock, answer)
        else:
            try:
                status, payload = self.executor.run(request, timeout)
            except QueryTimeout as exc:
                raise QueryError(503, f"Query stopped: {exc}.") from exc
            except WorkerFailed as exc:
                raise QueryError(503, f"Query failed: {exc}; please retry.") from exc
        if status != "ok":
            code, prefix = _OUTCOMES.get(status, _OUTCOMES["error"])
            raise QueryError(code, f"{prefix}{payload}")
        return payload

    def close(self) -> None:
        self.executor.close()
