"""`/sparql`: the W3C SPARQL 1.1 Protocol, read-only, with strict negotiation and hard limits."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from ..http.errors import HTTPError
from ..http.formats import GRAPH_FORMATS, RESULT_FORMATS
from ..http.guard import Refused, inspect
from ..http.representations import negotiate_or_fail
from ..store import INFERENCE_GRAPHS, Store, get_store, parse_as_of, state_on
from .service_description import service_description

bp = Blueprint("sparql", __name__, template_folder="templates")


@bp.context_processor
def _query_ui() -> dict[str, Any]:
    """`query_ui()` for the query page: the editor's (YASGUI) configuration, or None without its files."""
    from ..assets import query_ui_config  # imported late: `python -m server.assets` runs it as __main__

    return {"query_ui": query_ui_config}

SINGLE = ("query", "update", "inference", "as_of")
SD_FORMATS = GRAPH_FORMATS[:4]
#: the Content-Type of each answer format (SPARQL JSON results are UTF-8 by definition: no charset)
CONTENT_TYPES = {fmt: fmt.media_type + ("" if fmt.name == "json" and fmt.media_type.endswith("json")
                                        else "; charset=utf-8") for fmt in RESULT_FORMATS + GRAPH_FORMATS}


#: POST body media type -> None (the query comes in the form) or the refusal (status, message)
BODY_TYPES: dict[str, tuple[int, str] | None] = {
    "application/x-www-form-urlencoded": None,
    "application/sparql-query": None,
    "application/sparql-update": (403, "This endpoint is read-only: SPARQL Update is not accepted."),
    "": (400, "A POST needs a Content-Type: application/sparql-query or application/x-www-form-urlencoded."),
}


def _body() -> tuple[list, str | None]:
    """The POST body's parameter source (a form) or its query text (a sparql-query body)."""
    ctype = (request.mimetype or "").lower()
    if ctype not in BODY_TYPES:
        raise HTTPError(415, f"Unsupported Content-Type '{ctype}': use application/sparql-query or "
                             "application/x-www-form-urlencoded.")
    refusal = BODY_TYPES[ctype]
    if refusal is not None:
        raise HTTPError(*refusal)
    if ctype == "application/x-www-form-urlencoded":
        return [request.form], None
    try:
        return [], request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, "The request body is not valid UTF-8.") from exc


def _single(sources: list) -> dict[str, str]:
    """The single-valued parameters (a repeated one is a 400) and every `format` given."""
    single: dict[str, str] = {}
    for name in SINGLE:
        values = [v for src in sources for v in src.getlist(name)]
        if len(values) > 1:
            raise HTTPError(400, f"The parameter '{name}' was given more than once.")
        if values:
            single[name] = values[0]
    # SPARQLWrapper sends format twice (e.g. json-ld and application/ld+json): keep them all and
    # let negotiation insist they agree
    formats = [v for src in sources for v in src.getlist("format")]
    if formats:
        single["format"] = "\x00".join(formats)
    return single


def _params() -> tuple[dict[str, str], dict[str, list[str]], str | None]:
    """Single-valued params, multi-valued graph params, and the query (from wherever it came)."""
    sources, body_query = [request.args], None
    if request.method == "POST":
        form, body_query = _body()
        sources += form
    single = _single(sources)
    graphs = {name: [v for src in sources for v in src.getlist(name)]
              for name in ("default-graph-uri", "named-graph-uri")}
    if body_query is not None:
        if "query" in single:
            raise HTTPError(400, "The query was given both in the body and as a parameter.")
        single["query"] = body_query
    return single, graphs, single.get("query")


