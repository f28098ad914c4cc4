"""What every record type's reader shares: the curation so far, the checks, and provenance.

A bad record must fail the build naming its file, line and field, so every check raises through
:meth:`Record.error`. References to codes may point forward (codes are defined in any file), so they
are collected while reading and resolved once every file has been read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from ..namespaces import DCTERMS, ID, MC, ref_iri
from ..records import Record, SourceError, load_yaml

#: code systems a curated record may define (ICD-10-CM comes from its release, see kg.icd10cm)
SYSTEM_CLASS = {"cpt": MC.CPTCode, "hcpcs": MC.HCPCSCode, "modifier": MC.Modifier}
DATE = re.compile(r"^\d{4}(-\d{2}-\d{2})?$")
EN = "en"


@dataclass
class Curation:
    """What the curated sources define; the ICD-10-CM references are checked by the importer."""

    graph: Graph = field(default_factory=Graph)
    sources: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    #: condition or encounter-reason id -> (the property an indication names it by, its node)
    conditions: dict[str, tuple[URIRef, URIRef]] = field(default_factory=dict)
    codes: set[str] = field(default_factory=set)
    value_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    icd_references: list[tuple[Record, str, str]] = field(default_factory=list)


def text(value: Any) -> Literal:
    """Curated prose: stripped, tagged English."""
    return Literal(str(value).strip(), lang=EN)


def date(record: Record, field_name: str, value: Any) -> Literal:
    """A curated date: a full date (xsd:date) or a year (xsd:gYear), nothing else."""
    lexical = str(value)
    if not DATE.match(lexical):
        raise record.error(field_name, f"'{lexical}' is not a date (YYYY-MM-DD) or a year (YYYY)")
    return Literal(lexical, datatype=XSD.date if len(lexical) == 10 else XSD.gYear)


def load_records(path: Path) -> list[Record]:
    """A curated file that is a list of records (every file but relations.yaml)."""
    data = load_yaml(path)
    if not isinstance(data, list) or not all(isinstance(r, Record) for r in data):
        raise SourceError(path, 1, None, "expected a YAML list of records")
    return data


class Reader:
    """The state of one read of a source set: the curation being built and the code references to resolve."""

    def __init__(self) -> None:
        self.curation = Curation()
        self.graph = self.curation.graph
        self._code_references: list[tuple[Record, str, str]] = []

    def require(self, record: Record, *names: str) -> None:
        for name in names:
            if record.get(name) in (None, "", []):
                raise record.error(name, "is required")

    def check_keys(self, record: Record, allowed: set[str]) -> None:
        for key in record:
            if key not in allowed:
                raise record.error(key, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def source(self, record: Record, field_name: str, source_id: Any) -> URIRef:
        """The IRI of a source that sources.yaml defines."""
        if str(source_id) not in self.curation.sources:
            raise record.error(field_name, f"unknown source '{source_id}' (defined in sources.yaml)")
        return ID[f"source/{source_id}"]

    def code_ref(self, record: Record, field_name: str, ref: Any) -> URIRef:
        """The IRI of a `system/code` reference; whether the code exists is checked later (see module doc)."""
        ref = str(ref)
        system, _, code = ref.partition("/")
        if system == "icd10cm":
            self.curation.icd_references.append((record, field_name, code))
        elif system in SYSTEM_CLASS and code:
            self._code_references.append((record, field_name, ref))
        else:
            raise record.error(field_name, f"'{ref}' is not a code reference like cpt/96522 or hcpcs/C1772")
        return ref_iri(ref)

    def check_code_references(self) -> None:
        """Once every file is read: each curated code a record names must be defined somewhere."""
        for record, field_name, ref in self._code_references:
            if ref not in self.curation.codes:
                raise record.error(field_name, f"unknown code '{ref}'")

    def assert_fact(self, subject: URIRef, predicate: URIRef, obj: Any, source: URIRef) -> None:
        """Assert a fact and its provenance as an mc:Assertion."""
        self.graph.add((subject, predicate, obj))
        digest = hashlib.sha1("\x1f".join(map(str, (subject, predicate, obj, source))).encode()).hexdigest()
        node = ID[f"assertion/{digest[:16]}"]
        self.graph.add((node, RDF.type, MC.Assertion))
        self.graph.add((node, RDF.subject, subject))
        self.graph.add((node, RDF.predicate, predicate))
        self.graph.add((node, RDF.object, obj))
        self.graph.add((node, DCTERMS.source, source))
