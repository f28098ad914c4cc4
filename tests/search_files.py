"""Search index files and snapshot directories for the search tests, made in seconds."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pyoxigraph as ox

from kg.contract import CURRENT, GRAPH_ASSERTED, META_FILE, SEARCH_INDEX, STORE_DIR
from kg.search_index import Record, write_records
from server.search import SearchIndex

SKOS = "http://www.w3.org/2004/02/skos/core#"
MC_CODE = "https://w3id.org/medcode/ontology#Code"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def small_index(records: Iterable[tuple]) -> SearchIndex:
    """An index of (iri, notation, system, labels, descriptors) records, in a file removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="medcode-search-"))
    atexit.register(shutil.rmtree, folder, True)
    write_records([Record(*record) for record in records], folder / SEARCH_INDEX)
    return SearchIndex(folder / SEARCH_INDEX)


def code_quads(system: str, notation: str, label: str) -> list[ox.Quad]:
    """A code as the build writes it: typed mc:Code, with notation, code system and label (asserted graph)."""
    code = ox.NamedNode(f"https://w3id.org/medcode/id/{system}/{notation}")
    graph = ox.NamedNode(str(GRAPH_ASSERTED))
    facts = [(RDF_TYPE, ox.NamedNode(MC_CODE)), (SKOS + "notation", ox.Literal(notation)),
             (SKOS + "inScheme", ox.NamedNode(f"https://w3id.org/medcode/id/{system}")),
             (SKOS + "prefLabel", ox.Literal(label))]
    return [ox.Quad(code, ox.NamedNode(p), o, graph) for p, o in facts]


def tiny_snapshot(data_dir: Path, snapshot_id: str, codes: list[tuple[str, str, str]]) -> Path:
    """A live snapshot of (system, notation, label) codes in `data_dir` (store and meta.json, no index)."""
    snapshot = data_dir / "snapshots" / snapshot_id
    snapshot.mkdir(parents=True)
    store = ox.Store(str(snapshot / STORE_DIR))
    quads = [q for code in codes for q in code_quads(*code)]
    store.bulk_extend(quads)
    store.flush()
    del store
    meta = {"snapshot": snapshot_id, "built_at": "2026-01-01T00:00:00+0000", "reasoner": "none",
            "triples": {str(GRAPH_ASSERTED): len(quads)}, "versions": {}, "python": "3", "icd10cm_release": "test"}
    (snapshot / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    (data_dir / CURRENT).symlink_to(snapshot.relative_to(data_dir))
    return snapshot
