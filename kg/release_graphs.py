"""The graph's state on each earlier release's date as named graphs, so that a date selects a list of graphs.

The asserted and inferred graphs stay what they are: the current state. The state of an earlier release
R differs from it only in the facts that mention a code R says differently (its label, billable flag,
notes or parent differ, or only one of the two releases holds it: kg.releases.Volatile), so:

* ``graph/stable-asserted`` and ``graph/stable-inferred`` hold the facts that mention no such code of any
  earlier release (the bulk, the same on every date);
* ``graph/icd10cm-R-asserted`` and ``graph/icd10cm-R-inferred`` hold, for each earlier release R, the other
  facts true on R's dates: the current ones that mention none of R's codes, and R's own facts about them.

R's facts about its codes are its ICD-10-CM triples (kg.icd10cm, read from the release), the other current
facts that mention them (curated mappings, the code history) except what a later release made true
(the deletion of a code R still holds), none that mention a code R does not hold yet, and what the
same reasoning (kg.reasoning) entails from them. A fact that mentions none of R's codes holds on R's
dates as it holds now: its premises mention none either, and the ancestors and descendants of R's codes
are among them. The code history (releases, change records, ``mc:inRelease``) is the graph's record of
every release and stays whole on every date, except what mentions a code not yet added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rdflib import URIRef
from rdflib.namespace import RDF, SKOS

from .namespaces import MC
from .reasoning import infer_partitioned
from .releases import CURRENT, ICD_PREFIX, History, Volatile, owner

Triple = tuple
GRAPH_BASE = "https://w3id.org/medcode/graph/"
STABLE = {"asserted": f"{GRAPH_BASE}stable-asserted", "inferred": f"{GRAPH_BASE}stable-inferred"}
#: what a later release says of a code it deletes (kg.releases._deleted, deletedIn, replacedBy), and the code's
#: label and notation then, which the earlier release states itself
DELETION = frozenset({MC.formerlyInScheme, MC.deletedIn, MC.replacedBy, SKOS.prefLabel, SKOS.notation})


def release_graph(notation: str, part: str) -> str:
    """The graph of an earlier release's own facts (`part`: asserted or inferred)."""
    return f"{GRAPH_BASE}icd10cm-{notation}-{part}"


def dated_meta(history: History, current: dict[str, list[str]]) -> dict[str, dict]:
    """For meta.json: each release held, the date it took effect and its state's graphs (asserted, inferred);
    the current release's are `current` (the asserted and inferred graphs themselves)."""
    dated = {v.release.notation: {"effective": v.release.effective.isoformat(),
                                  **{part: [STABLE[part], release_graph(v.release.notation, part)]
                                     for part in ("asserted", "inferred")}}
             for v in history.volatile}
    return {**dated, CURRENT.notation: {"effective": CURRENT.effective.isoformat(), **current}}


class _Mentions:
    """Whether a term belongs to one of `codes` (kg.releases.owner), each term looked at once."""

    def __init__(self, codes: frozenset[str] | set[str]) -> None:
        self.codes, self.seen = codes, {}

    def __call__(self, term: object) -> bool:
        if type(term) is not URIRef or not str.startswith(term, ICD_PREFIX):
            return False
        found = self.seen.get(term)
        if found is None:
            found = self.seen[term] = owner(term) in self.codes
        return found


def _split(triples: Iterable[Triple], codes: frozenset[str] | set[str]) -> tuple[list[Triple], list[Triple]]:
    """The triples that mention none of `codes` (as a subject or object, or through a note or change record of
    theirs), and those that do (each term looked at once: this reads the whole graph)."""
    apart: list[Triple] = []
    touching: list[Triple] = []
    seen: dict[object, bool] = {}
    for t in triples:
        s, o = t[0], t[2]
        hit = seen.get(s)
        if hit is None:
            hit = seen[s] = owner(s) in codes
        if not hit and type(o) is URIRef:
            hit = seen.get(o)
            if hit is None:
                hit = seen[o] = owner(o) in codes
        (touching if hit else apart).append(t)
    return apart, touching


def _asserted_then(v: Volatile, touching: list[Triple], now: set[Triple]) -> list[Triple]:
    """What was asserted on v's dates about v's codes: the release's own triples, and the other current facts
    about them, less what a later release made true and what names a code not added yet."""
    absent = _Mentions(v.codes - v.held)
    own = [t for t in v.triples if owner(t[0]) in v.held]
    kept = []
    for t in touching:
        if t in now or absent(t[0]) or absent(t[2]):
            continue
        if owner(t[0]) in v.held and isinstance(t[0], URIRef) and t[0].endswith(f"/{owner(t[0])}") and (
                t[1] in DELETION or (t[1] == RDF.type and t[2] == MC.DeletedCode)):
            continue
        kept.append(t)
    return list(dict.fromkeys([*own, *kept]))


def dated_graphs(history: History, core: list[Triple], asserted: list[Triple], inferred: list[Triple],
                 engine: str, echo: Callable[[str], None] = lambda _line: None) -> dict[str, list[Triple]]:
    """The stable graphs and each earlier release's graphs (see the module's docstring); none without earlier
    releases. `core` is the ontology and the curated records (what the engine reasons over), `asserted` and
    `inferred` the current graphs."""
    if not history.volatile:
        return {}
    every = frozenset().union(*(v.codes for v in history.volatile))
    stable_a, touching_a = _split(asserted, every)
    stable_i, touching_i = _split(inferred, every)
    now_icd = {t for t in history.now if owner(t[0]) in every}
    graphs = {STABLE["asserted"]: stable_a, STABLE["inferred"]: stable_i}
    for v in history.volatile:
        other_a, mine_a = _split(touching_a, v.codes)
        other_i, _ = _split(touching_i, v.codes)
        then = _asserted_then(v, mine_a, {t for t in now_icd if owner(t[0]) in v.codes})
        absent, held = _Mentions(v.codes - v.held), _Mentions(v.held)
        premises_core = [t for t in core if not (absent(t[0]) or absent(t[2]))]
        bulk = list(dict.fromkeys([*then, *v.triples]))
        closure = infer_partitioned(premises_core, bulk, engine, echo)
        then_set = set(then)
        entailed = [t for t in closure if t not in then_set and (held(t[0]) or held(t[2]))]
        graphs[release_graph(v.release.notation, "asserted")] = [*other_a, *then]
        graphs[release_graph(v.release.notation, "inferred")] = [*other_i, *entailed]
    return graphs
