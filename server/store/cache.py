"""Answers reused while the snapshot stays the same: the snapshot is immutable, so a query's answer is too.

Both stores key every answer by their snapshot id (a publish or a new snapshot changes the key, so
nothing stale is ever served) plus the query text, the format, the dataset and the row limit. The
cache is per process and bounded: an entry costs its answer's bytes plus its query text's (a long
query with a short answer is not nearly free), entries over `MAX_ENTRY` are never kept, and the least
recently used ones go once the kept entries pass the byte budget in all. Failures are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

MAX_BYTES = 64 << 20   # default budget of one process
MAX_ENTRY = 1 << 20    # one answer; larger ones (exports, big pages) are recomputed


class AnswerKey(NamedTuple):
    """Everything an answer depends on."""

    etag: str
    query: str
    fmt: str
    limit: int
    default_graph: tuple[str, ...] | None
    named_graphs: tuple[str, ...] | None
    bindings: tuple


class AnswerCache:
    """A thread-safe LRU of answers, bounded in bytes (a budget of 0 keeps nothing)."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_entry: int = MAX_ENTRY) -> None:
        self.max_bytes, self.max_entry = max_bytes, min(max_entry, max_bytes)
        self.answers: OrderedDict[AnswerKey, bytes] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def answer(self, key: AnswerKey, compute: Callable[[], bytes]) -> bytes:
        """The kept answer for `key`, else `compute()` (kept if it is small enough)."""
        with self.lock:
            found = self.answers.get(key)
            if found is not None:
                self.answers.move_to_end(key)
                return found
        answer = compute()
        if self.max_bytes and _cost(key, answer) <= self.max_entry:
            self._keep(key, answer)
        return answer

    def _keep(self, key: AnswerKey, answer: bytes) -> None:
        with self.lock:
            if key in self.answers:
                return
            self.answers[key] = answer
            self.size += _cost(key, answer)
            while self.size > self.max_bytes:
                dropped_key, dropped = self.answers.popitem(last=False)
                self.size -= _cost(dropped_key, dropped)


def _cost(key: AnswerKey, answer: bytes) -> int:
    return len(answer) + len(key.query)


def answer_key(etag: str, query: str, fmt: str, limit: int, default_graph: list[str] | None,
               named_graphs: list[str] | None, bindings: dict[str, tuple] | None) -> AnswerKey:
    """Everything an answer depends on (None and [] datasets differ: None means the store's own)."""
    return AnswerKey(etag, query, fmt, limit, None if default_graph is None else tuple(default_graph),
                     None if named_graphs is None else tuple(named_graphs),
                     tuple(sorted(bindings.items())) if bindings else ())
