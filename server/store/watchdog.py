"""In-process queries under gunicorn, with a watchdog that stops a runaway one by ending the worker.

Oxigraph evaluates queries with the GIL released, so a watchdog thread keeps running while a query
works. When the time limit passes, the watchdog writes a complete 503 answer on the request's own
socket (gunicorn's sync worker serves one connection at a time) and ends the worker process; the
gunicorn arbiter starts a fresh one while the other workers keep answering. This avoids a
per-query hop to a helper process, which measurably halved throughput on small lookups.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pyoxigraph as ox

from . import query_worker

EXIT_CODE = 75  # not 3 or 4: gunicorn's arbiter halts on those (boot / app-load errors)


class _Watchdog(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="medcode-query-watchdog", daemon=True)
        self.lock = threading.Lock()         # held by whoever writes the response
        self.deadline: float | None = None
        self.sock: socket.socket | None = None
        self.message = b""
        self.content_type = "text/plain; charset=utf-8"
        self.wake = threading.Event()

    def arm(self, sock: socket.socket, timeout: float, answer: tuple[str, bytes]) -> None:
        self.sock = sock
        self.content_type, self.message = answer
        self.deadline = time.monotonic() + timeout
        self.wake.set()

    def disarm(self) -> None:
        with self.lock:  # never while the watchdog is answering
            self.deadline = None

    def run(self) -> None:
        while True:
            deadline = self.deadline
            if deadline is None:
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            remaining = deadline - time.monotonic()
            if remaining > 0:
                time.sleep(min(remaining, 0.05))
                continue
            if self.lock.acquire(blocking=False):
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    self._answer_and_exit()
                self.lock.release()

    def _answer_and_exit(self) -> None:
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: {self.content_type}\r\n"
                f"Content-Length: {len(self.message)}\r\nConnection: close\r\nRetry-After: 1\r\n"
                "Access-Control-Allow-Origin: *\r\nX-Content-Type-Options: nosniff\r\n\r\n").encode()
        try:
            if self.sock is not None:
                self.sock.sendall(head + self.message)
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        os._exit(EXIT_CODE)


class InProcessExecutor:
    """Runs each query in the serving process; needs the request's socket (gunicorn sync worker)."""

    def __init__(self, store_path: str) -> None:
        self.store = ox.Store.read_only(store_path)
        self.watchdog: _Watchdog | None = None
        self.pid = 0

    def _dog(self) -> _Watchdog:
        if self.watchdog is None or self.pid != os.getpid():  # threads do not survive a fork
            self.watchdog = _Watchdog()
            self.watchdog.start()
            self.pid = os.getpid()
        return self.watchdog

    def run(self, request: dict[str, Any], timeout: float, sock: socket.socket,
            answer: tuple[str, bytes]) -> tuple[str, object]:
        """Run `request`; past `timeout` the watchdog sends `answer` (content type, body) as a 503."""
        dog = self._dog()
        dog.arm(sock, timeout, answer)
        try:
            result = query_worker.run(self.store, request)
        finally:
            dog.disarm()
        return result
