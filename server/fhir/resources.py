"""FHIR resources as responses: the media type with its fhirVersion, and failures as OperationOutcomes.

An issue says what went wrong as the HL7 terminology tests expect it: `code` from the FHIR issue-type
value set, `details.text` for people and, where it applies, `details.coding` from
http://hl7.org/fhir/tools/CodeSystem/tx-issue-type (invalid-code, invalid-display, not-found, ...) and
`expression` naming the parameter at fault.
"""

from __future__ import annotations

import json
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
