"""ConceptMap/$translate: read the request, check the code is known, and match it in the crosswalks' rows.

A code is matched from the subject side of a row, and from the object side too when the row's SKOS
relation is symmetric (relatedMatch, closeMatch): E0783 translates back to 62362. `reverse=true` (R4),
or R5's `targetCode` (with `targetSystem`) or `targetCoding`, names a target concept and asks which
source codes map to it: the rows are then matched from the object side (and the subject side of
symmetric ones), and `targetsystem` (R4) or `sourceSystem` (R5) restricts the codes returned. The
concept may be given as code + system, a `coding` or a `codeableConcept` (its first coding), by GET,
POST form or POST `Parameters`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..exports import CROSSWALKS, RELATIONSHIPS, SYMMETRIC, Crosswalk
from ..exports.writers import ExportMeta
from .codesystems import code_systems
from .concepts import locate
from .params import OperationInput, read_input
from .resources import FHIRError

EXAMPLE = "?system=http://www.ama-assn.org/go/cpt&code=62362"


@dataclass(frozen=True)
class Translation:
    """What is asked: a code in a system, optionally a target system, and the maps that may answer."""

    system: str
    code: str
    target: str | None  # the system of the codes sought
    maps: tuple[Crosswalk, ...]
    reverse: bool = False  # (system, code) is a target concept: which source codes map to it?


def _coded(given: OperationInput, codes: tuple[str, ...], systems: tuple[str, ...], codings: tuple[str, ...],
           concepts: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(system, code) given as a code and a system, a Coding or a CodeableConcept (its first coding)."""
    coding = given.coding(*codings)
    if coding is None:
        concept = given.codeable_concept(*concepts)
        coding = concept[0] if concept else None
    if coding is not None:
        return coding.system, coding.code
    return given.text(*systems), given.text(*codes)


def _asked(given: OperationInput) -> tuple[str | None, str | None, str | None, bool]:
    """(system, code, system sought, reverse): R4's names first, then R5's (a target concept is reverse)."""
    reverse = bool(given.boolean("reverse"))
    system, code = _coded(given, ("code", "sourceCode"), ("system", "sourceSystem"), ("coding", "sourceCoding"),
                          ("codeableConcept", "sourceCodeableConcept"))
    if code is None and not reverse:
        target_system, target_code = _coded(given, ("targetCode",), ("targetSystem",), ("targetCoding",),
                                            ("targetCodeableConcept",))
        if target_code is not None:
            return target_system, target_code, given.text("sourceSystem"), True
    return system, code, given.text("targetsystem", "targetSystem"), reverse


def read_request(map_name: str | None, meta: ExportMeta) -> Translation:
    """The translation the request asks for (R4 or R5 parameter names); 400 or 404 OperationOutcomes."""
    given = read_input()
    given.each_once()
    system, code, sought, reverse = _asked(given)
    if not system or not code:
        absent = [name for name, value in (("system", system), ("code", code)) if not value]
        raise FHIRError(400, "required", f"$translate needs {' and '.join(absent)} (R4 names; R5 sourceSystem, "
                                         f"sourceCode, or targetCode with targetSystem) - e.g. {EXAMPLE}", None,
                        absent[0])
    maps = tuple(xw for xw in CROSSWALKS.values() if xw.translate)
    url = given.text("url", "conceptMap")
    if map_name is not None or url:
        maps = tuple(xw for xw in maps if xw.name == map_name or meta.canonical(xw) == url)
        if not maps:
            raise FHIRError(404, "not-found", f"No ConceptMap {map_name or url} answers $translate here.")
    return Translation(system, code, sought, maps, reverse)


