"""The implicit value sets of the graph's code systems, answered one page at a time.

`{system}?fhir_vs` is every code of a system, `{system}?fhir_vs=isa/{code}` the code and what it
subsumes as CodeSystem/$subsumes says: its descendants in the ICD-10-CM hierarchy
(`skos:broaderTransitive`), or for a device code the codes of its system whose device is of a narrower
kind (none today: each HCPCS device code denotes a device of a most specific kind). Codes come in one stable
order, the search index's (shorter codes first, then by code, as in G35, G35.A, ..., G35.B0), so
`offset` paging reaches every code once.

A whole system is paged in the snapshot's search index (its order read once per snapshot: no query
sorts the 98,186 ICD-10-CM codes per request), its modifiers (59, 95 in CPT; XE, KD, ... in HCPCS)
after its own codes; a subtree comes from the graph by SPARQL (one larger than a page is kept). The
graph is asked about a page's codes only for what the index and the snapshot's memos do not give.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.contract import GRAPH_ASSERTED

from ..codes import normalise_code
from ..exports import snapshot_memo
from ..named_queries import bind_rows
from ..search.lifecycle import get_index
from ..store import select
from .codesystems import CodeSystem, resolve
from .concepts import DESIGNATIONS, MC, locate
from .lookup import unknown_code
from .params import Coding
from .resources import FHIRError

#: codes one answer may hold; a larger value set is paged with count/offset, else `too-costly`
MAX_EXPANSION = 1000
IMPLICIT = re.compile(r"(?P<system>[^?]+)\?fhir_vs(?:=(?P<filter>.*))?")
#: a filter word starts a word of the display: letters and digits make words
WORD = re.compile(r"[0-9a-z]+")

_PREFIXES = """PREFIX mc: <https://w3id.org/medcode/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
"""
#: a subtree larger than one page is kept per snapshot once read (each page would read it whole again: isa/S82's
#: 3,346 codes take 100-200 ms here, 1.6 s on Virtuoso), up to this many codes in all (about 4 MB), the
#: least recently asked for dropped first
KEPT_SUBTREE_CODES = 20_000
_KEPT_LOCK = threading.Lock()
#: the root and its descendants in the hierarchy (notations as asserted: half the time of the union of
#: graphs), with the display only when a filter needs it (else only the page's displays are read); the
#: root by BIND (Virtuoso 7.2 gives no row for a VALUES block inside a UNION branch)
DESCENDANTS = _PREFIXES + """SELECT DISTINCT ?c ?code ?display WHERE {{
  {{ BIND({root} AS ?c) }} UNION {{ ?c skos:broaderTransitive {root} }}
  GRAPH <{asserted}> {{ ?c skos:notation ?code {display} }}
}}"""
#: the device codes of a scheme with every class of the device each denotes (a few dozen codes)
DEVICE_CODES = _PREFIXES + """SELECT ?c ?code ?display ?kind WHERE {
  ?c mc:denotesDevice ?device ; skos:inScheme ?scheme ; skos:notation ?code . ?device a ?kind .
  OPTIONAL { ?c skos:prefLabel ?display }
}"""
#: what an answer shows of each code of one page besides its code and display: a union of single patterns
#: from the page's codes (a third of the time of OPTIONALs here), one row per value, only for what the
#: request asks (the display when the search index did not give it; billable for the notSelectable
#: property; parents, children, designations). A page with none of them asks no query: whether a code may
#: be billed (`abstract`) comes from the snapshot's memo of the codes that may not. Asserted facts are read
#: in the asserted graph (half the time of the union of graphs).
DETAILS = _PREFIXES + "SELECT ?c ?p ?v WHERE {{ {parts} }}"
ASSERTED_PARTS = {
    "billable": '{ ?c mc:billable ?v BIND("billable" AS ?p) }',
    "display": '{ ?c skos:prefLabel ?v BIND("display" AS ?p) }',
}
OPTIONAL_PARTS = {
    # FILTER EXISTS, not a pattern: Oxigraph then starts from ?c (0.4 ms here, 7-12 s joined as a pattern)
    "parent": '{ ?c skos:broader ?o . ?o skos:notation ?v FILTER EXISTS { ?o a mc:Code } BIND("parent" AS ?p) }',
    "child": '{ ?c skos:narrower ?o . ?o skos:notation ?v FILTER EXISTS { ?o a mc:Code } BIND("child" AS ?p) }',
}
#: the codes stated not billable (ICD-10-CM categories and subcategories: 23,467 of 98,186), once per snapshot
NOT_BILLABLE = _PREFIXES + """SELECT ?c WHERE {{ GRAPH <{asserted}> {{ ?c mc:billable ?v }} FILTER(?v = false) }}"""
#: one union branch per designation property (a VALUES of properties here is thousands of times slower)
DESIGNATION_PARTS = [f'{{ ?c <{iri}> ?v BIND("{use}" AS ?p) }}' for iri, use in DESIGNATIONS.items()]
#: every code with a status stated (the curated ones that say "active"; an inactive code would be here)
STATUSES = _PREFIXES + "SELECT ?c ?status WHERE { ?c mc:codeStatus ?status }"
#: the modifiers a system defines (listed after its own codes)
MODIFIERS = _PREFIXES + """SELECT ?c ?code ?display WHERE {
  ?c a mc:Modifier ; mc:modifierSystem ?scheme ; skos:notation ?code .
  OPTIONAL { ?c skos:prefLabel ?display }
}"""
#: a filter word starts a word of an index row's label (the arguments: %{word}%, *[^0-9a-z]{word}*); LIKE
#: first, which SQLite tests several times faster than the GLOB that decides
WORD_START = "(label LIKE ? AND (' ' || lower(label)) GLOB ?)"
#: the index's rows of one scheme, in its order (the codes_range index: no sort)
INDEX_ORDER = "ORDER BY length(key), key, tie"


@dataclass(frozen=True)
class Member:
    """A code of an expansion, as paging and filtering need it (the display may be left to `describe`)."""

    iri: str
    code: str
    display: str = ""


@dataclass(frozen=True)
class Root:
    """The code an isa value set is rooted at: its IRI, whether it denotes a device, and its code."""

    iri: str
    device: bool
    code: str


@dataclass(frozen=True)
class Request:
    """What an $expand asks: the value set, and how much of it in which form."""

    url: str
    system: CodeSystem
    root: Root | None  # the isa code, or None for the whole system
    text: str | None = None  # `filter`
    offset: int = 0
    count: int | None = None
    active_only: bool = False
    properties: tuple[str, ...] = ()
    designations: bool = False


@dataclass
class Page:
    """One page of an expansion: how many codes match in all, and those of the page described."""

    total: int
    codes: list[dict] = field(default_factory=list)


def parse_url(url: str) -> tuple[CodeSystem, Root | None]:
    """(code system, isa root IRI or None) of an implicit value set URL; 404 or 400 OperationOutcomes."""
    found = IMPLICIT.fullmatch(url)
    if found is None:
        raise FHIRError(404, "not-found", f"A definition for the value set '{url}' could not be found: this server "
                                          "expands the implicit value sets {system}?fhir_vs and "
                                          "{system}?fhir_vs=isa/{code}.", "not-found", "url")
    system = resolve(found["system"], None, "url")
    selector = found["filter"]
    if selector is None:
        return system, None
    if not selector.startswith("isa/") or not selector[4:].strip():
        raise FHIRError(400, "not-supported", f"Implicit value set '{url}': only fhir_vs and fhir_vs=isa/{{code}} "
                                              "are supported here.", "not-supported", "url")
    return system, root(system, selector[4:].strip())


def root(system: CodeSystem, code: str) -> Root:
    """The isa code of the system; 404 naming near matches when the system does not hold it."""
    found = locate(system, code)
    if found is None:
        raise unknown_code(Coding(system.url, code), "url")
    return Root(*found, code)


def words(text: str) -> list[str]:
    """The words of a filter or a display, as they are compared (lower case, letters and digits)."""
    return WORD.findall(text.lower())


def matcher(text: str) -> Callable[[Member], bool]:
    """Whether a code matches a filter: the filter starts its code (case and dots aside), or each filter
    word starts a word of its display ("mult scler" matches "Multiple sclerosis"). Compiled once per
    request: a whole system's codes are tested in C (a word starts where no letter or digit precedes)."""
    key = normalise_code(text)
    starts = [re.compile(r"(?<![0-9a-z])" + re.escape(word)) for word in words(text)]

    def test(member: Member) -> bool:
        if key and normalise_code(member.code).startswith(key):
            return True
        display = member.display.lower()
        return bool(starts) and all(start.search(display) for start in starts)

    return test


