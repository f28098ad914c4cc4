"""Row shaping that is genuinely code, picked by name from a crosswalk's header (`rows:` or `pivot:`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any


@dataclass(frozen=True)
class Table:
    """A crosswalk's rows, ready to write: keys in `columns` order, CSV header names in `headers`."""

    columns: list[str]
    headers: list[str]
    rows: Iterator[dict[str, str]]


def sorted_list(value: str) -> str:
    """A GROUP_CONCAT's '; '-separated values sorted, each once (SPARQL cannot order inside GROUP_CONCAT)."""
    return "; ".join(sorted(set(filter(None, value.split("; ")))))


def _icd10cm_kind(iri: str) -> str:
    return "chapter" if "/icd10cm/chapter/" in iri else "block" if "/icd10cm/block/" in iri else "code"


def icd10cm_codes(row: dict[str, str]) -> dict[str, str]:
    """Each side's code (the IRI's last segment: a chapter number, a block range or a code) and kind, added to
    the row (a fresh one per solution: updating it saves a copy of every row)."""
    s, o = row["subject_iri"], row["object_iri"]
    row.update(subject_code=s[s.rindex("/") + 1:], object_code=o[o.rindex("/") + 1:],
               subject_kind=_icd10cm_kind(s), object_kind=_icd10cm_kind(o))
    return row


LINK_COLUMNS = ["subject_iri", "subject_label", "object_iri", "object_label"]


def node_links(payload: bytes) -> Iterator[dict[str, str]]:
    """The links of a `node_rows` answer (subject_iri, subject_label, object_iri: one row per node and parent,
    no object for a root): each row with an object is a link, once for each label of the object's own rows
    (or with an empty object_label when it has none), as joining the labels to every link would give.

    The answer's rows are read once and gone over twice: the labels first (one list per node), then the links."""
    reader = csv.reader(io.StringIO(payload.decode("utf-8"), newline=""))
    header = next(reader)
    pick = itemgetter(*(header.index(name) for name in LINK_COLUMNS[:3]))
    records = [pick(row) for row in reader]
    labels: dict[str, list[str]] = {}
    for node, label, _ in records:
        kept = labels.get(node)
        if kept is None:
            labels[node] = [label]
        elif label not in kept:
            kept.append(label)
    for node, label, parent in records:
        if parent:
            for parent_label in labels.get(parent) or [""]:
                yield {"subject_iri": node, "subject_label": label, "object_iri": parent,
                       "object_label": parent_label}


def fee_schedule(raw: Iterable[dict[str, str]]) -> Table:
    """One row per code; for each indicator (alphabetical by property name) its value and meaning."""
    indicators: set[str] = set()
    codes: dict[tuple[str, str], dict[str, Any]] = {}
    for row in raw:
        name = row["indicator"].rsplit("#", 1)[-1]
        indicators.add(name)
        if not row["code"]:
            continue
        entry = codes.setdefault((row["system"], row["code"]), {
            "system": row["system"], "code": row["code"], "label": row["label"], "code_iri": row["code_iri"]})
        entry.setdefault(name, []).append(row["value"])
        entry.setdefault(name + "_meaning", []).append(row["meaning"])
    names = sorted(indicators)
    columns = ["system", "code", "label", *(c for n in names for c in (n, n + "_meaning")), "code_iri"]
    rows = ({c: " | ".join(v) if isinstance(v := entry.get(c, ""), list) else v for c in columns}
            for _, entry in sorted(codes.items()))
    return Table(columns, columns, rows)


#: `rows:` names a function applied to each row (a fresh dict it may update)
ROW_FUNCTIONS: dict[str, Callable[[dict[str, str]], dict[str, str]]] = {"icd10cm-codes": icd10cm_codes}
#: `pivot:` names a function that turns all rows into another table (its own columns)
PIVOTS: dict[str, Callable[[Iterable[dict[str, str]]], Table]] = {"fee-schedule": fee_schedule}
