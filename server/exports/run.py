"""Running a crosswalk's query through the app's store, and what one snapshot's answers give (memoised).

The query runs like any named query (with the store's time limit) under the export limits
(EXPORT_MAX_ROWS, EXPORT_TIMEOUT) and answers in SPARQL CSV, which the writers read row by row; in today's
state an embedded snapshot already holds that answer, asked by the build (kg/export_answers.py), and it is
read instead (under the same row limit). The snapshot is immutable, so each process keeps the answers of its
exports' queries (EXPORT_CACHE_BYTES in all, least recently used first out; the general answer cache keeps
nothing over 1 MiB): a second download of the ~98.5k-row hierarchy, in any format, costs only its writer,
and so does a first one in today's state.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date
from typing import Any

from flask import current_app

from kg.contract import kept_answer

from ..http.errors import HTTPError
from ..http.results import too_many
from ..store import INFERENCE_GRAPHS, QueryError, get_store, run_query, state_on
from ..store.cache import AnswerCache, answer_key
from .crosswalks import CROSSWALKS, Crosswalk
from .writers import ExportMeta

MEMO = "medcode.exports"  # app.extensions key: (snapshot id, memo)
ANSWERS = "medcode.exports.answers"  # app.extensions key: the export answers kept


def run_crosswalk(xw: Crosswalk, text: str | None = None, as_of: date | None = None) -> bytes:
    """The SPARQL CSV answer of the crosswalk's query (or of `text`, such as its count) over its graphs, in the
    state of `as_of` when given."""
    query = xw.named_query()
    text, bindings = text or query.text, query.bindings({})
    # keyed by the dataset, so that every date of one release in force shares one answer
    store = get_store()
    dataset = INFERENCE_GRAPHS[xw.graphs] if as_of is None else state_on(store.meta, as_of, xw.graphs).graphs
    limit = current_app.config["EXPORT_MAX_ROWS"]
    key = answer_key(store.etag, text, "csv", limit, dataset, None, bindings)

    def answer() -> bytes:
        kept = None
        if as_of is None and not bindings and store.snapshot is not None:
            kept = kept_answer(store.snapshot, text, dataset)
        if kept is None:
            return run_query(text, fmt="csv", graphs=xw.graphs, named=None, bindings=bindings, bulk=True, as_of=as_of)
        if kept.count(b"\n") - 1 > limit and _rows(kept) > limit:  # (a row is one line or more)
            raise QueryError(400, too_many(limit, "rows"))
        return kept

    try:
        return _answers().answer(key, answer)
    except QueryError as exc:
        raise HTTPError(exc.status, f"Export query {xw.query} failed: {exc}") from exc


def _rows(payload: bytes) -> int:
    """The rows of a SPARQL CSV answer (a quoted value may hold a line break)."""
    return sum(1 for _ in csv.reader(io.StringIO(payload.decode("utf-8"), newline=""))) - 1


def _answers() -> AnswerCache:
    """The app's kept export answers (made on first use, from EXPORT_CACHE_BYTES)."""
    answers = current_app.extensions.get(ANSWERS)
    if answers is None:
        budget = current_app.config["EXPORT_CACHE_BYTES"]
        answers = current_app.extensions.setdefault(ANSWERS, AnswerCache(budget, max_entry=budget))
    return answers


def release_on(as_of: date) -> str:
    """The ICD-10-CM release in force on `as_of` (400 naming as_of before the first one held)."""
    return state_on(get_store().meta, as_of).release


def export_meta(as_of: date | None = None) -> ExportMeta:
    """The edition the app's exports describe: its snapshot and public base; with `as_of`, the version also names
    the date and the ICD-10-CM release in force then (the state the export was written from)."""
    meta = ExportMeta.from_snapshot(get_store().meta, current_app.config["PUBLIC_BASE"])
    if as_of is None:
        return meta
    return dataclasses.replace(meta, version=f"{meta.version} as of {as_of.isoformat()} "
                                             f"(ICD-10-CM {release_on(as_of)})")


def snapshot_memo() -> dict[Any, Any]:
    """What the live snapshot's answers give (row counts, $translate rows, code systems); a new snapshot starts anew."""
    etag = get_store().etag
    kept, memo = current_app.extensions.get(MEMO, (None, {}))
    if kept != etag:
        memo = {}
        current_app.extensions[MEMO] = (etag, memo)
    return memo


def row_count(xw: Crosswalk) -> int:
    """The export's rows: its `count` query when it has one, else its rows counted."""
    memo = snapshot_memo()
    key = ("count", xw.name)
    if key not in memo:
        if xw.count:
            memo[key] = int(list(csv.reader(io.StringIO(run_crosswalk(xw, xw.count).decode("utf-8"))))[1][0])
        else:
            memo[key] = sum(1 for _ in xw.table(run_crosswalk(xw)).rows)
    return memo[key]


def translate_rows() -> list[dict[str, str]]:
    """The rows of every crosswalk that answers $translate (small: kept in memory), each with its map's name."""
    memo = snapshot_memo()
    if "translate" not in memo:
        memo["translate"] = [{**row, "crosswalk": xw.name} for xw in CROSSWALKS.values() if xw.translate
                             for row in xw.table(run_crosswalk(xw)).rows]
    return memo["translate"]
