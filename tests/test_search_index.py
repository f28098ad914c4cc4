"""The search index file: written once per snapshot, opened (never built) by a server process that starts.

A snapshot carries its own index; where there is none (a remote engine, an older snapshot) the app
writes one per snapshot id into `<data>/cache/`, once for all its workers. The remote cases run
against a scripted engine on a loopback port that answers the metadata and the index query.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from helpers import free_port
from search_files import tiny_snapshot
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kg.contract import CURRENT, ID_BASE, META_FILE, SEARCH_INDEX, STORE_DIR, current_snapshot, open_store
from kg.search_index import FORMAT, write_search_index
from server import create_app
from server.search import get_index
from server.search.lifecycle import CACHE_DIR

CODES = [("icd10cm", "G89.3", "Neoplasm related pain (acute) (chronic)"), ("icd10cm", "G89.4", "Chronic pain syndrome"),
         ("cpt", "96522", "Refill and maintenance of implantable pump for systemic drug delivery"),
         ("hcpcs", "J0475", "Injection, baclofen, 10 mg")]
FIRST, SECOND, THIRD = "20260101T000000-1", "20260202T000000-2", "20260303T000000-3"


def first_notation(app, q: str) -> str:
    response = app.test_client().get("/search", query_string={"q": q}, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["results"][0]["notation"]


def cached_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / CACHE_DIR).glob("search-*.sqlite"))


# -- a snapshot with its index: opened at once ---------------------------------------------------------

@pytest.fixture(scope="module")
def indexed_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory of its own (so that no other app of the session has written a cache in it) whose
    live snapshot is the session's (linked) with its search index: the build's when it wrote one, else
    one written now."""
    snapshot = current_snapshot(data_dir)
    target = tmp_path_factory.mktemp("indexed")
    linked = target / "snapshots" / snapshot.name
    linked.mkdir(parents=True)
    for name in (STORE_DIR, META_FILE):
        (linked / name).symlink_to(snapshot / name)
    if (snapshot / SEARCH_INDEX).exists():
        (linked / SEARCH_INDEX).symlink_to(snapshot / SEARCH_INDEX)
    else:
        write_search_index(open_store(snapshot), linked / SEARCH_INDEX)
    (target / CURRENT).symlink_to(linked.relative_to(target))
    return target


def test_a_fresh_app_opens_the_snapshot_index_instead_of_building_one(indexed_data: Path, monkeypatch):
    # how soon a fresh worker answers is a benchmark figure ("ready" in bench/bench_endpoint.py), not a
    # timed test: here, that its first search needs no query on the store and writes no cache
    app = create_app({"MEDCODE_STORE": "embedded", "MEDCODE_DATA": str(indexed_data)})
    store = app.extensions["medcode.store"]

    def no_query(*_args, **_kwargs):
        raise AssertionError("the search index was built from the store instead of opened")

    monkeypatch.setattr(store, "query", no_query)
    try:
        assert first_notation(app, "g893") == "G89.3"
        assert first_notation(app, "refil implantible pump systemic") == "96522"
    finally:
        store.close()
    assert not (indexed_data / CACHE_DIR).exists()


def test_a_snapshot_without_an_index_gets_one_in_the_cache(tmp_path: Path):
    tiny_snapshot(tmp_path, FIRST, CODES)
    app = create_app({"MEDCODE_STORE": "embedded", "MEDCODE_DATA": str(tmp_path)})
    assert first_notation(app, "baclofen") == "J0475"
    assert cached_files(tmp_path) == [f"search-{FIRST}-{FORMAT}.sqlite"]


def test_an_unreadable_index_in_the_snapshot_is_replaced_by_the_cache(tmp_path: Path):
    snapshot = tiny_snapshot(tmp_path, FIRST, CODES)
    (snapshot / SEARCH_INDEX).write_bytes(b"not an index")
    app = create_app({"MEDCODE_STORE": "embedded", "MEDCODE_DATA": str(tmp_path)})
    assert first_notation(app, "g89.4") == "G89.4"
    assert cached_files(tmp_path) == [f"search-{FIRST}-{FORMAT}.sqlite"]


def test_the_build_writer_makes_the_file_the_app_opens(tmp_path: Path):
    snapshot = tiny_snapshot(tmp_path, FIRST, CODES)
    stats = write_search_index(open_store(snapshot), snapshot / SEARCH_INDEX)
    assert stats["codes"] == len(CODES) and stats["terms"] > 10 and stats["bytes"] > 0
    assert [p.name for p in snapshot.iterdir() if p.name.startswith(".search")] == []  # no temp file left
    app = create_app({"MEDCODE_STORE": "embedded", "MEDCODE_DATA": str(tmp_path)})
    assert first_notation(app, "62360-99999") == "96522"
    assert first_notation(app, "implantable pump refill") == "96522"
    assert not (tmp_path / CACHE_DIR).exists()


# -- remote mode: one file per published snapshot, shared by the workers --------------------------------

