"""Code sets over time, read from the graph once per snapshot: the releases, every change record, and what
they give: the diff of two releases, a code's timeline and its state on a date (``as_of``).

The build (kg/releases.py) records each change between two consecutive releases (an addition, a
deletion, a revision of one property with the values before and after). Everything here composes
those records, so one mechanism answers every surface: the state of a date is that of the latest
release the graph holds that took effect on or before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from kg.contract import ID_BASE

from ..codes import curie
from ..exports import snapshot_memo
from ..http.errors import HTTPError
from ..named_queries import bind_rows, rdf_term
from ..store import QueryError, select

RELEASES_QUERY = """
SELECT ?release ?notation ?date ?label ?scheme WHERE {
  ?release a mc:CodeSetRelease ; skos:notation ?notation ; mc:releaseDate ?date ; rdfs:label ?label ;
           mc:releaseOf ?scheme .
} ORDER BY ?date
"""
#: one row per replacement of a deleted code (gathered in Python: Virtuoso's GROUP BY over these columns took
#: 13 of the 16 ms of a claim's diagnoses' records, Oxigraph's nothing measurable)
CHANGES_QUERY = """
SELECT ?change ?kind ?code ?release ?property ?before ?after ?label ?now ?billable ?replacement WHERE {
  ?change mc:changeIn ?release ; a ?kind ; mc:changedCode ?code .
  OPTIONAL { ?code skos:prefLabel ?now }
  OPTIONAL { ?code mc:billable ?billable }
  VALUES ?kind { mc:CodeAddition mc:CodeDeletion mc:CodeRevision }
  OPTIONAL { ?change mc:changedProperty ?property }
  OPTIONAL { ?change mc:valueBefore ?before }
  OPTIONAL { ?change mc:valueAfter ?after }
  OPTIONAL { ?change rdfs:label ?label }
  OPTIONAL { ?change mc:replacedBy ?replacement }
}
"""
KINDS = {"CodeAddition": "added", "CodeDeletion": "deleted", "CodeRevision": "revised"}
MC_NS = "https://w3id.org/medcode/ontology#"


@dataclass(frozen=True)
class Release:
    """One release the graph holds: IRI, notation (YYYY-MM), the date it took effect, its label, its code system."""

    iri: str
    notation: str
    effective: date
    label: str
    system: str


@dataclass(frozen=True)
class Record:
    """One change record: what happened to `code` in `release` (added, deleted, or one property revised)."""

    code: str
    release: Release
    kind: str
    prop: str = ""
    before: str = ""
    after: str = ""
    label: str = ""
    replaced_by: tuple[str, ...] = ()

    @property
    def notation(self) -> str:
        return self.code.rsplit("/", 1)[1]


@dataclass
class Difference:
    """What changed for one code between two releases: `kind` added, deleted or revised; the code's label and
    billable flag on the later side (the earlier one for a deletion); each revised property (CURIE, before,
    after); the codes that replace a deleted one."""

    code: str
    notation: str
    kind: str
    label: str = ""
    billable: str = ""
    revisions: list[tuple[str, str, str]] = field(default_factory=list)
    replaced_by: tuple[str, ...] = ()


def _value(row: dict, name: str) -> str:
    return row[name]["value"] if name in row else ""


def _run(query: str, bindings: dict[str, tuple] | None = None) -> list[dict]:
    """A history query under the export limits: it reads every change record (once per snapshot and process)."""
    try:
        return select(query, graphs="asserted", named=None, bulk=True, bindings=bindings)
    except QueryError as exc:
        raise HTTPError(exc.status, f"Reading the code history failed: {exc}") from exc


def releases() -> list[Release]:
    """Every release the graph holds, oldest first (memoised per snapshot)."""
    memo = snapshot_memo()
    if "releases" not in memo:
        memo["releases"] = [Release(r["release"]["value"], r["notation"]["value"],
                                    date.fromisoformat(r["date"]["value"]), r["label"]["value"],
                                    r["scheme"]["value"][len(ID_BASE):])
                            for r in _run(RELEASES_QUERY)]
    return memo["releases"]


def _read_records(bindings: dict[str, tuple] | None = None, codes: Iterable[str] = ()
                  ) -> tuple[dict[str, list[Record]], dict[str, dict]]:
    """The change records (of one code, when `bindings` names it; of `codes`, when given), by code IRI in release
    order, and each code's label and billable flag now."""
    by_iri = {r.iri: r for r in releases()}
    found: dict[str, list[Record]] = {}
    now: dict[str, dict[str, str]] = {}
    bound = [[str(rdf_term(("iri", c, None)))] for c in codes]
    query = bind_rows(CHANGES_QUERY, ["code"], bound) if bound else CHANGES_QUERY
    rows: dict[str, tuple[dict, set[str]]] = {}  # change IRI -> (its first row, its replacements)
    for row in _run(query, bindings):
        now[row["code"]["value"]] = {"label": _value(row, "now"), "billable": _value(row, "billable")}
        replacements = rows.setdefault(row["change"]["value"], (row, set()))[1]
        if "replacement" in row:
            replacements.add(row["replacement"]["value"])
    for row, replacements in rows.values():
        release = by_iri.get(row["release"]["value"])
        if release is None:
            continue
        prop = _value(row, "property")
        found.setdefault(row["code"]["value"], []).append(Record(
            row["code"]["value"], release, KINDS[row["kind"]["value"][len(MC_NS):]],
            curie(prop) if prop else "", _value(row, "before"), _value(row, "after"), _value(row, "label"),
            tuple(sorted(replacements))))
    for changes in found.values():
        changes.sort(key=lambda r: (r.release.effective, r.prop))
    return found, now


