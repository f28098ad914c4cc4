"""A page's independent queries at once when each is a round trip to a remote engine.

Against Virtuoso every query costs a round trip (5-15 ms even for a one-row answer) and a page asks
a dozen; those that do not need each other's answers are sent together, each from its own thread
with a copy of the request context (the store's HTTP session and answer cache are thread-safe).
The embedded store answers in-process in a fraction of a millisecond, where threads would only add
their own cost, so there the calls run one after the other, as they always did.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import copy_current_request_context

from ..store import get_store

MAX_THREADS = 8
_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()
_inside = threading.local()  # set in the pool's threads: a gather there runs its calls in line


def remote() -> bool:
    """Is the app reading a remote engine (the store serves no local snapshot directory)?"""
    return get_store().snapshot is None


def _executor() -> ThreadPoolExecutor:
    """This process' pool (a worker forked from a parent that had one starts its own: threads do not fork)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="page-query",
                                                     initializer=lambda: setattr(_inside, "yes", True)))
        return _pool[1]


def gather(*calls: Callable[[], Any]) -> list[Any]:
    """The results of `calls`, in order; concurrently in remote mode. The first failure is raised.

    A gather inside a gathered call runs in line, so a full pool can never wait on itself.
    """
    if len(calls) < 2 or not remote() or getattr(_inside, "yes", False):
        return [call() for call in calls]
    pool = _executor()
    futures = [pool.submit(copy_current_request_context(call)) for call in calls[1:]]
    first = calls[0]()  # the calling thread takes one call itself
    return [first, *(future.result() for future in futures)]
