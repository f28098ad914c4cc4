"""`medcode publish`: load the live snapshot into a remote SPARQL 1.1 engine, replacing the old one in one step.

The snapshot's graphs (asserted, with the ontology, and inferred) plus a small meta graph are first
written to staging graphs over the SPARQL 1.1 Graph Store HTTP Protocol (chunked N-Triples posts;
Virtuoso's SPARQL compiler runs out of memory on large INSERT DATA requests), counted, and only then
moved over the live graphs with one SPARQL Update request of MOVE operations. Anything that fails
before that request leaves the live graphs untouched and serving; running publish twice gives the
same graphs and counts.

Defaults follow Virtuoso's layout (`/sparql`, `/sparql-auth`, `/sparql-graph-crud-auth`); other
engines take `--update-url` and `--graph-store-url`. Authentication answers the engine's challenge
(Digest for Virtuoso, Basic for Fuseki and most others).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyoxigraph as ox
import requests
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth

from .contract import DCTERMS, GRAPH_META, engine_message, engine_url, read_meta

STAGING = "https://w3id.org/medcode/graph/staging/"
CHUNK = 50_000  # triples per Graph Store post (about 8 MB of N-Triples)
TIMEOUT = (10.0, 900.0)  # connect, read: a post or the final MOVE may take minutes on a busy engine
#: Virtuoso's refusals of a transaction that is too large (log after-image) or too long (time limit)
TOO_BIG_FOR_ONE_TRANSACTION = re.compile(r"SR325|SR171")
RDF_JSON = "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON"


class PublishError(RuntimeError):
    """Publishing failed; the engine still serves what it served before."""



def default_urls(endpoint: str, authenticated: bool) -> tuple[str, str]:
    """Virtuoso's update and Graph Store URLs next to its query endpoint `.../sparql`."""
    parts = urlsplit(endpoint)
    root = parts.path.rsplit("/", 1)[0] if parts.path.endswith("/sparql") else parts.path.rstrip("/")
    suffix = "-auth" if authenticated else ""
    update = urlunsplit(parts._replace(path=f"{root}/sparql{suffix}"))
    store = urlunsplit(parts._replace(path=f"{root}/sparql-graph-crud{suffix}"))
    return update, store


class _Engine:
    """The HTTP calls publish makes, with authentication chosen from the engine's own challenge."""

    def __init__(self, endpoint: str, update_url: str, graph_store_url: str, user: str | None,
                 password: str | None) -> None:
        self.endpoint, self.update_url, self.graph_store_url = endpoint, update_url, graph_store_url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "medcode-kg publish"
        self.credentials = (user, password or "") if user else None
        self.auths: dict[str, AuthBase | None] = {}

    def _auth(self, url: str) -> AuthBase | None:
        """Digest or Basic, as the engine's 401 challenge asks (probed once per URL)."""
        if self.credentials is None:
            return None
        if url not in self.auths:
            challenge = self.session.post(url, timeout=TIMEOUT[0] * 3).headers.get("WWW-Authenticate", "")
            digest = challenge.lower().startswith("digest")
            self.auths[url] = HTTPDigestAuth(*self.credentials) if digest else HTTPBasicAuth(*self.credentials)
        return self.auths[url]

    def _check(self, response: requests.Response, what: str) -> requests.Response:
        if response.status_code >= 300:
            text = engine_message(response.text)
            raise PublishError(f"{what} failed: HTTP {response.status_code} {text or response.reason}")
        return response

    def update(self, text: str, what: str) -> None:
        self._check(self.session.post(self.update_url, data={"update": text}, auth=self._auth(self.update_url),
                                      timeout=TIMEOUT), what)

    def post_triples(self, graph: str, body: bytes) -> None:
        self._check(self.session.post(self.graph_store_url, params={"graph": graph}, data=body,
                                      auth=self._auth(self.graph_store_url),
                                      headers={"Content-Type": "application/n-triples"}, timeout=TIMEOUT),
                    f"loading into <{graph}>")

    def select(self, query: str) -> list[dict]:
        response = self.session.post(self.endpoint, data={"query": query}, timeout=TIMEOUT,
                                     headers={"Accept": "application/sparql-results+json"})
        return self._check(response, "query").json()["results"]["bindings"]

    def count(self, graph: str) -> int:
        rows = self.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
        return int(rows[0]["n"]["value"]) if rows else 0

    def served_snapshot(self) -> str | None:
        rows = self.select(f"SELECT ?id WHERE {{ GRAPH <{GRAPH_META}> {{\n"
                           f"  <{GRAPH_META}> <{DCTERMS}identifier> ?id }} }}")
        return rows[0]["id"]["value"] if rows else None


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
    yield from ((name, chunk) for name, chunk in pending.items() if chunk)
    yield from with_bnodes.items()


