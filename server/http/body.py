"""The request-size limit, whatever the framing: a body over the limit is a 413 and nothing runs.

Werkzeug checks `Content-Length` against MAX_CONTENT_LENGTH, but a chunked body has no length: it
was read up to the limit, cut there, and the first part executed. This middleware sits in front of
the app: a declared length over the limit is refused before anything is read, and a body without a
declared length is read to at most limit + 1 bytes, refused if longer, otherwise handed on whole
with its length set, so the app only ever sees complete bodies.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import TOO_LARGE

DRAIN = 16 << 20  # bytes of a refused body read and dropped, so that a client still sending can read the 413
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ["CONTENT_LENGTH"]) if environ.get("CONTENT_LENGTH") else None
    except ValueError:
        return None


def _read_unframed(environ: dict[str, Any], limit: int) -> bytes | None:
    """The whole body of a request without Content-Length, or None when it is over the limit."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    parts, size = [], 0
    while size <= limit:
        chunk = stream.read(min(1 << 16, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
    return None


def _drain(stream: Any) -> None:
    """Read and drop what a client is still sending, up to DRAIN bytes (then the connection closes)."""
    if stream is None:
        return
    left = DRAIN
    try:
        while left > 0 and (chunk := stream.read(min(1 << 16, left))):
            left -= len(chunk)
    except (OSError, ValueError):
        pass


class BodyLimit:
    """WSGI middleware enforcing the app's MAX_CONTENT_LENGTH for every framing."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        declared = _declared_length(environ)
        if declared is not None:
            if declared > limit:
                return self._refuse(environ, start_response)
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() or environ.get("wsgi.input_terminated"):
            body = _read_unframed(environ, limit)
            if body is None:
                return self._refuse(environ, start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input_terminated"] = False
        return self.wsgi_app(environ, start_response)

    def _refuse(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        _drain(environ.get("wsgi.input"))
        with self.app.request_context(environ):
            # answered by the app's own handlers, so each surface words it its way (FHIR: an OperationOutcome)
            failure = self.app.handle_user_exception(RequestEntityTooLarge(TOO_LARGE))
            response = self.app.finalize_request(failure, from_error_handler=True)  # with the usual headers
            response.headers["Connection"] = "close"  # the unread rest of the body is not waited for
            return response(environ, start_response)


def init_app(app: Flask) -> None:
    """Put the limit in front of the app."""
    app.wsgi_app = BodyLimit(app, app.wsgi_app)  # type: ignore[method-assign]
