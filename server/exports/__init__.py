"""Crosswalk exports over HTTP: `/export` lists them with row counts, `/export/{name}.{ext}` streams one.

A crosswalk is a named query whose `#+ ` header has an `export:` block (crosswalks.py). Its query
runs through the store under the export limits (run.py) and one writer per format (writers/) streams
the SPARQL CSV answer out row by row, so even the ~98.5k-row ICD-10-CM hierarchy is never held as one
output string. Formats: CSV, JSON, SSSOM TSV, FHIR ConceptMap JSON (R5, or R4B on request), SKOS
Turtle and JSON-LD for mappings; CSV and JSON for tables.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, render_template, request, stream_with_context, url_for
from flask.blueprints import BlueprintSetupState

from ..http.errors import HTTPError
from ..http.formats import Format
from ..http.representations import choose, represent
from ..store import get_store, parse_as_of
from .crosswalks import CROSSWALKS, Crosswalk, load_crosswalks
from .run import export_meta, release_on, row_count, run_crosswalk, snapshot_memo, translate_rows
from .writers import FORMATS, export_text
from .writers.fhir import FHIR_VERSIONS, RELATIONSHIPS, SYMMETRIC

__all__ = ["CROSSWALKS", "FHIR_VERSIONS", "FORMATS", "RELATIONSHIPS", "SYMMETRIC", "Crosswalk", "bp", "export_meta",
           "export_text", "requested_fhir_version", "row_count", "run_crosswalk", "snapshot_memo", "stream",
           "translate_rows"]

bp = Blueprint("exports", __name__, template_folder="templates")
HTML = Format("html", "text/html")
JSON = Format("json", "application/json")
#: what ?fhir= or the fhirVersion mime-type parameter may say, for each version served (R4, 4.0, is not one:
#: R4B is 4.3, and a request for a version not served is refused, never answered in another)
FHIR_VERSION_NAMES = {"r5": ("r5", "5.0", "5.0.0"), "r4b": ("r4b", "4.3", "4.3.0")}
FHIR_VERSION_PARAM = re.compile(r"fhirversion\s*=\s*\"?([0-9.]+)", re.IGNORECASE)


@bp.record_once
def _load(state: BlueprintSetupState) -> None:
    """Read the crosswalks when the app is made, so that a bad `export:` header stops it at once."""
    load_crosswalks(Path(state.app.config["QUERIES_DIR"]))


def requested_fhir_version() -> str:
    """r5 (default) or r4b: from ?fhir=, else the fhirVersion mime-type parameter of `_format` or the Accept
    header. A repeated or unknown ?fhir= is a 400; a fhirVersion not served (4.0: R4) a 406, as FHIR's
    version parameter asks of a server that does not serve it."""
    asked = request.args.getlist("fhir")
    if len(asked) > 1:
        raise HTTPError(400, "Parameter 'fhir' may be given once.")
    value, status = (asked[0].strip().lower(), 400) if asked and asked[0].strip() else (None, 406)
    if value is None:
        match = FHIR_VERSION_PARAM.search(request.args.get("_format", "")) or FHIR_VERSION_PARAM.search(
            request.headers.get("Accept", ""))
        value = match.group(1) if match else "r5"
    for version, names in FHIR_VERSION_NAMES.items():
        if value in names:
            return version
    where = "Parameter 'fhir'" if status == 400 else "The fhirVersion mime-type parameter"
    raise HTTPError(status, f"{where} asks for FHIR version '{value}', which is not served here: 5.0 (r5, the "
                            "default) or 4.3 (r4b)")


def stream(xw: Crosswalk, ext: str, fhir: str = "r5", as_of: date | None = None) -> Response:
    """The export streamed in format `ext` (of the state on `as_of`, when given); the query runs first, so a failure
    is an error answer, not a cut stream."""
    fmt = FORMATS[ext]
    chunks = export_text(xw, fmt, run_crosswalk(xw, as_of=as_of), export_meta(as_of), fhir)
    media_type = fmt.media_type + (f"; fhirVersion={FHIR_VERSIONS[fhir]}" if ext == "fhir.json" else "")
    return Response(stream_with_context(c.encode("utf-8") for c in chunks), content_type=media_type)


def _listing() -> dict[str, Any]:
    return {xw.name: {
        "title": xw.title, "description": xw.description, "kind": xw.kind, "rows": row_count(xw),
        "query": xw.query, "columns": list(xw.columns) if xw.pivot is None else None,
        "downloads": {ext: url_for("exports.download", filename=f"{xw.name}.{ext}", _external=True)
                      for ext in xw.formats},
    } for xw in CROSSWALKS.values()}


def _no_as_of() -> None:
    """The listing counts today's rows: `as_of` there is a 400, not ignored (each download takes it)."""
    if any(v.strip() for v in request.args.getlist("as_of")):
        raise HTTPError(400, "as_of is not supported by the export listing, whose row counts are today's; give it "
                             "to a download instead (/export/icd10cm-hierarchy.csv?as_of=2025-06-01).")