def publish(snapshot: Path, endpoint: str, *, user: str | None = None, password: str | None = None,
            update_url: str | None = None, graph_store_url: str | None = None, chunk: int = CHUNK,
            echo: Callable[[str], None] = print) -> dict[str, int]:
    """Load `snapshot` into the engine at `endpoint` (its SPARQL query URL); the live graphs' counts."""
    endpoint = engine_url(endpoint)
    default_update, default_store = default_urls(endpoint, user is not None)
    engine = _Engine(endpoint, update_url or default_update, graph_store_url or default_store, user, password)
    meta = read_meta(snapshot)
    expected = {**meta["triples"], str(GRAPH_META): 2}
    staging = {graph: STAGING + graph.rsplit("/", 1)[1] for graph in expected}
    started = time.perf_counter()
    try:
        served = engine.served_snapshot()
        # nothing is served yet (no meta graph): load straight into the live graphs, the meta graph last,
        # so the app sees a snapshot only once it is complete; else load beside the live graphs and swap
        target = {graph: graph for graph in expected} if served is None else staging
        echo(f"Publishing snapshot {meta['snapshot']} to {endpoint} (now serving: {served or 'nothing'}; "
             f"loading into {'the live' if served is None else 'staging'} graphs)")
        engine.update(" ;\n".join(f"DROP SILENT GRAPH <{g}>" for g in target.values()), "clearing target graphs")
        loaded = dict.fromkeys(expected, 0)
        for graph, triples in _chunks(snapshot / "medcode.nq", chunk):
            if graph not in target:
                raise PublishError(f"the snapshot holds an unexpected graph <{graph}>")
            engine.post_triples(target[graph], ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES))
            loaded[graph] += len(triples)
            echo(f"  {graph.rsplit('/', 1)[1]:<9} {loaded[graph]:>10,} / {expected[graph]:,} triples "
                 f"({time.perf_counter() - started:.0f} s)")
        data_graphs = [g for g in expected if g != str(GRAPH_META)]
        counts = {graph: engine.count(target[graph]) for graph in data_graphs}
        wrong = {g: (counts[g], expected[g]) for g in data_graphs if counts[g] != expected[g]}
        if wrong:
            raise PublishError("count check failed (got, expected): "
                               + ", ".join(f"<{g}> {got:,} != {n:,}" for g, (got, n) in wrong.items()))
        engine.post_triples(target[str(GRAPH_META)], _meta_triples(meta))
    except requests.RequestException as exc:
        raise PublishError(f"the engine could not be reached: {exc}") from exc
    except PublishError:
        _drop_quietly(engine, target)
        raise
    if served is None:
        return _checked_live(engine, expected, meta, started, echo)
    echo("Staging graphs complete; replacing the live graphs in one update request")
    moves = [f"MOVE SILENT <{staging[g]}> TO <{g}>" for g in expected]
    try:
        try:
            engine.update(" ;\n".join(moves), "replacing live graphs")
        except PublishError as exc:  # the update is one transaction: the engine rolled it back
            if not TOO_BIG_FOR_ONE_TRANSACTION.search(str(exc)):
                raise
            # the engine cannot swap this much in one transaction: swap graph by graph (each one atomic),
            # the meta graph last, so the snapshot id changes only when every graph has been replaced
            echo(f"  the engine refused one transaction for the swap ({exc}); replacing graph by graph")
            for move in moves:
                engine.update(move, "replacing a live graph")
    except PublishError:
        _drop_quietly(engine, staging)
        raise
    except requests.RequestException as exc:
        raise PublishError(f"the engine could not be reached during the swap: {exc}") from exc
    return _checked_live(engine, expected, meta, started, echo)


def _checked_live(engine: _Engine, expected: dict[str, int], meta: dict, started: float,
                  echo: Callable[[str], None]) -> dict[str, int]:
    live = {graph: engine.count(graph) for graph in expected}
    if live != expected:
        raise PublishError(f"count check failed on the live graphs: {live} != {expected}")
    echo(f"Published {meta['snapshot']} in {time.perf_counter() - started:.0f} s: "
         + ", ".join(f"{g.rsplit('/', 1)[1]} {n:,}" for g, n in live.items()) + " triples")
    return live


def _drop_quietly(engine: _Engine, staging: dict[str, str]) -> None:
    try:
        engine.update(" ;\n".join(f"DROP SILENT GRAPH <{g}>" for g in staging.values()), "dropping staging graphs")
    except (PublishError, requests.RequestException):
        pass  # the staging graphs are dropped again at the start of the next publish