def _dataset(store: Store, single: dict[str, str], graphs: dict[str, list[str]], own_dataset: bool
             ) -> tuple[list[str] | None, list[str] | None, str]:
    """The default and named graphs (None: the query's own FROM clauses) and the ICD-10-CM release in force on
    `as_of` ('' without it). `as_of` selects the dataset itself: with FROM, FROM NAMED, default-graph-uri or
    named-graph-uri it is a 400, since the two would contradict each other; so is `inference` (other than `all`,
    the default a form sends) with default-graph-uri or FROM."""
    for name, iris in graphs.items():
        for iri in iris:
            if iri not in store.graphs:
                raise HTTPError(400, f"{name} <{iri}> is not a graph of this endpoint; local graphs: "
                                         + ", ".join(sorted(store.graphs)))
    inference = single.get("inference", "all")
    if inference not in INFERENCE_GRAPHS:
        raise HTTPError(400, "inference must be one of: " + ", ".join(INFERENCE_GRAPHS))
    given = [name for name in ("default-graph-uri",) if graphs[name]] + (["FROM"] if own_dataset else [])
    if inference != "all" and given:
        raise HTTPError(400, f"inference={inference} picks the default graph; it cannot be combined with "
                             f"{', '.join(given)}, which name the dataset themselves (name the asserted or inferred "
                             "graph there instead).")
    when = parse_as_of([single["as_of"]] if "as_of" in single else [])
    if when is not None:
        given = [name for name, iris in graphs.items() if iris] + (["FROM / FROM NAMED"] if own_dataset else [])
        if given:
            raise HTTPError(400, f"as_of selects the dataset (the graphs of that date's state); it cannot be "
                                 f"combined with {', '.join(given)}.")
        state = state_on(store.meta, when, inference)
        return state.graphs, state.named_graphs, state.release
    if own_dataset:
        return None, None, ""  # the query's own FROM clauses (local graphs only) define its dataset
    return graphs["default-graph-uri"] or INFERENCE_GRAPHS[inference], graphs["named-graph-uri"] or None, ""


@bp.route("/sparql", methods=["GET", "POST"])
def endpoint() -> Response:
    single, graphs, query = _params()
    if "update" in single:
        if query is not None:
            raise HTTPError(400, "Both 'query' and 'update' were given; send one operation.")
        raise HTTPError(403, "This endpoint is read-only: SPARQL Update is not accepted.")
    if query is None:
        if request.method == "POST":
            raise HTTPError(400, "Missing 'query' parameter.")
        return _no_query()
    return _run(query, single, graphs)


def _no_query() -> Response:
    """GET without a query: the query page for browsers, else the service description."""
    accept = request.accept_mimetypes
    explicit_html = any(value == "text/html" for value, _ in accept)
    if explicit_html and "format" not in request.args and accept["text/html"] >= max(
            accept[f.media_type] for f in SD_FORMATS):
        return Response(render_template("sparql/sparql.html"), mimetype="text/html")
    fmt = negotiate_or_fail(SD_FORMATS, request.args.get("format"))
    store = get_store()
    graph = service_description(request.base_url, store.meta, current_app.config)
    rdflib_format = {"turtle": "turtle", "ntriples": "nt", "rdfxml": "xml", "jsonld": "json-ld"}[fmt.name]
    response = Response(graph.serialize(format=rdflib_format), content_type=f"{fmt.media_type}; charset=utf-8")
    response.headers["Vary"] = "Accept"
    return response


def _run(query: str, single: dict[str, str], graphs: dict[str, list[str]]) -> Response:
    store = get_store()
    try:
        inspection = inspect(query, store.graphs, store.prefixes)
    except Refused as exc:
        raise HTTPError(400, str(exc)) from exc
    formats = RESULT_FORMATS if inspection.form in ("SELECT", "ASK") else GRAPH_FORMATS
    fmt = negotiate_or_fail(formats, single.get("format"))
    default, named, release = _dataset(store, single, graphs,
                                       bool(inspection.from_graphs or inspection.from_named_graphs))
    config = current_app.config
    payload = store.query(query, fmt=fmt.name, limit=config["MAX_RESULTS"], timeout=config["QUERY_TIMEOUT"],
                          default_graph=default, named_graphs=named)
    headers = {"Vary": "Accept"}
    if release:
        headers["ICD10CM-Release"] = release  # the release in force on as_of, whose state answered
    return Response(payload, content_type=CONTENT_TYPES[fmt], headers=headers)
