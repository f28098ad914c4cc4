"""The code page: a billing code with its descriptors, seed-page profiles, indications → ICD-10-CM,
devices, fee-schedule indicators, exclusion edits, alternatives, hierarchy and history, and for
ICD-10-CM its Tabular List notes, own and inherited (`notes`).

The code's own triples come from `describe`; the nodes it owns (profiles and their steps,
indications, history events), its conditions' ICD-10-CM matches, its edits, its device crosswalk
and its chain of parents take five more queries (an ICD-10-CM item's notes one more), then one bulk
label load for everything shown; against a remote engine the independent ones go together (`fanout`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .describe import Description, Fact, group
from .fanout import gather
from .notes import KINDS, note_sections, read_notes
from .paging import ReverseRows, children_page, children_paged, children_total, reverse_page
from .respond import render
from .terms import (
    ASSERTED,
    BILLABLE,
    BROADER,
    DEFINITION,
    LABEL,
    MCNS,
    NOTATION,
    PREF,
    RDFS,
    SKOS,
    SOURCE,
    TYPE,
    Term,
    natural,
    select_terms,
    sparql_iri,
)
from .timeline import TIMELINE_PROPERTIES, code_timeline, timeline_iris
from .view import View, public_base
from .vocab import Vocab

# (property, heading) in the order the seed pages use; None entries are the structured sections
PROFILE_SECTIONS = (
    ("purpose", "Purpose"), (None, "indications"), ("preparation", "Preparation"), (None, "steps"),
    ("equipment", "Tools and equipment"), ("anesthesia", "Anesthesia"), ("duration", "Duration"),
    ("setting", "Setting"), ("personnel", "Personnel"), ("risk", "Risks and complications"),
    ("benefit", "Benefits"), ("recovery", "Recovery"), ("alternative", "Alternatives"),
    ("prosAndCons", "Pros and cons"), ("patientExperience", "Patient experience"),
    ("commonLanguageDescription", "Common language description"), ("postProcedure", "Post-procedure"),
    ("billingGuideline", "Billing guidelines"), ("commonName", "Common names"), ("technicalTerm", "Technical term"),
)
DESCRIPTORS = (("Short", "shortDescriptor"), ("Medium", "mediumDescriptor"), ("Long", "longDescriptor"))
FEE = MCNS + "feeScheduleIndicator"
# what a code page shows in its own sections rather than in "other properties"
CODE_HANDLED = {TYPE, NOTATION, PREF, LABEL, SKOS + "inScheme", SKOS + "topConceptOf", SOURCE, BROADER,
                SKOS + "broaderTransitive"} | {MCNS + p for p in (
                    "shortDescriptor", "mediumDescriptor", "longDescriptor", "profile", "indication", "history",
                    "route", "usesDevice", "denotesDevice", "mue", "mueAdjudicationIndicator", "listedModifier",
                    "notReportedWith", "column1Of", "column2Of", "similarCode", "billable", "codeStatus",
                    "addedDate", "feeScheduleIndicator")} | TIMELINE_PROPERTIES

Owned = dict[str, dict[str, list[Term]]]
Rows = list[dict[str, Term]]


@dataclass
class CodeData:
    """What a code page reads beyond the code's own triples."""

    owned: Owned                                # node -> property -> values (profiles, steps, indications, history)
    conditions: dict[str, list[tuple[str, str]]]  # condition -> (match relation, ICD-10-CM code)
    edits: Rows                                 # the code pair edits naming the code
    crosswalk: Rows                             # other codes using or denoting the same devices
    chain: Rows                                 # the code and its ancestors, each with its parent

    def iris(self) -> set[str]:
        """Every IRI these rows link to."""
        iris = {t.value for props in self.owned.values() for vals in props.values() for t in vals if t.is_iri}
        iris |= set(self.conditions) | {m for matches in self.conditions.values() for _, m in matches}
        iris |= {t.value for row in self.edits + self.crosswalk + self.chain for t in row.values() if t.is_iri}
        return iris


