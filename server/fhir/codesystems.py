"""The code systems the graph holds, as a FHIR terminology service names them: read from the graph once
per snapshot (no code list lives here).

One entry per `mc:CodeSystem` with an `mc:fhirSystem`: CPT, HCPCS Level II and ICD-10-CM. The modifier
list has no FHIR system of its own; each modifier is a code of the system that defines it
(`mc:modifierSystem`: 59 and 95 in CPT, XU and the others in HCPCS Level II), so it is counted, looked
up and validated there. `content` is `complete` for ICD-10-CM when the build imported the whole release
(the snapshot's `icd10cm_items` is `all`), else `fragment`: the graph holds a curated part of CPT and
HCPCS Level II only. The version is the latest year the system's `mc:release` names (the release text
itself is the description).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..exports import snapshot_memo
from ..store import get_store, select
from .resources import FHIRError

SYSTEMS = """
PREFIX mc: <https://w3id.org/medcode/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?scheme ?fhir ?label ?release ?oid WHERE {
  ?scheme a mc:CodeSystem ; mc:fhirSystem ?fhir ; skos:prefLabel ?label .
  OPTIONAL { ?scheme mc:release ?release }
  OPTIONAL { ?scheme mc:oid ?oid }
} ORDER BY ?fhir
"""
CONCEPTS = """
PREFIX mc: <https://w3id.org/medcode/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?code (SAMPLE(?label) AS ?display) WHERE {
  ?c a mc:Code ; skos:notation ?code . { ?c skos:inScheme ?scheme } UNION { ?c mc:modifierSystem ?scheme }
  OPTIONAL { ?c skos:prefLabel ?label }
} GROUP BY ?code ORDER BY ?code
"""
#: how many codes a system holds (the CodeSystem's `count` when its resource does not list them)
COUNT = """
PREFIX mc: <https://w3id.org/medcode/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT (COUNT(DISTINCT ?c) AS ?codes) WHERE {
  ?c a mc:Code ; skos:notation ?code . { ?c skos:inScheme ?scheme } UNION { ?c mc:modifierSystem ?scheme }
}
"""
#: the CodeSystem elements a `_summary=true` read keeps (FHIR's summary elements of CodeSystem that this
#: service writes: not `description`, `concept`)
SUMMARY = ("url", "identifier", "version", "name", "title", "status", "experimental", "caseSensitive", "valueSet",
           "hierarchyMeaning", "content", "count", "property")
#: what a CodeSystem must have, so `_elements` and `_summary=text` keep them
MANDATORY = ("status", "content")
#: the ICD-10-CM scheme (README vocabulary): complete when the whole release was imported
ICD10CM_SCHEME = "https://w3id.org/medcode/id/icd10cm"
YEAR = re.compile(r"(?<![0-9])(?:19|20)[0-9]{2}(?![0-9])")
#: the properties a $lookup may return, as CodeSystem.property declares them (ICD-10-CM's notes too)
PROPERTIES = [
    ("parent", "code", "The code's direct parent in the hierarchy (ICD-10-CM: skos:broader)"),
    ("child", "code", "A code directly below this one (ICD-10-CM: skos:narrower)"),
    ("notSelectable", "boolean", "Not for use on a claim: an ICD-10-CM category or subcategory that is not billable"),
    ("inactive", "boolean", "The code is no longer in use (its mc:codeStatus is other than active)"),
    ("addedDate", "dateTime", "When the code was added to its code system (mc:addedDate)"),
]
#: ICD-10-CM Tabular List notes: property code -> the graph's note property (README: ICD-10-CM notes)
NOTE_PROPERTIES = {
    "inclusionTerm": "inclusionTerm", "includes": "includes", "excludes1": "excludes1", "excludes2": "excludes2",
    "codeFirst": "codeFirst", "useAdditionalCode": "useAdditionalCode", "codeAlso": "codeAlso",
    "note": "generalNote", "seventhCharacterNote": "seventhCharacterNote", "seventhCharacter": "seventhCharacter",
}


@dataclass(frozen=True)
class CodeSystem:
    """One code system of the graph, as the FHIR service describes it."""

    scheme: str
    id: str
    url: str
    name: str
    title: str
    version: str
    description: str
    oid: str | None
    content: str

    @property
    def hierarchical(self) -> bool:
        """ICD-10-CM's codes nest (parent, child, is-a); the curated systems are flat lists."""
        return self.scheme == ICD10CM_SCHEME


def _version(release: str) -> str:
    years = YEAR.findall(release)
    return max(years) if years else release or "unversioned"


def _name(title: str) -> str:
    """A computer-friendly name from the title: its words before any parenthesis, joined."""
    return re.sub(r"[^A-Za-z0-9]", "", title.split("(", 1)[0]) or "CodeSystem"


