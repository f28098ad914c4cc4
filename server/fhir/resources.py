"""FHIR resources as responses: the media type with its fhirVersion, and failures as OperationOutcomes."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from ..exports import FHIR_VERSIONS
from ..http.errors import HTTPError

FHIR_JSON = "application/fhir+json"
#: HTTP status -> FHIR issue type, for failures that do not name their own
ISSUES = {400: "invalid", 404: "not-found", 405: "not-supported", 406: "not-supported", 413: "too-costly",
          415: "not-supported", 422: "processing"}


class FHIRError(HTTPError):
    """A failure with its FHIR issue type (from the issue-type value set), answered as an OperationOutcome."""

    def __init__(self, status: int, issue: str, message: str) -> None:
        super().__init__(status, message)
        self.issue = issue


def resource(body: dict[str, Any], status: int = 200, version: str = "r5") -> Response:
    """A FHIR JSON resource answer."""
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type=f"{FHIR_JSON}; fhirVersion={FHIR_VERSIONS[version]}")


def outcome(exc: HTTPError) -> Response:
    """An OperationOutcome with one error issue; a store's failure is transient (503), never a 500."""
    status = 503 if exc.status == 500 else exc.status
    if isinstance(exc, FHIRError):
        issue = exc.issue
    else:
        issue = "transient" if status >= 500 else ISSUES.get(status, "processing")
    return resource({"resourceType": "OperationOutcome",
                     "issue": [{"severity": "error", "code": issue, "diagnostics": str(exc)}]}, status)
