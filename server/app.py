"""The app factory: settings, the store, one blueprint per surface, one error handler, common headers."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from kg.contract import QUERIES_DIR

from . import api, exports, fhir, pages, search, sparql, store
from .http import body
from .http.errors import HTTPError, error_response, handle_http_exception

DEFAULTS: dict[str, Any] = {
    "MEDCODE_DATA": None,          # data directory holding the snapshot (default: $MEDCODE_DATA or ./data)
    "MEDCODE_STORE": "embedded",   # or sparql+http://host:port/sparql: a remote engine `medcode publish` loaded
    "QUERY_TIMEOUT": 10.0,         # seconds a query may run before it is stopped (503)
    "MAX_RESULTS": 100_000,        # rows or triples in one answer; more is an error, never truncated
    "MAX_CONTENT_LENGTH": 1 << 20,  # request-body limit in bytes (413 above it)
    "QUERY_WORKERS": 2,            # query worker processes per app process
    "PUBLIC_BASE": "https://w3id.org/medcode/",
    "QUERIES_DIR": QUERIES_DIR,    # named queries (.rq with a '#+ ' header)
    "EXPORT_TIMEOUT": 60.0,        # seconds an export's query may run (exports stream large tables)
    "EXPORT_MAX_ROWS": 1_000_000,  # rows in one export
}
ENV_SETTINGS = {"MEDCODE_STORE": ("MEDCODE_STORE", str),
                "MEDCODE_QUERY_TIMEOUT": ("QUERY_TIMEOUT", float), "MEDCODE_MAX_RESULTS": ("MAX_RESULTS", int),
                "MEDCODE_MAX_BODY": ("MAX_CONTENT_LENGTH", int), "MEDCODE_QUERY_WORKERS": ("QUERY_WORKERS", int),
                "MEDCODE_PUBLIC_BASE": ("PUBLIC_BASE", str), "MEDCODE_EXPORT_TIMEOUT": ("EXPORT_TIMEOUT", float)}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "cross-origin",
}



def create_app(config: dict[str, Any] | None = None) -> Flask:
    """App factory: settings from DEFAULTS, then MEDCODE_* environment variables, then `config`."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    for env, (key, cast) in ENV_SETTINGS.items():
        if env in os.environ:
            app.config[key] = cast(os.environ[env])
    if config:
        app.config.update(config)
    store.init_app(app)
    body.init_app(app)

    app.register_blueprint(sparql.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(search.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(fhir.bp)
    app.register_error_handler(HTTPException, handle_http_exception)

    @app.errorhandler(HTTPError)
    def failed(exc: HTTPError) -> Response:
        """Every surface (protocol, API, pages, exports) answers a failure the same way."""
        if exc.status >= 500:
            app.logger.error("query failed: %s", exc)
        return error_response(exc.status, str(exc))

    @app.route("/")
    def index() -> str:
        return render_template("index.html", meta=store.get_store().meta)

    @app.before_request
    def preflight() -> Response | None:
        if request.method == "OPTIONS":
            return Response(status=204)
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Accept, Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
        return response

    return app
