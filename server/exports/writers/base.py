"""What every writer shares: the edition an export describes (snapshot, date, public base) and chunking."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...codes import CURIE_MAP

if TYPE_CHECKING:
    from ..crosswalks import Crosswalk

LICENSE = "https://creativecommons.org/licenses/by/4.0/"  # the ontology's dcterms:license
CHUNK = 1 << 16  # characters per streamed chunk
#: namespace -> prefix of the one CURIE map
_PREFIX_OF = {namespace: prefix for prefix, namespace in CURIE_MAP.items()}
if not all(namespace.endswith(("/", "#")) for namespace in _PREFIX_OF):
    raise ValueError("every namespace of the CURIE map ends in '/' or '#' (short() relies on it)")


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


#: json.dumps(value, ensure_ascii=False) without making an encoder per call (json.dumps does for any argument
#: but the object): the per-row JSON of every JSON writer
to_json = json.JSONEncoder(ensure_ascii=False).encode


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
    of a Turtle or SSSOM export's time). Every namespace ends in '/' or '#', so the longest that matches ends
    at the last such character of the IRI that names one: a dictionary look-up or two per IRI."""
    end = len(iri)
    while (cut := max(iri.rfind("/", 0, end), iri.rfind("#", 0, end))) >= 0:
        prefix = _PREFIX_OF.get(iri[:cut + 1])
        if prefix is not None:
            return f"{prefix}:{iri[cut + 1:]}" if cut + 1 < len(iri) else iri
        end = cut
    return iri
