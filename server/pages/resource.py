"""Any resource of the graph: a code gets the code page, anything else the generic page of its facts
and of what points at it; the RDF version is its description plus the page of reverse links shown."""

from __future__ import annotations

from flask import request

from ..http.formats import Format
from .code import code_html
from .describe import describe, describe_rdf, empty, group
from .fanout import gather
from .labels import CODE_CLASSES
from .paging import children, read_reverse, reverse_links, reverse_page, reverse_triples
from .respond import render
from .terms import BROADER, ONTOLOGY, TYPE
from .view import View, public_base


def resource_rdf(iri: str, fmt: Format) -> bytes:
    """The description, the shown page of reverse links and (for ICD-10-CM) the shown page of children."""
    view = View()
    with_children = bool(request.args.get("cpage")) or iri.startswith(public_base() + "id/icd10cm")
    rev, kids = gather(lambda: reverse_links(iri, view), lambda: children(iri, view) if with_children else None)
    extra = reverse_triples(iri, rev) + ([(c.iri, BROADER, iri) for c in kids.rows] if kids else [])
    return describe_rdf(iri, fmt, extra)


def resource_html(iri: str) -> str:
    """The code page for a code, else the generic page."""
    view = View()
    # known only as an object: a page of reverse links
    d, found = gather(lambda: describe(iri) or empty(iri), lambda: read_reverse(iri))
    if d.types() & CODE_CLASSES:
        return code_html(iri, d, view, found)
    view.load(d.iris() | found.subjects() | {iri})
    rev = reverse_page(found, view)
    return render("pages/resource.html", V=view, iri=iri, d=d, me=view.link(iri), rev=rev,
                  groups=group(d.facts, skip={TYPE}), types=d.get(TYPE), ontology_term=iri.startswith(ONTOLOGY))
