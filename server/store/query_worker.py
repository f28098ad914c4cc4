"""The process that runs queries. It can be killed at any moment, which is the whole point.

A thread cannot be stopped mid-query, so each query runs in a worker process; when the time limit
passes, the server kills the worker, answers 503 and starts a fresh one. The worker imports only
pyoxigraph and the result writers, and opens the snapshot read-only.
"""

from __future__ import annotations

import signal
from multiprocessing.connection import Connection

import pyoxigraph as ox

from ..http.results import TooManyResults, write_boolean, write_solutions, write_triples


def _graphs(names):
    return [ox.NamedNode(n) for n in names] if names is not None else None


def serve(conn: Connection, store_path: str) -> None:
    """Answer requests from `conn` until it closes: (query, options) -> (status, payload)."""
    # a forked worker inherits the server's signal handlers (gunicorn ignores or traps several):
    # restore the defaults so that stopping the server stops its query workers too
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                signal.SIGCHLD, signal.SIGWINCH, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_DFL)
    store = ox.Store.read_only(store_path)
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        conn.send(run(store, request))


def run(store: ox.Store, request: dict) -> tuple[str, object]:
    """('ok', bytes) | ('syntax', message) | ('limit', message) | ('error', message)."""
    try:
        result = store.query(
            request["query"],
            default_graph=_graphs(request.get("default_graph")),
            named_graphs=_graphs(request.get("named_graphs")),
            prefixes=request.get("prefixes") or None,
        )
        fmt, limit = request["format"], request["limit"]
        if isinstance(result, ox.QuerySolutions):
            return "ok", write_solutions(result, fmt, limit)
        if isinstance(result, ox.QueryBoolean):
            return "ok", write_boolean(bool(result), fmt)
        return "ok", write_triples(result, fmt, limit, request.get("prefixes") or {})
    except SyntaxError as exc:
        return "syntax", str(exc)
    except TooManyResults as exc:
        return "limit", str(exc)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        return "error", f"{type(exc).__name__}: {exc}"