def _owned(s: str) -> Owned:
    owned: Owned = defaultdict(lambda: defaultdict(list))
    # OPTIONAL keeps the join in this order on engines that would otherwise scan every ?n ?p ?o (Virtuoso)
    for row in select_terms(f"""SELECT ?n ?p ?o WHERE {{
        {s} (mc:profile|mc:indication|mc:history|mc:profile/mc:procedureStep) ?n OPTIONAL {{ ?n ?p ?o }} }}"""):
        if "o" in row and row["o"] not in owned[row["n"].value][row["p"].value]:
            owned[row["n"].value][row["p"].value].append(row["o"])
    return owned


def _conditions(s: str) -> dict[str, list[tuple[str, str]]]:
    conditions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in select_terms(f"""SELECT DISTINCT ?c ?rel ?icd WHERE {{
        {s} mc:indication/(mc:condition|mc:encounterReason) ?c .
        GRAPH <{ASSERTED}> {{ ?c ?rel ?icd VALUES ?rel {{ skos:exactMatch skos:closeMatch mc:categoryMatch }} }} }}"""):
        conditions[row["c"].value].append((row["rel"].value, row["icd"].value))
    return conditions


def code_data_calls(iri: str) -> list[Callable[[], Any]]:
    """The five queries a code page needs beyond `describe`, whose answers make a `CodeData`."""
    s = sparql_iri(iri)
    return [
        lambda: _owned(s), lambda: _conditions(s),
        lambda: select_terms(f"""SELECT ?e ?col ?other ?mi ?src ?basis WHERE {{
            {{ ?e mc:column1 {s} ; mc:column2 ?other BIND(1 AS ?col) }}
            UNION {{ ?e mc:column2 {s} ; mc:column1 ?other BIND(2 AS ?col) }}
            ?e a mc:CodePairEdit .
            OPTIONAL {{ ?e mc:modifierIndicator ?mi }} OPTIONAL {{ ?e dcterms:source ?src }}
            OPTIONAL {{ ?e mc:editBasis ?basis }} }}"""),
        lambda: select_terms(f"""SELECT DISTINCT ?d ?other ?rel WHERE {{
            {s} ?mine ?d . VALUES ?mine {{ mc:usesDevice mc:denotesDevice }}
            ?other ?rel ?d . VALUES ?rel {{ mc:usesDevice mc:denotesDevice }} FILTER(?other != {s}) }}"""),
        lambda: select_terms(f"SELECT ?x ?parent WHERE {{ {s} skos:broader* ?x . "
                             "OPTIONAL { ?x skos:broader ?parent } }"),
    ]


def _one(terms: list[Term] | None) -> str:
    return terms[0].value if terms else ""


def _source(props: dict[str, list[Term]]) -> str | None:
    return props[SOURCE][0].value if props.get(SOURCE) else None


def _ancestors(iri: str, chain: Rows) -> list[str]:
    """The code's ancestors, its parent first."""
    parent_of: dict[str, str] = {}
    for row in chain:
        if "parent" in row:
            parent_of.setdefault(row["x"].value, row["parent"].value)
    ancestors, node, seen = [], iri, set()
    while node in parent_of and node not in seen:
        seen.add(node)
        node = parent_of[node]
        ancestors.append(node)
    return ancestors


def _indications(d: Description, data: CodeData, view: View, prefix: str = "",
                 exclude: tuple[str, ...] = ()) -> list[dict]:
    """The code's indications (those under `prefix`, less those under `exclude`) with their ICD-10-CM matches."""
    out = []
    for f in d.get(MCNS + "indication"):
        i = f.value.value
        if (prefix and not i.startswith(prefix)) or (exclude and i.startswith(exclude)):
            continue
        props = data.owned.get(i, {})
        conds = [(c.value, sorted(data.conditions.get(c.value, []), key=lambda m: (m[0], view.notation_key(m[1]))),
                  link == "encounterReason")
                 for link in ("condition", "encounterReason") for c in props.get(MCNS + link, [])]
        out.append({"iri": i, "text": _one(props.get(LABEL)), "conditions": conds, "inferred": f.inferred,
                    "source": _source(props)})
    out.sort(key=lambda x: natural(x["iri"]))
    return out


