"""FHIR resources as responses: the media type with its fhirVersion, and failures as OperationOutcomes.

An issue says what went wrong as the HL7 terminology tests expect it: `code` from the FHIR issue-type
value set, `details.text` for people and, where it applies, `details.coding` from
http://hl7.org/fhir/tools/CodeSystem/tx-issue-type (invalid-code, invalid-display, not-found, ...) and
`expression` naming the parameter at fault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Response

from ..exports import FHIR_VERSIONS
from ..http.errors import HTTPError

FHIR_JSON = "application/fhir+json"
TX_ISSUE_TYPE = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"
#: HTTP status -> FHIR issue type, for failures that do not name their own
ISSUES = {400: "invalid", 404: "not-found", 405: "not-supported", 406: "not-supported", 413: "too-costly",
          415: "not-supported", 422: "processing"}


class FHIRError(HTTPError):
    """A failure with its FHIR issue type (from the issue-type value set), answered as an OperationOutcome;
    `tx` is its tx-issue-type code and `expression` the parameter it is about, where they apply."""

    def __init__(self, status: int, issue: str, message: str, tx: str | None = None,
                 expression: str | None = None) -> None:
        super().__init__(status, message)
        self.issue = issue
        self.tx = tx
        self.expression = expression


def issue(severity: str, code: str, text: str, tx: str | None = None, expression: str | None = None) -> dict[str, Any]:
    """One OperationOutcome.issue."""
    details: dict[str, Any] = {"text": text}
    if tx:
        details["coding"] = [{"system": TX_ISSUE_TYPE, "code": tx}]
    found: dict[str, Any] = {"severity": severity, "code": code, "details": details}
    if expression:
        found["expression"] = [expression]
    return found


def resource(body: dict[str, Any], status: int = 200, version: str = "r5") -> Response:
    """A FHIR JSON resource answer."""
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type=f"{FHIR_JSON}; fhirVersion={FHIR_VERSIONS[version]}")


def outcome(exc: HTTPError) -> Response:
    """An OperationOutcome with one error issue; a store's failure is transient (503), never a 500."""
    status = 503 if exc.status == 500 else exc.status
    if isinstance(exc, FHIRError):
        found = issue("error", exc.issue, str(exc), exc.tx, exc.expression)
    else:
        found = issue("error", "transient" if status >= 500 else ISSUES.get(status, "processing"), str(exc))
    return resource({"resourceType": "OperationOutcome", "issue": [found]}, status)


#: the tag of a resource answered with only some of its elements (FHIR search: `_summary`, `_elements`)
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}
SUMMARY_MODES = ("true", "false", "text", "data", "count")
ELEMENT = re.compile(r"[a-z][A-Za-z0-9]*")
#: what every subset keeps
BASE = ("resourceType", "id", "meta")


@dataclass(frozen=True)
class Subset:
    """Which elements of a resource an answer holds: `_summary` (true, text, data, count; false: all) or
    `_elements` (the listed top-level elements); each way the mandatory ones stay."""

    summary: str | None = None
    elements: tuple[str, ...] | None = None

    def apply(self, body: dict[str, Any], summary: tuple[str, ...], mandatory: tuple[str, ...]) -> dict[str, Any]:
        """The resource as asked: `summary` names its summary elements, `mandatory` those it must have."""
        if self.elements is not None:
            kept = set(self.elements) | set(mandatory)
        elif self.summary in ("true", "count"):
            kept = set(summary) | set(mandatory)
        elif self.summary == "text":
            kept = {"text", *mandatory}
        else:  # false, data (this service writes no narrative) or nothing asked
            return body
        found = {key: value for key, value in body.items() if key in BASE or key in kept}
        if found.keys() == body.keys():
            return body
        meta = dict(found.get("meta", {}))
        meta["tag"] = [*meta.get("tag", []), SUBSETTED]
        return {**found, "meta": meta}


def subset(args: Any, search: bool) -> Subset:
    """The `_summary` or `_elements` (repeatable: the names of each) of a read or search (`args`: the query
    string); 400 naming a bad one."""
    summaries, listed = args.getlist("_summary"), args.getlist("_elements")
    if len(summaries) > 1:
        raise FHIRError(400, "invalid", "Parameter '_summary' may be given once.", "invalid-data", "_summary")
    summary, elements = (summaries or [None])[0], ",".join(listed) if listed else None
    if summary is not None and elements is not None:
        raise FHIRError(400, "invalid", "Parameters '_summary' and '_elements' may not be given together.",
                        "invalid-data", "_elements")
    if summary is not None and summary not in SUMMARY_MODES[:4] + (("count",) if search else ()):
        modes = ", ".join(SUMMARY_MODES if search else SUMMARY_MODES[:4])
        raise FHIRError(400, "invalid", f"Parameter '_summary' may be {modes}, not '{summary}'.", "invalid-data",
                        "_summary")
    if elements is None:
        return Subset(summary)
    names = tuple(name.strip() for name in elements.split(",") if name.strip())
    bad = next((name for name in names if not ELEMENT.fullmatch(name)), None)
    if bad is not None or not names:
        raise FHIRError(400, "invalid", f"Parameter '_elements' lists top-level element names (such as "
                                        f"url,version,count), not '{bad or elements}'.", "invalid-data", "_elements")
    return Subset(None, names)
