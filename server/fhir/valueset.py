"""ValueSet/$expand and ValueSet/$validate-code over the implicit value sets of the graph's code systems.

`GET` or `POST` (a form or a `Parameters` resource) `/fhir/ValueSet/$expand?url={system}?fhir_vs[=isa/{code}]`
with `filter`, `count`, `offset`, `activeOnly`, `includeDesignations`, `property` and `displayLanguage`
(English only: other languages get the English display) answers a `ValueSet` whose `expansion` carries a
fresh identifier and timestamp, the total, the offset, the parameters that shaped it and the page's codes
(expansion.py). `$validate-code` says whether a code (code + system, a coding or a codeableConcept) is in
such a value set, with its display, and checks a display given. R5 by default, R4B on request (as
$translate); R4B writes a code's properties as R5's backport extension.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Response

from . import _version as fhir_version
from . import bp
from .codesystems import CodeSystem
from .expansion import Request, expand, parse_url, subtree, words
from .lookup import DESIGNATION_USE, USE_DISPLAY
from .params import Coding, OperationInput, asked_coding, read_input
from .resources import FHIRError, issue, resource
from .validate import Verdict, answer, check

#: the properties an expansion can give each code, with the type of their value
PROPERTIES = {"notSelectable": "valueBoolean", "inactive": "valueBoolean", "parent": "valueCode",
              "child": "valueCode"}
PROPERTY_URI = "http://hl7.org/fhir/concept-properties#"
#: R5's expansion.contains.property written in R4B (the cross-version extension)
R5_CONTAINS_PROPERTY = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.contains.property"
R5_EXPANSION_PROPERTY = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.property"
#: a filter is a few words (each is a LIKE over every code of a system before the exact test)
MAX_FILTER, MAX_FILTER_WORDS = 200, 12
EXPAND_EXAMPLE = "?url=http://hl7.org/fhir/sid/icd-10-cm?fhir_vs=isa/G35"
VALIDATE_EXAMPLE = EXPAND_EXAMPLE + "&code=G35.A"


def once(inp: OperationInput, *repeatable: str) -> None:
    """400 when a parameter other than the repeatable ones is given more than once."""
    twice = sorted(name for name in inp.names() - set(repeatable) if len(inp.given[name]) > 1)
    if twice:
        raise FHIRError(400, "invalid", f"Parameter '{twice[0]}' may be given once.", "invalid-data", twice[0])


def _request(inp: OperationInput) -> Request:
    """The expansion asked for; 400 naming a missing or malformed parameter."""
    once(inp, "property")
    url = inp.text("url")
    if not url:
        raise FHIRError(400, "invalid", f"$expand needs url (an implicit value set) - e.g. {EXPAND_EXAMPLE}",
                        "invalid-data", "url")
    url = url.partition("|")[0]
    system, root = parse_url(url)
    properties = dict.fromkeys(p.strip() for name in inp.texts("property") for p in name.split(",") if p.strip())
    text = inp.text("filter") or None
    if text and (len(text) > MAX_FILTER or len(words(text)) > MAX_FILTER_WORDS):
        raise FHIRError(400, "invalid", f"Parameter 'filter' may have at most {MAX_FILTER_WORDS} words and "
                                        f"{MAX_FILTER} characters.", "invalid-data", "filter")
    return Request(url=url, system=system, root=root, text=text,
                   offset=inp.integer("offset") or 0, count=inp.integer("count"),
                   active_only=bool(inp.boolean("activeOnly")), properties=tuple(properties),
                   designations=bool(inp.boolean("includeDesignations")))


def _echo(inp: OperationInput, ask: Request) -> list[dict[str, Any]]:
    """expansion.parameter: the parameters that shaped the expansion, as given, and the code system used."""
    echoed: list[dict[str, Any]] = []
    for name, kind, value in (("filter", "valueString", ask.text), ("count", "valueInteger", ask.count),
                              ("offset", "valueInteger", ask.offset if "offset" in inp.names() else None),
                              ("activeOnly", "valueBoolean", ask.active_only if "activeOnly" in inp.names() else None),
                              ("includeDesignations", "valueBoolean",
                               ask.designations if "includeDesignations" in inp.names() else None),
                              ("displayLanguage", "valueCode", inp.text("displayLanguage"))):
        if value is not None:
            echoed.append({"name": name, kind: value})
    echoed += [{"name": "property", "valueString": name} for name in ask.properties]
    echoed.append({"name": "used-codesystem", "valueUri": f"{ask.system.url}|{ask.system.version}"})
    return echoed


def _properties(code: dict[str, Any], ask: Request) -> list[dict[str, Any]]:
    """The requested properties of one code, as expansion.contains.property entries (code, value[x])."""
    values: list[tuple[str, Any]] = []
    for name in ask.properties:
        if name == "notSelectable" and code["billable"]:
            values.append((name, code["billable"] == "false"))
        elif name == "inactive":
            values.append((name, code["status"].lower() not in ("", "active")))
        elif name in ("parent", "child"):
            values += [(name, value) for value in code[name]]
    return [{"code": name, PROPERTIES[name]: value} for name, value in values]


def _contains(code: dict[str, Any], ask: Request, r5: bool) -> dict[str, Any]:
    """One expansion.contains entry."""
    entry: dict[str, Any] = {"system": ask.system.url, "version": ask.system.version, "code": code["code"]}
    if code["billable"] == "false":
        entry["abstract"] = True
    if code["status"].lower() not in ("", "active"):
        entry["inactive"] = True
    if code["display"]:
        entry["display"] = code["display"]
    if ask.designations:
        entry["designation"] = [{"language": "en", "value": text, "use": {
            "system": DESIGNATION_USE, "code": use, "display": USE_DISPLAY[use]}} for use, text in code["designations"]]
    props = _properties(code, ask)
    if props and r5:
        entry["property"] = props
    elif props:
        entry["extension"] = [{"url": R5_CONTAINS_PROPERTY, "extension": [
            {"url": "code", "valueCode": p["code"]}, {"url": "value", **{k: v for k, v in p.items() if k != "code"}}]}
            for p in props]
    return {key: value for key, value in entry.items() if value != []}


def expansion(inp: OperationInput, version: str) -> dict[str, Any]:
    """The ValueSet answering an $expand."""
    ask = _request(inp)
    page = expand(ask)
    r5 = version == "r5"
    body: dict[str, Any] = {
        "identifier": f"urn:uuid:{uuid.uuid4()}", "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "total": page.total}
    if "offset" in inp.names():
        body["offset"] = ask.offset
    body["parameter"] = _echo(inp, ask)
    declared = [name for name in ask.properties if name in PROPERTIES]
    if declared and r5:
        body["property"] = [{"code": name, "uri": PROPERTY_URI + name} for name in declared]
    elif declared:
        body["extension"] = [{"url": R5_EXPANSION_PROPERTY, "extension": [
            {"url": "code", "valueCode": name}, {"url": "uri", "valueUri": PROPERTY_URI + name}]} for name in declared]
    contains = [_contains(code, ask, r5) for code in page.codes]
    if contains:
        body["contains"] = contains
    title = f"{ask.system.title} {'codes' if ask.root is None else 'is-a ' + ask.url.rsplit('/', 1)[-1]}"
    return {"resourceType": "ValueSet", "url": ask.url, "version": ask.system.version, "name": _name(title),
            "title": title, "status": "active", "experimental": False, "expansion": body}


def _name(title: str) -> str:
    return "".join(ch for ch in title.title() if ch.isalnum()) or "ValueSet"


# -- $validate-code ------------------------------------------------------------------------------------


def _codings(inp: OperationInput, system: CodeSystem) -> list[tuple[Coding, str]]:
    """Each coding to validate with the prefix its issues name it by; a code without a system is in the
    value set's system."""
    concept = inp.codeable_concept("codeableConcept")
    asked = [(c, f"CodeableConcept.coding[{i}].") for i, c in enumerate(concept)] if concept is not None else []
    if not asked:
        coding, where = asked_coding(inp)
        if coding is None or not coding.code:
            raise FHIRError(400, "invalid", f"$validate-code needs url and code, coding or codeableConcept - e.g. "
                                            f"{VALIDATE_EXAMPLE}", "invalid-data", "code")
        asked = [(coding, where)]
    return [(replace(c, system=c.system or system.url), where) for c, where in asked]


