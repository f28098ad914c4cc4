"""The per-query time and memory limits: one mechanism wherever the app runs.

Oxigraph evaluates a query with the GIL released and cannot cancel it, so each query runs in a
thread of the serving process while the request waits for it against a deadline. Past the deadline
the request is answered 503 at once; the runaway computation cannot be stopped from inside, so the
process retires: under gunicorn (`medcode serve`) the worker stops as soon as the answer is sent. It
takes no new connection, lets the requests its other threads are serving finish (each under its own
limit; gunicorn's graceful timeout bounds the wait) and exits, so the runaway thread dies with it;
the arbiter starts a fresh worker while the others keep serving. Until then the runaway thread runs at
the lowest CPU priority (Linux: a thread's own nice value, 19), so that on a busy machine it no longer
takes a core from the requests still being served. Elsewhere (the Flask test client, another WSGI
server) nothing can stop the thread; that is logged.

A runaway query can also allocate fast (half a gigabyte a second for a large DISTINCT or sort), so
while it waits the request also watches its process's resident memory: growth past the memory limit
during the query ends it the same way, long before the time limit would.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Response, after_this_request

T = TypeVar("T")
log = logging.getLogger(__name__)
POLL = 0.05  # seconds between memory readings while a query runs (a faster query is never polled)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class TimeLimitExceeded(Exception):
    """The query passed its time or memory limit (the request is answered, the process retires)."""


def resident_bytes() -> int:
    """This process's resident memory (0 where /proc is not there: then memory is not watched)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


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
        log.warning("a query passed its time or memory limit and keeps running in the background: serve with "
                    "`medcode serve` (gunicorn) so that the process running it is replaced")


class _Job:
    """One query handed to a runner thread, and its outcome."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work, self.done = work, threading.Event()
        self.ok, self.value = False, None  # type: tuple[bool, object]
        self.thread = 0  # the runner's native thread id, once it has started
        self.abandoned = False

    def abandon(self) -> None:
        """Given up at its limit: its runner yields the CPU to every other thread on the machine."""
        self.abandoned = True
        if not self.thread:  # not started yet: it will not start the work (see run)
            return
        try:
            os.setpriority(os.PRIO_PROCESS, self.thread, 19)  # Linux: the thread alone
        except (AttributeError, OSError):  # another platform, or the thread has just ended
            pass

    def run(self) -> None:
        self.thread = threading.get_native_id()
        try:
            if self.abandoned:
                raise TimeLimitExceeded("given up before it started")
            self.value, self.ok = self.work(), True
        except BaseException as exc:  # handed to the request thread, which re-raises it
            self.value = exc
        finally:
            self.done.set()


class _Runners:
    """Threads that run queries, kept between requests (a hand-off costs ~20 µs; a new thread ~250 µs).

    A runner whose query passed the limit is simply not waited for; it ends if its query ever does
    (it runs at the lowest priority, which it cannot give back). Threads do not survive a fork, so a
    forked process starts a pool of its own.
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
            job = inbox.get()
            job.run()
            if job.abandoned:
                return
            with self.lock:
                self.idle.append(inbox)


_RUNNERS = _Runners()


def _wait(job: _Job, timeout: float, memory: int) -> str | None:
    """None once `job` is done; else why it was given up: past `timeout` s or `memory` bytes (0: unwatched)."""
    deadline = time.monotonic() + timeout
    baseline = resident_bytes() if memory else 0
    while not job.done.wait(max(0.0, min(POLL if baseline else timeout, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return f"the query did not finish within the {timeout:g} s time limit and was stopped"
        if resident_bytes() - baseline > memory:
            return f"the query used more than {memory / (1 << 20):g} MiB of memory and was stopped"
    return None


def run_with_limit(work: Callable[[], T], timeout: float, *, supervised: bool, memory: int = 0) -> T:
    """`work()` if it finishes within `timeout` seconds and adds at most `memory` bytes to the process;
    else TimeLimitExceeded, and the process retires."""
    job = _Job(work)
    _RUNNERS.submit(job)
    stopped = _wait(job, timeout, memory)
    if stopped:
        job.abandon()
        _retire(supervised)
        raise TimeLimitExceeded(stopped)
    if not job.ok:
        raise job.value  # type: ignore[misc]
    return job.value  # type: ignore[return-value]
