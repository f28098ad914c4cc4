"""Diagnoses judged by the ICD-10-CM release in force on the date of service, truthfully.

The diagnosis rules (queries/check-diagnosis-*.rq) judge the graph's current state. A diagnosis whose change
records say that the release in force on the date of service held it otherwise (G35 billable in 2025-04, a
category in 2026-04) is judged here by that release instead, through the releases' one mechanism
(server.diff.history, as `as_of` on the pages). The graph lacks releases (no package ships the October
ones), so where the release in force and the next held release disagree about the code (exists or not,
billable or not) and a release the graph lacks could have taken effect between the release in force and the
date of service, the answer is a warning naming both states, never a clearance or a denial. A date before the
first held release is judged by that release, with a note that the graph cannot tell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

from ..diff.history import Record, Release, records_of, releases, values_in
from ..named_queries import bind_rows, rdf_term
from ..pages.terms import natural
from ..store import run_query
from .claim import Claim, diagnosis_iri
from .rules import Wording

SYSTEM = "icd10cm"
TAKES_EFFECT = ((4, 1), (10, 1))  # ICD-10-CM releases take effect each April 1 and October 1
LISTED = 12  # values of a list a message shows before "and N more"
#: the rules of the graph's current state that a dated judgement replaces (their findings' first link: the code)
#: a dated finding: rule id, lines, message values, the IRIs it names, its source (the release it judges by)
Dated = tuple[str, tuple[int, ...], dict[str, str], tuple[str, ...], str]
STATE_RULES = ("diagnosis-not-billable", "diagnosis-deleted", "diagnosis-unknown")
#: the rule ids this module reports (README, the rule table); diagnosis-not-billable and diagnosis-deleted
#: keep their ids when the release in force says so
WORDINGS = {
    "diagnosis-not-yet-valid": Wording("deny", "{diagnosis} ({label}) is not yet an ICD-10-CM code on {date}: the "
                                               "release in force, {release}, does not hold it; the {added} release "
                                               "added it (in force from {added_on})."),
    "diagnosis-deleted": Wording("deny", "{diagnosis} ({label}) is no code of the ICD-10-CM release in force on {date} "
                                         "({release}): the {deleting} release deleted it.",
                                 "Report the code that fits the record among those the release added in its place: "
                                 "{replacements}."),
    "diagnosis-not-billable": Wording("deny", "{diagnosis} ({label}) is a {level} that is not billable in the "
                                              "ICD-10-CM release in force on {date} ({release}): a claim reports one "
                                              "of the billable codes below it in that release: {billable}.",
                                      "Report the billable code that fits the record: {billable}."),
    "diagnosis-release-uncertain": Wording(
        "warn", "{diagnosis} ({label}): the graph cannot tell its state on {date}. The release in force that it "
                "holds, {release} (from {release_on}), has it as {state}; the next release it holds, {next} (from "
                "{next_on}), as {next_state}. ICD-10-CM releases take effect each October 1 and April 1, and the "
                "graph lacks the release of {missing}, which may have made that change by the date of service.",
        "Check {diagnosis} against the ICD-10-CM release in force on {date} before billing it."),
    "diagnosis-before-releases": Wording(
        "info", "The date of service {date} is before the first ICD-10-CM release the graph holds ({release}, in "
                "force from {release_on}): the graph cannot tell the state of {diagnoses} on that date, and judges "
                "them by that release."),
}
BILLABLE_BELOW = """PREFIX mc: <https://w3id.org/medcode/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?d ?notation WHERE {
  ?below skos:broaderTransitive ?d ; mc:billable ?billable ; skos:notation ?notation .
  FILTER(STR(?billable) IN ("true", "1"))
}"""


def listed(values: Iterable[str | None]) -> str:
    """Distinct values in natural order, joined; a long list is cut with how many more there are.

    A value may itself be a list (a GROUP_CONCAT with separator "|"): SPARQL leaves its order open.
    """
    found = sorted({item for v in values if v for item in v.split("|") if item}, key=natural)
    shown = ", ".join(found[:LISTED])
    return shown + (f" and {len(found) - LISTED} more" if len(found) > LISTED else "")


def unheld_releases(after: date, until: date, held: Iterable[date]) -> list[date]:
    """The dates in (`after`, `until`] on which an ICD-10-CM release takes effect that the graph does not hold."""
    held = set(held)
    return [day for year in range(after.year, until.year + 1) for month, d in TAKES_EFFECT
            if after < (day := date(year, month, d)) <= until and day not in held]


def _billable(state: dict[str, str]) -> bool:
    return state.get("billable", "") in ("true", "1")


def _key(state: dict[str, str]) -> tuple[bool, bool]:
    """What the check judges a diagnosis by: whether it is a code, and whether billable."""
    exists = state.get("exists") == "true"
    return exists, exists and _billable(state)


def _level(notation: str) -> str:
    return "category" if len(notation.replace(".", "")) == 3 else "subcategory"


def _described(state: dict[str, str], notation: str, below: str) -> str:
    exists, billable = _key(state)
    if not exists:
        return "no code"
    if billable:
        return "a billable code"
    return f"a {_level(notation)} that is not billable" + (f" (billable codes below it: {below})" if below else "")


class _Judge:
    """The dated judgement of one claim's diagnoses: which current-state findings it replaces, and its own."""

    def __init__(self, claim: Claim, held: list[Release]) -> None:
        self.held, self.when = held, claim.date_of_service
        earlier = [r for r in held if r.effective <= self.when]
        self.release = earlier[-1] if earlier else held[0]
        later = [r for r in held if r.effective > self.release.effective]
        self.next = later[0] if later else None
        self.lines: dict[str, tuple[str, list[int]]] = {}
        for number, line in enumerate(claim.lines):
            for diagnosis in line.diagnoses:
                self.lines.setdefault(diagnosis_iri(diagnosis), (diagnosis, []))[1].append(number)
        self.replaced: set[str] = set()
        self.findings: list[Dated] = []
        self.below: dict[str, str] = {}  # the billable codes below a category now, listed
        self.below_then: dict[str, str] = {}  # ... and in the release in force

    def run(self) -> None:
        if self.when < self.release.effective:
            self._add("diagnosis-before-releases", sorted({n for _, lines in self.lines.values() for n in lines}),
                      {"diagnoses": listed(d for d, _ in self.lines.values()), "date": self.when.isoformat(),
                       "release": self.release.notation, "release_on": self.release.effective.isoformat()},
                      (self.release.iri,))
        changes, now = records_of(self.lines)
        states = {iri: self._states(iri, found, now.get(iri, {})) for iri, found in changes.items()}
        judged = {iri: s for iri, s in states.items() if s is not None}
        self.below = self._billable_below([iri for iri, (_, _, current) in judged.items()
                                           if _key(current) == (True, False)])
        self.below_then = self._billable_below([iri for iri, (at, _, _) in judged.items() if _key(at) == (True, False)],
                                               self.release.effective)
        for iri, (at, after, current) in judged.items():
            self._judge(iri, changes[iri], at, after, current)

    def _states(self, iri: str, changes: list[Record], now: dict[str, str]) -> tuple | None:
        """The code's state in the release in force, in the next held one and now; None when the current state is
        the dated one for certain (the rules' findings stand)."""
        events = [r for r in changes if r.kind != "revised"]
        current = {**now, "exists": "false" if events and events[-1].kind == "deleted" else "true"}
        at = values_in(changes, self.release, current)
        after = values_in(changes, self.next, current) if self.next else None
        uncertain = after is not None and _key(at) != _key(after) and self._missing()
        return (at, after, current) if uncertain or _key(at) != _key(current) else None

    def _missing(self) -> list[date]:
        return unheld_releases(self.release.effective, self.when, (r.effective for r in self.held))

    def _judge(self, iri: str, changes: list[Record], at: dict, after: dict | None, current: dict) -> None:
        notation, lines = self.lines[iri]
        label = at.get("label") or current.get("label") or (after or {}).get("label", "")
        values = {"diagnosis": notation, "label": label, "date": self.when.isoformat(),
                  "release": self.release.notation, "release_on": self.release.effective.isoformat()}
        links = (iri, self.release.iri)
        deleting = [r for r in changes if r.kind == "deleted" and r.release.effective <= self.release.effective]
        later = [r for r in changes if r.release.effective > self.release.effective and r.kind != "revised"]
        exists, billable = _key(at)
        if not exists and not deleting and not (later and later[0].kind == "added"):
            return  # records that do not say why it is no code: the rules' findings stand
        self.replaced.add(iri)
        if after is not None and _key(at) != _key(after) and (missing := self._missing()):
            latest = self.next is self.held[-1]
            self._add("diagnosis-release-uncertain", lines, {
                **values, "state": _described(at, notation, self.below_then.get(iri, "")), "next": self.next.notation,
                "next_on": self.next.effective.isoformat(),
                "next_state": _described(after, notation, self.below.get(iri, "") if latest else ""),
                "missing": listed(d.isoformat() for d in missing)}, (*links, self.next.iri))
            return
        if not exists and later and later[0].kind == "added":
            self._add("diagnosis-not-yet-valid", lines, {**values, "added": later[0].release.notation,
                                                         "added_on": later[0].release.effective.isoformat()}, links)
        elif not exists:
            self._add("diagnosis-deleted", lines, {**values, "deleting": deleting[-1].release.notation,
                                                   "replacements": listed(r.rsplit("/", 1)[1]
                                                                          for r in deleting[-1].replaced_by)}, links)
        elif not billable:
            self._add("diagnosis-not-billable", lines, {**values, "level": _level(notation),
                                                        "billable": self.below_then.get(iri, "")}, links)

    def _billable_below(self, codes: list[str], as_of: date | None = None) -> dict[str, str]:
        """The billable codes below each of `codes`, listed: in the graph's current state, or in the state `as_of`
        that date (the dated graphs of the release then in force, as `as_of` on /sparql)."""
        if not codes:
            return {}
        text = bind_rows(BILLABLE_BELOW, ["d"], [[str(rdf_term(("iri", c, None)))] for c in codes])
        found: dict[str, list[str]] = {}
        for row in json.loads(run_query(text, fmt="json", named=None, as_of=as_of))["results"]["bindings"]:
            found.setdefault(row["d"]["value"], []).append(row["notation"]["value"])
        return {code: listed(notations) for code, notations in found.items()}

    def _add(self, rule: str, lines: Iterable[int], values: dict[str, str], links: tuple[str, ...]) -> None:
        self.findings.append((rule, tuple(sorted(set(lines))), values, links, self.release.iri))


def judge_diagnoses(claim: Claim) -> tuple[set[str], list[Dated]]:
    """The claim's diagnoses that the release in force judges otherwise than the graph's current state (IRIs:
    their STATE_RULES findings are replaced), and the dated findings;
    nothing when the graph holds no ICD-10-CM release or the claim has no diagnosis."""
    held = [r for r in releases() if r.system == SYSTEM]
    if not held or not any(line.diagnoses for line in claim.lines):
        return set(), []
    judge = _Judge(claim, held)
    judge.run()
    return judge.replaced, judge.findings