def records() -> dict[str, list[Record]]:
    """Every change record, by code IRI, in release order (memoised per snapshot: a few thousand)."""
    memo = snapshot_memo()
    if "records" not in memo:
        memo["records"], memo["now"] = _read_records()
    return memo["records"]


def records_of(codes: Iterable[str]) -> tuple[dict[str, list[Record]], dict[str, dict]]:
    """The change records of a few codes (IRIs) and their label and billable flag now, in one query (the claim
    check's diagnoses; the memo of every record when it is at hand)."""
    codes = list(dict.fromkeys(codes))
    memo = snapshot_memo()
    if "records" in memo:
        return ({c: memo["records"][c] for c in codes if c in memo["records"]},
                {c: memo["now"][c] for c in codes if c in memo["now"]})
    return _read_records(codes=codes) if codes else ({}, {})


def values_now(code: str) -> dict[str, str]:
    """The label and billable flag the graph gives a changed code now (a deleted code: its last label)."""
    records()
    return snapshot_memo()["now"].get(code, {})


def of_system(system: str) -> list[Release]:
    """The releases of one code system; 404 naming the systems that have some."""
    found = [r for r in releases() if r.system == system]
    if not found:
        systems = sorted({r.system for r in releases()})
        raise HTTPError(404, f"No releases of '{system}' in the graph; "
                             + (f"releases are held for: {', '.join(systems)}." if systems else "it holds none."))
    return found


def in_force(system: str, when: date) -> Release:
    """The release of `system` in force on `when`: the latest that took effect on or before it; 404 before the
    first one."""
    held = of_system(system)
    earlier = [r for r in held if r.effective <= when]
    if not earlier:
        raise HTTPError(404, f"{when.isoformat()} is before the first {system} release the graph holds "
                             f"({held[0].notation}, in force from {held[0].effective.isoformat()}).")
    return earlier[-1]


def release_named(system: str, name: str) -> Release:
    """A release by notation (YYYY-MM) or by a date it was in force on (YYYY-MM-DD); 400 malformed, 404 unknown."""
    held = of_system(system)
    for release in held:
        if release.notation == name:
            return release
    try:
        when = date.fromisoformat(name)
    except ValueError:
        if len(name) == 7 and name[4] == "-" and name.replace("-", "").isdigit() and 1 <= int(name[5:]) <= 12:
            raise HTTPError(404, f"No {system} release {name} in the graph; it holds "
                                 f"{', '.join(r.notation for r in held)}.") from None
        raise HTTPError(400, f"'{name}' is neither a release (YYYY-MM: {', '.join(r.notation for r in held)}) "
                             "nor a date (YYYY-MM-DD).") from None
    return in_force(system, when)


