"""The snapshot writer: one build at a time, never a half-written snapshot live, no temp directories left to
grow, a full disk is one clear error, and pruning spares the snapshots a server still serves."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import SKOS

import kg.snapshot
from kg.contract import CURRENT, META_FILE, current_snapshot, open_store, read_meta
from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED
from kg.snapshot import SNAPSHOTS, SnapshotError, build_lock, publish, write_snapshot

ROOT = Path(__file__).resolve().parents[1]
#: the child processes below write triples like these: `python -c CHILD + <script>`
CHILD = """
import json, sys
from pathlib import Path
from rdflib import Literal, URIRef
from kg.snapshot import SnapshotError, build_lock, publish, write_snapshot
def graphs(n, tag):
    return {"https://w3id.org/medcode/graph/asserted": [
        (URIRef(f"http://e/{tag}/{i}"), URIRef("http://e/p"), Literal(f"value {i} with some padding text"))
        for i in range(n)]}
"""


def _graphs(tag: str, n: int = 3) -> dict[str, list[tuple]]:
    return {str(GRAPH_ASSERTED): [(URIRef(f"http://e/{tag}/{i}"), SKOS.notation, Literal(f"{tag} {i}"))
                                  for i in range(n)],
            str(GRAPH_INFERRED): []}


def _live(data: Path, tag: str) -> Path:
    """Write a tiny snapshot and make it live."""
    snapshot = write_snapshot(data, _graphs(tag), {"reasoner": "none"})
    publish(data, snapshot)
    return snapshot


def _on_disk(data: Path) -> list[str]:
    return sorted(p.name for p in (data / SNAPSHOTS).iterdir())


def _child(script: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD + script, *map(str, args)], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen]]:
    """Child processes the test starts; killed at the end whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for child in started:
        child.kill()
        child.wait()


def _serves(snapshot: Path, tag: str) -> bool:
    """Whether the snapshot's store opens and holds the tiny graph `tag`."""
    store = open_store(snapshot)
    notation = ox.NamedNode(str(SKOS.notation))
    return any(quad.object.value == f"{tag} 0" for quad in store.quads_for_pattern(None, notation, None))


def test_snapshots_written_in_one_second_get_distinct_ids_in_order(tmp_path: Path) -> None:
    written = [write_snapshot(tmp_path, _graphs(str(i)), {}) for i in range(3)]
    assert _on_disk(tmp_path) == [p.name for p in written]
    assert [read_meta(p)["snapshot"] for p in written] == [p.name for p in written]


HOLD_LOCK = """
with build_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_build_waits_for_the_first_then_gives_up_clearly(tmp_path: Path, children,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    first = _child(HOLD_LOCK, tmp_path)
    children.append(first)
    assert first.stdout.readline() == "locked\n"
    lines: list[str] = []
    with pytest.raises(SnapshotError, match=rf"another build \(pid {first.pid}\) still holds .* after 0.5 s"):
        with build_lock(tmp_path, lines.append, timeout=0.5):
            pytest.fail("two builds held the lock at once")
    assert lines == [f"waiting for the build in progress (pid {first.pid}), for up to 0.5 s"]
    monkeypatch.setattr(kg.snapshot, "LOCK_TIMEOUT", 0.2)
    with pytest.raises(SnapshotError, match="another build"):  # writing a snapshot takes the lock too
        write_snapshot(tmp_path, _graphs("a"), {})
    assert not (tmp_path / SNAPSHOTS).exists()
    # the waiting build goes ahead as soon as the first one ends
    threading.Timer(0.5, first.stdin.close).start()
    with build_lock(tmp_path, lines.append, timeout=30):
        assert first.wait(10) == 0


def test_a_build_holding_the_lock_writes_and_publishes_under_it(tmp_path: Path) -> None:
    with build_lock(tmp_path, timeout=0.5):  # re-entrant: write_snapshot and publish take it too
        snapshot = _live(tmp_path, "a")
    assert current_snapshot(tmp_path) == snapshot.resolve()


KILLED_WHILE_WRITING = """
import time
def slow():
    yield from graphs(500, "killed")["https://w3id.org/medcode/graph/asserted"]
    print("writing", flush=True)
    time.sleep(120)
