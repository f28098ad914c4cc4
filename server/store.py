"""The embedded store: a read-only snapshot, queried through killable worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, PREFIXES
from kg.snapshot import current_snapshot, open_store, read_meta

from .executor import QueryExecutor

INFERENCE_GRAPHS = {
    "all": [str(GRAPH_ASSERTED), str(GRAPH_INFERRED)],
    "asserted": [str(GRAPH_ASSERTED)],
    "inferred": [str(GRAPH_INFERRED)],
}


class SnapshotMissing(RuntimeError):
    """No snapshot has been built in the data directory yet."""


class EmbeddedStore:
    """Opens the live snapshot once; queries run in worker processes with a time limit."""

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
        self._local = None

    @property
    def local(self):
        """An in-process read-only handle for the server's own small, known-cheap lookups."""
        if self._local is None:
            self._local = open_store(self.snapshot)
        return self._local

    def query(self, query: str, *, fmt: str, limit: int, timeout: float,
              default_graph: list[str] | None, named_graphs: list[str] | None,
              bindings: dict[str, tuple] | None = None) -> tuple[str, object]:
        return self.executor.run({
            "query": query, "format": fmt, "limit": limit, "prefixes": self.prefixes,
            "default_graph": default_graph, "named_graphs": named_graphs, "bindings": bindings,
        }, timeout)

    def close(self) -> None:
        self.executor.close()
