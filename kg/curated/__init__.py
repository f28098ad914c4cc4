"""The curated YAML sources turned into the asserted RDF graph, every record checked on the way.

One module per record type, read in dependency order: provenance sources, value sets, devices,
conditions, codes (with their indications and profiles), relations. A bad record raises
:class:`~kg.records.SourceError` naming its file, line and field.
"""

from __future__ import annotations

from pathlib import Path

from .codes import add_code_systems, read_code
from .conditions import read_conditions
from .devices import read_devices
from .provenance import read_sources
from .reader import Curation, Reader, load_records
from .relations import read_relations
from .source_set import SourceSet
from .value_sets import read_value_sets

__all__ = ["Curation", "SourceSet", "build_curated"]


def build_curated(sources: Path | SourceSet) -> Curation:
    """Read a source set (or a directory laid out like kg/sources/); raise SourceError on the first bad record."""
    files = sources if isinstance(sources, SourceSet) else SourceSet.from_directory(sources)
    reader = Reader()
    read_sources(reader, load_records(files.sources))
    read_value_sets(reader, load_records(files.value_sets))
    read_devices(reader, load_records(files.devices))
    read_conditions(reader, load_records(files.conditions))
    add_code_systems(reader)
    for path in files.codes:
        for record in load_records(path):
            read_code(reader, record)
    read_relations(reader, files.relations)
    reader.check_code_references()
    return reader.curation