write_snapshot(Path(sys.argv[1]), {"https://w3id.org/medcode/graph/asserted": slow()}, {})
"""


def test_a_killed_build_leaves_the_previous_snapshot_live_and_the_next_build_cleans_up(tmp_path: Path,
                                                                                     children) -> None:
    previous = _live(tmp_path, "old")
    build = _child(KILLED_WHILE_WRITING, tmp_path)
    children.append(build)
    assert build.stdout.readline() == "writing\n"
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert current_snapshot(tmp_path) == previous.resolve()
    assert _serves(previous, "old")
    assert len(_on_disk(tmp_path)) == 2  # the killed build's temp directory
    following = write_snapshot(tmp_path, _graphs("new"), {})  # the lock died with the build: no wait
    assert _on_disk(tmp_path) == sorted([previous.name, following.name])  # nothing half-written is left
    assert current_snapshot(tmp_path) == previous.resolve()


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    previous = _live(tmp_path, "old")

    def broken() -> Iterator[tuple]:
        yield from _graphs("new")[str(GRAPH_ASSERTED)]
        raise RuntimeError("the reasoner's output ended early")

    with pytest.raises(RuntimeError, match="ended early"):
        write_snapshot(tmp_path, {str(GRAPH_ASSERTED): broken()}, {})
    assert current_snapshot(tmp_path) == previous.resolve()
    assert _on_disk(tmp_path) == [previous.name]


class _FullDisk:
    """A store whose compaction the disk refuses (the rest of it answers as the real one does)."""

    def __init__(self, store: ox.Store) -> None:
        self.store = store

    def optimize(self) -> None:
        raise OSError(28, "No space left on device")

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_a_compaction_the_disk_refuses_is_one_clear_error_and_the_previous_snapshot_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = _live(tmp_path, "old")
    loaded = kg.snapshot.SnapshotWriter.loaded
    monkeypatch.setattr(kg.snapshot.SnapshotWriter, "loaded", lambda self: _FullDisk(loaded(self)))
    with pytest.raises(SnapshotError, match=r"writing the Oxigraph store \(store/\).*No space left"):
        with kg.snapshot.SnapshotWriter(tmp_path) as writer:
            for graph, triples in _graphs("new").items():
                writer.add(graph, triples)
            writer.compact()
            with pytest.raises(RuntimeError, match="being compacted"):
                writer.add(str(GRAPH_ASSERTED), _graphs("late")[str(GRAPH_ASSERTED)])
            writer.close({})
    assert current_snapshot(tmp_path) == previous.resolve()
    assert _on_disk(tmp_path) == [previous.name]


def test_an_incomplete_snapshot_never_goes_live(tmp_path: Path) -> None:
    previous = _live(tmp_path, "old")
    half = write_snapshot(tmp_path, _graphs("new"), {})
    (half / META_FILE).unlink()
    with pytest.raises(SnapshotError, match=f"no {META_FILE}"):
        publish(tmp_path, half)
    assert current_snapshot(tmp_path) == previous.resolve()


WRITE_UNDER_FILE_SIZE_LIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing us
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    write_snapshot(Path(sys.argv[1]), graphs(int(sys.argv[3]), "new"), {})
except SnapshotError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_dump_the_disk_refuses_is_one_clear_error_and_the_previous_snapshot_stays(tmp_path: Path) -> None:
    previous = _live(tmp_path, "old")
    done = subprocess.run([sys.executable, "-c", CHILD + WRITE_UNDER_FILE_SIZE_LIMIT, str(tmp_path), "100000",
                           "5000"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert "writing the N-Quads dump (medcode.nq)" in done.stdout
    assert "File too large" in done.stdout
    assert "the previous snapshot is still live" in done.stdout
    assert current_snapshot(tmp_path) == previous.resolve()
    assert _serves(previous, "old")
    assert _on_disk(tmp_path) == [previous.name]


FILL_A_SMALL_DISK = """
data = Path(sys.argv[1])
previous = write_snapshot(data, graphs(3, "old"), {})
publish(data, previous)
try:
    write_snapshot(data, graphs(int(sys.argv[2]), "new"), {})
    error = None
except SnapshotError as exc:
    error = str(exc)
from kg.contract import current_snapshot, open_store
live = current_snapshot(data)
print(json.dumps({"error": error, "live": live.name, "previous": previous.name,
                  "on_disk": sorted(p.name for p in (data / "snapshots").iterdir()),
                  "served": len(open_store(live))}))
"""


def test_a_store_that_fills_the_disk_is_one_clear_error_and_the_previous_snapshot_stays(tmp_path: Path) -> None:
    """On a 3 MB tmpfs (mounted in a private user and mount namespace): the 1.7 MB dump fits, the store does not."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           'mount -t tmpfs -o size=3m tmpfs "$1" || exit 99; shift; exec "$@"', "sh", str(disk),
                           sys.executable, "-c", CHILD + FILL_A_SMALL_DISK, str(disk), "20000"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode == 99 or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert "writing the Oxigraph store (store/)" in outcome["error"]
    assert "No space left on device" in outcome["error"]
    assert outcome["live"] == outcome["previous"]
    assert outcome["served"] == 3
    assert outcome["on_disk"] == [outcome["previous"]]


PIN = """
from kg.contract import pin
handle = pin(Path(sys.argv[1]))
print("pinned", flush=True)
sys.stdin.read()
"""


def test_pruning_spares_a_snapshot_a_server_still_serves(tmp_path: Path, children) -> None:
    first = _live(tmp_path, "first")
    server = _child(PIN, first)
    children.append(server)
    assert server.stdout.readline() == "pinned\n"
    second, third = _live(tmp_path, "second"), _live(tmp_path, "third")
    assert _on_disk(tmp_path) == [first.name, second.name, third.name]  # KEEP is 2, but a server holds the first
    assert _serves(first, "first")
    server.stdin.close()  # the server stops
    assert server.wait(10) == 0
    fourth = _live(tmp_path, "fourth")
    assert _on_disk(tmp_path) == [third.name, fourth.name]
    assert (tmp_path / CURRENT).resolve() == fourth.resolve()
