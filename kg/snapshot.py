"""The snapshot writer: what `kg` writes and `server` only reads (through kg.contract).

A snapshot is a directory holding an on-disk Oxigraph store (opened read-only by the server in a
fraction of a second), a portable N-Quads dump and ``meta.json``. ``<data>/current`` is a symlink
to the live one. One build at a time holds ``<data>/.build.lock``. A new snapshot is written under
``snapshots/.tmp-<id>`` and renamed to ``snapshots/<id>`` only once complete (store flushed,
``meta.json`` last); then the link is swapped atomically. So a failed or killed build never leaves a
half-written snapshot live, and the temp directory a dead build left is removed by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef

from .contract import CURRENT, DUMP_FILE, META_FILE, STORE_DIR, current_snapshot, is_pinned

KEEP = 2  # snapshots kept on disk (the live one and the previous one), besides any a server still serves
SNAPSHOTS = "snapshots"  # <data>/snapshots/<id>: every complete snapshot
TEMP_PREFIX = ".tmp-"  # <data>/snapshots/.tmp-<id>: a snapshot being written
LOCK_FILE = ".build.lock"  # <data>/.build.lock: held (flock) by the build in progress, which writes its pid in it
LOCK_TIMEOUT = 600.0  # seconds a build waits for the one in progress (a full build takes two to three minutes)
LOCK_POLL = 0.2  # seconds between two tries at the lock

_held: set[tuple[Path, int]] = set()  # (data directory, thread) of the build locks this process holds


class SnapshotError(RuntimeError):
    """A snapshot could not be written or made live (disk full, another build in the way); the previous
    snapshot is still live."""


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r"))


class _NTerms:
    """rdflib term -> N-Triples syntax, cached: the same terms recur a lot."""

    def __init__(self) -> None:
        self.cache: dict[Any, str] = {}

    def __call__(self, term: Any) -> str:
        hit = self.cache.get(term)
        if hit is not None:
            return hit
        if isinstance(term, URIRef):
            text = f"<{term}>"
        elif isinstance(term, Literal):
            text = f'"{_escape(str(term))}"'
            if term.language:
                text += f"@{term.language}"
            elif term.datatype and str(term.datatype) != "http://www.w3.org/2001/XMLSchema#string":
                text += f"^^<{term.datatype}>"
        elif isinstance(term, BNode):
            text = f"_:{term}"
        else:
            raise TypeError(f"cannot store {term!r}")
        self.cache[term] = text
        return text


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


@contextlib.contextmanager
def build_lock(data_dir: Path, echo: Callable[[str], None] = _to_stderr,
               timeout: float | None = None) -> Iterator[None]:
    """Hold ``<data>/.build.lock`` so that one build at a time writes, publishes and prunes snapshots.

    A second build says it is waiting (and for which pid), then gives up with a SnapshotError after `timeout`
    seconds (default LOCK_TIMEOUT). Re-entrant within a thread, so `build` can hold it around `write_snapshot`
    and `publish`, which take it too. The lock goes with the process however it ends: a killed build never
    blocks the next one.
    """
    key = (data_dir.resolve(), threading.get_ident())
    if key in _held:
        yield
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK_FILE).open("a+", encoding="utf-8") as handle:
        _acquire(handle, echo, LOCK_TIMEOUT if timeout is None else timeout)
        with contextlib.suppress(OSError):  # the pid only tells a waiting build whom it waits for
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle: IO[str], echo: Callable[[str], None], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
        if not said:
            echo(f"waiting for the build in progress (pid {holder}), for up to {timeout:g} s")
            said = True
        if time.monotonic() >= deadline:
            raise SnapshotError(f"another build (pid {holder}) still holds {handle.name} after {timeout:g} s; "
                                "run this one again when it has finished")
        time.sleep(LOCK_POLL)


@contextlib.contextmanager
def _writing(what: str, where: Path) -> Iterator[None]:
    """An OSError (a full disk, most often) while doing `what` becomes a SnapshotError naming it."""
    try:
        yield
    except OSError as exc:
        raise SnapshotError(f"{what} in {where} failed: {exc}; the previous snapshot is still live") from exc


def write_snapshot(data_dir: Path, graphs: dict[str, Iterable[tuple]], meta: dict[str, Any]) -> Path:
    """Write the named graphs to a new snapshot directory and return it (complete, not yet live).

    The N-Quads dump is written first and then bulk-loaded into the store by Oxigraph's own parser, so the
    portable dump and the store hold exactly the same quads. A failed write removes what it wrote; one the
    disk refuses raises SnapshotError.
    """
    snapshots = data_dir / SNAPSHOTS
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S.%f") + f"-{os.getpid()}"
    temp, target = snapshots / f"{TEMP_PREFIX}{stamp}", snapshots / stamp
    with build_lock(data_dir):
        _remove_leftovers(data_dir)
        with _writing("creating the snapshot directory", snapshots):
            temp.mkdir(parents=True)
        try:
            _write_files(temp, graphs, {**meta, "snapshot": stamp})
            with _writing("naming the complete snapshot", snapshots):
                temp.rename(target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return target


def _write_files(directory: Path, graphs: dict[str, Iterable[tuple]], meta: dict[str, Any]) -> None:
    """The dump, the store, then meta.json: a directory without meta.json is never a complete snapshot."""
    dump, disk = directory / DUMP_FILE, directory.parent
    with _writing(f"writing the N-Quads dump ({DUMP_FILE})", disk), dump.open("w", encoding="utf-8") as out:
        nt = _NTerms()
        for graph_iri, triples in graphs.items():
            g = f"<{graph_iri}> .\n"
            out.writelines(f"{nt(s)} {nt(p)} {nt(o)} {g}" for s, p, o in triples)
        out.flush()
        os.fsync(out.fileno())
    with _writing(f"writing the Oxigraph store ({STORE_DIR}/)", disk):
        counts = _load_store(directory / STORE_DIR, dump, list(graphs))
    with _writing(f"writing {META_FILE}", disk), (directory / META_FILE).open("w", encoding="utf-8") as out:
        out.write(json.dumps({**meta, "triples": counts}, indent=2, default=str))
        out.flush()
        os.fsync(out.fileno())


def _load_store(path: Path, dump: Path, graph_iris: list[str]) -> dict[str, int]:
    """Bulk-load the dump into a new store, flushed; the triple count of each graph."""
    store = ox.Store(str(path))
    try:
        store.bulk_load(path=str(dump), format=ox.RdfFormat.N_QUADS)
        store.flush()
        return {iri: int(next(store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}"))
                          ["n"].value) for iri in graph_iris}
    finally:
        del store  # closed before its directory is renamed or removed


def publish(data_dir: Path, snapshot: Path) -> None:
    """Make `snapshot` the live one (atomic symlink swap), then prune old snapshots."""
    if not (snapshot / META_FILE).is_file():
        raise SnapshotError(f"{snapshot} is not a complete snapshot (it has no {META_FILE}); "
                            "the previous snapshot is still live")
    link = data_dir / CURRENT
    tmp = data_dir / f".{CURRENT}.{os.getpid()}"
    with build_lock(data_dir):
        with _writing(f"pointing {CURRENT} at {snapshot.name}", data_dir):
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(snapshot.relative_to(data_dir))
            os.replace(tmp, link)
        _remove_leftovers(data_dir)
        _prune(data_dir)


def _remove_leftovers(data_dir: Path) -> None:
    """Temp directories and links that dead builds left. Only with the build lock held: no build is running."""
    for temp in (data_dir / SNAPSHOTS).glob(f"{TEMP_PREFIX}*"):
        shutil.rmtree(temp, ignore_errors=True)
    for link in data_dir.glob(f".{CURRENT}.*"):
        link.unlink(missing_ok=True)


def _prune(data_dir: Path) -> None:
    """Remove the snapshots older than the newest KEEP, except the live one and those a server holds (pinned)."""
    live = current_snapshot(data_dir)
    complete = sorted(p for p in (data_dir / SNAPSHOTS).iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in complete[:-KEEP]:
        if old.resolve() != live and not is_pinned(old):
            shutil.rmtree(old, ignore_errors=True)


def discard(snapshot: Path) -> None:
    """Remove a snapshot that was written but must not go live (it failed a later check)."""
    shutil.rmtree(snapshot, ignore_errors=True)