def _index_json(listing: dict[str, Any]) -> str:
    formats = {ext: {"media_type": f.media_type, "label": f.label} for ext, f in FORMATS.items()}
    return json.dumps({"formats": formats, "crosswalks": listing}, indent=2, ensure_ascii=False)


@bp.route("/export")
@bp.route("/export/")
def index() -> Response:
    """The crosswalks with their row counts and downloads, as HTML or JSON."""
    _no_as_of()
    def build(fmt: Format) -> str:
        if fmt is JSON:
            return _index_json(_listing())
        return render_template("exports/index.html", crosswalks=CROSSWALKS, listing=_listing(), formats=FORMATS)

    return represent((HTML, JSON), build, snapshot=get_store().etag, tag="export", cached=False,
                     content_type=lambda fmt: fmt.media_type + ("; charset=utf-8" if fmt is HTML else ""))


@bp.route("/export.json")
def index_json() -> Response:
    """The listing as JSON, whatever the Accept header says."""
    _no_as_of()
    return Response(_index_json(_listing()), mimetype="application/json")


def _crosswalk_and_format(filename: str) -> tuple[Crosswalk, str | None]:
    """The crosswalk a download names and its extension (None: negotiate); 404 naming what exists."""
    for ext in sorted(FORMATS, key=len, reverse=True):
        if filename.endswith("." + ext) and filename[: -len(ext) - 1] in CROSSWALKS:
            return CROSSWALKS[filename[: -len(ext) - 1]], ext
    if filename in CROSSWALKS:
        return CROSSWALKS[filename], None
    stem = filename.split(".", 1)[0]
    if stem in CROSSWALKS:
        raise HTTPError(404, f"'{filename}': unknown format; {stem} is available as "
                             + ", ".join(f"{stem}.{e}" for e in CROSSWALKS[stem].formats))
    raise HTTPError(404, f"No crosswalk '{filename}' here; there are: {', '.join(CROSSWALKS)}.")


@bp.route("/export/<filename>")
def download(filename: str) -> Response:
    """One crosswalk in the format its extension names, or the one negotiated among those it offers."""
    xw, ext = _crosswalk_and_format(filename)
    if ext is None:
        ext = choose(tuple(Format(e, FORMATS[e].media_type.split(";")[0]) for e in xw.formats)).name
    if ext not in xw.formats:
        raise HTTPError(406, f"{xw.name} is a {xw.kind} and is not available as {FORMATS[ext].label}; "
                             f"available: {', '.join(f'{xw.name}.{e}' for e in xw.formats)}")
    fhir = requested_fhir_version() if ext == "fhir.json" else "r5"
    as_of = parse_as_of(request.args.getlist("as_of"))
    release = release_on(as_of) if as_of else ""
    etag = (f"{get_store().etag}-{xw.name}-{ext}" + (f"-{fhir}" if ext == "fhir.json" else "")
            + (f"-icd10cm-{release}-{as_of.isoformat()}" if as_of else ""))  # the body names the date too
    if etag in request.if_none_match:
        response = Response(status=304)
    else:
        response = stream(xw, ext, fhir, as_of)
        name = f"{xw.name}-icd10cm-{release}" if release else xw.name
        response.headers["Content-Disposition"] = f'inline; filename="{name}.{ext}"'
    response.set_etag(etag)
    response.headers["Vary"] = "Accept"
    if release:
        response.headers["ICD10CM-Release"] = release  # the release in force on as_of, whose state was exported
    return response
