"""The per-query time limit: one mechanism wherever the app runs.

Oxigraph evaluates a query with the GIL released and cannot cancel it, so each query runs in a
thread of the serving process while the request waits for it against a deadline. Past the deadline
the request is answered 503 at once; the runaway computation cannot be stopped from inside, so the
process retires: under gunicorn (`medcode serve`) the worker is told to exit as soon as the answer is
sent (it exits at once, so the thread dies with it) and the arbiter starts a fresh worker while the others keep serving.
Elsewhere (the Flask test client, another WSGI server) nothing can stop the thread; that is logged.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from flask import Response, after_this_request

T = TypeVar("T")
log = logging.getLogger(__name__)


class TimeLimitExceeded(Exception):
    """The query did not finish within its time limit (the request is answered, the process retires)."""


EXIT_CODE = 75  # a retired worker's exit status (not 3 or 4: gunicorn's arbiter halts on those)


def _exit_after(response: Response) -> Response:
    response.headers["Connection"] = "close"
    response.call_on_close(lambda: os._exit(EXIT_CODE))  # once the answer is sent: the thread dies with us
    return response


def _retire(supervised: bool) -> None:
    """End this process after the current answer, when a supervisor will replace it."""
    if supervised:
        after_this_request(_exit_after)
    else:
        log.warning("a query passed its time limit and keeps running in the background: serve with "
                    "`medcode serve` (gunicorn) so that the process running it is replaced")


def run_with_limit(work: Callable[[], T], timeout: float, *, supervised: bool) -> T:
    """`work()` if it finishes within `timeout` seconds; else TimeLimitExceeded, and the process retires."""
    outcome: list = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the request thread, which re-raises it
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=target, name="medcode-query", daemon=True).start()
    if not done.wait(timeout):
        _retire(supervised)
        raise TimeLimitExceeded(f"the query did not finish within the {timeout:g} s time limit and was stopped")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
