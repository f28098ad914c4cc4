"""CodeSystem/$lookup: what the graph says about one code, as a Parameters resource.

Input (GET, form or Parameters): `system` + `code` or `coding`, optionally `version` and `property`
(repeatable: only those properties come back; `designation` asks for the designations; without
`property` everything is returned); a `displayLanguage` other than English is a 400 (the graph's
displays are English). Output: code, system, name, version, display, a designation per
synonym or descriptor, and the properties parent, child, notSelectable (ICD-10-CM codes that are not
billable), inactive, addedDate and the ICD-10-CM Tabular List notes stated on the code. An unknown
system, version or code is a 404 OperationOutcome (not-found; the code's issue names near codes).
"""

from __future__ import annotations

from typing import Any

from .codesystems import NOTE_PROPERTIES, instance_system, resolve
from .concepts import Concept, find, near_codes
from .params import Coding, asked_coding, read_input
from .resources import FHIRError

#: designation.use: the graph property the designation comes from, as a code of the ontology
DESIGNATION_USE = "https://w3id.org/medcode/ontology"
USE_DISPLAY = {"altLabel": "synonym", "longDescriptor": "long descriptor", "mediumDescriptor": "medium descriptor",
               "shortDescriptor": "short descriptor"}
EXAMPLE = "?system=http://hl7.org/fhir/sid/icd-10-cm&code=G35"


def _property(code: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"name": "property", "part": [{"name": "code", "valueCode": code}, {"name": "value", **value}]}


def _properties(concept: Concept) -> list[tuple[str, dict[str, Any]]]:
    """(property code, the value[x]) for each fact, in the order CodeSystem.property declares them."""
    facts: list[tuple[str, dict[str, Any]]] = [("parent", {"valueCode": p}) for p in concept.parents]
    facts += [("child", {"valueCode": c}) for c in concept.children]
    if concept.system.hierarchical and concept.billable is not None:
        facts.append(("notSelectable", {"valueBoolean": concept.not_selectable}))
    facts.append(("inactive", {"valueBoolean": concept.inactive}))
    if concept.added:
        facts.append(("addedDate", {"valueDateTime": concept.added}))
    order = list(NOTE_PROPERTIES)
    notes = sorted(concept.notes, key=lambda note: order.index(note[0]))  # stable: the release's order within a kind
    return facts + [(kind, {"valueString": text}) for kind, text in notes]


def _designations(concept: Concept) -> list[dict[str, Any]]:
    return [{"name": "designation", "part": [
        {"name": "language", "valueCode": "en"},
        {"name": "use", "valueCoding": {"system": DESIGNATION_USE, "code": use, "display": USE_DISPLAY[use]}},
        {"name": "value", "valueString": value}]} for use, value in concept.designations]


def unknown_code(asked: Coding, expression: str, status: int = 404, issue: str = "not-found") -> FHIRError:
    """The failure for a code its system does not hold, naming near codes when there are some."""
    system = resolve(asked.system)
    near = near_codes(system, asked.code or "")
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    return FHIRError(status, issue, f"Unknown code '{asked.code}' in the CodeSystem '{system.url}' version "
                                    f"'{system.version}'.{hint}", "invalid-code", expression)


def parameters(concept: Concept, wanted: list[str]) -> dict[str, Any]:
    """The $lookup answer; `wanted` is the `property` filter (empty: everything)."""
    system = concept.system
    out: list[dict[str, Any]] = [
        {"name": "code", "valueCode": concept.code}, {"name": "system", "valueUri": system.url},
        {"name": "name", "valueString": system.title}, {"name": "version", "valueString": system.version}]
    if concept.display:
        out.append({"name": "display", "valueString": concept.display})
    every = not wanted or "*" in wanted
    if every or "designation" in wanted:
        out += _designations(concept)
    out += [_property(code, value) for code, value in _properties(concept) if every or code in wanted]
    return {"resourceType": "Parameters", "parameter": out}


def lookup(instance: str | None = None) -> dict[str, Any]:
    """Read the request, find the code, answer it; `instance` is the system of an instance-level call."""
    given = read_input()
    asked, where = asked_coding(given)
    if asked is None or not asked.code:
        raise FHIRError(400, "invalid", f"$lookup needs system and code, or coding - e.g. {EXAMPLE}",
                        "invalid-data", "code")
    language = given.text("displayLanguage")
    if language and language != "*" and language.split("-")[0].lower() != "en":
        raise FHIRError(400, "processing", f"No display in language '{language}': this service holds English (en) "
                                           "displays only.", "invalid-display", "displayLanguage")
    asked = Coding(instance_system(asked.system, instance), asked.code, asked.version, asked.display)
    system = resolve(asked.system, asked.version)
    concept = find(system, asked.code)
    if concept is None:
        raise unknown_code(asked, f"{where}code")
    return parameters(concept, given.texts("property"))