def _steps(props: dict[str, list[Term]], owned: Owned) -> list[tuple[int, str, str]]:
    """A profile's procedure steps as (number, text, IRI), in order."""
    steps = []
    for step in props.get(MCNS + "procedureStep", []):
        sp = owned.get(step.value, {})
        number = int(sp[MCNS + "stepNumber"][0].value) if sp.get(MCNS + "stepNumber") else 0
        steps.append((number, sp.get(LABEL, [Term("literal", "")])[0].value, step.value))
    return sorted(steps)


def _sections(props: dict[str, list[Term]]) -> list[tuple[str, list[str] | None]]:
    """A profile's sections in the seed pages' order: (heading, texts), None for the structured ones."""
    sections: list[tuple[str, list[str] | None]] = []
    for prop, heading in PROFILE_SECTIONS:
        if prop is None:
            sections.append((heading, None))
        elif props.get(MCNS + prop):
            sections.append((heading, [t.value for t in props[MCNS + prop]]))
    return sections


def _profiles(d: Description, data: CodeData, view: View) -> list[dict]:
    """The seed pages' profiles of the code, ordered by their source document."""
    profiles = []
    for f in d.get(MCNS + "profile"):
        p_iri = f.value.value
        props = data.owned.get(p_iri, {})
        profiles.append({
            "iri": p_iri, "link": view.link(p_iri), "source": _source(props),
            "title": _one(props.get(MCNS + "pageTitle")), "summary": [t.value for t in props.get(MCNS + "summary", [])],
            "sections": _sections(props), "steps": _steps(props, data.owned),
            "indications": _indications(d, data, view, prefix=p_iri + "/indication/"),
        })
    profiles.sort(key=lambda p: view.notation_key(p["source"]) if p["source"] else natural(p["iri"]))
    return profiles


def _history(d: Description, owned: Owned) -> list[dict]:
    history = []
    for f in d.get(MCNS + "history"):
        props = owned.get(f.value.value, {})
        history.append({"iri": f.value.value, "date": _one(props.get(MCNS + "eventDate")),
                        "action": _one(props.get(MCNS + "action")), "note": _one(props.get(RDFS + "comment")),
                        "source": _source(props)})
    return sorted(history, key=lambda h: h["date"])


def _fee(d: Description, v: Vocab) -> list[tuple[str, Fact]]:
    """Fee-schedule indicators by their most specific property (a bare `feeScheduleIndicator` only when
    no sub-property states the same value)."""
    fee = [(p, f) for p in v.sub_properties(FEE) - {FEE} for f in d.get(p)]
    specific = {f.value.value for _, f in fee}
    fee += [(FEE, f) for f in d.get(FEE) if f.value.value not in specific]
    return sorted(fee, key=lambda pf: v.label(pf[0]).lower())


def _most_specific(d: Description, v: Vocab, top: str, view: View) -> list[Fact]:
    """Facts of `top` and its sub-properties; a bare `top` fact entailed by a sub-property is left out."""
    facts = [f for p in v.sub_properties(top) for f in d.get(p)]
    specific = {f.value.value for f in facts if f.prop != top}
    facts = [f for f in facts if f.prop != top or f.value.value not in specific]
    return sorted(facts, key=lambda f: (view.notation_key(f.value.value), v.label(f.prop)))


def _not_reported(d: Description, edits: Rows, view: View) -> list[tuple[Fact, list[dict]]]:
    """Each code this one is not reported with, with the edits (either column) that say so."""
    edit_by_other: dict[str, list[dict]] = defaultdict(list)
    for row in edits:
        edit_by_other[row["other"].value].append({
            "iri": row["e"].value, "column": int(row["col"].value),
            "mi": row["mi"].value if "mi" in row else None, "source": row["src"].value if "src" in row else None,
            "basis": row["basis"].value if "basis" in row else ""})
    not_reported = [(f, edit_by_other.get(f.value.value, [])) for f in d.get(MCNS + "notReportedWith")]
    return sorted(not_reported, key=lambda x: view.notation_key(x[0].value.value))