def order_key(member: Member) -> tuple[int, str, str]:
    """The search index's order: shorter codes first, then by code."""
    key = normalise_code(member.code)
    return len(key), key, member.iri


def _members(rows: list[dict]) -> list[Member]:
    return [Member(*(r[name]["value"] if name in r else "" for name in ("c", "code", "display"))) for r in rows]


def statuses() -> dict[str, str]:
    """IRI -> the status stated for it (once per snapshot: the graph states few)."""
    memo = snapshot_memo()
    if "fhir-statuses" not in memo:
        memo["fhir-statuses"] = {row["c"]["value"]: row["status"]["value"] for row in select(STATUSES)}
    return memo["fhir-statuses"]


def not_billable() -> frozenset[str]:
    """The IRIs of the codes that may not be billed (once per snapshot: a set of about 23,000 IRIs, so
    that a page's `abstract` flags need no query)."""
    memo = snapshot_memo()
    if "fhir-not-billable" not in memo:
        memo["fhir-not-billable"] = frozenset(row["c"]["value"]
                                              for row in select(NOT_BILLABLE.format(asserted=GRAPH_ASSERTED)))
    return memo["fhir-not-billable"]


def inactive() -> list[str]:
    """The IRIs of the codes whose stated status is other than active (none in the current sources)."""
    return sorted(iri for iri, status in statuses().items() if status.lower() != "active")


