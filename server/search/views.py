"""`/search?q=`: one box for codes, code ranges, code prefixes and words; HTML or JSON by negotiation."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from ..codes import SYSTEM_LABELS
from ..http.formats import Format
from ..http.representations import represent
from ..pages.view import local_href
from ..store import get_store
from . import text
from .index import DEFAULT_LIMIT
from .lifecycle import get_index

bp = Blueprint("search", __name__, template_folder="templates")

HTML = Format("html", "text/html", ("application/xhtml+xml",))
JSON = Format("json", "application/json")
MAX_LIMIT = 500


def _limit() -> int:
    """The `limit` parameter within 1..MAX_LIMIT; a value that is not a number is ignored."""
    try:
        value = int(request.args.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return DEFAULT_LIMIT
    return max(1, min(value, MAX_LIMIT))


def _results(query: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The results as JSON gives them; a result found through ICD-10-CM inclusion terms names those it matched."""
    ranked, total = get_index().search(query, limit) if query.strip() else ([], 0)
    results = []
    for e, score in ranked:
        result: dict[str, Any] = {"notation": e.notation, "label": e.label, "system": e.system, "iri": e.iri,
                                  "score": score}
        matched = text.matched_terms(e.inclusion_terms, query)
        if matched:
            result["matched_inclusion_terms"] = matched
        results.append(result)
    return results, total


@bp.route("/search")
def search() -> Response:
    """The ranked codes for `q` (at most `limit`), as a page with the search form or as JSON."""
    query, limit = request.args.get("q", ""), _limit()
    took: list[float] = []

    def build(fmt: Format) -> str:
        started = time.perf_counter()
        results, total = _results(query, limit)
        took.append(time.perf_counter() - started)
        if fmt is JSON:
            return current_app.json.dumps({"query": query, "results": results, "total": total})
        for item in results:
            item["path"] = local_href(item["iri"]) or item["iri"]
            item["system_label"] = SYSTEM_LABELS.get(item["system"], item["system"])
        return render_template("search/search.html", q=query, results=results, total=total, limit=limit)

    response = represent((HTML, JSON), build, snapshot=get_store().etag, tag="search", cached=False,
                         content_type=lambda fmt: fmt.media_type + ("; charset=utf-8" if fmt is HTML else ""))
    if took:
        response.headers["Server-Timing"] = f"search;dur={took[0] * 1000:.1f}"
    return response
