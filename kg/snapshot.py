"""The snapshot writer: what `kg` writes and `server` only reads (through kg.contract).

A snapshot is a directory holding an on-disk Oxigraph store (opened read-only by the server in a
fraction of a second), a portable N-Quads dump and ``meta.json``. ``<data>/current`` is a symlink
to the live one. One build at a time holds ``<data>/.build.lock``. A new snapshot is written under
``snapshots/.tmp-<id>`` and renamed to ``snapshots/<id>`` only once complete (store flushed,
``meta.json`` last); then the link is swapped atomically. So a failed or killed build never leaves a
half-written snapshot live, and the temp directory a dead build left is removed by the next one.

Writing overlaps the rest of the build (`SnapshotWriter`): quads are appended to the dump as they
come, and two threads load it, piece by piece as it grows, into the store with Oxigraph's bulk loader,
which runs without the GIL. (Measured: the on-disk load is ~20 s of CPU for the full graph's 1.7 M
quads, two fifths of the build's CPU; Store.bulk_extend from pyoxigraph terms costs as much but holds
the GIL throughout.) The store and the dump are made of the same bytes, so they hold the same quads.
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
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef

from .contract import CURRENT, DUMP_FILE, META_FILE, STORE_DIR, current_snapshot, is_pinned

KEEP = 2  # snapshots kept on disk (the live one and the previous one), besides any a server still serves
SNAPSHOTS = "snapshots"  # <data>/snapshots/<id>: every complete snapshot
TEMP_PREFIX = ".tmp-"  # <data>/snapshots/.tmp-<id>: a snapshot being written
LOCK_FILE = ".build.lock"  # <data>/.build.lock: held (flock) by the build in progress, which writes its pid in it
LOCK_TIMEOUT = 600.0  # seconds a build waits for the one in progress (a full build takes about half a minute)
LOCK_POLL = 0.2  # seconds between two tries at the lock
WRITE_QUADS = 50_000  # quads appended to the dump at a time (each append wakes the loaders)
#: how much of the dump the store loads in one go, at least (but the last) and at most. The bulk loader's memory
#: grows with it (~5 bytes per byte, on each of the LOADERS threads): 32 MB pieces instead of 64 MB took the
#: build's peak RSS with the earlier releases from 1.70 to 1.45 GB (2026-12-03), for the same store files (58
#: instead of 56) and the same query times; much smaller pieces add runs of files that readers merge (16 loads
#: instead of 4 once cost 10% more CPU and slowed joins by half)
LOAD_BYTES = (24 << 20, 32 << 20)
LOADERS = 2  # pieces loaded at once: each load is single-threaded, and the build has two cores to fill
STORE_WRITE = f"writing the Oxigraph store ({STORE_DIR}/)"
COUNT_QUERY = "SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"

_held: set[tuple[Path, int]] = set()  # (data directory, thread) of the build locks this process holds


class SnapshotError(RuntimeError):
    """A snapshot could not be written or made live (disk full, another build in the way); the previous
    snapshot is still live."""


def _escape(text: str) -> str:
    """A literal's text as an N-Triples string body."""
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r"))


