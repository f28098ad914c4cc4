"""A FHIR terminology service over the graph (R5 JSON by default, R4B with `?fhir=r4b` or `Accept:
application/fhir+json; fhirVersion=4.3`), for the code systems the graph holds:

* `GET /fhir/metadata` (CapabilityStatement; `?mode=terminology`: TerminologyCapabilities), `$versions`;
* `GET /fhir/CodeSystem/{id}`, `GET /fhir/CodeSystem?url=` (a searchset Bundle);
* `CodeSystem/$lookup`, `CodeSystem/$validate-code`, `CodeSystem/$subsumes`, also on one CodeSystem
  (`/fhir/CodeSystem/{id}/$lookup`), by GET, POST form or POST Parameters (server/fhir/params.py reads
  all three);
* `ValueSet/$expand` and `ValueSet/$validate-code` of the implicit value sets (server/fhir/valueset.py);
* `ConceptMap/$translate` and the ConceptMaps of the crosswalks (server/fhir/translate.py).

Every failure under /fhir/ — a bad parameter, an unknown code system, an unknown URL, a method not
allowed, a store that fails — is an OperationOutcome with a FHIR issue type, never an HTML page.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from ..exports import CROSSWALKS, export_meta, requested_fhir_version, stream, translate_rows
from ..http.errors import HTTPError
from . import codesystems
from .lookup import lookup as run_lookup
from .metadata import capability_statement, terminology_capabilities, versions
from .resources import FHIR_JSON, ISSUES, FHIRError, Subset, outcome, resource, subset
from .subsumes import subsumes as run_subsumes
from .translate import check_known, find_matches, parameters, read_request
from .validate import validate_code as run_validate_code

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
bp.register_error_handler(HTTPError, outcome)
OPERATIONS = ["GET", "POST"]
SEARCH_CONTROLS = {"fhir", "_format", "_summary", "_elements"}


@bp.errorhandler(HTTPException)
def _http_failure(exc: HTTPException) -> Response:
    """Werkzeug's own failures (a malformed form body, ...) as OperationOutcomes."""
    status = exc.code or 400
    return outcome(FHIRError(status, ISSUES.get(status, "processing"), exc.description or exc.name))


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """A bug answers an OperationOutcome too (logged), never Flask's HTML page."""
    current_app.logger.exception("FHIR request failed")
    return resource({"resourceType": "OperationOutcome", "issue": [
        {"severity": "fatal", "code": "exception", "details": {"text": "The server failed to answer: "
                                                                        f"{type(exc).__name__}"}}]}, 500)


#: parameters of every /fhir/ request that may be given once (`_format` and the FHIR version asked for)
SINGLE_CONTROLS = ("_format", "fhir")


@bp.before_request
def _json_only() -> None:
    """The service speaks JSON: `_format` or an Accept header asking only for XML is a 406 (as JSON); a
    repeated `_format` or `fhir` is a 400 naming it, never one of the values picked silently."""
    twice = next((name for name in SINGLE_CONTROLS if len(request.args.getlist(name)) > 1), None)
    if twice:
        raise FHIRError(400, "invalid", f"Parameter '{twice}' may be given once.", "invalid-data", twice)
    wanted = request.args.get("_format", "").strip().lower()
    accept = request.headers.get("Accept", "")
    if (wanted and "json" not in wanted) or ("xml" in accept and "json" not in accept and "*/*" not in accept):
        raise FHIRError(406, "not-supported", f"Only FHIR JSON ({FHIR_JSON}) is served here, not "
                                              f"'{wanted or accept}'.", None, "_format" if wanted else None)
    _version()  # a FHIR version not served is refused before anything runs


def _version() -> str:
    """The FHIR version asked for; one not served is 'not-supported' (400 for ?fhir=, 406 for a mime type's
    fhirVersion), naming the parameter that asked."""
    try:
        return requested_fhir_version()
    except HTTPError as exc:
        where = "fhir" if "fhir" in request.args else "_format" if "_format" in request.args else None
        raise FHIRError(exc.status, "not-supported", str(exc), None, where) from exc


def _answer(body: dict[str, Any]) -> Response:
    return resource(body, version=_version())


@bp.route("/metadata", methods=["GET"])
def metadata() -> Response:
    """CapabilityStatement, or TerminologyCapabilities with ?mode=terminology."""
    version, mode = _version(), request.args.get("mode", "full")
    if len(request.args.getlist("mode")) > 1:
        raise FHIRError(400, "invalid", "Parameter 'mode' may be given once.", "invalid-data", "mode")
    if mode == "terminology":
        return resource(terminology_capabilities(version), version=version)
    if mode not in ("full", "normative"):
        raise FHIRError(400, "invalid", f"Parameter 'mode' may be full, normative or terminology, not '{mode}'.",
                        "invalid-data", "mode")
    return resource(capability_statement(version), version=version)


@bp.route("/$versions", methods=OPERATIONS)
def fhir_versions() -> Response:
    """$versions: which FHIR versions this service speaks (R5, the default, and R4B)."""
    return _answer(versions())


