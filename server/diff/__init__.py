"""What changed between two releases of a code system: `/diff?system=icd10cm&from=2025-04&to=2026-04`.

Added, deleted and revised codes with what changed (label, billable flag, Tabular List notes), as HTML,
CSV, JSON, or RDF (the change records of the releases in between, Turtle or N-Triples), through the
shared representations helper. `from` and `to` name releases (YYYY-MM) or dates (the release in force
then); without them the diff is of the last two releases. `medcode diff` gives the same CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Blueprint, Response, render_template, request

from kg.contract import ID_BASE

from ..http.errors import HTTPError
from ..http.formats import GRAPH_FORMATS, Format
from ..http.representations import represent
from ..store import QueryError, get_store, run_query
from .history import Difference, Release, diff, of_system, release_named

__all__ = ["CSV_COLUMNS", "bp", "diff_csv", "diff_json", "resolve"]

bp = Blueprint("diff", __name__, template_folder="templates")
HTML = Format("html", "text/html")
JSON = Format("json", "application/json")
CSV = Format("csv", "text/csv")
RDF = tuple(f for f in GRAPH_FORMATS if f.name in ("turtle", "ntriples"))
FORMATS = (HTML, JSON, CSV, *RDF)
CSV_COLUMNS = ("code", "change", "label", "billable", "property", "before", "after", "replaced_by")
SYSTEMS = ("icd10cm",)  # the code systems whose releases the build compares
RDF_QUERY = """
CONSTRUCT {{ ?change ?p ?o . ?release ?rp ?ro }} WHERE {{
  ?release mc:releaseOf ?scheme ; mc:releaseDate ?date .
  FILTER(?scheme = <{scheme}> && ?date > "{after}"^^xsd:date && ?date <= "{until}"^^xsd:date)
  {{ ?release ?rp ?ro }} UNION {{ ?change mc:changeIn ?release ; ?p ?o }}
}}
"""


def resolve(system: str, earlier: str | None, later: str | None) -> tuple[Release, Release]:
    """The two releases a request names (defaults: the last two the graph holds); 400/404 naming what exists."""
    if system not in SYSTEMS:
        raise HTTPError(404, f"No release history for '{system[:40]}'; the graph keeps it for: {', '.join(SYSTEMS)}.")
    held = of_system(system)
    if len(held) < 2 and not (earlier and later):
        raise HTTPError(404, f"The graph holds one {system} release ({held[0].notation}): nothing to compare "
                             "(build with the earlier releases: see `medcode build --releases`).")
    return (release_named(system, earlier) if earlier else held[-2],
            release_named(system, later) if later else held[-1])


def _counts(changes: list[Difference]) -> dict[str, int]:
    return {kind: sum(1 for c in changes if c.kind == kind) for kind in ("added", "deleted", "revised")}


def _release(release: Release) -> dict[str, str]:
    return {"release": release.notation, "effective": release.effective.isoformat(), "label": release.label,
            "iri": release.iri}


def diff_json(system: str, earlier: Release, later: Release, changes: list[Difference]) -> str:
    """The diff as one JSON document: the two releases, the counts, and each code's changes."""
    return json.dumps({
        "system": system, "from": _release(earlier), "to": _release(later), "counts": _counts(changes),
        "changes": [{"code": c.notation, "iri": c.code, "change": c.kind, "label": c.label,
                     "billable": c.billable == "true" if c.billable else None,
                     "revisions": [{"property": p, "before": b, "after": a} for p, b, a in c.revisions],
                     "replaced_by": [r.rsplit("/", 1)[1] for r in c.replaced_by]} for c in changes],
    }, indent=1, ensure_ascii=False)


def diff_csv(changes: list[Difference]) -> str:
    """The diff as CSV: one row per added or deleted code and per revised property."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in changes:
        replaced = " ".join(r.rsplit("/", 1)[1] for r in c.replaced_by)
        for prop, before, after in c.revisions or [("", "", "")]:
            writer.writerow((c.notation, c.kind, c.label, c.billable, prop, before, after, replaced))
    return out.getvalue()


def _rdf(system: str, earlier: Release, later: Release, fmt: Format) -> bytes:
    query = RDF_QUERY.format(scheme=ID_BASE + system, after=earlier.effective.isoformat(),
                             until=later.effective.isoformat())
    try:
        return run_query(query, fmt=fmt.name, graphs="asserted", named=None)
    except QueryError as exc:
        raise HTTPError(exc.status, f"Reading the change records failed: {exc}") from exc


def _html(system: str, earlier: Release, later: Release, changes: list[Difference]) -> str:
    by_kind: dict[str, list[Difference]] = {"added": [], "deleted": [], "revised": []}
    for c in changes:
        by_kind[c.kind].append(c)
    return render_template("diff/diff.html", system=system, earlier=earlier, later=later, by_kind=by_kind,
                           counts=_counts(changes), releases=of_system(system), formats=FORMATS)


def _content_type(fmt: Format) -> str:
    return fmt.media_type + ("" if fmt is JSON else "; charset=utf-8")


@bp.route("/diff")
def view() -> Response:
    """The diff of two releases of a code system, in the negotiated format."""
    args: dict[str, Any] = request.args
    for name in ("system", "from", "to"):
        if len(request.args.getlist(name)) > 1:
            raise HTTPError(400, f"'{name}' is given more than once.")
    system = args.get("system", "icd10cm")
    earlier, later = resolve(system, args.get("from"), args.get("to"))
    changes = diff(system, earlier, later)

    def build(fmt: Format) -> str | bytes:
        if fmt is JSON:
            return diff_json(system, earlier, later, changes)
        if fmt is CSV:
            return diff_csv(changes)
        if fmt is HTML:
            return _html(system, earlier, later, changes)
        return _rdf(system, earlier, later, fmt)

    return represent(FORMATS, build, snapshot=get_store().etag, tag=f"diff-{system}-{earlier.notation}-"
                     f"{later.notation}", content_type=_content_type)
