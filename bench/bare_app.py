"""The floor for the endpoint benchmark: a bare Flask + pyoxigraph app with no protections at all.

Served by gunicorn exactly like medcode (`gunicorn -w 2 bench.bare_app:app`, MEDCODE_BENCH_STORE set
to a snapshot's store directory); the benchmark reports medcode's throughput relative to it.
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
