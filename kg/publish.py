"""`medcode publish`: load the live snapshot into a remote SPARQL 1.1 engine, replacing the old one in one step.

The snapshot's graphs (asserted, with the ontology, and inferred) plus a small meta graph are first
written to staging graphs over the SPARQL 1.1 Graph Store HTTP Protocol (chunked N-Triples posts;
Virtuoso's SPARQL compiler runs out of memory on large INSERT DATA requests), counted, and only then
moved over the live graphs with one SPARQL Update request of MOVE operations. Anything that fails
before that request leaves the live graphs untouched and serving; running publish twice gives the
same graphs and counts. Every failure is one PublishError sentence, never a requests traceback.

The update and Graph Store URLs follow from the query endpoint for Virtuoso (`/sparql` or `/sparql-auth`
beside `/sparql-graph-crud[-auth]`) and Fuseki (`/<dataset>/sparql` beside `/<dataset>/update` and
`/<dataset>/data`); other engines take `--update-url` and `--graph-store-url`. Credentials go only where
the engine's challenge asks for them, in its scheme (Digest for Virtuoso, Basic for Fuseki and most others).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyoxigraph as ox
import requests
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth
from urllib3.exceptions import NewConnectionError

from .contract import DCTERMS, DUMP_FILE, GRAPH_META, engine_message, engine_url, read_meta

STAGING = "https://w3id.org/medcode/graph/staging/"
CHUNK = 50_000  # triples per Graph Store post (about 8 MB of N-Triples)
TIMEOUT = (10.0, 900.0)  # connect, read: a post or the final MOVE may take minutes on a busy engine
#: Virtuoso's refusals of a transaction that is too large (log after-image) or too long (time limit)
TOO_BIG_FOR_ONE_TRANSACTION = re.compile(r"SR325|SR171")
RDF_JSON = "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON"
#: the command-line option that gives each URL publish calls, and what that URL must be
SERVICES = {"--to": "SPARQL query endpoint", "--update-url": "SPARQL Update endpoint",
            "--graph-store-url": "Graph Store Protocol endpoint"}


class PublishError(RuntimeError):
    """Publishing failed. `live_intact`: the engine still serves what it served before (False once the swap began)."""

    def __init__(self, message: str, *, live_intact: bool = True) -> None:
        super().__init__(message)
        self.live_intact = live_intact


class _NoAnswer(PublishError):
    """The engine gave no HTTP answer (unreachable, connection closed, too slow), so what it did is unknown."""


def default_urls(endpoint: str, authenticated: bool) -> tuple[str, str]:
    """The update and Graph Store URLs beside a query endpoint: Virtuoso's `/sparql` or `/sparql-auth` at the root,
    or Fuseki's `/<dataset>/sparql` (or `/query`). Any other layout is a PublishError naming the options to pass."""
    parts = urlsplit(endpoint)
    dataset, _, name = parts.path.rstrip("/").rpartition("/")
    if not dataset and name in ("sparql", "sparql-auth"):
        suffix = "-auth" if authenticated else ""
        paths = (f"/sparql{suffix}", f"/sparql-graph-crud{suffix}")
    elif dataset and name in ("sparql", "query"):
        paths = (f"{dataset}/update", f"{dataset}/data")
    else:
        raise PublishError(f"{endpoint} is neither Virtuoso's /sparql nor Fuseki's /<dataset>/sparql, so its update "
                           "and Graph Store URLs are unknown: pass --update-url and --graph-store-url")
    update, store = (urlunsplit(parts._replace(path=path)) for path in paths)
    return update, store


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps, outermost first (requests wraps urllib3, which wraps the socket's error)."""
    chain = [exc]
    while len(chain) < 10:
        current = chain[-1]
        candidates = [current.__cause__, getattr(current, "reason", None), *current.args, current.__context__]
        inner = next((c for c in candidates if isinstance(c, BaseException) and c not in chain), None)
        if inner is None:
            break
        chain.append(inner)
    return chain


def _no_answer(exc: requests.RequestException, url: str) -> str:
    """Why no HTTP answer came from `url`, in words: no connection, the connection closed, or too slow."""
    chain = _causes(exc)
    cause = str(chain[-1]) or type(chain[-1]).__name__
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection to {url} within {TIMEOUT[0]:g} s"
    if isinstance(exc, requests.Timeout):
        return f"no answer from {url} within {TIMEOUT[1]:g} s"
    if any(isinstance(e, NewConnectionError) for e in chain):
        return f"cannot connect to {url} ({cause})"
    if isinstance(exc, requests.ConnectionError):
        return f"the engine closed the connection ({cause})"
    return f"{url} cannot be used ({exc})"


class _Engine:
    """The HTTP calls publish makes: credentials where the engine's challenge asks for them, each failure one
    PublishError sentence naming what was being done and why it failed."""

    def __init__(self, endpoint: str, update_url: str, graph_store_url: str, user: str | None,
                 password: str | None) -> None:
        self.endpoint, self.update_url, self.graph_store_url = endpoint, update_url, graph_store_url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "medcode-kg publish"
        self.user = user
        self.credentials = (user, password or "") if user else None
        self.auths: dict[str, AuthBase | None] = {}

    def _post(self, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.post(url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise _NoAnswer(f"{what} failed: {_no_answer(exc, url)}") from exc

    def _auth(self, url: str, what: str) -> AuthBase | None:
        """Digest or Basic as the engine's 401 challenge asks (probed once per URL); none where nothing asks."""
        if self.credentials is None:
            return None
        if url not in self.auths:
            probe = self._post(url, what)
            digest = probe.headers.get("WWW-Authenticate", "").lower().startswith("digest")
            scheme = (HTTPDigestAuth if digest else HTTPBasicAuth) if probe.status_code == 401 else None
            self.auths[url] = scheme(*self.credentials) if scheme else None
        return self.auths[url]

    def _send(self, url: str, what: str, option: str, **kwargs: Any) -> requests.Response:
        """POST to `url` (given by `option`); an error status is a PublishError saying what to change, if anything."""
        response = self._post(url, what, auth=self._auth(url, what), **kwargs)
        status = f"HTTP {response.status_code}"
        if response.status_code == 401 and self.credentials is None:
            raise PublishError(f"{what} failed: {status}: {url} asks for a user and password: "
                               "pass --user and --password")
        if response.status_code == 401:
            raise PublishError(f"{what} failed: {status}: the engine refused the user {self.user!r} or its password "
                               f"at {url}")
        if response.status_code in (404, 405):
            raise PublishError(f"{what} failed: {status}: {url} is not the engine's {SERVICES[option]} "
                               f"(pass its URL with {option})")
        if response.status_code >= 300:
            raise PublishError(f"{what} failed: {status} {engine_message(response.text) or response.reason}")
        return response

    def update(self, text: str, what: str) -> None:
        self._send(self.update_url, what, "--update-url", data={"update": text})

    def post_triples(self, graph: str, body: bytes) -> None:
        self._send(self.graph_store_url, f"loading into <{graph}>", "--graph-store-url", params={"graph": graph},
                   data=body, headers={"Content-Type": "application/n-triples"})

    def first_value(self, query: str, variable: str, what: str) -> str | None:
        """The value of `variable` in the first row a SELECT query answers (None when there is no row)."""
        response = self._send(self.endpoint, what, "--to", data={"query": query},
                              headers={"Accept": "application/sparql-results+json"})
        try:
            rows = response.json()["results"]["bindings"]
            return rows[0][variable]["value"] if rows else None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise PublishError(f"{what} failed: {self.endpoint} did not answer with SPARQL JSON results "
                               f"({type(exc).__name__}: {exc}); pass its {SERVICES['--to']} with --to") from exc

    def count(self, graph: str) -> int:
        return int(self.first_value(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}", "n",
                                    f"counting <{graph}>") or 0)

    def served_snapshot(self) -> str | None:
        return self.first_value(f"SELECT ?id WHERE {{ GRAPH <{GRAPH_META}> {{\n"
                                f"  <{GRAPH_META}> <{DCTERMS}identifier> ?id }} }}", "id",
                                "asking the engine which snapshot it serves")


def _meta_triples(meta: dict) -> bytes:
    subject = ox.NamedNode(str(GRAPH_META))
    triples = [ox.Triple(subject, ox.NamedNode(f"{DCTERMS}identifier"), ox.Literal(meta["snapshot"])),
               ox.Triple(subject, ox.NamedNode(f"{DCTERMS}description"),
                         ox.Literal(json.dumps(meta, sort_keys=True), datatype=ox.NamedNode(RDF_JSON)))]
    return ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)


def _chunks(dump: Path, size: int) -> Iterator[tuple[str, list[ox.Triple]]]:
    """(graph, triples) chunks of up to `size` triples, per graph whatever the order of the dump; triples
    with blank nodes come last, one chunk per graph, because a Graph Store post scopes blank node labels
    to that post."""
    with_bnodes: dict[str, list[ox.Triple]] = {}
    pending: dict[str, list[ox.Triple]] = {}
    try:
        for quad in ox.parse(path=str(dump), format=ox.RdfFormat.N_QUADS):
            name = quad.graph_name.value
            triple = quad.triple
            if isinstance(triple.subject, ox.BlankNode) or isinstance(triple.object, ox.BlankNode):
                with_bnodes.setdefault(name, []).append(triple)
                continue
            chunk = pending.setdefault(name, [])
            chunk.append(triple)
            if len(chunk) >= size:
                yield name, chunk
                pending[name] = []
    except (OSError, SyntaxError) as exc:
        raise PublishError(f"the snapshot's dump {dump} cannot be read ({exc})") from exc
    yield from ((name, chunk) for name, chunk in pending.items() if chunk)
    yield from with_bnodes.items()


def _snapshot_meta(snapshot: Path) -> dict[str, Any]:
    """The snapshot's metadata, with the id and triple counts publish needs."""
    try:
        meta = read_meta(snapshot)
        meta["snapshot"], meta["triples"] = str(meta["snapshot"]), dict(meta["triples"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"the snapshot {snapshot} cannot be read ({type(exc).__name__}: {exc})") from exc
    return meta


def publish(snapshot: Path, endpoint: str, *, user: str | None = None, password: str | None = None,
            update_url: str | None = None, graph_store_url: str | None = None, chunk: int = CHUNK,
            echo: Callable[[str], None] = print) -> dict[str, int]:
    """Load `snapshot` into the engine at `endpoint` (its SPARQL query URL); the live graphs' counts.

    Every failure raises PublishError; its `live_intact` says whether the old graphs still serve."""
    endpoint = engine_url(endpoint).rstrip("/")
    if update_url is None or graph_store_url is None:
        default_update, default_store = default_urls(endpoint, user is not None)
        update_url, graph_store_url = update_url or default_update, graph_store_url or default_store
    engine = _Engine(endpoint, update_url, graph_store_url, user, password)
    meta = _snapshot_meta(snapshot)
    expected = {**meta["triples"], str(GRAPH_META): 2}
    started = time.perf_counter()
    served = engine.served_snapshot()
    # nothing is served yet (no meta graph): load straight into the live graphs, the meta graph last,
    # so the app sees a snapshot only once it is complete; else load beside the live graphs and swap
    target = {graph: graph if served is None else STAGING + graph.rsplit("/", 1)[1] for graph in expected}
    echo(f"Publishing snapshot {meta['snapshot']} to {endpoint} (now serving: {served or 'nothing'}; "
         f"loading into {'the live' if served is None else 'staging'} graphs)")
    try:
        _load(engine, snapshot, meta, target, chunk,
              lambda line: echo(f"{line} ({time.perf_counter() - started:.0f} s)"))
    except PublishError:
        _drop_quietly(engine, target)
        raise
    if served is not None:
        echo("Staging graphs complete; replacing the live graphs in one update request")
        _swap(engine, target, echo)
    return _checked_live(engine, expected, meta, started, echo)


def _load(engine: _Engine, snapshot: Path, meta: dict[str, Any], target: dict[str, str], chunk: int,
          progress: Callable[[str], None]) -> None:
    """Write the snapshot's graphs into their `target` graphs, check the counts, then write the meta graph."""
    expected = meta["triples"]
    engine.update(" ;\n".join(f"DROP SILENT GRAPH <{g}>" for g in target.values()), "clearing the target graphs")
    loaded = dict.fromkeys(expected, 0)
    for graph, triples in _chunks(snapshot / DUMP_FILE, chunk):
        if graph not in expected:
            raise PublishError(f"the snapshot holds an unexpected graph <{graph}>")
        engine.post_triples(target[graph], ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES))
        loaded[graph] += len(triples)
        progress(f"  {graph.rsplit('/', 1)[1]:<9} {loaded[graph]:>10,} / {expected[graph]:,} triples")
    counts = {graph: engine.count(target[graph]) for graph in expected}
    wrong = {g: (counts[g], expected[g]) for g in expected if counts[g] != expected[g]}
    if wrong:
        raise PublishError("count check failed (got, expected): "
                           + ", ".join(f"<{g}> {got:,} != {n:,}" for g, (got, n) in wrong.items()))
    engine.post_triples(target[str(GRAPH_META)], _meta_triples(meta))


def _swap(engine: _Engine, staging: dict[str, str], echo: Callable[[str], None]) -> None:
    """Move the staging graphs over the live ones in one update request (one transaction)."""
    moves = [f"MOVE SILENT <{staging[g]}> TO <{g}>" for g in staging]
    try:
        engine.update(" ;\n".join(moves), "replacing the live graphs")
    except _NoAnswer as exc:  # the engine may still be running the swap: leave its graphs alone
        raise PublishError(f"{exc}; the live graphs may or may not have been replaced: publish again",
                           live_intact=False) from exc
    except PublishError as exc:  # the engine answered: it rolled the transaction back
        if not TOO_BIG_FOR_ONE_TRANSACTION.search(str(exc)):
            _drop_quietly(engine, staging)
            raise
        echo(f"  the engine refused one transaction for the swap ({exc}); replacing graph by graph")
        _swap_graph_by_graph(engine, staging, moves)


def _swap_graph_by_graph(engine: _Engine, staging: dict[str, str], moves: list[str]) -> None:
    """One MOVE per graph (each atomic), the meta graph last, so the snapshot id changes only once every graph
    has been replaced."""
    for done, move in enumerate(moves):
        try:
            engine.update(move, "replacing a live graph")
        except PublishError as exc:
            if not isinstance(exc, _NoAnswer):
                _drop_quietly(engine, staging)
                if done == 0:
                    raise
            raise PublishError(f"{exc}; {done} of {len(moves)} live graphs had been replaced: publish again",
                               live_intact=False) from exc


def _checked_live(engine: _Engine, expected: dict[str, int], meta: dict, started: float,
                  echo: Callable[[str], None]) -> dict[str, int]:
    try:
        live = {graph: engine.count(graph) for graph in expected}
    except PublishError as exc:
        raise PublishError(f"{exc} (after the live graphs were replaced)", live_intact=False) from exc
    if live != expected:
        raise PublishError(f"count check failed on the live graphs: {live} != {expected}", live_intact=False)
    echo(f"Published {meta['snapshot']} in {time.perf_counter() - started:.0f} s: "
         + ", ".join(f"{g.rsplit('/', 1)[1]} {n:,}" for g, n in live.items()) + " triples")
    return live


def _drop_quietly(engine: _Engine, staging: dict[str, str]) -> None:
    try:
        engine.update(" ;\n".join(f"DROP SILENT GRAPH <{g}>" for g in staging.values()), "dropping staging graphs")
    except PublishError:
        pass  # the staging graphs are dropped again at the start of the next publish
