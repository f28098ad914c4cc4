"""A small FHIR terminology facade over the crosswalks: ConceptMap/$translate and the ConceptMaps.

`GET /fhir/ConceptMap/$translate?system=...&code=...[&targetsystem=...]` (R4 names; the R5 names
sourceSystem, sourceCode and targetSystem work too) answers a `Parameters` resource from the same
rows the exports write: result, message, and one match per target concept with its relationship (R5)
or equivalence (R4B), the concept (Coding) and the map it came from. The crosswalks that answer are
the device crosswalk and the indication crosswalk (not the ICD-10-CM hierarchy). Their SKOS
relations are all symmetric (relatedMatch, closeMatch), so a code is also translated from the object
side: E0783 translates back to 62362. R5 is the default; `?fhir=r4b` or
`Accept: application/fhir+json; fhirVersion=4.3` gives R4B. Errors are OperationOutcomes (400 for a
missing or malformed parameter, 404 for an unknown code system, code or ConceptMap), never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request, stream_with_context

from ..exports import (
    CROSSWALKS,
    FHIR_VERSIONS,
    FORMATS,
    RELATIONSHIPS,
    SYMMETRIC,
    ExportError,
    export_cache,
    export_meta,
    export_text,
    fhir_version_of,
    run_query,
    translate_rows,
)
from ..store import INFERENCE_GRAPHS, QueryError

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
FHIR_JSON = "application/fhir+json"
CODE_EXISTS = """
PREFIX mc: <https://w3id.org/medcode/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?code ?system ?c WHERE {
  ?c skos:notation ?code ; skos:inScheme ?scheme . ?scheme mc:fhirSystem ?fhir . FILTER(STR(?fhir) = ?system)
} LIMIT 1
"""
SYSTEMS = """
PREFIX mc: <https://w3id.org/medcode/ontology#>
SELECT DISTINCT ?fhir WHERE { ?scheme a mc:CodeSystem ; mc:fhirSystem ?fhir }
"""


def _resource(body: dict[str, Any], status: int = 200, version: str = "r5") -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type=f"{FHIR_JSON}; fhirVersion={FHIR_VERSIONS[version]}")


def outcome(status: int, code: str, message: str) -> Response:
    """An OperationOutcome with one error issue (code from the FHIR issue-type value set)."""
    return _resource({"resourceType": "OperationOutcome",
                      "issue": [{"severity": "error", "code": code, "diagnostics": message}]}, status)


def _select(query: str, bindings: dict[str, tuple] | None = None) -> list[dict[str, Any]]:
    """Rows of a small lookup through the app's store (SPARQL JSON bindings)."""
    cfg = current_app.config
    answer = current_app.extensions["medcode.store"].query(
        query, fmt="json", limit=cfg["MAX_RESULTS"], timeout=cfg["QUERY_TIMEOUT"],
        default_graph=INFERENCE_GRAPHS["all"], named_graphs=INFERENCE_GRAPHS["all"], bindings=bindings)
    return json.loads(answer)["results"]["bindings"]


def known_systems() -> set[str]:
    cache = export_cache()
    if "systems" not in cache:
        cache["systems"] = {row["fhir"]["value"] for row in _select(SYSTEMS)}
    return cache["systems"]


def code_exists(system: str, code: str) -> bool:
    """A cheap lookup by notation (few codes share one); the values are bound as RDF terms, never spliced."""
    return bool(_select(CODE_EXISTS, {"code": ("literal", code, None), "system": ("literal", system, None)}))


def _param(*names: str) -> str | None:
    for name in names:
        values = request.args.getlist(name)
        if values:
            return values[0].strip()
    return None


