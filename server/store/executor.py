"""A small pool of query worker processes with a hard per-query time limit."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from dataclasses import dataclass

from . import query_worker

# fork: a replacement worker is ready in milliseconds, and needs no importable __main__
_CTX = multiprocessing.get_context("fork")


class QueryTimeout(Exception):
    """The query ran past the time limit; its worker was killed and replaced."""


class WorkerFailed(Exception):
    """The worker died for another reason (and was replaced)."""


@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: object

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class QueryExecutor:
    """Runs queries in up to `size` worker processes; each worker serves one query at a time."""

    def __init__(self, store_path: str, size: int = 2) -> None:
        self.store_path = store_path
        self.size = size
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._count = 0
        self._lock = threading.Lock()

    def _spawn(self) -> _Worker:
        parent, child = _CTX.Pipe()
        process = _CTX.Process(target=query_worker.serve, args=(child, self.store_path), daemon=True,
                               name="medcode-query-worker")
        process.start()
        child.close()
        return _Worker(process, parent)

    def _acquire(self, wait: float) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._count < self.size:
                self._count += 1
                try:
                    return self._spawn()
                except Exception:
                    self._count -= 1
                    raise
        try:
            return self._idle.get(timeout=wait)
        except queue.Empty as exc:
            raise QueryTimeout("all query workers stayed busy for the whole time limit") from exc

    def _discard(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._count -= 1

    def run(self, request: dict, timeout: float) -> tuple[str, object]:
        worker = self._acquire(timeout)
        try:
            worker.conn.send(request)
            if not worker.conn.poll(timeout):
                self._discard(worker)
                raise QueryTimeout(f"the query did not finish within the {timeout:g} s time limit and was stopped")
            status, payload = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self._discard(worker)
            raise WorkerFailed(f"the query worker stopped unexpectedly ({exc.__class__.__name__})") from exc
        self._idle.put(worker)
        return status, payload

    def close(self) -> None:
        while True:
            try:
                self._discard(self._idle.get_nowait())
            except queue.Empty:
                return
