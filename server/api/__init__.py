"""`/api/{name}`: every named query in queries/ as an HTTP operation (JSON, CSV, TSV, XML or HTML)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for

from ..http.errors import error_response
from ..http.formats import RESULT_FORMATS, BadAccept, Format, NotAcceptable, negotiate
from ..named_queries import NamedQuery, ParamError, load_named_queries
from ..store import INFERENCE_GRAPHS
from .openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api", template_folder="templates")
HTML = Format("html", "text/html")
API_FORMATS = (*RESULT_FORMATS, HTML)
EXTENSIONS = {"json": "json", "csv": "csv", "tsv": "tsv", "xml": "xml", "html": "html"}


def named_queries() -> dict[str, NamedQuery]:
    return load_named_queries(current_app.config["QUERIES_DIR"])


def run_named(query: NamedQuery, params: dict[str, str], fmt: str) -> bytes:
    """Run a named query with bound parameters; the same protections as /sparql apply."""
    store = current_app.extensions["medcode.store"]
    return store.query(query.text, fmt=fmt, limit=current_app.config["MAX_RESULTS"],
                       timeout=current_app.config["QUERY_TIMEOUT"], default_graph=INFERENCE_GRAPHS["all"],
                       named_graphs=None,
                       bindings=query.bindings(params))


@bp.route("")
@bp.route("/")
def index() -> Response:
    queries = named_queries()
    wants_json = request.args.get("format") == "json" or (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json")
    if wants_json:
        return Response(json.dumps({name: {"title": q.title, "description": q.description,
                                           "url": url_for("api.run", name=name, _external=True),
                                           "params": {p.name: {"type": p.type, "default": p.default,
                                                               "description": p.description} for p in q.params}}
                                    for name, q in queries.items()}, indent=2), mimetype="application/json")
    return Response(render_template("api/index.html", queries=queries), mimetype="text/html")


@bp.route("/openapi.json")
def openapi() -> Response:
    doc = openapi_document(named_queries(), request.url_root.rstrip("/"))
    return Response(json.dumps(doc, indent=2), mimetype="application/json")


@bp.route("/<name>")
@bp.route("/<name>.<ext>")
def run(name: str, ext: str | None = None) -> Response:
    query = named_queries().get(name)
    if query is None:
        abort(404)
    params = {k: v for k, v in request.args.items() if k != "format"}
    if any(len(request.args.getlist(k)) > 1 for k in request.args):
        return error_response(400, "Each parameter may be given once.")
    try:
        if ext is not None:
            if ext not in EXTENSIONS:
                abort(404)
            fmt = next(f for f in API_FORMATS if f.name == EXTENSIONS[ext])
        else:
            fmt = negotiate(API_FORMATS, request.headers.get("Accept"), request.args.get("format"))
    except BadAccept as exc:
        return error_response(400, str(exc))
    except NotAcceptable as exc:
        return error_response(406, str(exc))
    try:
        payload = run_named(query, params, "json" if fmt is HTML else fmt.name)
    except ParamError as exc:
        return error_response(400, str(exc))
    if fmt is HTML:
        data = json.loads(payload)
        values = {p.name: params.get(p.name, p.default) for p in query.params}
        response = Response(render_template("api/query.html", query=query, data=data, values=values),
                            mimetype="text/html")
    else:
        response = Response(payload, content_type=fmt.media_type + ("; charset=utf-8" if fmt.name != "json" else ""))
    response.headers["Vary"] = "Accept"
    return response
