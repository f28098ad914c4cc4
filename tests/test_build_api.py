"""kg's public API: a tiny graph built from a SourceSet and a few ICD-10-CM codes in seconds, and a
snapshot contract the server can import without loading any of the build's code."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest

from kg import SourceSet
from kg.contract import PREFIXES, current_snapshot, open_store, read_meta
from kg.namespaces import SOURCES_DIR
from kg.pipeline import build

TINY = Path(__file__).parent / "data" / "tiny"
#: what the importlinter contract forbids the server to import, loaded by nothing the server imports
BUILD_SIDE = ("kg.build", "kg.pipeline", "kg.curated", "kg.icd10cm", "kg.ontology", "kg.publish", "kg.reasoning",
              "kg.records", "kg.snapshot", "kg.validation", "owlrl", "reasonable", "pyshacl", "simple_icd_10_cm")


def _tiny_sources() -> SourceSet:
    """The real sources, value sets and devices with tests/data/tiny/'s four codes."""
    return dataclasses.replace(SourceSet.from_directory(SOURCES_DIR), codes=(TINY / "codes.yaml",),
                               conditions=TINY / "conditions.yaml", relations=TINY / "relations.yaml")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The live snapshot of four codes (tests/data/tiny/) with the real sources, value sets and devices."""
    data = tmp_path_factory.mktemp("tiny")
    build(data, sources=_tiny_sources(), icd10cm=["M54.50"], echo=lambda _line: None)
    return current_snapshot(data)


def test_a_compacted_build_holds_the_same_quads(tiny: Path, tmp_path: Path) -> None:
    """`medcode build --compact`: the store compacted before it is closed, the same quads in it and in the dump."""
    build(tmp_path, sources=_tiny_sources(), icd10cm=["M54.50"], echo=lambda _line: None, compact=True)
    compacted = current_snapshot(tmp_path)

    def quads(snapshot: Path) -> set[tuple[str, ...]]:  # blank nodes aside (their labels differ between builds)
        return {tuple(str(term) for term in quad) for quad in open_store(snapshot)
                if not any(isinstance(term, ox.BlankNode) for term in quad)}
    assert quads(compacted) == quads(tiny)
    assert len(open_store(compacted)) == len(open_store(tiny)) == sum(read_meta(compacted)["triples"].values())


def select(snapshot: Path, where: str) -> set[tuple[str, ...]]:
    prologue = "".join(f"PREFIX {prefix}: <{iri}>\n" for prefix, iri in PREFIXES.items())
    rows = open_store(snapshot).query(f"{prologue}SELECT * WHERE {{ {where} }}", use_default_graph_as_union=True)
    return {tuple(term.value for term in row) for row in rows}


def test_tiny_build_reasons_over_the_source_set(tiny):
    assert select(tiny, "?code a mc:CPTCode ; skos:notation ?n") == {
        (PREFIXES["cpt"] + n, n) for n in ("95990", "62367", "96522", "96521")}
    assert select(tiny, "?a mc:notReportedWith ?b") == {(PREFIXES["cpt"] + "95990", PREFIXES["cpt"] + "62367"),
                                                        (PREFIXES["cpt"] + "62367", PREFIXES["cpt"] + "95990")}
    assert select(tiny, "cpt:96521 mc:portablePumpAlternativeOf ?c") == {(PREFIXES["cpt"] + "96522",)}


def test_tiny_build_imports_the_named_icd10cm_codes_and_their_ancestors_only(tiny):
    notations = {n for (n,) in select(tiny, "[] skos:inScheme id:icd10cm ; skos:notation ?n")}
    assert notations == {"6", "G89-G99", "G89", "G89.2", "G89.29", "G89.3", "G89.4",
                         "13", "M50-M54", "M54", "M54.5", "M54.50"}
    assert select(tiny, "icd10cm:G89.29 skos:broaderTransitive ?up") == {
        (PREFIXES["icd10cm"] + up,) for up in ("G89.2", "G89", "block/G89-G99", "chapter/6")}
    assert select(tiny, "icd10cm:G89.3 mc:billable ?b") == {("true",)}
    assert read_meta(tiny)["icd10cm_items"] == sorted(notations)


def test_an_unknown_icd10cm_code_fails_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="G893"):
        build(tmp_path, icd10cm=["G893"], echo=lambda _line: None)
    assert list(tmp_path.iterdir()) == []


def test_the_snapshot_contract_loads_no_build_code():
    script = f"""
import sys
import kg.contract
loaded = sorted(name for name in sys.modules if name in {BUILD_SIDE!r})
assert not loaded, loaded
import kg
assert set(kg.contract.__all__) <= set(kg.__all__)
assert (kg.build.__module__, kg.SourceSet.__module__) == ("kg.pipeline", "kg.curated.source_set")
assert issubclass(kg.SourceError, ValueError) and issubclass(kg.ValidationError, RuntimeError)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
