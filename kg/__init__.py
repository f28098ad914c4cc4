"""medcode-kg's build: curated sources + ontology + ICD-10-CM -> a reasoned, validated snapshot.

    from kg import SourceSet, build
    build(Path("data"))                              # the pump family and all of ICD-10-CM (~100 s)
    build(Path("tmp"), sources=tiny, icd10cm=["G89.3"])  # a SourceSet of a few records: seconds

`build` raises SourceError (a bad curated record: file, line and field) or ValidationError (SHACL
or disjointness), leaving the live snapshot as it was. The snapshot contract (kg.contract: graph
IRIs, prefixes, reading a snapshot) is re-exported here; the build-side names load on first use,
so the server, which imports kg.contract, never loads the build's code.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .contract import *  # noqa: F403  (the snapshot contract, as listed in kg.contract.__all__)
from .contract import __all__ as _CONTRACT

__version__ = "0.1.0"

#: build-side public names -> the module defining each, imported on first use
_BUILD_SIDE = {
    "build": "kg.pipeline",
    "BuildResult": "kg.pipeline",
    "SourceSet": "kg.curated",
    "SourceError": "kg.records",
    "ValidationError": "kg.validation",
}

__all__ = [*_CONTRACT, *_BUILD_SIDE]


def __getattr__(name: str) -> Any:
    """Import a build-side name when it is first asked for (PEP 562)."""
    if name not in _BUILD_SIDE:
        raise AttributeError(f"module 'kg' has no attribute {name!r}")
    value = getattr(import_module(_BUILD_SIDE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The lazy names too, so completion and help() show the whole API."""
    return sorted({*globals(), *_BUILD_SIDE})