def _keep(members: list[Member], ask: Request) -> list[Member]:
    """The members the filter and activeOnly leave."""
    hidden = set(inactive()) if ask.active_only else set()
    test = matcher(ask.text) if ask.text else None
    return [m for m in members if m.iri not in hidden and (test is None or test(m))]


def _device_members(ask: Request) -> list[dict]:
    """The rows of the codes the root subsumes as $subsumes says (subsumes.relation): codes whose device is
    of every ontology class the root's device is and of more."""
    rows = select(DEVICE_CODES, bindings={"scheme": ("iri", ask.system.scheme, None)})
    kinds: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["kind"]["value"].startswith(MC):
            kinds[row["c"]["value"]].add(row["kind"]["value"])
    wanted = kinds[ask.root.iri]
    return [row for row in rows if wanted and wanted < kinds[row["c"]["value"]]]


def _read_subtree(ask: Request, display: bool) -> list[Member]:
    """The root and every code it subsumes, in order (displays only when asked: a filter needs them)."""
    rows = select(DESCENDANTS.format(root=str(ox.NamedNode(ask.root.iri)), asserted=GRAPH_ASSERTED,
                                     display="OPTIONAL { ?c skos:prefLabel ?display }" if display else ""))
    if ask.root.device:
        rows += _device_members(ask)
    return sorted({member.iri: member for member in _members(rows)}.values(), key=order_key)


