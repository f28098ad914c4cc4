"""A code page's timeline: the releases that hold the code and what changed in which, a deleted code's
replacements, and with `?as_of=YYYY-MM-DD` the code's state on that date (server.diff.history: one mechanism
for every surface)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import request

from ..diff.history import Release, parse_as_of, releases, state_at, timeline
from .describe import Description
from .terms import BILLABLE, MCNS, PREF, select_terms, sparql_iri
from .view import public_base

#: the code-page properties the timeline shows
TIMELINE_PROPERTIES = {MCNS + p for p in ("inRelease", "deletedIn", "replacedBy", "formerlyInScheme")}


def _one(d: Description, prop: str) -> str:
    facts = d.get(prop)
    return facts[0].value.value if facts else ""


def _curated_state(d: Description, when: date) -> dict[str, str]:
    """A curated code's state on a date: it exists from the date it was added (when the sources give one)."""
    added = _one(d, MCNS + "addedDate")
    exists = not added or added[:10] <= when.isoformat()
    return {"release": "", "label": _one(d, PREF), "billable": _one(d, BILLABLE), "exists": str(exists).lower(),
            "added": added}


def _billable_added_below(iri: str, release: Release) -> list[str]:
    """The billable codes `release` adds below the code (G35 in 2026-04: G35.A, G35.B0, ... G35.D)."""
    rows = select_terms(f"""SELECT ?c WHERE {{
        ?change a mc:CodeAddition ; mc:changeIn {sparql_iri(release.iri)} ; mc:changedCode ?c ; mc:valueAfter ?b .
        FILTER(STR(?b) IN ("true", "1") && STRSTARTS(STR(?c), {json.dumps(iri)}) && ?c != {sparql_iri(iri)}) }}""")
    return sorted(row["c"].value for row in rows)


def code_timeline(iri: str, d: Description) -> dict[str, Any]:
    """What the template shows: the releases of the code's system with the code's changes in each, whether it is
    deleted (and by what replaced), and its state on the `as_of` date of the request, if any."""
    system = iri[len(public_base()) + 3:].split("/", 1)[0] if iri.startswith(public_base() + "id/") else ""
    held = [r for r in releases() if r.system == system]
    member = {f.value.value for f in d.get(MCNS + "inRelease")}
    changes = timeline(iri)
    deleted = bool(d.get(MCNS + "deletedIn"))
    when = parse_as_of(request.args.getlist("as_of"))
    state = None
    if when is not None:
        now = {"label": _one(d, PREF), "billable": _one(d, BILLABLE), "exists": "false" if deleted else "true"}
        state = (state_at(iri, when, now) if held else None) or _curated_state(d, when)
    return {
        "as_of": when, "state": state, "deleted": deleted,
        "deleted_in": [f.value.value for f in d.get(MCNS + "deletedIn")],
        "replaced_by": sorted(f.value.value for f in d.get(MCNS + "replacedBy")),
        "releases": [{"release": r, "member": r.iri in member,
                      "changes": [c for c in changes if c.release.iri == r.iri],
                      "billable_below": _billable_added_below(iri, r) if any(
                          c.release == r and c.prop == "mc:billable" and c.after == "false" for c in changes) else []}
                     for r in held] if member else [],
    }


def timeline_iris(shown: dict[str, Any]) -> set[str]:
    """Every IRI the timeline links to, for the page's one label load."""
    iris = {row["release"].iri for row in shown["releases"]} | set(shown["replaced_by"]) | set(shown["deleted_in"])
    iris |= {r for row in shown["releases"] for r in row["billable_below"]}
    return iris | {r for row in shown["releases"] for c in row["changes"] for r in c.replaced_by}
