"""What the FHIR terminology service says about itself: `GET /fhir/metadata` (a CapabilityStatement
that instantiates the HL7 terminology-server statement) and `?mode=terminology` (TerminologyCapabilities
with every code system and its version).

Both are made from what is really served: the resources, interactions and operations come from the
app's own routes under /fhir/ (adding a route adds it here), the code systems from the graph.
"""

from __future__ import annotations

import re
from importlib import metadata as packages
from typing import Any

from flask import current_app, request

from ..exports import FHIR_VERSIONS
from ..store import get_store
from .codesystems import code_systems

TERMINOLOGY_SERVER = "http://hl7.org/fhir/CapabilityStatement/terminology-server"
OPERATION_DEFINITION = "http://hl7.org/fhir/OperationDefinition/{type}-{name}"
#: a /fhir/ route: its resource type, and an instance id and/or an operation
ROUTE = re.compile(r"^/fhir/(?P<type>[A-Z][A-Za-z]+)(?P<instance>/<[^>]+>)?(?:/\$(?P<operation>[a-z-]+))?$")
#: a server-level operation route (/fhir/$versions)
SERVER_OPERATION = re.compile(r"^/fhir/\$(?P<operation>[a-z-]+)$")
#: the definitions of server-level operations (others: OperationDefinition/{name})
SERVER_DEFINITIONS = {"versions": "http://hl7.org/fhir/OperationDefinition/CapabilityStatement-versions"}
#: search parameters of a type-level search, by resource type
SEARCH_PARAMS = {"CodeSystem": [("url", "uri"), ("version", "token")]}
#: the $expand parameters the service reads (TerminologyCapabilities.expansion.parameter)
EXPANSION_PARAMETERS = ("activeOnly", "count", "displayLanguage", "filter", "includeDesignations", "offset", "property")
SOFTWARE = "medcode-kg"


def _software_version() -> str:
    try:
        return packages.version(SOFTWARE)
    except packages.PackageNotFoundError:
        return "0.0.0"


def served() -> dict[str, dict[str, set[str]]]:
    """Resource type -> {"interaction": {...}, "operation": {...}} from the routes under /fhir/."""
    found: dict[str, dict[str, set[str]]] = {}
    for rule in current_app.url_map.iter_rules():
        match = ROUTE.match(rule.rule)
        if not match or not rule.methods or "GET" not in rule.methods:
            continue
        entry = found.setdefault(match["type"], {"interaction": set(), "operation": set()})
        if match["operation"]:
            entry["operation"].add(match["operation"])
        else:
            entry["interaction"].add("read" if match["instance"] else "search-type")
    return found


def _header(kind: str) -> dict[str, Any]:
    meta = get_store().meta
    date = str(meta.get("built_at", ""))[:10] or None
    body: dict[str, Any] = {
        "resourceType": kind, "url": request.url_root.rstrip("/") + "/fhir/metadata", "version": _software_version(),
        "name": "MedcodeTerminologyServer", "title": "medcode-kg FHIR terminology service", "status": "active",
        "experimental": False, "kind": "instance",
        "software": {"name": SOFTWARE, "version": _software_version()},
        "implementation": {"description": "Terminology operations over the medcode-kg graph "
                                          f"(snapshot {meta.get('snapshot', 'unknown')})",
                           "url": request.url_root.rstrip("/") + "/fhir"}}
    if date:
        body["date"] = date
        if kind == "CapabilityStatement":  # TerminologyCapabilities.software has no releaseDate
            body["software"]["releaseDate"] = date
    return body


def capability_statement(version: str) -> dict[str, Any]:
    """The CapabilityStatement of the routes served."""
    resources = []
    for kind, entry in sorted(served().items()):
        resource: dict[str, Any] = {"type": kind}
        if entry["interaction"]:
            resource["interaction"] = [{"code": code} for code in sorted(entry["interaction"])]
        if "search-type" in entry["interaction"] and kind in SEARCH_PARAMS:
            resource["searchParam"] = [{"name": n, "type": t} for n, t in SEARCH_PARAMS[kind]]
        if entry["operation"]:
            resource["operation"] = [{"name": op, "definition": OPERATION_DEFINITION.format(type=kind, name=op)}
                                     for op in sorted(entry["operation"])]
        resources.append(resource)
    rest: dict[str, Any] = {"mode": "server", "resource": resources}
    operations = sorted(match["operation"] for rule in current_app.url_map.iter_rules()
                        if (match := SERVER_OPERATION.match(rule.rule)))
    if operations:
        rest["operation"] = [{"name": op, "definition": SERVER_DEFINITIONS.get(
            op, f"http://hl7.org/fhir/OperationDefinition/{op}")} for op in operations]
    return {**_header("CapabilityStatement"), "instantiates": [TERMINOLOGY_SERVER],
            "fhirVersion": FHIR_VERSIONS[version] + ".0", "format": ["application/fhir+json"], "rest": [rest]}


def versions() -> dict[str, Any]:
    """$versions: the FHIR versions served (major.minor) and the default one."""
    served_versions = sorted(FHIR_VERSIONS.values())
    return {"resourceType": "Parameters", "parameter": [
        *({"name": "version", "valueCode": v} for v in served_versions),
        {"name": "default", "valueCode": FHIR_VERSIONS["r5"]}]}


def terminology_capabilities(version: str) -> dict[str, Any]:
    """TerminologyCapabilities: every code system with its version, and what the operations served take."""
    systems = []
    for system in code_systems().values():
        entry: dict[str, Any] = {"uri": system.url, "version": [{"code": system.version, "isDefault": True}]}
        if version == "r5":
            entry["content"] = system.content
        systems.append(entry)
    body = {**_header("TerminologyCapabilities"), "codeSystem": systems}
    operations = {op for entry in served().values() for op in entry["operation"]}
    if "expand" in operations:
        body["expansion"] = {"parameter": [{"name": name} for name in EXPANSION_PARAMETERS]}
    if "validate-code" in operations:
        body["validateCode"] = {"translations": False}
    if "translate" in operations:
        body["translation"] = {"needsMap": False}
    return body