@bp.route("/CodeSystem", methods=["GET"])
def code_system_search() -> Response:
    """Search the code systems by url (and version): a searchset Bundle, one entry per system (`_summary`,
    `_elements` as for a read; `_summary=count`: the total only)."""
    unknown = sorted(set(request.args) - {"url", "version"} - SEARCH_CONTROLS)
    if unknown:
        raise FHIRError(400, "not-supported", f"Search parameter '{unknown[0]}' is not supported on CodeSystem; "
                                              "use url (and version).", None, unknown[0])
    twice = next((name for name in ("url", "version") if len(request.args.getlist(name)) > 1), None)
    if twice:
        raise FHIRError(400, "invalid", f"Parameter '{twice}' may be given once.", "invalid-data", twice)
    shape = subset(request.args, search=True)
    url, version = request.args.get("url"), request.args.get("version")
    found = [cs for cs in codesystems.code_systems().values()
             if (url is None or cs.url == url) and (version is None or cs.version == version)]
    base = request.url_root.rstrip("/") + "/fhir/CodeSystem/"
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                              "link": [{"relation": "self", "url": request.url}]}
    if shape.summary != "count":
        bundle["entry"] = [{"fullUrl": base + cs.id, "resource": _code_system(cs, shape), "search": {"mode": "match"}}
                           for cs in found]
    return _answer(bundle)


@bp.route("/CodeSystem/<resource_id>", methods=["GET"])
def code_system_read(resource_id: str) -> Response:
    """One code system as a CodeSystem resource (`_summary` and `_elements` subset it)."""
    shape = subset(request.args, search=False)
    system = codesystems.by_id(resource_id)
    if system is None:
        known = ", ".join(cs.id for cs in codesystems.code_systems().values())
        raise FHIRError(404, "not-found", f"No CodeSystem '{resource_id}' here; there are: {known}.")
    return _answer(_code_system(system, shape))


def _code_system(system: codesystems.CodeSystem, shape: Subset) -> dict[str, Any]:
    """The CodeSystem resource with the elements asked for (a summary never reads a fragment's concepts)."""
    listing = shape.elements is None and shape.summary in (None, "false", "data") or "concept" in (shape.elements or ())
    return shape.apply(codesystems.resource(system, concepts=listing), codesystems.SUMMARY, codesystems.MANDATORY)


@bp.route("/CodeSystem/$lookup", methods=OPERATIONS)
def lookup() -> Response:
    """CodeSystem/$lookup (server/fhir/lookup.py)."""
    return _answer(run_lookup())


@bp.route("/CodeSystem/$validate-code", methods=OPERATIONS)
def validate_code() -> Response:
    """CodeSystem/$validate-code (server/fhir/validate.py)."""
    return _answer(run_validate_code())


@bp.route("/CodeSystem/$subsumes", methods=OPERATIONS)
def subsumes() -> Response:
    """CodeSystem/$subsumes (server/fhir/subsumes.py)."""
    return _answer(run_subsumes())


#: the CodeSystem operations an instance URL answers too (/fhir/CodeSystem/icd10cm/$lookup)
INSTANCE_OPERATIONS = {"lookup": run_lookup, "validate-code": run_validate_code, "subsumes": run_subsumes}


@bp.route("/CodeSystem/<resource_id>/$<operation>", methods=OPERATIONS)
def code_system_operation(resource_id: str, operation: str) -> Response:
    """$lookup, $validate-code and $subsumes on one CodeSystem: its system is the default."""
    run = INSTANCE_OPERATIONS.get(operation)
    if run is None:
        raise FHIRError(404, "not-found", f"No operation ${operation} on CodeSystem here; there are: "
                                          + ", ".join(f"${name}" for name in INSTANCE_OPERATIONS) + ".")
    system = codesystems.by_id(resource_id)
    if system is None:
        raise FHIRError(404, "not-found", f"No CodeSystem '{resource_id}' here.")
    return _answer(run(system.url))


def _translate(map_name: str | None) -> Response:
    version = _version()
    meta = export_meta()
    ask = read_request(map_name, meta)
    check_known(ask)
    return resource(parameters(ask, find_matches(ask, translate_rows()), meta, version), version=version)


@bp.route("/ConceptMap/$translate", methods=["GET", "POST"])
def translate() -> Response:
    """$translate over every crosswalk that answers it."""
    return _translate(None)


@bp.route("/ConceptMap/<map_id>/$translate", methods=["GET", "POST"])
def translate_one(map_id: str) -> Response:
    """$translate over one ConceptMap."""
    return _translate(map_id)


@bp.route("/ConceptMap/<map_id>", methods=["GET"])
def concept_map(map_id: str) -> Response:
    """A crosswalk as a ConceptMap resource (the same stream as /export/{id}.fhir.json)."""
    xw = CROSSWALKS.get(map_id)
    if xw is None or xw.kind != "mapping":
        names = ", ".join(x.name for x in CROSSWALKS.values() if x.kind == "mapping")
        raise FHIRError(404, "not-found", f"No ConceptMap '{map_id}' here; there are: {names}.")
    return stream(xw, "fhir.json", _version())


@bp.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], strict_slashes=False)
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_served(rest: str) -> Response:
    """Any other /fhir/ URL or method: 405 with Allow when the URL is served by other methods, else 404."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = sorted({m for m in OPERATIONS if _matches(adapter, m)} - {request.method})
    if allowed:
        answer = outcome(FHIRError(405, "not-supported", f"{request.method} is not allowed on {request.path}; "
                                                         f"use {' or '.join(allowed)}."))
        answer.headers["Allow"] = ", ".join(allowed)
        return answer
    raise FHIRError(404, "not-found", f"{request.method} {request.path} is not served here: see /fhir/metadata.")


def _matches(adapter: Any, method: str) -> bool:
    """Does a route other than the catch-all serve this path for `method`?"""
    try:
        endpoint, _ = adapter.match(request.path, method=method)
    except (NotFound, MethodNotAllowed):
        return False
    except HTTPException:
        return True
    return endpoint != "fhir.not_served"

from . import valueset  # noqa: E402,F401  (registers ValueSet/$expand and $validate-code on bp)