def check_known(ask: Translation) -> None:
    """404 unless both systems are code systems of the graph (codesystems.py's one table of them) and the
    code is in its system (a modifier in the system of its mc:modifierSystem, never the modifier list's)."""
    systems = code_systems()
    for what, system in (("Code", ask.system), ("Target", ask.target)):
        if system and system not in systems:
            raise FHIRError(404, "not-found", f"{what} system '{system}' is not known here; known: "
                                              + ", ".join(sorted(systems)))
    if locate(systems[ask.system], ask.code) is None:
        raise FHIRError(404, "not-found", f"Code '{ask.code}' is not in code system {ask.system} here.")


def _other_side(row: dict[str, str], system: str, code: str, reverse: bool,
                sources: set[tuple[str, str]]) -> tuple[str, str, str] | None:
    """(system, code, display) of the row's concept across from (system, code), or None: from the subject
    side (the object side when `reverse`), and from both sides of a symmetric relation. In reverse, a symmetric
    row is read backwards only where its map has that direction (`sources`: (map, system) of every source
    side), as a ConceptMap resource's groups do: the indications (CPT/HCPCS to ICD-10-CM) never make an
    ICD-10-CM code a source, but a closeMatch between two HCPCS codes goes both ways."""
    near, far = ("object", "subject") if reverse else ("subject", "object")
    for here, there in ((near, far), (far, near)):
        if (row[f"{here}_system"], row[f"{here}_code"]) == (system, code):
            if reverse and here == "subject" and (row["crosswalk"], row["object_system"]) not in sources:
                return None
            return row[f"{there}_system"], row[f"{there}_code"], row[f"{there}_label"]
        if row["predicate"] not in SYMMETRIC:
            return None
    return None


def find_matches(ask: Translation, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One match per (target concept, relationship), with every map it came from."""
    names = {xw.name for xw in ask.maps}
    sources = {(row["crosswalk"], row["subject_system"]) for row in rows}
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        other = _other_side(row, ask.system, ask.code, ask.reverse, sources) if row["crosswalk"] in names else None
        if other is None or (ask.target and other[0] != ask.target):
            continue
        r5_name, r4_name = RELATIONSHIPS[row["predicate"]]
        match = found.setdefault((other[0], other[1], r5_name), {
            "relationship": r5_name, "equivalence": r4_name, "system": other[0], "code": other[1],
            "display": other[2], "maps": []})
        if row["crosswalk"] not in match["maps"]:
            match["maps"].append(row["crosswalk"])
    return list(found.values())


def _match(m: dict[str, Any], meta: ExportMeta, r5: bool) -> dict[str, Any]:
    coding = {"system": m["system"], "code": m["code"]}
    if m["display"]:
        coding["display"] = m["display"]
    parts: list[dict[str, Any]] = [
        {"name": "relationship", "valueCode": m["relationship"]} if r5
        else {"name": "equivalence", "valueCode": m["equivalence"]},
        {"name": "concept", "valueCoding": coding},
    ]
    for name in m["maps"]:
        canonical = meta.canonical(CROSSWALKS[name])
        parts.append({"name": "originMap", "valueCanonical": canonical} if r5
                     else {"name": "source", "valueUri": canonical})
    return {"name": "match", "part": parts}


def parameters(ask: Translation, matches: list[dict[str, Any]], meta: ExportMeta, version: str) -> dict[str, Any]:
    """The $translate answer: result, message and one match per target concept."""
    where = f" in {ask.target}" if ask.target else ""
    if ask.reverse:
        message = (f"{len(matches)} code{'s' if len(matches) != 1 else ''}{where} map to {ask.code} ({ask.system})"
                   if matches else f"No code{where} maps to {ask.code} ({ask.system}) in these crosswalks.")
    else:
        message = (f"{len(matches)} match{'es' if len(matches) != 1 else ''} for {ask.code} ({ask.system}){where}"
                   if matches else f"No mapping for {ask.code} ({ask.system}){where} in these crosswalks.")
    return {"resourceType": "Parameters", "parameter": [
        {"name": "result", "valueBoolean": bool(matches)}, {"name": "message", "valueString": message},
        *(_match(m, meta, version == "r5") for m in matches)]}
