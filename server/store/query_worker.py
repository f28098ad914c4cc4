"""One query against an open Oxigraph store, answered as bytes in the asked format or as an outcome."""

from __future__ import annotations

import pyoxigraph as ox

from kg.contract import LOCAL_GRAPHS

from ..http.results import TooManyResults, write_boolean, write_solutions, write_triples


def _graphs(names):
    return [ox.NamedNode(n) for n in names] if names is not None else None


def run(store: ox.Store, request: dict) -> tuple[str, object]:
    """('ok', bytes) | ('syntax', message) | ('limit', message) | ('error', message).

    A query given a default graph but no named graphs sees the local graphs as named graphs (GRAPH ?g), not the
    graphs of the dated states, which only `as_of` (or naming them) reaches."""
    named = request.get("named_graphs")
    if named is None and request.get("default_graph") is not None:
        named = LOCAL_GRAPHS
    try:
        result = store.query(
            request["query"],
            default_graph=_graphs(request.get("default_graph")),
            named_graphs=_graphs(named),
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
