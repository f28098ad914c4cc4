"""The real April 2025 -> April 2026 diff, checked against the package data itself.

Needs a built data directory whose snapshot holds the April 2025 release (MEDCODE_TEST_DATA, built by
`medcode build`, which fetches it) and that release's wheel (MEDCODE_RELEASES, or the build's cache);
without either it is skipped, saying why. No network: the wheel is read where the build left it.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import pytest
import simple_icd_10_cm as cm
from test_releases import expected, package_state

from kg.contract import current_snapshot, read_meta
from kg.release_files import default_cache
from kg.releases import BY_NOTATION
from server import create_app


@pytest.fixture(scope="module")
def april_2025(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """The April 2025 release as the package loads it from the files of its wheel."""
    wheel = Path(os.environ.get("MEDCODE_RELEASES") or default_cache()) / \
        f"simple_icd_10_cm-{BY_NOTATION['2025-04'].package}-py3-none-any.whl"
    if not wheel.is_file():
        pytest.skip(f"no {wheel.name} at hand (set MEDCODE_RELEASES to a directory holding it)")
    folder = tmp_path_factory.mktemp("april-2025")
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith("simple_icd_10_cm/data/") and n[-4:] in (".txt", ".xml")]
        archive.extractall(folder, names)
    data = folder / "simple_icd_10_cm" / "data"
    try:
        cm.change_version(str(next(data.glob("*.txt"))), str(next(data.glob("*.xml"))))
        return package_state()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cm.change_version()


@pytest.fixture(scope="module")
def client(data_dir: Path):
    snapshot = current_snapshot(data_dir)
    if "2025-04" not in read_meta(snapshot).get("icd10cm_releases", []):
        pytest.skip(f"the snapshot in {data_dir} was built without the April 2025 release")
    return create_app({"MEDCODE_DATA": str(data_dir), "TESTING": True}).test_client()


def test_april_2025_to_april_2026_matches_the_package_data(client, april_2025: dict[str, tuple]) -> None:
    answer = client.get("/diff?system=icd10cm&from=2025-04&to=2026-04&format=json").get_json()
    want = expected(april_2025, package_state())
    assert answer["counts"] == {kind: len(codes) for kind, codes in want.items()}
    got = {kind: {c["code"] for c in answer["changes"] if c["change"] == kind} for kind in want}
    assert got == want
    g35 = next(c for c in answer["changes"] if c["code"] == "G35")
    assert {"property": "mc:billable", "before": "true", "after": "false"} in g35["revisions"]
    billable_added = {c["code"] for c in answer["changes"] if c["change"] == "added" and c["billable"]
                      and c["code"].startswith("G35.")}
    assert billable_added == {d for d in cm.get_descendants("G35") if cm.is_leaf(d)}
    page = client.get("/id/icd10cm/G35?as_of=2025-06-01").get_data(as_text=True)
    assert "release 2025-04 in force" in page and "Multiple sclerosis, billable" in page
