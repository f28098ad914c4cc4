"""Which curated files one build reads, by record type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceSet:
    """The curated files of one build, one per record type (their format: kg/sources/README.md).

    `from_directory` gives the layout of kg/sources/. A test builds a small graph by swapping some
    files for small ones with `dataclasses.replace`, keeping the others (sources, value sets, ...).
    """

    sources: Path
    value_sets: Path
    devices: Path
    conditions: Path
    codes: tuple[Path, ...]
    relations: Path

    @classmethod
    def from_directory(cls, directory: Path) -> SourceSet:
        """The files of a directory laid out like kg/sources/ (code files: codes/*.yaml, in name order)."""
        return cls(
            sources=directory / "sources.yaml",
            value_sets=directory / "value_sets.yaml",
            devices=directory / "devices.yaml",
            conditions=directory / "conditions.yaml",
            codes=tuple(sorted((directory / "codes").glob("*.yaml"))),
            relations=directory / "relations.yaml",
        )
