"""A small FHIR terminology facade over the crosswalks: ConceptMap/$translate and the ConceptMaps.

`GET /fhir/ConceptMap/$translate?system=...&code=...[&targetsystem=...]` (R4 names; the R5 names
sourceSystem, sourceCode and targetSystem work too) answers a `Parameters` resource from the same
rows the exports write: result, message, and one match per target concept with its relationship (R5)
or equivalence (R4B), the concept (Coding) and the map it came from. The crosswalks that answer are
those whose header says `translate: true` (the device and indication crosswalks, not the ICD-10-CM
hierarchy). R5 is the default; `?fhir=r4b` or `Accept: application/fhir+json; fhirVersion=4.3`
gives R4B. Errors are OperationOutcomes (400 for a missing or malformed parameter, 404 for an unknown
code system, code or ConceptMap, 503 when the store fails), never a 500.
"""

from __future__ import annotations

from flask import Blueprint, Response

from ..exports import CROSSWALKS, export_meta, requested_fhir_version, stream, translate_rows
from ..http.errors import HTTPError
from .resources import FHIRError, outcome, resource
from .translate import check_known, find_matches, parameters, read_request

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
bp.register_error_handler(HTTPError, outcome)


def _version() -> str:
    """The FHIR version asked for; an unknown one is 'not-supported'."""
    try:
        return requested_fhir_version()
    except HTTPError as exc:
        raise FHIRError(400, "not-supported", str(exc)) from exc


def _translate(map_name: str | None) -> Response:
    version = _version()
    meta = export_meta()
    ask = read_request(map_name, meta)
    check_known(ask)
    return resource(parameters(ask, find_matches(ask, translate_rows()), meta, version), version=version)


@bp.route("/ConceptMap/$translate", methods=["GET"])
def translate() -> Response:
    """$translate over every crosswalk that answers it."""
    return _translate(None)


@bp.route("/ConceptMap/<map_id>/$translate", methods=["GET"])
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
