"""The request-size limit, whatever the framing: a body over the limit is a 413 and nothing runs.

Werkzeug checks `Content-Length` against MAX_CONTENT_LENGTH, but a chunked body has no length: it
was read up to the limit, cut there, and the first part executed. This middleware sits in front of
the app: a declared length over the limit is refused before anything is read, and a body without a
declared length is read to at most limit + 1 bytes, refused if longer, otherwise handed on whole
with its length set, so the app only ever sees complete bodies.

A body is also read in whole, here, within BODY_TIMEOUT seconds (a setting): under gunicorn each request holds one of a
worker's few threads while its body arrives, so a client that declares a body and sends it slowly (or
not at all) would otherwise hold the thread for ever; eight such connections silenced the server. Past
the deadline the request is a 408 and the connection closes.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestTimeout

from .errors import TOO_LARGE

DRAIN = 16 << 20  # bytes of a refused body read and dropped, so that a client still sending can read the 413
DRAIN_SECONDS = 2.0  # a refused body is read and dropped for at most this
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ["CONTENT_LENGTH"]) if environ.get("CONTENT_LENGTH") else None
    except ValueError:
        return None


class _Deadline:
    """A total time for reading from the client's socket (gunicorn hands the app the socket in its environ);
    elsewhere (the test client, the dev server) reads are not timed."""

    def __init__(self, environ: dict[str, Any], seconds: float) -> None:
        self.sock = environ.get("gunicorn.socket")
        self.end = time.monotonic() + seconds

    def arm(self) -> None:
        """Before each read: what is left of the time (TimeoutError once it is spent)."""
        if self.sock is not None:
            left = self.end - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request body did not arrive in time")
            self.sock.settimeout(left)

    def disarm(self) -> None:
        if self.sock is not None:
            try:
                self.sock.settimeout(None)
            except OSError:
                pass


def _chunks(environ: dict[str, Any], most: int, seconds: float) -> Iterator[bytes]:
    """The body's chunks, up to `most` bytes or its end, each read within what is left of `seconds` (TimeoutError,
    an OSError, once they are spent)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    deadline = _Deadline(environ, seconds)
    try:
        while most > 0:
            deadline.arm()
            if not (chunk := stream.read(min(1 << 16, most))):
                return
            most -= len(chunk)
            yield chunk
    finally:
        deadline.disarm()


def _read_body(environ: dict[str, Any], limit: int, declared: int | None, seconds: float) -> bytes | None:
    """The whole body (of `declared` bytes, or up to its end when unframed), or None when it is over the limit;
    TimeoutError (an OSError) when it does not arrive within `seconds`."""
    body = b"".join(_chunks(environ, limit + 1 if declared is None else declared, seconds))
    return None if declared is None and len(body) > limit else body


def _drain(environ: dict[str, Any]) -> None:
    """Read and drop what a client is still sending, up to DRAIN bytes or DRAIN_SECONDS (then the connection
    closes)."""
    try:
        for _ in _chunks(environ, DRAIN, DRAIN_SECONDS):
            pass
    except (OSError, ValueError):
        pass


class BodyLimit:
    """WSGI middleware enforcing the app's MAX_CONTENT_LENGTH for every framing."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        limit, seconds = self.app.config["MAX_CONTENT_LENGTH"], self.app.config["BODY_TIMEOUT"]
        declared = _declared_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        unframed = chunked or environ.get("wsgi.input_terminated")
        if declared is not None and declared > limit:
            return self._refuse(environ, start_response, RequestEntityTooLarge(TOO_LARGE), drain=True)
        if declared or (declared is None and unframed):
            try:
                body = _read_body(environ, limit, declared, seconds)
            except OSError:  # socket.timeout, or the client went away
                return self._refuse(environ, start_response, RequestTimeout(
                    f"The request body did not arrive within {seconds:g} s."), drain=False)
            if body is None:
                return self._refuse(environ, start_response, RequestEntityTooLarge(TOO_LARGE), drain=True)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input_terminated"] = False
        return self.wsgi_app(environ, start_response)

    def _refuse(self, environ: dict[str, Any], start_response: Callable[..., Any], error: HTTPException, *,
                drain: bool) -> Iterable[bytes]:
        if drain:
            _drain(environ)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(), "0"  # the app reads nothing more
        with self.app.request_context(environ):
            # answered by the app's own handlers, so each surface words it its way (FHIR: an OperationOutcome)
            failure = self.app.handle_user_exception(error)
            response = self.app.finalize_request(failure, from_error_handler=True)  # with the usual headers
            response.headers["Connection"] = "close"  # the unread rest of the body is not waited for
            return response(environ, start_response)


def init_app(app: Flask) -> None:
    """Put the limit in front of the app."""
    app.wsgi_app = BodyLimit(app, app.wsgi_app)  # type: ignore[method-assign]
