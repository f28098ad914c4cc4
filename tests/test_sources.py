"""A bad curated record fails the build naming its file, line and field; a SHACL violation fails it
without touching the published snapshot.

Each test copies kg/sources/ to a temporary directory and introduces exactly one defect, located by
the text it replaces, so the expected line number is the line that was edited.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kg.contract import CURRENT, current_snapshot
from kg.curated import build_curated
from kg.namespaces import SOURCES_DIR
from kg.pipeline import build
from kg.records import SourceError
from kg.validation import ValidationError


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A private, editable copy of the curated sources."""
    copy = tmp_path / "sources"
    shutil.copytree(SOURCES_DIR, copy)
    return copy


def edit(path: Path, old: str, new: str) -> int:
    """Replace the one line of `path` equal to `old` (ignoring indentation) by `new`, indented alike.

    Returns the 1-based number of the edited line.
    """
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == old]
    assert len(hits) == 1, f"expected one line '{old}' in {path.name}, found {len(hits)}"
    i = hits[0]
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines[i] = indent + new + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    return i + 1


def source_error(sources: Path) -> SourceError:
    with pytest.raises(SourceError) as info:
        build_curated(sources)
    return info.value


def assert_names(err: SourceError, file: str, line: int, field: str | None, *words: str) -> None:
    message = str(err)
    assert Path(err.path).name == file and err.line == line and err.field == field, message
    assert f"{file}:{line}:" in message
    if field:
        assert f"field '{field}'" in message
    for word in words:
        assert word in message


def test_the_unedited_copy_builds(sources):
    curation = build_curated(sources)
    assert "cpt/96522" in curation.codes


def test_unknown_device_id(sources):
    line = edit(sources / "codes/cpt_96522.yaml", "uses_devices: [implantable-pump-or-reservoir]",
                "uses_devices: [implantable-pump-or-resevoir]")
    assert_names(source_error(sources), "cpt_96522.yaml", line, "uses_devices",
                 "unknown device 'implantable-pump-or-resevoir'")


def test_unknown_condition(sources):
    line = edit(sources / "codes/cpt_96522.yaml", "conditions: [infusion-pump-management]",
                "conditions: [infusion-pump-managment]")
    assert_names(source_error(sources), "cpt_96522.yaml", line, "conditions",
                 "unknown condition 'infusion-pump-managment'")


def test_unknown_route(sources):
    line = edit(sources / "codes/cpt_96522.yaml", "routes: [Intravenous, IntraArterial]",
                "routes: [Intravenous, Intraarterial]")
    assert_names(source_error(sources), "cpt_96522.yaml", line, "routes", "unknown route 'Intraarterial'")


def test_mue_not_an_integer(sources):
    line = edit(sources / "codes/cpt_96522.yaml", "mue: 1", "mue: one")
    assert_names(source_error(sources), "cpt_96522.yaml", line, "mue", "'one' is not a non-negative integer")


def test_yaml_syntax_error(sources):
    line = edit(sources / "devices.yaml", "label: Programmable implantable infusion pump",
                "label: Programmable: implantable infusion pump")
    assert_names(source_error(sources), "devices.yaml", line, None, "YAML syntax error")


def test_unknown_fee_schedule_value(sources):
    line = edit(sources / "codes/cpt_96522.yaml", "mpfs_status: A", "mpfs_status: ZZ")
    assert_names(source_error(sources), "cpt_96522.yaml", line, "mpfs_status",
                 "'ZZ' is not a value of mpfs_status")


def test_unknown_fee_schedule_indicator(sources):
    line = edit(sources / "codes/cpt_96522.yaml", "mpfs_status: A", "mpfs_stauts: A")
    assert_names(source_error(sources), "cpt_96522.yaml", line, "mpfs_stauts", "unknown indicator")


def test_unknown_field(sources):
    line = edit(sources / "codes/cpt_96522.yaml", "mue: 1", "meu: 1")
    assert_names(source_error(sources), "cpt_96522.yaml", line, "meu", "unknown field")


def test_slow_shacl_rejects_malformed_cpt_notation_and_keeps_the_live_snapshot(sources, tmp_path):
    """build() reads, reasons and only then validates, so the bad record fails late and must still change nothing.

    96371 is referenced by no other record, so renaming it keeps every reference resolvable and the
    YAML loader accepts it; only the SHACL notation pattern (four digits and a digit or letter)
    rejects it.
    """
    edit(sources / "codes/cpt_arterial_systemic.yaml", '- code: "96371"', '- code: "9637X1"')
    assert "cpt/9637X1" in build_curated(sources).codes  # the loader accepts it

    # a data directory whose live snapshot is a previously published one (simulated)
    data = tmp_path / "data"
    old = data / "snapshots" / "20000101T000000-1"
    old.mkdir(parents=True)
    (old / "meta.json").write_text('{"snapshot": "20000101T000000-1"}', encoding="utf-8")
    (data / CURRENT).symlink_to(old.relative_to(data))

    lines: list[str] = []
    with pytest.raises(ValidationError) as info:
        build(data, sources=sources, icd10cm=None, echo=lines.append)
    message = str(info.value)
    assert "9637X1" in message
    assert "A CPT code is five characters" in message
    assert any("Validating (SHACL)" in line for line in lines)

    assert os.readlink(data / CURRENT) == str(old.relative_to(data))
    assert current_snapshot(data) == old.resolve()
    assert (old / "meta.json").read_text(encoding="utf-8") == '{"snapshot": "20000101T000000-1"}'
    assert sorted(p.name for p in (data / "snapshots").iterdir()) == [old.name]  # nothing half-written
