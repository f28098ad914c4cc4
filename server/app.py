"""The app factory: settings, the store, one blueprint per surface, one error handler, common headers."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from . import api, check, diff, exports, fhir, pages, search, sparql, store, why
from .codes import control_character
from .http import body
from .http.errors import HTTPError, error_response, handle_http_exception
from .http.headers import add_headers
from .settings import DEFAULTS, from_environment


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """App factory: settings from DEFAULTS, then MEDCODE_* environment variables, then `config`."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.update(from_environment())
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
    app.register_blueprint(check.bp)
    app.register_blueprint(diff.bp)
    app.register_blueprint(why.bp)
    app.register_error_handler(HTTPException, handle_http_exception)

    @app.errorhandler(HTTPError)
    def failed(exc: HTTPError) -> Response:
        """Every surface (protocol, API, pages, exports) answers a failure the same way."""
        if exc.status >= 500:
            app.logger.error("query failed: %s", exc)
        response = error_response(exc.status, str(exc))
        response.vary.add("Accept")  # the error's shape follows the Accept header
        return response

    @app.route("/")
    def index() -> str:
        return render_template("index.html", meta=store.get_store().meta)

    @app.before_request
    def preflight() -> Response | None:
        if request.method == "OPTIONS":
            return Response(status=204)
        _no_control_characters()
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        return add_headers(response, preflight=request.method == "OPTIONS")

    return app


def _no_control_characters() -> None:
    """A path holding a control character is a 400: a page's code such as "G35\\u0000" is malformed, never
    read as G35 (FHIR's reader and the claim check refuse one in a parameter, naming it, themselves)."""
    if control_character(request.path) and not request.path.startswith("/fhir/"):
        raise HTTPError(400, f"The path holds a control character ({control_character(request.path)}).")