def subtree(ask: Request) -> list[Member]:
    """Every member of an isa value set, in order (a subtree: at most a few thousand codes). One larger
    than a page is kept for the snapshot (`KEPT_SUBTREE_CODES`), so that paging it does not read it whole
    again for every page."""
    if ask.text:
        return _keep(_read_subtree(ask, display=True), ask)
    kept: OrderedDict[str, list[Member]] = snapshot_memo().setdefault("fhir-subtrees", OrderedDict())
    with _KEPT_LOCK:
        members = kept.get(ask.root.iri)
        if members is not None:
            kept.move_to_end(ask.root.iri)
    if members is None:
        members = _read_subtree(ask, display=False)
        if MAX_EXPANSION < len(members) <= KEPT_SUBTREE_CODES:
            with _KEPT_LOCK:
                kept[ask.root.iri] = members
                while sum(len(codes) for codes in kept.values()) > KEPT_SUBTREE_CODES:
                    kept.popitem(last=False)
    return _keep(members, ask)


def modifiers(ask: Request) -> list[Member]:
    """The modifiers the system defines, in order (read once per snapshot: a handful)."""
    memo = snapshot_memo()
    key = ("fhir-modifiers", ask.system.url)
    if key not in memo:
        memo[key] = _members(select(MODIFIERS, bindings={"scheme": ("iri", ask.system.scheme, None)}))
    return sorted(_keep(memo[key], ask), key=order_key)


def _index_where(ask: Request) -> tuple[str, list[object]]:
    """The index rows of the system's own codes the request keeps: a SQL condition and its arguments.

    The filter is `matcher`'s rule in SQL: GLOB on the lower-cased label (SQLite lowers ASCII only, and
    only [0-9a-z] make words on both sides), a word starting where no letter or digit precedes; the
    words and the code key hold only [0-9a-zA-Z], so they carry no GLOB syntax."""
    where, args = "system = ?", [ask.system.id]
    if ask.active_only:
        hidden = inactive()
        if hidden:
            where += f" AND iri NOT IN ({','.join('?' * len(hidden))})"
            args += hidden
    if ask.text:
        each, key = words(ask.text), normalise_code(ask.text)
        tests = ["(" + " AND ".join([WORD_START] * len(each)) + ")"] if each else []
        tests += ["key GLOB ?"] if key else []
        where += f" AND ({' OR '.join(tests) or 'false'})"
        args += [part for word in each for part in (f"%{word}%", f"*[^0-9a-z]{word}*")] + ([f"{key}*"] if key else [])
    return where, args


def _order(where: str, args: list[object]) -> array:
    """The index rows (`doc` numbers) of an unfiltered expansion in its order, read once per snapshot: a
    page is then a slice and a primary-key read (0.3 ms), where LIMIT/OFFSET walked the index up to the
    offset (10 ms at offset 90,000). 98,186 ICD-10-CM codes take 0.8 MB."""
    memo = snapshot_memo()
    key = ("fhir-expansion-order", where, tuple(args))
    if key not in memo:
        memo[key] = array("q", (doc for (doc,) in get_index().db.execute(
            f"SELECT doc FROM codes WHERE {where} {INDEX_ORDER}", args)))
    return memo[key]


def _rows(docs: list[int]) -> list[tuple[str, str, str]]:
    """(iri, notation, label) of index rows by `doc`, in the order given."""
    if not docs:
        return []
    found = {doc: rest for doc, *rest in get_index().db.execute(
        f"SELECT doc, iri, notation, label FROM codes WHERE doc IN ({','.join('?' * len(docs))})", docs)}
    return [found[doc] for doc in docs]