def _crosswalk(rows: Rows, view: View) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per device: the (relation, code) of the other codes that use or denote it."""
    xwalk: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        xwalk[row["d"].value].append((row["rel"].value, row["other"].value))
    for entries in xwalk.values():
        entries.sort(key=lambda e: (e[0], view.notation_key(e[1])))
    return sorted(xwalk.items())


def _relations(d: Description, data: CodeData, view: View) -> dict:
    """The template values of the Relations section and of the properties it shows."""
    v = view.vocab
    handled = CODE_HANDLED | v.sub_properties(MCNS + "reportInstead") | v.sub_properties(MCNS + "reportedInsteadOf") \
        | v.sub_properties(FEE) | set(KINDS)
    return dict(
        not_reported=_not_reported(d, data.edits, view), instead=_most_specific(d, v, MCNS + "reportInstead", view),
        instead_of=_most_specific(d, v, MCNS + "reportedInsteadOf", view), similar=d.get(MCNS + "similarCode"),
        parents=d.get(BROADER), others=group(d.facts, skip=handled | {LABEL}),
    )


def code_html(iri: str, d: Description, view: View, found: ReverseRows) -> str:
    """The HTML page of a code (any resource typed with one of the code classes).

    Its queries go in four rounds, each sent together to a remote engine (`gather`): the code's own
    triples and reverse links (the caller's), then its labels with the code's other data, then what
    needs those (notes of the ancestors, the page of children), then the labels of everything shown.
    """
    is_icd = iri.startswith(public_base() + "id/icd10cm")
    _, n_children, timeline, *parts = gather(
        lambda: view.load(d.iris() | found.subjects() | {iri}), lambda: children_total(iri),
        lambda: code_timeline(iri, d), *code_data_calls(iri))
    data = CodeData(*parts)
    ancestors = _ancestors(iri, data.chain)
    notes, shown = gather(lambda: read_notes(iri, ancestors) if is_icd else None,
                          lambda: children_page(iri, n_children))
    fee = [f.value.value for p in view.vocab.sub_properties(FEE) for f in d.get(p)]
    shown_iris = data.iris() | (notes.iris() if notes else set()) | timeline_iris(timeline) | set(shown[2])
    gather(lambda: view.load(shown_iris), lambda: view.load(fee, extra=(DEFINITION, SKOS + "inScheme")))
    rev = reverse_page(found, view)
    profiles = _profiles(d, data, view)
    pref = {p.value.value for p in d.get(PREF)}
    return render(
        "pages/code.html", V=view, iri=iri, d=d, me=view.link(iri), rev=rev,
        scheme=d.get(SKOS + "inScheme"), types=d.get(TYPE), breadcrumb=[view.link(a) for a in reversed(ancestors)],
        is_icd=is_icd, notes=note_sections(iri, notes, view) if notes else [],
        descriptors=[(name, d.get(MCNS + p)) for name, p in DESCRIPTORS if d.get(MCNS + p)],
        summaries=[(p["summary"], p["source"]) for p in profiles if p["summary"]], profiles=profiles,
        indications=_indications(d, data, view, exclude=tuple(p["iri"] + "/" for p in profiles)),
        history=_history(d, data.owned), fee=_fee(d, view.vocab),
        routes=d.get(MCNS + "route"), uses=d.get(MCNS + "usesDevice"), denotes=d.get(MCNS + "denotesDevice"),
        xwalk=_crosswalk(data.crosswalk, view), mue=d.get(MCNS + "mue"), mai=d.get(MCNS + "mueAdjudicationIndicator"),
        modifiers=sorted(d.get(MCNS + "listedModifier"), key=lambda f: view.notation_key(f.value.value)),
        children=children_paged(n_children, shown, view), status=d.get(MCNS + "codeStatus"),
        added=d.get(MCNS + "addedDate"), billable=d.get(BILLABLE), sources=d.get(SOURCE), timeline=timeline,
        extra_labels=[f for f in d.get(LABEL) if f.value.value not in pref],
        **_relations(d, data, view),
    )
