"""One error shape: plain text for people and SPARQL clients, JSON when JSON is what was asked for."""

from __future__ import annotations

from flask import Response, json, request
from werkzeug.exceptions import HTTPException

TOO_LARGE = "The request body is larger than this endpoint's request-size limit."


class HTTPError(Exception):
    """Any failure a surface answers with a status and one sentence (the app has one handler for it)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_body(status: int, message: str) -> tuple[str, bytes]:
    """(content type, body) of an error, in the shape the current request prefers."""
    accept = request.accept_mimetypes
    if accept.best_match(["text/plain", "application/json"]) == "application/json" and (
            accept["application/json"] > accept["text/plain"]):
        return "application/json", json.dumps({"ok": False, "status": status, "error": message}).encode()
    return "text/plain; charset=utf-8", (message + "\n").encode()


def error_response(status: int, message: str) -> Response:
    content_type, body = error_body(status, message)
    return Response(body, status=status, content_type=content_type)


def handle_http_exception(exc: HTTPException) -> Response:
    messages = {
        413: TOO_LARGE,
        404: f"{request.method} {request.path} is not served here.",
        405: f"{request.method} is not allowed on {request.path}.",
    }
    response = error_response(exc.code or 500, messages.get(exc.code, exc.description or exc.name))
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response
