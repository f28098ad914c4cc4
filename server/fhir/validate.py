"""CodeSystem/$validate-code: is this code in this code system, and is its display right?

Input: `url` (or `system`) + `code` (+ `display`, `version`), or `coding`, or `codeableConcept`;
`abstract=false` says a code that may not be billed (an ICD-10-CM category such as G35) is not valid
here; `lenient-display-validation=true` makes a wrong display a warning instead of an error. Output
(always 200 once the request is well formed, as the HL7 tests expect): `result`, `code`, `system`,
`version`, `display` (the code's own), `inactive` when it is, and `message` + `issues` (an
OperationOutcome) when something is wrong: an unknown system (`x-caused-by-unknown-system`) or
version, an unknown code, a wrong display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codesystems import CodeSystem, instance_system, resolve
from .concepts import Concept, find
from .lookup import unknown_code
from .params import Coding, OperationInput, asked_coding, read_input
from .resources import FHIRError, issue

EXAMPLE = "?url=http://hl7.org/fhir/sid/icd-10-cm&code=G89.3"


@dataclass
class Verdict:
    """What validating one coding found."""

    asked: Coding
    system: CodeSystem | None = None
    concept: Concept | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)
    unknown_system: str | None = None

    @property
    def valid(self) -> bool:
        return self.concept is not None and not any(i["severity"] == "error" for i in self.issues)


def _display_issue(verdict: Verdict, where: str, lenient: bool) -> None:
    concept, asked = verdict.concept, verdict.asked
    if concept is None or not asked.display or concept.display is None:
        return
    known = [concept.display, *(value for _, value in concept.designations)]
    if asked.display.casefold() in (d.casefold() for d in known):
        return
    verdict.issues.append(issue(
        "warning" if lenient else "error", "invalid",
        f"Wrong Display Name '{asked.display}' for {concept.system.url}#{concept.code}. Valid display is "
        f"'{concept.display}' (en)", "invalid-display", f"{where}display"))


def check(asked: Coding, where: str, *, abstract: bool, lenient: bool) -> Verdict:
    """Validate one coding; `where` prefixes the issue expressions ("", "Coding.", "CodeableConcept.coding[0].")."""
    verdict = Verdict(asked)
    try:
        verdict.system = resolve(asked.system, asked.version, f"{where}system" if where else "url")
    except FHIRError as failure:
        if failure.status != 404:
            raise
        by_version = failure.expression == "version"
        verdict.unknown_system = f"{asked.system}|{asked.version}" if by_version else asked.system
        verdict.issues.append(issue("error", "not-found", f"{failure} The code cannot be validated.", "not-found",
                                    f"{where}version" if by_version else failure.expression))
        return verdict
    verdict.concept = find(verdict.system, asked.code or "")
    if verdict.concept is None:
        failure = unknown_code(asked, f"{where}code")
        verdict.issues.append(issue("error", "code-invalid", str(failure), "invalid-code", failure.expression))
        return verdict
    if not abstract and verdict.concept.not_selectable:
        verdict.issues.append(issue(
            "error", "business-rule", f"Code '{asked.code}' is not selectable: ICD-10-CM does not allow it on a "
                                      "claim (not billable; use a code below it)", "invalid-code", f"{where}code"))
    _display_issue(verdict, where, lenient)
    return verdict


def _asked(given: OperationInput, instance: str | None) -> list[tuple[Coding, str]]:
    """Each coding to validate, with the prefix its issues name it by."""
    concept = given.codeable_concept("codeableConcept")
    if concept is not None:
        return [(Coding(instance_system(c.system, instance, "codeableConcept"), c.code, c.version, c.display),
                 f"CodeableConcept.coding[{i}].") for i, c in enumerate(concept)]
    asked, where = asked_coding(given, system=("url", "system"))
    if asked is not None:
        asked = Coding(instance_system(asked.system, instance, "url"), asked.code, asked.version, asked.display)
    if asked is None or not asked.code:
        raise FHIRError(400, "invalid", f"$validate-code needs url and code, coding or codeableConcept - e.g. "
                                        f"{EXAMPLE}", "invalid-data", "code")
    return [(asked, where)]


def answer(verdict: Verdict, everything: list[Verdict], concept: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Parameters of a $validate-code: the chosen verdict, with the issues of every coding validated;
    `concept` is the CodeableConcept asked about, named back."""
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": verdict.valid}]
    if concept is not None:
        out.append({"name": "codeableConcept", "valueCodeableConcept": concept})
    if verdict.asked.code:
        out.append({"name": "code", "valueCode": verdict.asked.code})
    if verdict.system is not None:
        out += [{"name": "system", "valueUri": verdict.system.url},
                {"name": "version", "valueString": verdict.system.version}]
    elif verdict.asked.system:
        out.append({"name": "system", "valueUri": verdict.asked.system})
    if verdict.concept is not None and verdict.concept.display:
        out.append({"name": "display", "valueString": verdict.concept.display})
    if verdict.concept is not None and verdict.concept.inactive:
        out.append({"name": "inactive", "valueBoolean": True})
    issues = [found for v in everything for found in v.issues]
    if issues:
        out.append({"name": "message", "valueString": "; ".join(i["details"]["text"] for i in issues)})
        out.append({"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": issues}})
    out += [{"name": "x-caused-by-unknown-system", "valueCanonical": v.unknown_system}
            for v in everything if v.unknown_system]
    return {"resourceType": "Parameters", "parameter": out}


def validate_code(instance: str | None = None) -> dict[str, Any]:
    """Read the request, validate each coding; the answer speaks for the first valid one (else the first)."""
    given = read_input()
    abstract = given.boolean("abstract")
    lenient = bool(given.boolean("lenient-display-validation"))
    verdicts = [check(asked, where, abstract=abstract is not False, lenient=lenient)
                for asked, where in _asked(given, instance)]
    chosen = next((v for v in verdicts if v.valid), verdicts[0])
    return answer(chosen, verdicts, _echo(given))


def _echo(given: OperationInput) -> dict[str, Any] | None:
    """The CodeableConcept as given (the answer names it back, as R5's output parameter does)."""
    codings = given.codeable_concept("codeableConcept")
    if codings is None:
        return None
    return {"coding": [{key: value for key, value in vars(c).items() if value} for c in codings]}