def _translate(map_name: str | None) -> Response:
    try:
        version = fhir_version_of(request)
    except ValueError as exc:
        return outcome(400, "not-supported", str(exc))
    system = _param("system", "sourceSystem")
    code = _param("code", "sourceCode")
    target_system = _param("targetsystem", "targetSystem")
    if any(len(request.args.getlist(k)) > 1 for k in request.args):
        return outcome(400, "invalid", "Each parameter may be given once.")
    missing = [name for name, value in (("system", system), ("code", code)) if not value]
    if missing:
        return outcome(400, "required", f"$translate needs {' and '.join(missing)} (R4 names; R5 sourceSystem, "
                                        "sourceCode) - e.g. ?system=http://www.ama-assn.org/go/cpt&code=62362")
    maps = [xw for xw in CROSSWALKS.values() if xw.translate]
    url = _param("url", "conceptMap")
    meta = export_meta()
    if map_name is not None or url:
        maps = [xw for xw in maps if xw.name == map_name or meta.canonical(xw) == url]
        if not maps:
            return outcome(404, "not-found", f"No ConceptMap {map_name or url} answers $translate here.")
    try:
        systems = known_systems()
        if system not in systems:
            return outcome(404, "not-found", f"Code system '{system}' is not known here; known: "
                                             + ", ".join(sorted(systems)))
        if target_system and target_system not in systems:
            return outcome(404, "not-found", f"Target system '{target_system}' is not known here; known: "
                                             + ", ".join(sorted(systems)))
        if not code_exists(system, code):
            return outcome(404, "not-found", f"Code '{code}' is not in code system {system} here.")
        rows = translate_rows()
    except (ExportError, QueryError) as exc:
        return outcome(exc.status if exc.status != 500 else 503, "transient", str(exc))
    names = {xw.name for xw in maps}
    matches: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        if row["crosswalk"] not in names:
            continue
        if (row["subject_system"], row["subject_code"]) == (system, code):
            other = ("object_system", "object_code", "object_label")
        elif row["predicate"] in SYMMETRIC and (row["object_system"], row["object_code"]) == (system, code):
            other = ("subject_system", "subject_code", "subject_label")
        else:
            continue
        concept_system, concept_code, display = (row[k] for k in other)
        if target_system and concept_system != target_system:
            continue
        r5_name, r4_name = RELATIONSHIPS[row["predicate"]]
        key = (concept_system, concept_code, r5_name)
        match = matches.setdefault(key, {"relationship": r5_name, "equivalence": r4_name, "system": concept_system,
                                         "code": concept_code, "display": display, "maps": []})
        if row["crosswalk"] not in match["maps"]:
            match["maps"].append(row["crosswalk"])
    return _resource(_parameters(system, code, target_system, list(matches.values()), meta, version), 200, version)


def _parameters(system: str, code: str, target: str | None, matches: list[dict[str, Any]], meta,
                version: str) -> dict[str, Any]:
    where = f" in {target}" if target else ""
    message = (f"{len(matches)} match{'es' if len(matches) != 1 else ''} for {code} ({system}){where}"
               if matches else f"No mapping for {code} ({system}){where} in these crosswalks.")
    parameters: list[dict[str, Any]] = [{"name": "result", "valueBoolean": bool(matches)},
                                        {"name": "message", "valueString": message}]
    for m in matches:
        coding = {"system": m["system"], "code": m["code"]}
        if m["display"]:
            coding["display"] = m["display"]
        parts: list[dict[str, Any]] = [
            {"name": "relationship", "valueCode": m["relationship"]} if version == "r5"
            else {"name": "equivalence", "valueCode": m["equivalence"]},
            {"name": "concept", "valueCoding": coding},
        ]
        for name in m["maps"]:
            xw = CROSSWALKS[name]
            parts.append({"name": "originMap", "valueCanonical": meta.canonical(xw)} if version == "r5"
                         else {"name": "source", "valueUri": meta.canonical(xw)})
        parameters.append({"name": "match", "part": parts})
    return {"resourceType": "Parameters", "parameter": parameters}


@bp.route("/ConceptMap/$translate", methods=["GET"])
def translate() -> Response:
    return _translate(None)


@bp.route("/ConceptMap/<map_id>/$translate", methods=["GET"])
def translate_one(map_id: str) -> Response:
    return _translate(map_id)


@bp.route("/ConceptMap/<map_id>", methods=["GET"])
def concept_map(map_id: str) -> Response:
    """A crosswalk as a ConceptMap resource (the same stream as /export/{id}.fhir.json)."""
    xw = CROSSWALKS.get(map_id)
    if xw is None or xw.kind != "mapping":
        names = ", ".join(x.name for x in CROSSWALKS.values() if x.kind == "mapping")
        return outcome(404, "not-found", f"No ConceptMap '{map_id}' here; there are: {names}.")
    try:
        version = fhir_version_of(request)
        payload = run_query(xw)
    except ValueError as exc:
        return outcome(400, "not-supported", str(exc))
    except ExportError as exc:
        return outcome(exc.status, "transient" if exc.status == 503 else "exception", str(exc))
    chunks = export_text(xw, FORMATS["fhir.json"], payload, export_meta(), version)
    return Response(stream_with_context(c.encode("utf-8") for c in chunks),
                    content_type=f"{FHIR_JSON}; fhirVersion={FHIR_VERSIONS[version]}")