def whole_system(ask: Request, offset: int, count: int) -> tuple[int, list[Member]]:
    """(total, the page's members) of a system's every code: its own codes from the search index (paged in
    the snapshot's order of them, or for a filter counted and paged in SQL), then its modifiers."""
    where, args = _index_where(ask)
    extra = modifiers(ask)
    if ask.text:  # counted in the same pass as the page (a filter reads every row of the system)
        rows = get_index().db.execute(f"SELECT iri, notation, label, count(*) OVER () FROM codes WHERE {where} "
                                      f"{INDEX_ORDER} LIMIT ? OFFSET ?", [*args, count, offset]).fetchall()
        total_own = rows[0][3] if rows else get_index().db.execute(
            f"SELECT count(*) FROM codes WHERE {where}", args).fetchone()[0]
        page = [Member(iri, code, label) for iri, code, label, _ in rows]
    else:
        order = _order(where, args)
        total_own = len(order)
        page = [Member(*row) for row in _rows(order[offset:offset + count].tolist())]
    if len(page) < count:
        start = max(0, offset - total_own)
        page += extra[start:start + count - len(page)]
    return total_own + len(extra), page


def with_labels(members: list[Member], system: CodeSystem) -> list[Member]:
    """The members with the label the search index shows for each (found by its system and key; a code
    the index files elsewhere, a modifier, keeps none and `describe` reads its display)."""
    keys = {normalise_code(m.code): m for m in members if not m.display}
    if not keys:
        return members
    # `+system`: not an index term, so SQLite reads the few keys by codes_key (19 ms by codes_range: a scan)
    rows = get_index().db.execute(f"SELECT iri, label FROM codes WHERE +system = ? AND key IN "
                                  f"({','.join('?' * len(keys))})", [system.id, *keys])
    labels = dict(rows.fetchall())
    return [m if m.display or m.iri not in labels else Member(m.iri, m.code, labels[m.iri]) for m in members]


def describe(members: list[Member], ask: Request) -> list[dict]:
    """Each member with what the answer shows of it, in the members' order: code, display, billable
    ("false" for a code that may not be billed; "true" too when the notSelectable property is asked) and
    status, and when asked for parents, children and designations ((use, text) pairs)."""
    if not members:
        return []
    asserted = [ASSERTED_PARTS["billable"]] if "notSelectable" in ask.properties else []
    if any(not m.display for m in members):
        asserted.append(ASSERTED_PARTS["display"])
    if ask.designations:
        asserted += DESIGNATION_PARTS
    parts = [f"{{ GRAPH <{GRAPH_ASSERTED}> {{ {' UNION '.join(asserted)} }} }}"] if asserted else []
    parts += [OPTIONAL_PARTS[name] for name in ("parent", "child") if name in ask.properties]
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    if parts:
        query = bind_rows(DETAILS.format(parts=" UNION ".join(parts)), ["c"],
                          ([str(ox.NamedNode(m.iri))] for m in members))
        for row in select(query):
            found[row["c"]["value"]][row["p"]["value"]].append(row["v"]["value"])
    status, abstract = statuses(), not_billable()
    described = []
    for m in members:
        facts = found[m.iri]
        billable = (facts.pop("billable", None) or [""])[0]
        described.append({
            "code": m.code, "display": m.display or (facts.pop("display", None) or [""])[0],
            "billable": "false" if m.iri in abstract else billable,
            "status": status.get(m.iri, ""), "parent": sorted(facts.pop("parent", [])),
            "child": sorted(facts.pop("child", [])),
            "designations": [(use, text) for use, texts in facts.items() for text in texts]})
    return described


def expand(ask: Request) -> Page:
    """One page of the value set: `count` codes from `offset` (all of them when the value set is small
    enough); 422 too-costly when a large value set is asked for without a count."""
    limit = MAX_EXPANSION if ask.count is None else min(ask.count, MAX_EXPANSION)
    if ask.root is not None:
        every = subtree(ask)
        total, members = len(every), with_labels(every[ask.offset:ask.offset + limit], ask.system)
    else:
        total, members = whole_system(ask, ask.offset, limit)
    if ask.count is None and total > MAX_EXPANSION:
        raise FHIRError(422, "too-costly", f"The value set {ask.url} has {total} codes, more than the "
                                           f"{MAX_EXPANSION} one answer holds: page it with count (at most "
                                           f"{MAX_EXPANSION}) and offset.", "too-costly")
    return Page(total, describe(members, ask))