class IndexEngine:
    """A SPARQL engine that serves a published snapshot's metadata and the index query's rows (as CSV)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.snapshot, self.delay, self.index_queries = FIRST, delay, 0

    def rows(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["c", "k", "v"])
        for system, notation, label in CODES:
            iri = f"{ID_BASE}{system}/{notation}"
            writer.writerows([(iri, "code", ""), (iri, "notation", notation), (iri, "scheme", ID_BASE + system),
                              (iri, "label", label)])
        return out.getvalue()

    def __call__(self, environ, start_response):
        query = Request(environ).form.get("query", "")
        if "dc/terms/description" in query:
            meta = json.dumps({"snapshot": self.snapshot, "triples": {}})
            body = {"head": {"vars": ["meta"]}, "results": {"bindings": [{"meta": {"type": "literal", "value": meta}}]}}
            response = Response(json.dumps(body), content_type="application/sparql-results+json")
        elif 'BIND("code" AS ?k)' in query:  # the index query
            self.index_queries += 1
            time.sleep(self.delay)
            response = Response(self.rows(), content_type="text/csv; charset=UTF-8")
        else:
            response = Response("unexpected query", status=400, content_type="text/plain")
        return response(environ, start_response)


@contextmanager
def serve(engine: IndexEngine) -> Iterator[str]:
    """The engine on a loopback port, as a MEDCODE_STORE location."""
    server = make_server("127.0.0.1", free_port(), engine, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"sparql+http://127.0.0.1:{server.server_port}/sparql"
    server.shutdown()


@pytest.fixture
def engine() -> Iterator[tuple[IndexEngine, str]]:
    scripted = IndexEngine()
    with serve(scripted) as location:
        yield scripted, location


def test_remote_mode_writes_one_index_per_published_snapshot(engine, tmp_path: Path, monkeypatch):
    from server.store import remote as remote_store

    scripted, location = engine
    settings = {"MEDCODE_STORE": location, "MEDCODE_DATA": str(tmp_path)}
    (tmp_path / CACHE_DIR).mkdir()
    (tmp_path / CACHE_DIR / f".search-{FIRST}.sqlite.x1.tmp").write_bytes(b"a killed writer's")
    worker = create_app(settings)
    assert first_notation(worker, "g893") == "G89.3"
    assert scripted.index_queries == 1
    assert cached_files(tmp_path) == [f"search-{FIRST}-{FORMAT}.sqlite"]
    assert not list((tmp_path / CACHE_DIR).glob("*.tmp"))

    sibling = create_app(settings)  # another worker of the server: reads the first one's file
    assert first_notation(sibling, "baclofne") == "J0475"
    assert scripted.index_queries == 1

    monkeypatch.setattr(remote_store, "META_TTL", 0.0)
    for published, queries in ((SECOND, 2), (THIRD, 3)):
        scripted.snapshot = published
        assert first_notation(worker, "96522") == "96522"
        assert scripted.index_queries == queries
    # the live snapshot's file and the one before (a process may still serve it); older ones go
    assert cached_files(tmp_path) == [f"search-{SECOND}-{FORMAT}.sqlite", f"search-{THIRD}-{FORMAT}.sqlite"]


def _search_in_a_new_process(location: str, data_dir: str) -> str:
    app = create_app({"MEDCODE_STORE": location, "MEDCODE_DATA": data_dir})
    with app.app_context():
        return get_index().search("g893")[0][0][0].notation


def test_workers_starting_together_write_the_file_once(tmp_path: Path):
    scripted = IndexEngine(delay=1.0)
    with serve(scripted) as location:
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            found = pool.starmap(_search_in_a_new_process, [(location, str(tmp_path))] * 2)
    assert found == ["G89.3", "G89.3"]
    assert scripted.index_queries == 1


def test_the_build_indexes_its_own_triples_as_the_store_query_would(tmp_path: Path):
    # the build writes the index from the triples it holds (not waiting to query its store); the file must
    # be the one the store's INDEX_QUERY (the remote mode's way) gives, byte for byte in content
    from kg.pipeline import build

    data = tmp_path / "data"
    build(data, icd10cm=["G35", "G35.A", "G89.3", "E08.42"], echo=lambda _line: None)
    snapshot = current_snapshot(data)
    again = tmp_path / "from-store.sqlite"
    write_search_index(open_store(snapshot), again)
    def tables(path: Path) -> dict[str, list[tuple]]:  # every table, FTS5's shadow tables included
        with closing(sqlite3.connect(path)) as db:
            names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if n != "words"]
            return {name: db.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall() for name in names}

    built = tables(snapshot / SEARCH_INDEX)
    assert built == tables(again)
    assert {"codes", "terms", "words_data", "inclusion_terms"} <= set(built) and built["inclusion_terms"]
    assert {row[2] for row in built["codes"]} >= {"G35", "G35.A", "G89.3", "96522", "E0783"}
