"""`/why?s=…&p=…&o=…`: why the graph says a triple, as a derivation tree down to asserted triples and the
documents they come from (HTML or JSON, through the shared representations helper).

`s` and `p` are IRIs or CURIEs (`cpt:95990`, `mc:notReportedWith`); `o` is an IRI, a CURIE or a
literal in Turtle syntax (`"Relapsing-remitting multiple sclerosis"@en`, `"true"^^xsd:boolean`). A
triple the graph neither states nor entails is a 404; an asserted one is answered with its sources.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pyoxigraph as ox
from flask import Blueprint, Response, current_app, render_template, request

from kg.contract import PREFIXES

from ..codes import curie, expand
from ..http.errors import HTTPError
from ..http.formats import Format
from ..http.representations import represent
from ..pages.terms import Term, valid_iri
from ..pages.view import local_href
from ..store import QueryError, get_store
from .tree import Explainer, Node, TreeTooLarge, status

bp = Blueprint("why", __name__, template_folder="templates")
HTML = Format("html", "text/html", ("application/xhtml+xml",))
JSON = Format("json", "application/json")
MAX_TERM = 4096  # characters in one of s, p, o
RULES_SPEC = "https://www.w3.org/TR/owl2-profiles/#Reasoning_in_OWL_2_RL_and_RDF_Graphs_using_Rules"
_TURTLE_PREFIXES = " ".join(f"@prefix {k}: <{v}> ." for k, v in PREFIXES.items())  # on line 1, as the message says


def _param(name: str) -> str:
    values = request.args.getlist(name)
    if len(values) != 1:
        raise HTTPError(400, f"{name} is required once (s, p and o name the triple to explain), "
                             f"got it {len(values)} times")
    if len(values[0]) > MAX_TERM:
        raise HTTPError(400, f"{name} is longer than {MAX_TERM} characters")
    return values[0].strip()


def _iri(name: str, value: str) -> Term:
    iri = expand(value[1:-1] if value.startswith("<") and value.endswith(">") else value)
    try:
        ox.NamedNode(iri)  # Oxigraph's own check: the tree's queries are written with it
    except ValueError as exc:
        raise HTTPError(400, f"{name} must be an IRI or a CURIE with a known prefix, not {value!r} ({exc})") from exc
    if not valid_iri(iri):
        raise HTTPError(400, f"{name} must be an IRI or a CURIE with a known prefix, not {value!r}")
    return Term("uri", iri)


#: Turtle's literals without quotes: true, false, integers, decimals and doubles
_TURTLE_SHORTHAND = re.compile(r"true|false|[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _object(value: str) -> Term:
    """An IRI or CURIE, else a literal in Turtle syntax (parsed by Oxigraph, whose message a 400 carries)."""
    if not value.startswith(('"', "'")) and not _TURTLE_SHORTHAND.fullmatch(value):
        return _iri("o", value)
    try:
        [quad] = ox.parse(f"{_TURTLE_PREFIXES}<urn:s> <urn:p> {value} .", format=ox.RdfFormat.TURTLE)
    except (SyntaxError, ValueError) as exc:
        raise HTTPError(400, f"o is not a literal in Turtle syntax: {exc}") from exc
    literal = quad.object
    lang = literal.language or ""
    datatype = "" if lang or literal.datatype.value.endswith("#string") else literal.datatype.value
    return Term("literal", literal.value, lang, datatype)


def why_href(s: str, p: str, o: Term) -> str:
    """The /why link of one triple (for the code pages' "why?" beside an inferred fact)."""
    if o.is_iri:
        value = o.value
    elif o.lang:
        value = str(ox.Literal(o.value, language=o.lang))
    else:
        value = str(ox.Literal(o.value, datatype=ox.NamedNode(o.datatype) if o.datatype else None))
    return request.script_root + "/why?" + urlencode({"s": s, "p": p, "o": value})


@bp.app_template_global("why_href")
def _why_href_global(s: str, p: str, o: Term) -> str:
    return why_href(s, p, o)


def _term_json(term: Term | None) -> dict[str, str] | None:
    if term is None:
        return None
    found = {"type": term.type, "value": term.value}
    if term.lang:
        found["xml:lang"] = term.lang
    elif term.datatype:
        found["datatype"] = term.datatype
    return found


def _node_json(node: Node) -> dict[str, Any]:
    s, p, o = node.triple
    found: dict[str, Any] = {"s": _term_json(s), "p": _term_json(p), "o": _term_json(o), "status": node.status}
    if node.status == "asserted":
        found["sources"] = node.sources
    else:
        found.update(rule=curie(node.rule).removeprefix("mc:"), rule_iri=node.rule, derivation=node.derivation,
                     premises=[_node_json(n) for n in node.premises])
        if node.via is not None:
            found["via"] = _term_json(node.via)
    return found


def _tree(s: Term, p: Term, o: Term) -> Node:
    state = status(s, p, o)
    if state is None:
        raise HTTPError(404, f"The graph neither states nor entails {curie(s.value)} {curie(p.value)} "
                             f"{curie(o.value) if o.is_iri else str(ox.Literal(o.value))}.")
    try:
        return Explainer().explain(s, p, o, state)
    except TreeTooLarge as exc:
        raise HTTPError(422, f"Cannot show why: {exc}.") from exc


@bp.route("/why")
def why() -> Response:
    """The derivation of the triple s p o, down to asserted triples with their sources. The derivations are
    today's graph's: `as_of` is refused (400) rather than ignored, since a date would change the answer."""
    if any(v.strip() for v in request.args.getlist("as_of")):
        raise HTTPError(400, "as_of is not supported by /why: the derivations graph explains today's triples "
                             "only (ask /sparql?as_of=... what held on a date).")
    s, p = _iri("s", _param("s")), _iri("p", _param("p"))
    o = _object(_param("o"))

    def build(fmt: Format) -> str:
        try:
            tree = _tree(s, p, o)
        except QueryError as exc:
            raise HTTPError(exc.status, f"The derivation could not be read: {exc}") from exc
        if fmt is JSON:
            return current_app.json.dumps({**_node_json(tree), "documents": sorted(tree.documents())})
        return render_template("why/why.html", tree=tree, documents=sorted(tree.documents()), curie=curie,
                               local_href=local_href, rules_spec=RULES_SPEC)

    return represent((HTML, JSON), build, snapshot=get_store().etag, tag="why",
                     content_type=lambda fmt: fmt.media_type + ("; charset=utf-8" if fmt is HTML else ""))
