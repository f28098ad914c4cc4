"""A remote SPARQL 1.1 engine (Virtuoso, Fuseki, GraphDB...) behind the same interface as the embedded store.

The app keeps its own protections in front of the engine: the query is parsed here first (by
Oxigraph, on an empty store, so a syntax error is the same 400 in both modes), the dataset is always
pinned to the medcode graphs, the time limit is sent to the engine *and* enforced on the HTTP call,
and the answer is re-serialised by the app's own writers, so formats, row limits and escaping are
exactly those of the embedded mode. Engine failures become 502 (the engine answered with an error)
or 503 (unreachable, overloaded, or out of time); nothing waits without a timeout.

Quirks handled here (Virtuoso 7.2): queries are form posts (`application/sparql-query` bodies can
hang); a query stopped by the engine's `timeout` returns HTTP 200 with partial results and an
`X-SQL-State: S1TAT` header, which is a time-limit answer here, never a result.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pyoxigraph as ox
import requests

from kg.contract import (
    ENGINE_SCHEME,
    GRAPH_META,
    LOCAL_GRAPHS,
    PREFIXES,
    dated_graphs,
    engine_message,
    engine_url,
)

from ..http.guard import TOKENS
from ..http.results import TooManyResults, limited, write_boolean, write_solutions, write_triples
from ..named_queries import bind_values
from .base import AnsweringStore, QueryError, SnapshotMissing
from .cache import AnswerCache

CONNECT_TIMEOUT = 5.0  # seconds to open a connection to the engine
GRACE = 2.0  # seconds the HTTP call waits beyond the engine's own time limit
TIME_LIMIT_ERRORS = re.compile(r"\bS1T00\b|\bS1TAT\b|\bSR171\b|timed out|estimated execution time", re.IGNORECASE)
META_TTL = 30.0  # seconds between reads of the published snapshot's id
MIN_BODY_BYTES, BYTES_PER_ROW = 64 << 20, 4096  # an answer's byte cap: max(64 MiB, row limit x 4 KiB)
PARTIAL_RESULT_STATES = {"S1TAT"}  # Virtuoso: "returning incomplete results, query interrupted by result timeout"
META_QUERY = f"""SELECT ?meta WHERE {{ GRAPH <{GRAPH_META}> {{
  <{GRAPH_META}> <http://purl.org/dc/terms/description> ?meta }} }}"""


def is_remote(location: str) -> bool:
    """Whether a MEDCODE_STORE value names a remote engine (`sparql+http://...` or `sparql+https://...`)."""
    return location.startswith(ENGINE_SCHEME)


def _query_form(query: str, default_graph: list[str] | None, named_graphs: list[str] | None,
                prefixes: dict[str, str]) -> str:
    """'solutions' | 'boolean' | 'graph', from Oxigraph's parser; a syntax error is a 400, as embedded."""
    try:
        result = ox.Store().query(query, prefixes=prefixes,
                                  default_graph=[ox.NamedNode(g) for g in default_graph] if default_graph else None,
                                  named_graphs=[ox.NamedNode(g) for g in named_graphs] if named_graphs else None)
    except SyntaxError as exc:
        raise QueryError(400, f"SPARQL syntax error: {exc}") from exc
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise QueryError(400, f"The query could not be evaluated: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, ox.QuerySolutions):
        return "solutions"
    return "boolean" if isinstance(result, ox.QueryBoolean) else "graph"


def with_prefixes(query: str, prefixes: dict[str, str]) -> str:
    """The query with PREFIX lines for the endpoint's default prefixes it uses but does not declare
    (read with the guard's tokenizer, so names inside strings, IRIs and comments do not count)."""
    tokens = [(m.lastgroup, m.group()) for m in TOKENS.finditer(query) if m.lastgroup != "comment"]
    declared = {tokens[i + 1][1][:-1] for i, (kind, text) in enumerate(tokens[:-1])
                if kind == "word" and text.upper() == "PREFIX" and tokens[i + 1][0] == "pname"}
    used = {text.partition(":")[0] for kind, text in tokens if kind == "pname"}
    lines = [f"PREFIX {p}: <{iri}>" for p, iri in prefixes.items() if p in used - declared]
    return "\n".join([*lines, query]) if lines else query


# Virtuoso names blank nodes `nodeID://b123`, which is not a blank node label
VIRTUOSO_BNODE_JSON = re.compile(rb'("type"\s*:\s*"bnode"\s*,\s*"value"\s*:\s*")nodeID://')
VIRTUOSO_BNODE_NT = re.compile(rb"<nodeID://([A-Za-z0-9_]+)>")
XSD_BOOLEAN = "http://www.w3.org/2001/XMLSchema#boolean"
BOOLEANS = {"1": "true", "0": "false"}


def canonical(term: Any) -> Any:
    """The term with xsd:boolean in canonical form (Virtuoso stores and answers true as "1")."""
    if isinstance(term, ox.Literal) and term.value in BOOLEANS and term.datatype.value == XSD_BOOLEAN:
        return ox.Literal(BOOLEANS[term.value], datatype=term.datatype)
    return term


class _CanonicalSolutions:
    """Parsed solutions with canonical terms, shaped like ox.QuerySolutions for the result writers."""

    def __init__(self, solutions: ox.QuerySolutions) -> None:
        self.solutions = solutions
        self.variables = solutions.variables

    def __iter__(self) -> Iterator[_Row]:
        names = [v.value for v in self.variables]
        index = {n: i for i, n in enumerate(names)}
        for row in self.solutions:
            yield _Row(index, tuple(canonical(row[n]) for n in names))


class _Row:
    """One solution in variable order, read by position or by name, as an ox.QuerySolution is."""

    __slots__ = ("index", "terms")

    def __init__(self, index: dict[str, int], terms: tuple) -> None:
        self.index, self.terms = index, terms

    def __iter__(self) -> Iterator[Any]:
        return iter(self.terms)

    def __getitem__(self, key: str | int) -> Any:
        return self.terms[self.index[key] if isinstance(key, str) else key]


def _canonical_triples(triples: Iterable[ox.Triple]) -> Iterator[ox.Triple]:
    for t in triples:
        yield ox.Triple(t.subject, t.predicate, canonical(t.object))


def _rewrite_csv(payload: bytes, limit: int) -> bytes:
    """The engine's CSV answer (lexical forms only, as SPARQL CSV is) re-written by the app, row limit applied.

    CSV is asked for when the client wants CSV: Virtuoso writes large answers as JSON about 7x slower.
    Not for a query with non-ASCII text: Virtuoso's CSV writes the query's own literals in Latin-1 (and
    '?' past U+00FF), where its JSON is right.
    """
    rows = csv.reader(io.StringIO(payload.decode("utf-8"), newline=""))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(next(rows, []))
    writer.writerows(limited(rows, limit, "rows"))
    return out.getvalue().encode()


def _read_body(response: requests.Response, deadline: float, max_bytes: int) -> bytes:
    """The whole body, but never past the deadline (a read timeout is per read, not per answer) nor past
    `max_bytes` (the engine may have no result limit of its own)."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(1 << 16):
            size += len(chunk)
            if size > max_bytes:
                raise QueryError(400, f"The result is larger than {max_bytes:,} bytes, this endpoint's result-size "
                                      "limit; add LIMIT/OFFSET to page through it")
            if time.monotonic() > deadline:
                raise QueryError(503, "Query stopped: the SPARQL engine's answer did not arrive within the time limit.")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise QueryError(503, f"The SPARQL engine's answer was cut off: {type(exc).__name__}.") from exc
    finally:
        response.close()
    return b"".join(chunks)


def _engine_message(response: requests.Response) -> str:
    """The engine's own words for an error (its first 64 KiB: a failed answer can be a cut result)."""
    try:
        head = next(response.iter_content(1 << 16), b"")
    except requests.RequestException:
        head = b""
    finally:
        response.close()
    if not response.headers.get("Content-Type", "").startswith("text/plain"):
        return response.reason or "error"  # an HTML page or a cut result, not a message
    return engine_message(head.decode("utf-8", "replace")) or response.reason


class RemoteStore(AnsweringStore):
    """Queries a SPARQL 1.1 endpoint over HTTP; the snapshot's metadata is read from its meta graph."""

    def __init__(self, location: str, *, connect_timeout: float = CONNECT_TIMEOUT,
                 answers: AnswerCache | None = None) -> None:
        self.url = engine_url(location)
        self.answers = answers or AnswerCache(0)
        self.snapshot = None  # no local snapshot directory: the engine holds the data
        self.connect_timeout = connect_timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "medcode-kg"
        self.prefixes = dict(PREFIXES)
        self._meta: dict[str, Any] = self._read_meta()
        self.graphs = set(LOCAL_GRAPHS) | dated_graphs(self._meta)
        self._meta_read = time.monotonic()

    def _read_meta(self) -> dict[str, Any]:
        data = json.loads(self._post(META_QUERY, [], [], "application/sparql-results+json", 30.0, 1 << 20))
        rows = data["results"]["bindings"]
        if not rows:
            raise SnapshotMissing(f"{self.url} holds no medcode-kg snapshot; run `medcode publish --to {self.url}`")
        return json.loads(rows[0]["meta"]["value"])

    @property
    def meta(self) -> dict[str, Any]:
        """The published snapshot's metadata, re-read every META_TTL seconds: a `publish` while the app
        serves changes the ETag (pages, exports) and rebuilds the search index."""
        if time.monotonic() - self._meta_read > META_TTL:
            self._meta_read = time.monotonic()
            try:
                self._meta = self._read_meta()
                self.graphs = set(LOCAL_GRAPHS) | dated_graphs(self._meta)
            except (QueryError, SnapshotMissing, ValueError, KeyError):
                pass  # keep serving under the last known snapshot id; the queries themselves report errors
        return self._meta

    @property
    def etag(self) -> str:
        return self.meta["snapshot"]

    def _post(self, text: str, default_graph: list[str], named_graphs: list[str], accept: str,
              timeout: float, max_bytes: int) -> bytes:
        form: list[tuple[str, str]] = [("query", text), ("timeout", str(int(timeout * 1000)))]
        form += [("default-graph-uri", g) for g in default_graph]
        form += [("named-graph-uri", g) for g in named_graphs]
        started = time.monotonic()
        try:
            response = self.session.post(self.url, data=form, headers={"Accept": accept}, stream=True,
                                         timeout=(self.connect_timeout, timeout + GRACE))
        except requests.Timeout as exc:
            raise QueryError(503, f"Query stopped: the SPARQL engine did not answer within the {timeout:g} s "
                                  "time limit.") from exc
        except requests.RequestException as exc:
            raise QueryError(503, f"The SPARQL engine is unavailable: {type(exc).__name__}.") from exc
        stopped = QueryError(503, f"Query stopped: the query did not finish within the {timeout:g} s time limit "
                                  "and was stopped by the engine.")
        if response.headers.get("X-SQL-State") in PARTIAL_RESULT_STATES:
            response.close()
            raise stopped
        if response.status_code in (502, 503, 504):
            response.close()
            raise QueryError(503, f"The SPARQL engine is unavailable ({response.status_code}); please retry.")
        if response.status_code != 200:
            message = _engine_message(response)
            # Virtuoso refuses a query its planner estimates too long, answers 500 at its time limit
            # (S1T00/SR171), or stops mid-answer with part of the result: all are the time limit's doing
            if TIME_LIMIT_ERRORS.search(message):
                raise QueryError(503, f"Query stopped by the SPARQL engine's time limit: {message}")
            if time.monotonic() - started >= 0.9 * timeout:
                raise stopped
            raise QueryError(502, f"The SPARQL engine answered {response.status_code}: {message}")
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type != accept:
            response.close()
            raise QueryError(502, f"The SPARQL engine answered {media_type or 'no content type'} instead of {accept}.")
        return _read_body(response, started + timeout + GRACE, max_bytes)

    def _evaluate(self, query: str, fmt: str, limit: int, timeout: float, default_graph: list[str] | None,
                named_graphs: list[str] | None, bindings: dict[str, tuple] | None) -> bytes:
        text = bind_values(query, bindings or {})
        form = _query_form(text, default_graph, named_graphs, self.prefixes)
        if default_graph is not None and named_graphs is None:
            named_graphs = sorted(LOCAL_GRAPHS)  # GRAPH ?g sees the medcode graphs only, as embedded
        text = with_prefixes(text, self.prefixes)
        csv_rows = form == "solutions" and fmt == "csv" and text.isascii()
        accept = {"graph": "application/n-triples", "boolean": "application/sparql-results+json"}.get(
            form, "text/csv" if csv_rows else "application/sparql-results+json")
        payload = self._post(text, default_graph or [], named_graphs or [], accept, timeout,
                             max(MIN_BODY_BYTES, limit * BYTES_PER_ROW))
        try:
            if csv_rows:
                return _rewrite_csv(payload, limit)
            if form == "graph":
                payload = VIRTUOSO_BNODE_NT.sub(rb"_:\1", payload)
                triples = _canonical_triples(ox.parse(payload, format=ox.RdfFormat.N_TRIPLES))
                return write_triples(triples, fmt, limit, self.prefixes)
            payload = VIRTUOSO_BNODE_JSON.sub(rb"\1", payload)
            result = ox.parse_query_results(payload, format=ox.QueryResultsFormat.JSON)
            if isinstance(result, ox.QueryBoolean):
                return write_boolean(bool(result), fmt)
            return write_solutions(_CanonicalSolutions(result), fmt, limit)
        except TooManyResults as exc:
            raise QueryError(400, str(exc)) from exc
        except SyntaxError as exc:
            raise QueryError(502, f"The SPARQL engine's answer could not be read: {exc}") from exc

    def close(self) -> None:
        self.session.close()
