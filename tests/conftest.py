"""Shared fixtures: one real build of the full graph per test session, reused read-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kg.build import build
from kg.snapshot import current_snapshot, open_store


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding a freshly built snapshot (family + all of ICD-10-CM).

    Set MEDCODE_TEST_DATA to reuse an existing built data directory while iterating locally.
    """
    reuse = os.environ.get("MEDCODE_TEST_DATA")
    if reuse and current_snapshot(Path(reuse)):
        return Path(reuse)
    target = tmp_path_factory.mktemp("medcode-data")
    build(target, echo=lambda _line: None)
    return target


@pytest.fixture(scope="session")
def store(data_dir: Path):
    """The snapshot's Oxigraph store, opened read-only."""
    return open_store(current_snapshot(data_dir))