def _term(term: Any) -> str:
    """An rdflib term in N-Triples syntax."""
    if isinstance(term, URIRef):
        return f"<{term}>"
    if isinstance(term, Literal):
        text = f'"{_escape(term)}"'
        if term.language:
            return f"{text}@{term.language}"
        if term.datatype and str(term.datatype) != "http://www.w3.org/2001/XMLSchema#string":
            return f"{text}^^<{term.datatype}>"
        return text
    if isinstance(term, BNode):
        return f"_:{term}"
    raise TypeError(f"cannot store {term!r}")


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

    A failed write removes what it wrote; one the disk refuses raises SnapshotError.
    """
    with SnapshotWriter(data_dir) as writer:
        for graph_iri, triples in graphs.items():
            writer.add(graph_iri, triples)
        return writer.close(meta)


class _Loading:
    """Loads the dump into the store as it grows, a piece (LOAD_BYTES) at a time on each of LOADERS threads."""

    def __init__(self, store: ox.Store, dump: Path, what: str) -> None:
        self.store: ox.Store | None = store
        self.dump, self.what = dump, what
        self.ends: list[int] = []  # where each append to the dump ended (whole lines), not yet claimed by a thread
        self.claimed = self.loaded = self.written = 0  # bytes of the dump: handed to a thread, loaded, appended
        self.draining = False  # nothing more is coming soon: load what is there, however little
        self.stopping = False
        self.error: BaseException | None = None  # the first thing a load raised, for the build's thread to raise
        self.changed = threading.Condition()
        self.threads = [threading.Thread(target=self._run, name=f"{what} {n}", daemon=True) for n in range(LOADERS)]
        for thread in self.threads:
            thread.start()

    def advance(self, written: int) -> None:
        """The dump now holds `written` bytes, flushed."""
        with self.changed:
            self.ends.append(written)
            self.written = written
            self.changed.notify_all()

    def _run(self) -> None:
        with self.dump.open("rb") as dump:
            while (piece := self._claim()) is not None:
                try:
                    dump.seek(piece[0])
                    self.store.bulk_load(dump.read(piece[1] - piece[0]), format=ox.RdfFormat.N_QUADS)
                except BaseException as exc:
                    self.error = self.error or exc
                with self.changed:
                    self.loaded += piece[1] - piece[0]
                    self.changed.notify_all()

    def _claim(self) -> tuple[int, int] | None:
        """The next piece of the dump, once there is enough of it; None once stopping (or failed)."""
        def ready() -> bool:
            pending = self.written - self.claimed
            return pending >= LOAD_BYTES[0] or (pending > 0 and self.draining) or self.stopping or bool(self.error)
        with self.changed:
            self.changed.wait_for(ready)
            if self.claimed == self.written or self.stopping or self.error is not None:
                return None
            cut = 1 + max((i for i, end in enumerate(self.ends) if end - self.claimed <= LOAD_BYTES[1]), default=0)
            piece, self.claimed, self.ends = (self.claimed, self.ends[cut - 1]), self.ends[cut - 1], self.ends[cut:]
            return piece

    def wait(self) -> None:
        """Until everything appended so far is loaded; raises what a load raised."""
        with self.changed:
            self.draining = True
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.loaded == self.written or self.error is not None)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """End the threads once their current loads are done, and let go of the store (so that it can close)."""
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        for thread in self.threads:
            thread.join()
        self.store = None


class SnapshotWriter:
    """A snapshot being written while the build goes on: `add` appends quads to the dump, which loader threads
    load into the on-disk store as it grows. `loaded` hands the store over for queries once it is complete;
    `close` completes the snapshot; leaving the `with` block by an exception removes it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.stamp = datetime.now().strftime("%Y%m%dT%H%M%S.%f") + f"-{os.getpid()}"
        #: where the snapshot's files go until it is complete
        self.directory = data_dir / SNAPSHOTS / f"{TEMP_PREFIX}{self.stamp}"
        self.graphs: list[str] = []
        self._held = contextlib.ExitStack()
        self._compacting: threading.Thread | None = None
        self._compact_error: BaseException | None = None

    def __enter__(self) -> SnapshotWriter:
        self._held.enter_context(build_lock(self.data_dir))
        try:
            _remove_leftovers(self.data_dir)
            disk = self.directory.parent
            with _writing("creating the snapshot directory", disk):
                self.directory.mkdir(parents=True)
            with _writing(f"writing the N-Quads dump ({DUMP_FILE})", disk):
                self.dump = (self.directory / DUMP_FILE).open("wb")
            with _writing(STORE_WRITE, disk):
                self.store = ox.Store(str(self.directory / STORE_DIR))
        except BaseException:
            self._discard()
            raise
        self.loading = _Loading(self.store, self.directory / DUMP_FILE, STORE_WRITE)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self._discard()
        self._held.close()

    def _discard(self) -> None:
        """Remove what was written (the store closed first), then give the build lock back."""
        if self._compacting is not None:
            self._compacting.join()
        if hasattr(self, "loading"):
            self.loading.stop()
        if hasattr(self, "dump"):
            self.dump.close()
        self.__dict__.pop("store", None)
        shutil.rmtree(self.directory, ignore_errors=True)
        self._held.close()

    def add(self, graph_iri: str, triples: Iterable[tuple]) -> None:
        """Append `triples` to the dump as quads of `graph_iri`; the loaders pick them up as they come."""
        if self._compacting is not None:
            raise RuntimeError("the store is being compacted: every quad must be added before compact()")
        if graph_iri not in self.graphs:
            self.graphs.append(graph_iri)
        tail, triples = f"<{graph_iri}> .\n", iter(triples)
        while batch := list(islice(triples, WRITE_QUADS)):
            text = "".join([f"{_term(s)} {_term(p)} {_term(o)} {tail}" for s, p, o in batch]).encode()
            with _writing(f"writing the N-Quads dump ({DUMP_FILE})", self.directory.parent):
                self.dump.write(text)
                self.dump.flush()
            if self.loading.error is not None:
                self.loaded()  # raises it
            self.loading.advance(self.dump.tell())

    def loaded(self) -> ox.Store:
        """The on-disk store once it holds every quad added (flushed), to query before the snapshot is closed."""
        with _writing(STORE_WRITE, self.directory.parent):
            self.loading.wait()
            self.store.flush()
        return self.store

    def compact(self) -> None:
        """Compact the store once the loaders are done, beside the build's last steps (`close` waits for it).

        Oxigraph's `optimize` (a full RocksDB compaction) runs without the GIL, on the core the build's Python
        leaves. The bulk loads leave runs of files whose keys overlap, and a look-up reads each run: compacted,
        the claim check took about three quarters of the time (README: Claim check). Nothing may be added after.
        """
        def run() -> None:
            try:
                with _writing(STORE_WRITE, self.directory.parent):
                    self.loaded().optimize()
            except BaseException as exc:
                self._compact_error = exc
        self._compacting = threading.Thread(target=run, name="compacting the store", daemon=True)
        self._compacting.start()

    def close(self, meta: dict[str, Any]) -> Path:
        """Finish the store and the dump, write meta.json last, and return the complete (not yet live) snapshot."""
        disk = self.directory.parent
        if self._compacting is not None:
            self._compacting.join()
            if self._compact_error is not None:
                raise self._compact_error
        with _writing(f"writing the N-Quads dump ({DUMP_FILE})", disk):
            os.fsync(self.dump.fileno())
            self.dump.close()
        with _writing(STORE_WRITE, disk):
            counts = {iri: int(next(self.loaded().query(COUNT_QUERY.format(graph=iri)))["n"].value)
                      for iri in self.graphs}
        self.loading.stop()
        del self.store  # closed before its directory is renamed
        with _writing(f"writing {META_FILE}", disk), (self.directory / META_FILE).open("w", encoding="utf-8") as out:
            out.write(json.dumps({**meta, "snapshot": self.stamp, "triples": counts}, indent=2, default=str))
            out.flush()
            os.fsync(out.fileno())
        target = disk / self.stamp
        with _writing("naming the complete snapshot", disk):
            self.directory.rename(target)
        return target


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
