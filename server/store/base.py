"""What the app needs from a store; the embedded snapshot and a remote engine both provide it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..http.errors import HTTPError
from .cache import AnswerCache, answer_key


class Store(Protocol):
    """What the app needs from a store: the embedded snapshot and a remote engine both provide it."""

    snapshot: Path | None  # the snapshot directory served (None for a remote engine)
    graphs: set[str]  # the named graphs a query may name (FROM, default-graph-uri, ...)
    prefixes: dict[str, str]  # prefixes a query may use without declaring them

    @property
    def meta(self) -> dict[str, Any]:
        """The live snapshot's metadata (id, build time, versions, triple counts)."""

    @property
    def etag(self) -> str:
        """Changes whenever the data does (the snapshot id)."""

    def query(self, query: str, *, fmt: str, limit: int, timeout: float, default_graph: list[str] | None,
              named_graphs: list[str] | None, bindings: dict[str, tuple] | None = None) -> bytes:
        """The answer serialised in `fmt`; raises QueryError with the HTTP status that says why not."""

    def close(self) -> None:
        """Release processes and connections."""


class AnsweringStore:
    """A store's one query path: the answer cache (keyed by the snapshot id, so a cached answer is never stale)
    in front of the store's own `_evaluate`."""

    answers: AnswerCache
    etag: str

    def query(self, query: str, *, fmt: str, limit: int, timeout: float,
              default_graph: list[str] | None, named_graphs: list[str] | None,
              bindings: dict[str, tuple] | None = None) -> bytes:
        """The serialised answer, from the cache or `_evaluate`; raises QueryError with the HTTP status."""
        key = answer_key(self.etag, query, fmt, limit, default_graph, named_graphs, bindings)
        return self.answers.answer(key, lambda: self._evaluate(query, fmt, limit, timeout, default_graph,
                                                               named_graphs, bindings))

    def _evaluate(self, query: str, fmt: str, limit: int, timeout: float, default_graph: list[str] | None,
                  named_graphs: list[str] | None, bindings: dict[str, tuple] | None) -> bytes:
        raise NotImplementedError


class SnapshotMissing(RuntimeError):
    """No snapshot has been built in the data directory yet."""


class QueryError(HTTPError):
    """A query could not be answered; `status` is the HTTP status that says why."""