def _membership(verdict: Verdict, ask: Request, where: str) -> None:
    """An error issue when a code its system holds is outside an isa value set."""
    if verdict.concept is None or ask.root is None or verdict.system != ask.system:
        return
    concept, root = verdict.concept, ask.root
    # a hierarchy's subtree is the root and what has it as an ancestor ($lookup's facts say which): no query
    inside = (concept.code == root.code or root.code in concept.ancestors if not root.device
              else any(member.code == concept.code for member in subtree(ask)))
    if not inside:
        verdict.issues.append(issue(
            "error", "code-invalid", f"The provided code '{ask.system.url}#{verdict.concept.code}' was not found in "
                                     f"the value set '{ask.url}'", "not-in-vs", f"{where}code"))


def validation(inp: OperationInput) -> dict[str, Any]:
    """The Parameters answering a ValueSet/$validate-code: CodeSystem/$validate-code's checks (the code,
    its display) and membership of the value set; a coding of another system is not in it."""
    once(inp)
    url = (inp.text("url") or "").partition("|")[0]
    if not url:
        raise FHIRError(400, "invalid", f"$validate-code needs url (an implicit value set) - e.g. {VALIDATE_EXAMPLE}",
                        "invalid-data", "url")
    system, root = parse_url(url)
    ask = Request(url=url, system=system, root=root)
    lenient = bool(inp.boolean("lenient-display-validation"))
    verdicts = []
    for coding, where in _codings(inp, system):
        verdict = check(coding, where, abstract=inp.boolean("abstract") is not False, lenient=lenient)
        if verdict.system is not None and verdict.system != system:
            verdict.issues.append(issue("error", "code-invalid", f"The code system '{verdict.system.url}' is not the "
                                        f"system of the value set '{url}' ({system.url})", "not-in-vs",
                                        f"{where}system"))
        _membership(verdict, ask, where)
        verdicts.append(verdict)
    return answer(next((v for v in verdicts if v.valid), verdicts[0]), verdicts)


@bp.route("/ValueSet/$expand", methods=["GET", "POST"])
def value_set_expand() -> Response:
    """$expand of an implicit value set."""
    version = fhir_version()
    return resource(expansion(read_input(), version), version=version)


@bp.route("/ValueSet/$validate-code", methods=["GET", "POST"])
def value_set_validate_code() -> Response:
    """$validate-code against an implicit value set."""
    version = fhir_version()
    return resource(validation(read_input()), version=version)

