"""What every writer shares: the edition an export describes (snapshot, date, public base) and chunking."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...codes import CURIE_MAP

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk

LICENSE = "https://creativecommons.org/licenses/by/4.0/"  # the ontology's dcterms:license
CHUNK = 1 << 16  # characters per streamed chunk
#: (namespace, prefix) of the one CURIE map, longest namespace first (the longest match wins)
_NAMESPACES = sorted(((ns, prefix) for prefix, ns in CURIE_MAP.items()), key=lambda item: -len(item[0]))


@dataclass(frozen=True)
class ExportMeta:
    """The edition of an export: the snapshot it was written from and where it is published."""

    version: str      # the snapshot id
    date: str         # when the snapshot was built (ISO 8601 with a UTC offset)
    base: str         # public base IRI, e.g. https://w3id.org/medcode/

    @classmethod
    def from_snapshot(cls, meta: dict[str, Any], base: str) -> ExportMeta:
        """From a snapshot's meta.json and the public base IRI."""
        built = str(meta.get("built_at", ""))
        try:
            built = datetime.datetime.strptime(built, "%Y-%m-%dT%H:%M:%S%z").isoformat()
        except ValueError:
            pass
        return cls(str(meta.get("snapshot", "")), built, base if base.endswith("/") else base + "/")

    def url(self, xw: Crosswalk, ext: str) -> str:
        """Where the export is published in format `ext`."""
        return f"{self.base}export/{xw.name}.{ext}"

    def canonical(self, xw: Crosswalk) -> str:
        """The canonical URL of the crosswalk's FHIR ConceptMap."""
        return f"{self.base}fhir/ConceptMap/{xw.name}"


def buffered(parts: Iterable[str], size: int = CHUNK) -> Iterator[str]:
    """Join small pieces into chunks of about `size` characters (fewer, larger writes)."""
    buf: list[str] = []
    n = 0
    for part in parts:
        buf.append(part)
        n += len(part)
        if n >= size:
            yield "".join(buf)
            buf, n = [], 0
    if buf:
        yield "".join(buf)


def short(iri: str) -> str:
    """`codes.curie` for the writers: the same CURIE (longest namespace of the map; the IRI itself when none
    matches or nothing follows the namespace), without the general converter's cost (~20 µs a call, most
    of a Turtle or SSSOM export's time)."""
    for namespace, prefix in _NAMESPACES:
        if iri.startswith(namespace):
            return f"{prefix}:{iri[len(namespace):]}" if len(iri) > len(namespace) else iri
    return iri