def parse_as_of(values: list[str]) -> date | None:
    """The `as_of=YYYY-MM-DD` of a request (its values), None when absent; 400 naming the parameter when malformed
    or given twice."""
    if len(values) > 1:
        raise HTTPError(400, "as_of is given more than once.")
    value = values[0] if values else ""
    if value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPError(400, f"as_of: '{value[:40]}' is not a date (YYYY-MM-DD).") from None


def _existence(changes: list[Record]) -> tuple[bool, bool]:
    """Whether the code existed before the first and after the last of `changes` (a span's records)."""
    events = [r for r in changes if r.kind != "revised"]
    if not events:
        return True, True
    return events[0].kind == "deleted", events[-1].kind == "added"


def _compose(code: str, changes: list[Record], later: Release) -> Difference | None:
    """One code's records between two releases (`changes`, up to `later`) as one difference, or None when they
    cancel out."""
    existed, exists = _existence(changes)
    diff = Difference(code, changes[0].notation, "revised")
    last: dict[str, str] = {}
    first: dict[str, str] = {}
    for r in changes:
        if r.kind == "deleted":
            diff.label, diff.billable, diff.replaced_by = r.label, r.before, r.replaced_by
        elif r.kind == "revised":
            first.setdefault(r.prop, r.before)
            last[r.prop] = r.after
    if existed and not exists:
        diff.kind = "deleted"
        return diff
    state = _values_in(code, later, values_now(code))
    diff.label, diff.billable = state["label"], state["billable"]
    if not existed:
        diff.kind = "added"
        return diff if exists else None
    diff.revisions = [(prop, before, last[prop]) for prop, before in first.items() if before != last[prop]]
    return diff if diff.revisions else None


def diff(system: str, earlier: Release, later: Release) -> list[Difference]:
    """The codes added, deleted or revised from `earlier` to `later`, by code."""
    if earlier.effective >= later.effective:
        raise HTTPError(400, f"from ({earlier.notation}) must be an earlier release than to ({later.notation}).")
    span = {r.iri for r in of_system(system) if earlier.effective < r.effective <= later.effective}
    found = []
    for code, changes in records().items():
        inside = [r for r in changes if r.release.iri in span]
        if inside and (composed := _compose(code, inside, later)) is not None:
            found.append(composed)
    return sorted(found, key=lambda d: (d.notation, d.kind))


def timeline(code: str) -> list[Record]:
    """One code's change records, oldest first (a query of its own unless every record is at hand already)."""
    memo = snapshot_memo()
    if "records" in memo:
        return memo["records"].get(code, [])
    return _read_records({"code": ("iri", code, None)})[0].get(code, [])


def _values_in(code: str, release: Release, now: dict[str, str]) -> dict[str, str]:
    return values_in(timeline(code), release, now)


def values_in(changes: list[Record], release: Release, now: dict[str, str]) -> dict[str, str]:
    """A code's label, billable flag and existence in `release`, from its values `now` and the earliest of its
    `changes` (oldest first) of each after that release (which says what held before it)."""
    state = {"label": now.get("label", ""), "billable": now.get("billable", ""), "exists": now.get("exists", "true")}
    seen: set[str] = set()
    for r in changes:
        if r.release.effective <= release.effective or (r.prop or "existence") in seen:
            continue
        seen.add(r.prop or "existence")
        if r.kind == "revised" and r.prop in ("skos:prefLabel", "mc:billable"):
            state["label" if r.prop == "skos:prefLabel" else "billable"] = r.before
        elif r.kind == "added":
            state["exists"] = "false"
        elif r.kind == "deleted":
            state.update(exists="true", label=r.label, billable=r.before)
    return state


def state_at(code: str, when: date, now: dict[str, str]) -> dict[str, str] | None:
    """The code's label, billable flag and existence (`now`: its values in the graph, `exists` false for a deleted
    code) in the release in force on `when`, with that release's notation; None when the graph holds no release
    of its code system."""
    system = code[len(ID_BASE):].split("/", 1)[0]
    if not any(r.system == system for r in releases()):
        return None
    held = of_system(system)
    if when < held[0].effective:
        return {"release": "", "first": held[0].notation, "exists": "unknown"}
    release = in_force(system, when)
    later = [r.notation for r in held if r.effective > release.effective]
    return {"release": release.notation, "next": later[0] if later else "", **_values_in(code, release, now)}
