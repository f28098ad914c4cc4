"""The headers every answer carries, by what a browser does with it.

A document a browser renders (HTML, and any XML, whose XHTML elements may script: `+xml` media types
included, SVG among them) gets the full set: no sniffing, a content security policy, no framing, no
referrer, and CORS. A data answer (SPARQL JSON/CSV/TSV results, Turtle, N-Triples, JSON-LD, JSON,
CSV exports, plain-text errors) is never rendered as a page that could run script, frame a UI or
send a referrer: with `nosniff` a browser will not read it as HTML, so it carries `nosniff`, CORS
and the resource policy only, as Oxigraph's server and Datasette send CORS alone on their JSON.
Each header costs gunicorn's response writer several microseconds, a measurable share of a
sub-millisecond lookup (README, Measurements).
"""

from __future__ import annotations

from flask import Response

#: on every answer
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
}
#: on documents a browser renders as a page
DOCUMENT = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; frame-ancestors 'none'",
}
SECURITY_HEADERS = {**COMMON, **DOCUMENT}
#: what a CORS preflight (OPTIONS) needs besides the origin; on other answers browsers ignore these
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Accept, Content-Type",
    "Access-Control-Max-Age": "86400",
}
_COMMON, _FULL = list(COMMON.items()), list(SECURITY_HEADERS.items())


def is_document(mimetype: str) -> bool:
    """Would a browser render an answer of this media type as a page (HTML or XML), or is it unknown?"""
    return not mimetype or mimetype in ("text/html", "application/xhtml+xml") or mimetype.endswith(("/xml", "+xml"))


def add_headers(response: Response, preflight: bool = False) -> Response:
    """The answer's security and CORS headers (those a view has set itself are kept)."""
    present = response.headers
    wanted = _FULL if is_document(response.mimetype or "") else _COMMON
    if preflight:
        wanted = [*wanted, *PREFLIGHT_HEADERS.items()]
    present.extend([(k, v) for k, v in wanted if k not in present])
    return response
