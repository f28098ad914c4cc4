"""The per-query time limit: one mechanism wherever the app runs.

Oxigraph evaluates a query with the GIL released and cannot cancel it, so each query runs in a
thread of the serving process while the request waits for it against a deadline. Past the deadline
the request is answered 503 at once; the runaway computation cannot be stopped from inside, so the
process retires: under gunicorn (`medcode serve`) the worker stops as soon as the answer is sent. It
takes no new connection, lets the requests its other threads are serving finish (each under its own
limit; gunicorn's graceful timeout bounds the wait) and exits, so the runaway thread dies with it;
the arbiter starts a fresh worker while the others keep serving. Elsewhere (the Flask test client,
another WSGI server) nothing can stop the thread; that is logged.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

from flask import Response, after_this_request

T = TypeVar("T")
log = logging.getLogger(__name__)


class TimeLimitExceeded(Exception):
    """The query did not finish within its time limit (the request is answered, the process retires)."""


def _exit_after(response: Response) -> Response:
    response.headers["Connection"] = "close"
    # once the answer is sent: gunicorn's graceful stop (no new connections, in-flight requests finish)
    response.call_on_close(lambda: os.kill(os.getpid(), signal.SIGTERM))
    return response


def _retire(supervised: bool) -> None:
    """End this process after the current answer, when a supervisor will replace it."""
    if supervised:
        after_this_request(_exit_after)
    else:
        log.warning("a query passed its time limit and keeps running in the background: serve with "
                    "`medcode serve` (gunicorn) so that the process running it is replaced")


class _Job:
    """One query handed to a runner thread, and its outcome."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work, self.done = work, threading.Event()
        self.ok, self.value = False, None  # type: tuple[bool, object]

    def run(self) -> None:
        try:
            self.value, self.ok = self.work(), True
        except BaseException as exc:  # handed to the request thread, which re-raises it
            self.value = exc
        finally:
            self.done.set()


class _Runners:
    """Threads that run queries, kept between requests (a hand-off costs ~20 µs; a new thread ~250 µs).

    A runner whose query passed the limit is simply not waited for; it rejoins the idle ones if its
    query ever ends. Threads do not survive a fork, so a forked process starts a pool of its own.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[queue.SimpleQueue[_Job]] = []
        self.pid = os.getpid()

    def submit(self, job: _Job) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.idle, self.pid = [], os.getpid()
            inbox = self.idle.pop() if self.idle else self._spawn()
        inbox.put(job)

    def _spawn(self) -> queue.SimpleQueue[_Job]:
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(target=self._serve, args=(inbox,), name="medcode-query", daemon=True).start()
        return inbox

    def _serve(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while True:
            inbox.get().run()
            with self.lock:
                self.idle.append(inbox)


_RUNNERS = _Runners()


def run_with_limit(work: Callable[[], T], timeout: float, *, supervised: bool) -> T:
    """`work()` if it finishes within `timeout` seconds; else TimeLimitExceeded, and the process retires."""
    job = _Job(work)
    _RUNNERS.submit(job)
    if not job.done.wait(timeout):
        _retire(supervised)
        raise TimeLimitExceeded(f"the query did not finish within the {timeout:g} s time limit and was stopped")
    if not job.ok:
        raise job.value  # type: ignore[misc]
    return job.value  # type: ignore[return-value]
