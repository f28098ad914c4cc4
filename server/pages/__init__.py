"""Linked-data pages: every IRI the graph mints is served under its own path.

``https://w3id.org/medcode/id/cpt/96522`` is served at ``/id/cpt/96522`` (the public base is
``PUBLIC_BASE``), ontology terms at ``/ontology`` (``/ontology#Term``). One URL, several
representations: HTML for people, Turtle, JSON-LD, RDF/XML and N-Triples for RDF clients, chosen by
the Accept header or ``?format=``. Responses carry ``Vary: Accept`` and an ETag tied to the
snapshot (304 on If-None-Match). Every lookup goes through the app's store so the pages work on any
store; lists that can be long (reverse links, children, code-system members) are counted and paged.

This module holds the blueprint and its routes; each page is built in its own module.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Blueprint, Response, redirect, request

from ..http.errors import HTTPError
from ..http.formats import Format
from ..http.representations import represent
from ..store import get_store
from .browsing import (
    browse_html,
    browse_rdf,
    devices_html,
    devices_rdf,
    routes_html,
    routes_rdf,
    system_html,
    system_rdf,
)
from .describe import exists
from .labels import SCHEME_NAMES
from .ontology import ontology_html, ontology_rdf
from .resource import resource_html, resource_rdf
from .respond import serve
from .suggest import Missing, missing_response, suggest
from .terms import valid_iri
from .view import local_href, public_base
from .vocab import vocab

bp = Blueprint("pages", __name__, template_folder="templates")
CONTEXT = Format("jsonld", "application/ld+json", ("application/json",))


@bp.after_request
def vary(response: Response) -> Response:
    """Every page answer, errors included, depends on Accept (HTML, RDF, plain text or JSON)."""
    response.vary.add("Accept")
    return response


@bp.errorhandler(Missing)
def missing(exc: Missing) -> Response:
    """A 404 with suggestions (more specific than the app's one HTTPError handler)."""
    return missing_response(exc)


@bp.route("/id")
@bp.route("/id/")
def id_root() -> Response:
    """/id itself names nothing: the code systems are listed on /browse."""
    return redirect(request.script_root + "/browse", code=303)


@bp.route("/id/<path:rest>")
def by_path(rest: str) -> Response:
    """A code system's index (`/id/cpt`), else the resource minted at this path."""
    if rest.endswith("/"):
        query = request.query_string.decode("latin-1")  # as_of, format ... go along
        return redirect(request.script_root + "/id/" + quote(rest.rstrip("/")) + (f"?{query}" if query else ""),
                        code=301)
    if rest in SCHEME_NAMES:
        return serve(lambda: system_html(rest), lambda fmt: system_rdf(rest, fmt))
    return resource(public_base() + "id/" + rest)


@bp.route("/resource")
def any_resource() -> Response:
    """Any IRI of the graph, including ontology terms (hash IRIs) and external vocabulary terms."""
    iri = request.args.get("iri", "")
    if not valid_iri(iri):
        raise HTTPError(400, "Give the resource as ?iri= followed by an absolute IRI.")
    if iri.startswith(public_base() + "id/") and "#" not in iri:
        return redirect(local_href(iri), code=303)
    return resource(iri)


def resource(iri: str) -> Response:
    """The resource's page, or 404 with near matches when the graph does not know it."""
    if not valid_iri(iri) or not exists(iri):
        raise Missing(iri, suggest(iri) if valid_iri(iri) or iri.startswith(public_base()) else [])
    return serve(lambda: resource_html(iri), lambda fmt: resource_rdf(iri, fmt), iri)


@bp.route("/ontology")
def ontology() -> Response:
    """The ontology document; its terms are its anchors (/ontology#Term)."""
    return serve(ontology_html, ontology_rdf)


@bp.route("/context.jsonld")
def context() -> Response:
    """The JSON-LD context the pages' JSON-LD is compacted with."""
    return represent((CONTEXT,), lambda _fmt: json.dumps({"@context": vocab().context}, indent=2, ensure_ascii=False),
                     snapshot=get_store().etag, tag="context")


@bp.route("/browse")
def browse() -> Response:
    """The code systems, with their sizes."""
    return serve(browse_html, browse_rdf)


@bp.route("/browse/devices")
def browse_devices() -> Response:
    """Codes by device kind."""
    return serve(devices_html, devices_rdf)


@bp.route("/browse/routes")
def browse_routes() -> Response:
    """Codes by route of drug delivery."""
    return serve(routes_html, routes_rdf)
