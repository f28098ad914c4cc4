"""The snapshot: what `kg` writes and `server` only reads.

A snapshot is a directory holding an on-disk Oxigraph store (opened read-only by the server in a
fraction of a second), a portable N-Quads dump and ``meta.json``. ``<data>/current`` is a symlink
to the live one; a new build is written beside it and the link is swapped atomically, so a failed
build never replaces the last good snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef

from .contract import CURRENT

KEEP = 2  # snapshots kept on disk (the live one and the previous one)



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


def write_snapshot(data_dir: Path, graphs: dict[str, Iterable[tuple]], meta: dict[str, Any]) -> Path:
    """Write the named graphs to a new snapshot directory and return it (not yet live).

    The N-Quads dump is written first and then bulk-loaded into the store by Oxigraph's own
    parser, so the portable dump and the store hold exactly the same quads.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
    target = data_dir / "snapshots" / stamp
    target.mkdir(parents=True)
    nt = _NTerms()
    dump = target / "medcode.nq"
    with dump.open("w", encoding="utf-8") as out:
        for graph_iri, triples in graphs.items():
            g = f"<{graph_iri}> .\n"
            out.writelines(f"{nt(s)} {nt(p)} {nt(o)} {g}" for s, p, o in triples)
    store = ox.Store(str(target / "store"))
    store.bulk_load(path=str(dump), format=ox.RdfFormat.N_QUADS)
    store.flush()
    counts = {iri: int(next(store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}"))
                       ["n"].value) for iri in graphs}
    del store
    meta = {**meta, "snapshot": stamp, "triples": counts}
    (target / "meta.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return target


def publish(data_dir: Path, snapshot: Path) -> None:
    """Make `snapshot` the live one (atomic symlink swap), then prune old snapshots."""
    link = data_dir / CURRENT
    tmp = data_dir / f".{CURRENT}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(snapshot.relative_to(data_dir))
    os.replace(tmp, link)
    snapshots = sorted((data_dir / "snapshots").iterdir())
    live = link.resolve()
    for old in snapshots[:-KEEP]:
        if old.resolve() != live:
            shutil.rmtree(old, ignore_errors=True)


def discard(snapshot: Path) -> None:
    shutil.rmtree(snapshot, ignore_errors=True)

