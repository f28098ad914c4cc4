"""Shared fixtures: one real build of the full graph per test session, reused read-only.

`MEDCODE_TEST_STORE=virtuoso` runs the same suite against the app in remote mode: a private
Virtuoso (tests/virtuoso.py) is started, the built snapshot is loaded with `medcode publish`, and
MEDCODE_STORE points every app the tests create at it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
import virtuoso as virtuoso_server
from helpers import free_port

from kg import build
from kg.contract import INFERENCE_GRAPHS, LOCAL_GRAPHS, current_snapshot, open_store, read_meta
from kg.publish import publish
from server.store import RemoteStore, SnapshotMissing

REMOTE = os.environ.get("MEDCODE_TEST_STORE", "embedded") == "virtuoso"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "embedded_only: exercises the embedded store's own machinery")
    config.addinivalue_line("markers", "remote_only: needs the app in remote mode (MEDCODE_TEST_STORE=virtuoso)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REMOTE and item.get_closest_marker("embedded_only"):
            item.add_marker(pytest.mark.skip(reason="embedded store only (this run is in remote mode)"))
        if not REMOTE and item.get_closest_marker("remote_only"):
            item.add_marker(pytest.mark.skip(reason="remote mode only: run with MEDCODE_TEST_STORE=virtuoso"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding a freshly built snapshot (family + all of ICD-10-CM).

    Set MEDCODE_TEST_DATA to reuse an existing built data directory while iterating locally.
    """
    reuse = os.environ.get("MEDCODE_TEST_DATA")
    if reuse and current_snapshot(Path(reuse)):
        return Path(reuse)
    return shared_build(tmp_path_factory, "medcode-data", lambda target: build(target, echo=lambda _line: None))


def shared_build(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """A data directory built once per test run: under pytest-xdist every worker shares the first one's
    build (the others wait on a lock), so the full graph is built once, not once per worker."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, which every worker's own base directory is in
    target = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if current_snapshot(target) is None:
            make(target)
    return target


@pytest.fixture(scope="session")
def history_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small build with the fixture releases of tests/data/releases (read only; shared by the release tests)."""
    releases = Path(__file__).parent / "data" / "releases"
    return shared_build(tmp_path_factory, "releases",
                        lambda target: build(target, icd10cm=None, releases=releases, echo=lambda _line: None))


@pytest.fixture(scope="session")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[virtuoso_server.Virtuoso]:
    """A private Virtuoso on loopback ports, for the session.

    Set MEDCODE_TEST_VIRTUOSO to the directory of one left running (tests/virtuoso.py) to reuse it while
    iterating locally; a snapshot it already serves is not published again.
    """
    if not virtuoso_server.available():
        pytest.fail("MEDCODE_TEST_STORE=virtuoso needs the Debian package virtuoso-opensource")
    running = os.environ.get("MEDCODE_TEST_VIRTUOSO")
    if running:
        yield virtuoso_server.Virtuoso.running(Path(running))
        return
    instance = virtuoso_server.Virtuoso(tmp_path_factory.mktemp("virtuoso"), free_port(), free_port())
    with instance:
        yield instance


@pytest.fixture(scope="session", autouse=REMOTE)
def remote_engine(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str]:
    """The engine's SPARQL URL after publishing the snapshot; every app of the session uses it."""
    engine = request.getfixturevalue("virtuoso")
    snapshot = current_snapshot(data_dir)
    if served_snapshot(engine.url) != read_meta(snapshot)["snapshot"]:
        publish(snapshot, engine.url, user=engine.user, password=engine.password, echo=lambda _line: None)
    os.environ["MEDCODE_STORE"] = f"sparql+{engine.url}"
    yield engine.url
    os.environ.pop("MEDCODE_STORE", None)


def served_snapshot(url: str) -> str | None:
    """The id of the snapshot the engine serves, or None when it serves none."""
    try:
        store = RemoteStore(f"sparql+{url}")
    except SnapshotMissing:
        return None
    store.close()
    return store.etag


class AppStore:
    """pyoxigraph's `query()` answered through the app's remote store, so that the tests written
    against the snapshot ask the engine exactly the same questions."""

    def __init__(self, url: str) -> None:
        self.remote = RemoteStore(f"sparql+{url}")

    def query(self, text: str, *, prefixes: dict[str, str] | None = None, use_default_graph_as_union: bool = False,
              default_graph: list[ox.NamedNode] | None = None):
        declared = "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in (prefixes or {}).items())
        graphs = [g.value for g in default_graph] if default_graph else INFERENCE_GRAPHS["all"]
        payload = self.remote.query(declared + text, fmt="json", limit=10_000_000, timeout=120,
                                    default_graph=graphs, named_graphs=INFERENCE_GRAPHS["all"])
        return ox.parse_query_results(payload, format=ox.QueryResultsFormat.JSON)


class SnapshotStore:
    """The snapshot's Oxigraph store, whose union default graph is that of the local graphs (asserted, inferred,
    derivations): the graphs of the dated states (as_of) hold other dates' facts, which no test of today's
    graph means to read."""

    def __init__(self, store: ox.Store) -> None:
        self.store = store

    def query(self, text: str, *, use_default_graph_as_union: bool = False, **options):
        if use_default_graph_as_union and options.get("default_graph") is None:
            options["default_graph"] = [ox.NamedNode(g) for g in LOCAL_GRAPHS]
            options.setdefault("named_graphs", options["default_graph"])
        return self.store.query(text, **options)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


@pytest.fixture(scope="session")
def store(request: pytest.FixtureRequest, data_dir: Path):
    """The snapshot's Oxigraph store opened read-only, or in remote mode the same questions put to the engine."""
    if REMOTE:
        return AppStore(request.getfixturevalue("remote_engine"))
    return SnapshotStore(open_store(current_snapshot(data_dir)))
