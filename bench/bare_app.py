"""The floor for the endpoint benchmark: a bare Flask + pyoxigraph app with no protections at all.

Served by gunicorn with medcode's own worker settings (server.wsgi.WORKER_OPTIONS; bench/bench_endpoint.py
starts it with MEDCODE_BENCH_STORE set to the snapshot's store directory); the benchmark reports
medcode's throughput relative to it.
"""

from __future__ import annotations

import os

import pyoxigraph as ox
from flask import Flask, Response, request

app = Flask(__name__)
store = ox.Store.read_only(os.environ["MEDCODE_BENCH_STORE"])
GRAPHS = [ox.NamedNode(f"https://w3id.org/medcode/graph/{name}") for name in ("asserted", "inferred")]


@app.route("/sparql")
def sparql() -> Response:
    results = store.query(request.args["query"], default_graph=GRAPHS)
    return Response(results.serialize(format=ox.QueryResultsFormat.JSON),
                    mimetype="application/sparql-results+json")