def _read() -> dict[str, CodeSystem]:
    whole_icd = get_store().meta.get("icd10cm_items") == "all"
    systems = {}
    for row in select(SYSTEMS):
        scheme, release = row["scheme"]["value"], row.get("release", {}).get("value", "")
        title = row["label"]["value"]
        systems[row["fhir"]["value"]] = CodeSystem(
            scheme=scheme, id=scheme.rstrip("/").rsplit("/", 1)[1], url=row["fhir"]["value"], name=_name(title),
            title=title,
            version=_version(release), description=release or title, oid=row.get("oid", {}).get("value"),
            content="complete" if scheme == ICD10CM_SCHEME and whole_icd else "fragment")
    return systems


def code_systems() -> dict[str, CodeSystem]:
    """FHIR system URI -> the code system, read once per snapshot."""
    memo = snapshot_memo()
    if "fhir-code-systems" not in memo:
        memo["fhir-code-systems"] = _read()
    return memo["fhir-code-systems"]


def resolve(url: str | None, version: str | None = None, name: str = "system") -> CodeSystem:
    """The code system at `url` (and `version`, when one is asked for); 404 not-found naming what is known."""
    systems = code_systems()
    if not url:
        raise FHIRError(400, "invalid", f"Parameter '{name}' is required (the code system's URI).", "invalid-data",
                        name)
    system = systems.get(url)
    if system is None:
        raise FHIRError(404, "not-found", f"A definition for CodeSystem '{url}' could not be found; known: "
                                          + ", ".join(sorted(systems)) + ".", "not-found", name)
    if version and version != system.version:
        raise FHIRError(404, "not-found", f"A definition for CodeSystem '{url}' version '{version}' could not be "
                                          f"found; the version here is '{system.version}'.", "not-found", "version")
    return system


def instance_system(asked: str | None, instance: str | None, name: str = "system") -> str | None:
    """The system an operation is about: the one asked for, or the CodeSystem of the URL
    (`/fhir/CodeSystem/icd10cm/$lookup`); both, and different, is a 400."""
    if instance and asked and asked != instance:
        raise FHIRError(400, "invalid", f"Parameter '{name}' names {asked}, but this URL is the CodeSystem "
                                        f"{instance}.", "invalid-data", name)
    return asked or instance


def by_id(resource_id: str) -> CodeSystem | None:
    """The code system whose resource id is `resource_id`, or None."""
    return next((cs for cs in code_systems().values() if cs.id == resource_id), None)


def properties(system: CodeSystem) -> list[dict[str, Any]]:
    """CodeSystem.property: what $lookup can say about a code of this system."""
    declared = [{"code": code, "type": kind, "description": text} for code, kind, text in PROPERTIES
                if system.hierarchical or code not in ("parent", "child", "notSelectable")]
    if system.hierarchical:
        declared += [{"code": code, "type": "string", "description": f"ICD-10-CM Tabular List note (mc:{prop})"}
                     for code, prop in NOTE_PROPERTIES.items()]
    return declared


def _concepts(system: CodeSystem) -> list[dict[str, str]]:
    """The codes of a fragment, with their displays."""
    rows = select(CONCEPTS, bindings={"scheme": ("iri", system.scheme, None)})
    return [{"code": r["code"]["value"], **({"display": r["display"]["value"]} if "display" in r else {})}
            for r in rows]


def count(system: CodeSystem) -> int:
    """How many codes the system holds, modifiers included (once per snapshot: the whole-system $expand's
    total)."""
    memo = snapshot_memo()
    key = ("fhir-code-count", system.url)
    if key not in memo:
        rows = select(COUNT, bindings={"scheme": ("iri", system.scheme, None)})
        memo[key] = int(rows[0]["codes"]["value"]) if rows else 0
    return memo[key]


def resource(system: CodeSystem, concepts: bool = True) -> dict[str, Any]:
    """The CodeSystem resource. A fragment lists its concepts (`fragment`: the few the graph holds); the
    complete ICD-10-CM does not list its 98,186 codes, so its resource says `not-present` (as HAPI FHIR's
    loaded code systems do) with their `count` and the implicit value set of all of them: the concepts
    are served by $lookup, $validate-code, $subsumes and $expand (paged), and TerminologyCapabilities
    says the service holds the system `complete`. `concepts=False` leaves a fragment's list (for a
    summary) out, its count still given."""
    listed = system.content == "fragment"
    body: dict[str, Any] = {
        "resourceType": "CodeSystem", "id": system.id, "url": system.url, "version": system.version,
        "name": system.name, "title": system.title, "status": "active", "experimental": False,
        "description": system.description, "caseSensitive": True,
        "content": "fragment" if listed else "not-present", "property": properties(system)}
    if system.oid:
        body["identifier"] = [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{system.oid}"}]
    if system.hierarchical:
        body["hierarchyMeaning"] = "is-a"
    if listed:
        listing = _concepts(system)
        body["count"] = len(listing)
        if concepts:
            body["concept"] = listing
    else:
        body["valueSet"] = f"{system.url}?fhir_vs"
        body["count"] = count(system)
    return body
