"""One URL, several representations: HTML for people, four RDF syntaxes for machines.

The HTTP around a page (negotiation, ETag/304, the per-snapshot cache) is the shared
`represent`; this module names the pages' formats and the alternates a page links to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, redirect, render_template, request, url_for

from ..http.formats import GRAPH_FORMATS, Format
from ..http.representations import choose, represent
from ..store import get_store, parse_as_of
from .view import View

HTML = Format("html", "text/html", ("application/xhtml+xml",))
#: the RDF formats a page is offered in, in the order a page lists them
RDF_TITLES = {"turtle": "Turtle", "jsonld": "JSON-LD", "rdfxml": "RDF/XML", "ntriples": "N-Triples"}
PAGE_FORMATS = (HTML, *(f for f in GRAPH_FORMATS if f.name in RDF_TITLES))
_MEDIA = {f.name: f.media_type for f in PAGE_FORMATS}


def content_type(fmt: Format) -> str:
    """The Content-Type of a page: UTF-8 named for the text formats that have no fixed encoding."""
    if fmt is HTML:
        return "text/html; charset=utf-8"
    return fmt.media_type if fmt.name in ("jsonld", "rdfxml") else fmt.media_type + "; charset=utf-8"


def alternates() -> list[dict[str, str]]:
    """The page's RDF versions: this URL with `format=`, relative so that it follows the mount point."""
    return [{"href": View.url(format=name), "type": _MEDIA[name], "title": title}
            for name, title in RDF_TITLES.items()]


def render(template: str, **ctx: Any) -> str:
    """A page template with its alternates (for `<link rel=alternate>` and the footer)."""
    return render_template(template, alternates=alternates(), **ctx)


def serve(html: Callable[[], str], rdf: Callable[[Format], bytes], iri: str | None = None) -> Response:
    """The page in the negotiated format, through the shared representation helper. With `as_of` the HTML page
    adds the code's state on that date (its ETag names the date); the RDF of that date's state of resource `iri`
    is the SPARQL endpoint's DESCRIBE over the dated graphs, where an RDF version with `as_of` is sent (303)."""
    when = parse_as_of(request.args.getlist("as_of"))
    if when is not None and iri is not None and choose(PAGE_FORMATS) is not HTML:
        target = url_for("sparql.endpoint", query=f"DESCRIBE <{iri}>", as_of=when.isoformat(),
                         **({"format": request.args["format"]} if "format" in request.args else {}))
        return redirect(target, code=303)
    response = represent(PAGE_FORMATS, lambda fmt: html() if fmt is HTML else rdf(fmt),
                         snapshot=get_store().etag, tag=when.isoformat() if when else "",
                         content_type=content_type)
    if response.status_code == 200 and response.mimetype == HTML.media_type:
        # the same relative targets as the page's own <link rel=alternate>
        response.headers["Link"] = ", ".join(f'<{a["href"]}>; rel="alternate"; type="{a["type"]}"'
                                             for a in alternates())
    return response
