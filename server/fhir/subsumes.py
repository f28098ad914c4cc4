"""CodeSystem/$subsumes: how two codes of one system relate, over the ICD-10-CM hierarchy (is-a by
skos:broaderTransitive) and, for codes that denote devices, over the device classes they denote.

Input: `system` with `codeA` and `codeB`, or `codingA` and `codingB`; optionally `version`. Output:
`outcome` = equivalent (the same code), subsumes (A is above B), subsumed-by (A is below B) or
not-subsumed. For device codes (HCPCS Level II), A subsumes B when B's device is of every class A's
device is and of more (a code for an implantable pump would subsume one for a programmable pump); two
codes for the same kind of device do not subsume each other. An unknown code is a 400 `code-invalid`
naming codeA or codeB; codes of two systems are a 400 `invalid`.
"""

from __future__ import annotations

from typing import Any

from .codesystems import instance_system, resolve
from .concepts import MC, Concept, find
from .lookup import unknown_code
from .params import Coding, OperationInput, read_input
from .resources import FHIRError

EXAMPLE = "?system=http://hl7.org/fhir/sid/icd-10-cm&codeA=G35&codeB=G35.A"


def _asked(given: OperationInput, side: str, instance: str | None) -> tuple[Coding, str]:
    system = instance_system(given.text("system"), instance)
    coding = given.coding(f"coding{side}")
    if coding is not None:
        return Coding(instance_system(coding.system, instance, f"coding{side}") or system, coding.code,
                      coding.version or given.text("version")), f"coding{side}.code"
    code = given.text(f"code{side}")
    if not code:
        raise FHIRError(400, "invalid", f"$subsumes needs code{side} (or coding{side}) - e.g. {EXAMPLE}",
                        "invalid-data", f"code{side}")
    return Coding(system, code, given.text("version")), f"code{side}"


def _devices(concept: Concept) -> set[str]:
    return {cls for cls in concept.device_classes if cls.startswith(MC)}


def relation(a: Concept, b: Concept) -> str:
    """The $subsumes outcome of A against B."""
    if a.code == b.code:
        return "equivalent"
    if a.code in b.ancestors:
        return "subsumes"
    if b.code in a.ancestors:
        return "subsumed-by"
    kinds_a, kinds_b = _devices(a), _devices(b)
    if kinds_a and kinds_a < kinds_b:
        return "subsumes"
    if kinds_b and kinds_b < kinds_a:
        return "subsumed-by"
    return "not-subsumed"


def _concept(asked: Coding, expression: str) -> Concept:
    concept = find(resolve(asked.system, asked.version), asked.code or "")
    if concept is None:
        raise unknown_code(asked, expression, 400, "code-invalid")
    return concept


def subsumes(instance: str | None = None) -> dict[str, Any]:
    """Read the request and answer the outcome; `instance` is the system of an instance-level call."""
    given = read_input()
    (asked_a, where_a), (asked_b, where_b) = _asked(given, "A", instance), _asked(given, "B", instance)
    if (asked_a.system or "") != (asked_b.system or ""):
        raise FHIRError(400, "invalid", f"codingA and codingB are in different systems ({asked_a.system}, "
                                        f"{asked_b.system}): $subsumes compares codes of one system.", "invalid-data",
                        "codingB" if where_b.startswith("coding") else "system")
    a, b = _concept(asked_a, where_a), _concept(asked_b, where_b)
    return {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": relation(a, b)}]}
