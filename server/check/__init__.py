"""`/check`: may these lines be billed together on this date, and why not.

`POST /check` takes a claim as JSON and answers its findings as JSON (the public contract in
README); `GET /check` is an HTML form whose `POST` (form fields) shows the findings with a link to
the page of every code, edit and source. The rules are the `check:` queries of queries/ (rules.py),
run through the app's store, so both the embedded snapshot and a remote engine answer them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.blueprints import BlueprintSetupState

from ..http.errors import HTTPError
from ..pages.view import View
from .claim import MAX_LINES, SETTINGS, Claim, ClaimError, parse_claim
from .form import claim_data, form_rows
from .rules import load_rules
from .run import Finding, Result, check

__all__ = ["Claim", "ClaimError", "Finding", "Result", "bp", "check", "parse_claim"]

bp = Blueprint("check", __name__, template_folder="templates")


@bp.record_once
def _load(state: BlueprintSetupState) -> None:
    """Read the rules when the app is made, so that a bad `check:` header stops it at once."""
    load_rules(Path(state.app.config["QUERIES_DIR"]))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: a repeated one (which value was meant?) is a 400."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise HTTPError(400, f"{key}: the key is given more than once in one JSON object.")
        found[key] = value
    return found


@bp.get("/check")
def form() -> str:
    """The empty claim form."""
    return _page(form_rows(None), None, None)


@bp.post("/check")
def run() -> Response:
    """A JSON claim answered as JSON; the form's fields answered as the HTML page."""
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(as_text=True), object_pairs_hook=_unique_keys)
        except ValueError as exc:
            raise HTTPError(400, f"The body is not JSON: {exc}") from exc
        except RecursionError as exc:  # the standard decoder recurses once per level of nesting
            raise HTTPError(400, "$: the JSON is nested too deeply to be a claim.") from exc
        result = check(parse_claim(data))
        return Response(json.dumps(result.to_json(), indent=2), mimetype="application/json")
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            result = check(parse_claim(claim_data(request.form)))
        except ClaimError as exc:
            return Response(_page(form_rows(request.form), None, str(exc)), status=exc.status, mimetype="text/html")
        return Response(_page(form_rows(request.form), result, None), mimetype="text/html")
    raise HTTPError(415, "POST /check takes a claim as application/json (or the HTML form's fields).")


def _page(rows: list[dict[str, Any]], result: Result | None, error: str | None) -> str:
    view = View()
    if result is not None:
        view.load({iri for f in result.findings for iri in (*f.links, f.edit, f.source) if iri})
    return render_template("check/check.html", V=view, rows=rows, result=result, error=error,
                           settings=SETTINGS, max_lines=MAX_LINES,
                           values={k: request.form.get(k, "") for k in ("date_of_service", "setting")})
