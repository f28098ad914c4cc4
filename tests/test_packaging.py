"""The wheel ships everything the installed package reads at run time, not only the Python modules.

`medcode build` reads the ontology and the curated sources, and the named-query API, the query
editor's tabs and the exports read queries/; a wheel without them builds nothing and serves no
queries. The repository keeps ontology/ and queries/ at its top level; the wheel holds them inside
kg/ (see kg.namespaces). Builds the wheel (a few seconds), installs nothing.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: repository folder -> where the wheel holds its files
SHIPPED = {"ontology": "kg/ontology_files", "queries": "kg/queries", "kg/sources": "kg/sources"}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.parametrize("folder", sorted(SHIPPED))
def test_the_wheel_ships_the_data_folders(wheel_files, folder):
    files = [path for path in (ROOT / folder).rglob("*") if path.is_file()]
    assert files
    assert {f"{SHIPPED[folder]}/{path.relative_to(ROOT / folder).as_posix()}" for path in files} <= wheel_files


def test_the_wheel_ships_every_module(wheel_files):
    modules = {path.relative_to(ROOT).as_posix() for package in ("kg", "server", "medcode")
               for path in (ROOT / package).rglob("*.py")}
    assert modules - wheel_files == set()
