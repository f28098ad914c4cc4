"""`/api/{name}`: every named query in queries/ as an HTTP operation (JSON, CSV, TSV, XML or HTML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from flask.blueprints import BlueprintSetupState

from ..http.errors import HTTPError
from ..http.formats import RESULT_FORMATS, Format
from ..http.representations import choose, represent
from ..named_queries import NamedQuery, current_queries, load_named_queries
from ..store import get_store, run_query
from .openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api", template_folder="templates")
HTML = Format("html", "text/html")
JSON = Format("json", "application/json")
API_FORMATS = (*RESULT_FORMATS, HTML)


@bp.record_once
def _load(state: BlueprintSetupState) -> None:
    """Read the named queries when the app is made, so that a bad header stops it at once."""
    load_named_queries(Path(state.app.config["QUERIES_DIR"]))


def run_named(query: NamedQuery, params: dict[str, str], fmt: str) -> bytes:
    """Run a named query with bound parameters; the same protections and limits as /sparql apply."""
    return run_query(query.text, fmt=fmt, named=None, bindings=query.bindings(params))


def _listing() -> dict[str, Any]:
    return {name: {"title": q.title, "description": q.description, "url": url_for("api.run", name=name, _external=True),
                   "params": {p.name: {"type": p.type, "default": p.default, "description": p.description}
                              for p in q.params}}
            for name, q in current_queries().items()}


@bp.route("")
@bp.route("/")
def index() -> Response:
    """The named queries, as HTML or JSON."""
    def build(fmt: Format) -> str:
        if fmt is JSON:
            return json.dumps(_listing(), indent=2)
        return render_template("api/index.html", queries=current_queries())

    return represent((HTML, JSON), build, snapshot=get_store().etag, tag="api", cached=False,
                     content_type=lambda fmt: fmt.media_type + ("; charset=utf-8" if fmt is HTML else ""))


@bp.route("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of every operation."""
    doc = openapi_document(current_queries(), request.url_root.rstrip("/"))
    return Response(json.dumps(doc, indent=2), mimetype="application/json")


@bp.route("/<name>")
@bp.route("/<name>.<ext>")
def run(name: str, ext: str | None = None) -> Response:
    """Run the named query: the format from the extension, else negotiated; parameters from the query string."""
    query = current_queries().get(name)
    if query is None:
        raise HTTPError(404, f"No named query '{name}' here; /api/ lists them.")
    if any(len(request.args.getlist(k)) > 1 for k in request.args):
        raise HTTPError(400, "Each parameter may be given once.")
    fmt = choose(API_FORMATS) if ext is None else next((f for f in API_FORMATS if f.name == ext), None)
    if fmt is None:
        raise HTTPError(404, f"'{name}.{ext}': unknown format; one of {', '.join(f.name for f in API_FORMATS)}.")
    params = {k: v for k, v in request.args.items() if k != "format"}
    payload = run_named(query, params, "json" if fmt is HTML else fmt.name)
    if fmt is HTML:
        values = {p.name: params.get(p.name, p.default) for p in query.params}
        response = Response(render_template("api/query.html", query=query, data=json.loads(payload), values=values),
                            mimetype="text/html")
    else:
        response = Response(payload, content_type=fmt.media_type + ("; charset=utf-8" if fmt.name != "json" else ""))
    response.headers["Vary"] = "Accept"
    return response
