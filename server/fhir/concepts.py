"""A code of a FHIR code system as the graph describes it, read with one query: what $lookup,
$validate-code and $subsumes need (display, designations, hierarchy, billable, status, added date,
ICD-10-CM notes, the device it denotes).

A code is found by its notation in its code system's scheme, a modifier in the scheme of its
mc:modifierSystem (README: "A code's FHIR system is always exactly one"). Both values are bound as RDF
terms: the scheme's IRI, not its FHIR URI through `mc:fhirSystem` with a STR filter, which Virtuoso 7.2
answered in 190 ms a lookup (8 ms so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..pages.suggest import suggest
from ..pages.view import public_base
from ..store import select
from .codesystems import NOTE_PROPERTIES, CodeSystem

MC = "https://w3id.org/medcode/ontology#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
NOTE_VALUES = " ".join(f"mc:{prop}" for prop in NOTE_PROPERTIES.values())
FACTS = f"""
PREFIX mc: <{MC}>
PREFIX skos: <{SKOS}>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?prop ?value ?note ?char WHERE {{
  ?c skos:notation ?code ; a mc:Code ; (skos:inScheme|mc:modifierSystem) ?scheme .
  {{ VALUES ?prop {{ skos:prefLabel skos:altLabel mc:longDescriptor mc:shortDescriptor mc:mediumDescriptor
                    mc:billable mc:codeStatus mc:addedDate }} ?c ?prop ?value }}
  UNION {{ VALUES ?prop {{ skos:broader skos:narrower skos:broaderTransitive }}
           ?c ?prop ?o . ?o a mc:Code ; skos:notation ?value }}
  UNION {{ VALUES ?prop {{ {NOTE_VALUES} }} ?c ?prop ?note . ?note rdfs:label ?value
           OPTIONAL {{ ?note mc:character ?char }} }}
  UNION {{ VALUES ?prop {{ mc:denotesDevice }} ?c ?prop ?device . ?device a ?value }}
}}
"""
#: a code of a system by its notation, with the device it denotes if any
CODE = f"""
PREFIX mc: <{MC}>
PREFIX skos: <{SKOS}>
SELECT ?c ?device WHERE {{
  ?c skos:notation ?code ; a mc:Code ; (skos:inScheme|mc:modifierSystem) ?scheme .
  OPTIONAL {{ ?c mc:denotesDevice ?device }}
}} LIMIT 1
"""
#: designation kinds: graph property -> its name as designation.use (a code of the ontology)
DESIGNATIONS = {SKOS + "altLabel": "altLabel", MC + "longDescriptor": "longDescriptor",
                MC + "mediumDescriptor": "mediumDescriptor", MC + "shortDescriptor": "shortDescriptor"}
NOTE_BY_PROPERTY = {MC + prop: code for code, prop in NOTE_PROPERTIES.items()}
ORDINAL = re.compile(r"/([0-9]+)$")


@dataclass
class Concept:
    """What the graph says about one code."""

    system: CodeSystem
    code: str
    display: str | None = None
    designations: list[tuple[str, str]] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    ancestors: set[str] = field(default_factory=set)
    billable: bool | None = None
    status: str | None = None
    added: str | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)
    device_classes: set[str] = field(default_factory=set)

    @property
    def inactive(self) -> bool:
        """A code whose status is stated and is other than active."""
        return self.status is not None and self.status.lower() != "active"

    @property
    def not_selectable(self) -> bool:
        """An ICD-10-CM code that may not be billed (a category or subcategory with codes below it)."""
        return self.billable is False


def _note_key(row: dict) -> tuple[str, int, str]:
    match = ORDINAL.search(row.get("note", {}).get("value", ""))
    return (row["prop"]["value"], int(match.group(1)) if match else 0, row.get("note", {}).get("value", ""))


def _read_fact(concept: Concept, prop: str, value: str, row: dict) -> None:
    """Put one (property, value) row of FACTS into the concept."""
    if prop == SKOS + "prefLabel":
        concept.display = concept.display or value
    elif prop in DESIGNATIONS:
        concept.designations.append((DESIGNATIONS[prop], value))
    elif prop == SKOS + "broader":
        concept.parents.append(value)
    elif prop == SKOS + "narrower":
        concept.children.append(value)
    elif prop == SKOS + "broaderTransitive":
        concept.ancestors.add(value)
    elif prop == MC + "billable":
        concept.billable = value.lower() in ("true", "1")
    elif prop == MC + "codeStatus":
        concept.status = value
    elif prop == MC + "addedDate":
        concept.added = value
    elif prop == MC + "denotesDevice":
        concept.device_classes.add(value)
    elif prop in NOTE_BY_PROPERTY:
        char = row.get("char", {}).get("value")
        concept.notes.append((NOTE_BY_PROPERTY[prop], f"{char}: {value}" if char else value))


def find(system: CodeSystem, code: str) -> Concept | None:
    """The code in `system` with everything the graph says of it, or None when the system does not hold it."""
    rows = select(FACTS, bindings={"code": ("literal", code, None), "scheme": ("iri", system.scheme, None)})
    if not rows:
        return None
    concept = Concept(system, code)
    for row in sorted(rows, key=_note_key):
        _read_fact(concept, row["prop"]["value"], row["value"]["value"], row)
    concept.parents.sort()
    concept.children.sort()
    return concept


def locate(system: CodeSystem, code: str) -> tuple[str, bool] | None:
    """(IRI, whether it denotes a device) of the code in `system`, or None when the system does not hold it."""
    rows = select(CODE, bindings={"code": ("literal", code, None), "scheme": ("iri", system.scheme, None)})
    return (rows[0]["c"]["value"], "device" in rows[0]) if rows else None


def near_codes(system: CodeSystem, code: str) -> list[str]:
    """Codes of the system near `code`, nearest first: the pages' suggestions for an unknown code IRI (the
    one matcher; ICD-10-CM is searched under the category or block the code would be in)."""
    prefix = f"{public_base()}id/{system.id}/"
    return [link.notation for link in suggest(prefix + code)
            if link.iri.startswith(prefix) and link.notation and "/" not in link.iri[len(prefix):]][:5]
