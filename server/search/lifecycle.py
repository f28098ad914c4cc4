"""Which search index file a process reads, and writing one where the snapshot has none.

A snapshot carries its index (`SEARCH_INDEX`, written by `medcode build`): a process opens it, which
takes milliseconds, so a worker that replaces one retired at the time limit searches at once. A remote
engine has no snapshot directory (and a snapshot built before the index existed has no file), so there
the app writes the same file from the store's rows with the build's own writer, once per snapshot id,
into `<data>/cache/`. Writers take one lock, so the server's other workers wait for the first one's
file and then open it; the file appears whole or not at all (written under a temporary name, renamed).
"""

from __future__ import annotations

import csv
import fcntl
import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from flask import current_app

from kg.contract import SEARCH_INDEX, default_data_dir
from kg.search_index import FORMAT, INDEX_QUERY, write_rows

from ..store import get_store, run_query
from .index import IndexUnusable, SearchIndex

EXTENSION = "medcode.search"  # app.extensions[...] = (snapshot id, SearchIndex)
CACHE_DIR = "cache"  # <data>/cache: index files the app wrote itself
LOCK_FILE = "search.lock"  # held by whoever writes an index file into the cache
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_opening = threading.Lock()


def get_index() -> SearchIndex:
    """The app's search index for the store's current snapshot, opened once per snapshot id."""
    etag = get_store().etag
    cached = current_app.extensions.get(EXTENSION)
    if cached is None or cached[0] != etag:
        with _opening:
            cached = current_app.extensions.get(EXTENSION)
            if cached is None or cached[0] != etag:
                cached = (etag, _open(etag))
                current_app.extensions[EXTENSION] = cached
    return cached[1]


def _open(etag: str) -> SearchIndex:
    """The snapshot's own index when it has a readable one, else the cache's (written now if need be)."""
    snapshot = get_store().snapshot  # only the embedded store has a directory
    if snapshot is not None and (snapshot / SEARCH_INDEX).exists():
        try:
            return SearchIndex(snapshot / SEARCH_INDEX)
        except IndexUnusable as exc:
            current_app.logger.warning("%s; writing one from the store instead", exc)
    return SearchIndex(cached_index(etag))


def cached_index(etag: str) -> Path:
    """The cache's index file for snapshot `etag`, written from the store's rows unless it exists."""
    folder = Path(current_app.config["MEDCODE_DATA"] or default_data_dir()) / CACHE_DIR
    target = folder / f"search-{UNSAFE.sub('_', etag)}-{FORMAT}.sqlite"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when a killed writer's process ends
        if not target.exists():  # else another worker wrote it while this one waited
            _discard_leftovers(folder, target)
            started = time.perf_counter()
            stats = write_rows(_store_rows(), target)
            current_app.logger.info("search index for %s: %d codes, %d terms in %.1f s", etag, stats["codes"],
                                    stats["terms"], time.perf_counter() - started)
    return target


def _store_rows() -> Iterator[list[str]]:
    """INDEX_QUERY's rows through the app's store, under the export limits (it reads every code)."""
    rows = csv.reader(io.StringIO(run_query(INDEX_QUERY, fmt="csv", bulk=True).decode("utf-8"), newline=""))
    next(rows)  # the header
    return rows


def _discard_leftovers(folder: Path, keeping: Path) -> None:
    """Called under the lock: remove files of killed writers and the index files of all but the newest
    other snapshot (a process may still be serving that one)."""
    for partial in folder.glob(".search-*.tmp"):
        partial.unlink(missing_ok=True)
    others = sorted((p for p in folder.glob("search-*.sqlite") if p != keeping), key=lambda p: p.stat().st_mtime)
    for old in others[:-1]:
        old.unlink(missing_ok=True)
