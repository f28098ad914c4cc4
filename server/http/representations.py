"""One representation helper for every page-like answer: negotiate -> ETag/304 -> body -> alternates.

As in Datasette, a view computes its answer once per format and this module does the HTTP around it:
the format from `?format=` or `Accept` (400 for a malformed header, 406 when nothing offered fits), a
strong ETag made of the store's snapshot id, the view's tag and the format, `304 Not Modified` for a
current one, a bounded per-app cache of rendered bodies keyed by the same snapshot id (so a publish
or a new snapshot never serves a stale page), and `Link: rel="alternate"` to the other formats.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from flask import Response, current_app, request

from .errors import HTTPError
from .formats import BadAccept, Format, NotAcceptable, negotiate

CACHE_SIZE = 512  # rendered bodies kept per app (all snapshots together)
Body = bytes | str


class ResponseCache:
    """A small thread-safe LRU of rendered bodies."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.data: OrderedDict[tuple, Body] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> Body | None:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: tuple, value: Body) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


def negotiate_or_fail(formats: tuple[Format, ...], override: str | None) -> Format:
    """The format `override` (a `format=` value) or the Accept header picks; 400 if malformed, 406 if none fits."""
    try:
        return negotiate(formats, request.headers.get("Accept"), override)
    except BadAccept as exc:
        raise HTTPError(400, str(exc)) from exc
    except NotAcceptable as exc:
        raise HTTPError(406, str(exc)) from exc


def choose(formats: tuple[Format, ...]) -> Format:
    """The format the request asks for among `formats` (the first is the default)."""
    return negotiate_or_fail(formats, "\x00".join(request.args.getlist("format")) or None)


def format_url(name: str) -> str:
    """This request's path (under the app's mount point) with `?format=name`, other arguments kept."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "format"] + [("format", name)]
    return request.script_root + request.path + "?" + urlencode(args)


def alternate_links(formats: Iterable[Format], chosen: Format) -> str:
    """A `Link` header value naming every other format of this resource."""
    return ", ".join(f'<{format_url(f.name)}>; rel="alternate"; type="{f.media_type}"'
                     for f in formats if f is not chosen)


def _cache() -> ResponseCache:
    return current_app.extensions.setdefault("medcode.representations", ResponseCache())


def represent(formats: tuple[Format, ...], build: Callable[[Format], Body], *, snapshot: str, tag: str = "",
              content_type: Callable[[Format], str] | None = None, cached: bool = True,
              max_age: int = 600) -> Response:
    """Answer the request with `build(format)`, negotiated, validated by ETag and cached per snapshot."""
    fmt = choose(formats)
    etag = "-".join(part for part in (snapshot, tag, fmt.name) if part)
    headers = {"Vary": "Accept", "ETag": f'"{etag}"', "Cache-Control": f"public, max-age={max_age}"}
    if request.if_none_match and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    key = (snapshot, fmt.name, request.script_root, request.full_path, current_app.config["PUBLIC_BASE"])
    body = _cache().get(key) if cached else None
    if body is None:
        body = build(fmt)
        if cached:
            _cache().put(key, body)
    kind = content_type(fmt) if content_type else fmt.media_type
    response = Response(body, status=200, content_type=kind, headers=headers)
    if len(formats) > 1:
        response.headers["Link"] = alternate_links(formats, fmt)
    return response
