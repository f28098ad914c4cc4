"""ICD-10-CM over time: the earlier releases `simple-icd-10-cm` shipped, compared release by release.

Every code keeps its one IRI. The graph says which releases hold it (``mc:inRelease``) and records
each change between two consecutive releases as an ``mc:CodeChange`` (an addition, a deletion, or a
revision of one property: label, billable flag, one kind of Tabular List note) with the values before
and after; a code no longer in the current release is an ``mc:DeletedCode`` with the release that
deleted it and, where the release's structure shows them, its replacements. The state at a date is
that of the latest release in force on it: what each earlier release says differently (`Volatile`)
becomes its own named graphs (kg.release_graphs), which `as_of` selects.

The earlier releases come from the package's wheels (kg.release_files fetches or finds them); the
releases are read with the package's own loader (``change_version``), so codes, 7th-character
extensions and leaves are the package's, and the installed release is loaded again afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import NamedTuple

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD

from .icd10cm import NOTE_KINDS, SCHEME, Resolver, _cm, icd_triples
from .namespaces import DCTERMS, ID, ID_BASE, MC

Triple = tuple[URIRef, URIRef, object]


@dataclass(frozen=True)
class Release:
    """One ICD-10-CM release the package shipped: its notation (YYYY-MM), the date it took effect, the package
    version that ships it, and the curated source (kg/sources/sources.yaml) that names it."""

    notation: str
    effective: date
    package: str
    title: str
    source: str

    @property
    def iri(self) -> URIRef:
        return URIRef(f"{ID_BASE}release/icd10cm/{self.notation}")


#: the releases on the registry, oldest first (1.0.x-1.2.0 ship January 2021, 1.3.0 and 1.4.0 the same April 2025
#: files, 1.5.0 April 2026); the installed package ships the last
RELEASES = (
    Release("2021-01", date(2021, 1, 1), "1.2.0", "ICD-10-CM January 2021 release", "ICD-10-CM-2021"),
    Release("2025-04", date(2025, 4, 1), "1.4.0", "ICD-10-CM April 1 2025 release", "ICD-10-CM-2025"),
    Release("2026-04", date(2026, 4, 1), "1.5.0", "ICD-10-CM April 1 2026 release (FY2026)", "ICD-10-CM-2026"),
)
CURRENT = RELEASES[-1]
EARLIER = RELEASES[:-1]
BY_NOTATION = {r.notation: r for r in RELEASES}


class State(NamedTuple):
    """What one release says of a code: its label, whether it is billable (a leaf), and its notes (one tuple of
    lines per kg.icd10cm.NOTE_KINDS entry)."""

    label: str
    billable: bool
    notes: tuple[tuple[str, ...], ...]


#: (aspect, the property a revision of it names) for the label, the billable flag and each kind of note
ASPECTS: tuple[tuple[str, URIRef], ...] = (("label", SKOS.prefLabel), ("billable", MC.billable),
                                           *((segment, prop) for prop, segment, _ in NOTE_KINDS))
NOTE_INDEX = {segment: i for i, (_, segment, _) in enumerate(NOTE_KINDS)}


#: the package's node attribute holding each kind of note (kg.icd10cm.NOTE_KINDS reads them through its getters)
NOTE_ATTRIBUTES = {"inclusion-term": "inclusion_term", "includes": "includes", "excludes1": "excludes1",
                   "excludes2": "excludes2", "code-first": "code_first", "use-additional-code": "use_additional_code",
                   "code-also": "code_also", "note": "notes", "seventh-character-note": "seven_chr_note"}
NOTE_ORDER = tuple(NOTE_ATTRIBUTES[segment] for _, segment, _ in NOTE_KINDS)
#: the package module's globals a release fills in (change_version clears and refills them in place)
PACKAGE_STATE = ("_chapter_list", "_code_to_node", "_all_codes_list", "_all_codes_list_no_dots",
                 "_code_to_index_dictionary")


def _package():
    import simple_icd_10_cm.simple_icd_10_cm as package  # the module itself: its loaded tree is not exported

    return package


def _note_lines(value: str | list[str]) -> tuple[str, ...]:
    if not value:
        return ()
    lines = value.split("\n") if isinstance(value, str) else value
    return tuple(line.strip() for line in lines if line.strip())


def release_state(only: set[str] | None = None) -> dict[str, State]:
    """Every category and subcategory of the release the package has loaded (those in `only`), with its state.

    Read from the package's tree rather than through its getters, which look each code up again (~10x
    slower over 98k codes, for the same values: the tests compare them).
    """
    states: dict[str, State] = {}
    stack = list(reversed(_package()._chapter_list))
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.children))
        if node.type in ("chapter", "section") or (only is not None and node.name not in only):
            continue
        # made by the package from a 7th character: it states no notes of its own
        notes = () if node.type == "extended subcategory" else tuple(
            _note_lines(getattr(node, attribute)) for attribute in NOTE_ORDER)
        states.setdefault(node.name, State(node.description, not node.children, notes))
    return states


@contextlib.contextmanager
def loaded(code_list: Path, tabular: Path) -> Iterator[None]:
    """The release in these files loaded into the package; afterwards the release it held before, put back as it
    was (reloading the installed release would take as long as loading this one)."""
    package = _package()
    saved = {name: copy.copy(getattr(package, name)) for name in PACKAGE_STATE}
    read = False
    try:
        package.change_version(all_codes_file_path=str(code_list), classification_data_file_path=str(tabular),
                               suppress_warnings=True)
        read = True
        yield
    finally:
        if read:  # (a load that failed left the package's own tree in place)
            _unlink(package._chapter_list)
        for name, value in saved.items():
            held = getattr(package, name)
            held.clear()
            (held.update if isinstance(held, dict) else held.extend)(value)


def _unlink(chapters: list) -> None:
    """Empty every node of a loaded tree: its nodes point at their parents and ancestors, and the build runs with
    the cyclic collector paused (kg.pipeline), so a tree left linked would stay in memory to the end."""
    stack = list(chapters)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        node.__dict__.clear()


def _values(state: State, aspect: str) -> object:
    if aspect == "label":
        return state.label
    if aspect == "billable":
        return state.billable
    return state.notes[NOTE_INDEX[aspect]] if state.notes else ()


def _literal(aspect: str, value: object) -> Literal:
    if aspect == "billable":
        return Literal(bool(value))
    if aspect == "label":
        return Literal(str(value), lang="en")
    return Literal("\n".join(value), lang="en")  # type: ignore[arg-type]


def _replacements(code: str, added: list[tuple[str, State]], after: dict[str, State]) -> list[str]:
    """The billable codes the later release adds (`added`) under the deleted code's nearest remaining ancestor, with
    its 7th character when it has one (S30.1XXA -> the added S30.1-…A codes)."""
    stem = code
    while stem and stem not in after:
        stem = stem[:-1].rstrip(".")
    if not stem:
        return []
    seventh = code[-1] if len(code.replace(".", "")) == 7 else None
    return sorted(c for c, state in added
                  if c.startswith(stem) and c != stem and state.billable
                  and (seventh is None or (len(c.replace(".", "")) == 7 and c[-1] == seventh)))


@dataclass(frozen=True)
class Volatile:
    """What an earlier release says differently from the current one: the codes whose state or parent differ, or
    that only one of the two holds (`codes`), those of them it holds (`held`), and its ICD-10-CM triples about
    them, their ancestors and their descendants (the premises of their closure: kg.release_graphs)."""

    release: Release
    codes: frozenset[str]
    held: frozenset[str]
    triples: tuple[Triple, ...]


@dataclass
class History:
    """The releases read (oldest first) and each one's codes with their states; `skipped` says which known
    releases were not available; `volatile`, for each earlier release, what it says differently, and `now` the
    current release's ICD-10-CM triples about the codes any of them names."""

    releases: list[Release]
    states: list[dict[str, State]]
    skipped: list[str]
    volatile: list[Volatile] = field(default_factory=list)
    now: tuple[Triple, ...] = ()

    def triples(self) -> Iterator[Triple]:
        """The releases, each code's membership, every change between consecutive releases, and the codes the
        current release no longer holds."""
        last_seen: dict[str, State] = {}
        for i, (release, states) in enumerate(zip(self.releases, self.states, strict=True)):
            yield from _release_triples(release, self.releases[i - 1] if i else None)
            for code in states:
                yield _iri(code), MC.inRelease, release.iri
            if i:
                yield from _changes(release, self.states[i - 1], states)
            last_seen.update(states)
        for code, state in last_seen.items():
            if code not in self.states[-1]:
                yield from _deleted(code, state)

    def counts(self) -> str:
        return ", ".join(f"{r.notation}: {len(s):,} codes" for r, s in zip(self.releases, self.states, strict=True))


@functools.lru_cache(maxsize=1 << 18)
def _iri(code: str) -> URIRef:
    return URIRef(f"{ID_BASE}icd10cm/{code}")


def _release_triples(release: Release, previous: Release | None) -> Iterator[Triple]:
    iri = release.iri
    yield iri, RDF.type, MC.CodeSetRelease
    yield iri, SKOS.notation, Literal(release.notation)
    yield iri, RDFS.label, Literal(release.title, lang="en")
    yield iri, MC.releaseOf, SCHEME
    yield iri, MC.releaseDate, Literal(release.effective.isoformat(), datatype=XSD.date)
    yield iri, MC.packageVersion, Literal(f"simple-icd-10-cm {release.package}")
    yield iri, DCTERMS.source, ID[f"source/{release.source}"]
    if previous is not None:
        yield iri, MC.previousRelease, previous.iri


def _change(code: str, release: Release, aspect: str, cls: URIRef) -> Iterator[Triple]:
    change = URIRef(f"{ID_BASE}icd10cm/{code}/change/{release.notation}/{aspect}")
    yield change, RDF.type, cls
    yield change, MC.changedCode, _iri(code)
    yield change, MC.changeIn, release.iri
    yield change, DCTERMS.source, ID[f"source/{release.source}"]


def _changes(release: Release, before: dict[str, State], after: dict[str, State]) -> Iterator[Triple]:
    """The additions, deletions and revisions from the release before to `release`."""
    for code, state in after.items():
        old = before.get(code)
        if old is None:
            yield from _change(code, release, "added", MC.CodeAddition)
            change = URIRef(f"{ID_BASE}icd10cm/{code}/change/{release.notation}/added")
            yield change, RDFS.label, Literal(state.label, lang="en")
            yield change, MC.valueAfter, Literal(state.billable)
            continue
        if old == state:
            continue
        for aspect, prop in ASPECTS:
            was, now = _values(old, aspect), _values(state, aspect)
            if was == now or (aspect not in ("label", "billable") and not (old.notes and state.notes)):
                continue
            change = URIRef(f"{ID_BASE}icd10cm/{code}/change/{release.notation}/{aspect}")
            yield from _change(code, release, aspect, MC.CodeRevision)
            yield change, MC.changedProperty, prop
            yield change, MC.valueBefore, _literal(aspect, was)
            yield change, MC.valueAfter, _literal(aspect, now)
    added = [(code, state) for code, state in after.items() if code not in before]
    for code, state in before.items():
        if code not in after:
            change = URIRef(f"{ID_BASE}icd10cm/{code}/change/{release.notation}/deleted")
            yield from _change(code, release, "deleted", MC.CodeDeletion)
            yield change, RDFS.label, Literal(state.label, lang="en")
            yield change, MC.valueBefore, Literal(state.billable)
            for replacement in _replacements(code, added, after):
                yield _iri(code), MC.replacedBy, _iri(replacement)
                yield change, MC.replacedBy, _iri(replacement)
            yield _iri(code), MC.deletedIn, release.iri


def _deleted(code: str, state: State) -> Iterator[Triple]:
    """A code the current release no longer holds: it still resolves, with its last label."""
    iri = _iri(code)
    yield iri, RDF.type, MC.DeletedCode
    yield iri, SKOS.notation, Literal(code)
    yield iri, SKOS.prefLabel, Literal(state.label, lang="en")
    yield iri, MC.formerlyInScheme, SCHEME


def release_parents() -> dict[str, str]:
    """Each category's and subcategory's parent in the release the package has loaded (a block, or a code)."""
    parents: dict[str, str] = {}
    stack = list(_package()._chapter_list)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type not in ("chapter", "section") and node.parent is not None:
            parents.setdefault(node.name, node.parent.name)
    return parents


ICD_PREFIX = f"{ID_BASE}icd10cm/"


def owner(iri: object) -> str | None:
    """The ICD-10-CM item an IRI belongs to: a code (the code, its notes, its change records), or `chapter/N`,
    `block/X`; None for any other term."""
    if not isinstance(iri, str) or not str.startswith(iri, ICD_PREFIX):  # (str's own: rdflib's is slower)
        return None
    parts = str.split(str.__getitem__(iri, slice(len(ICD_PREFIX), None)), "/", 2)
    return f"{parts[0]}/{parts[1]}" if parts[0] in ("chapter", "block") and len(parts) > 1 else parts[0]


def _premises(held: set[str], universe: set[str], release: Release) -> tuple[Triple, ...]:
    """The loaded release's ICD-10-CM triples about the codes `held`, their ancestors and their descendants (those
    in `universe`, the build's codes), with their notes' sources named after `release`."""
    cm = _cm()
    items = set(held)
    for code in held:
        items.update(cm.get_ancestors(code))
        items.update(d for d in cm.get_descendants(code) if d in universe)
    names, named = Resolver(cm), set()
    for code in held:  # the items their notes name: the import links a note only to items it imports
        if not cm.is_extended_subcategory(code):
            for _, _, lines in NOTE_KINDS:
                for line in lines(cm, code, False):
                    named.update(names.items_named(line))
    keys = {key for item in items for key in (item, f"chapter/{item}", f"block/{item}")}
    source, now = ID[f"source/{release.source}"], ID[f"source/{CURRENT.source}"]
    return tuple((s, p, source if o == now else o) for s, p, o in icd_triples(items | named) if owner(s) in keys)


def _volatile(release: Release, state: dict[str, State], parents: dict[str, str], current: dict[str, State],
              current_parents: dict[str, str]) -> Volatile:
    """What the loaded release (`state`, `parents`) says differently from the current one."""
    codes = {c for c in set(state) | set(current)
             if (state.get(c), parents.get(c)) != (current.get(c), current_parents.get(c))}
    held = codes & set(state)
    return Volatile(release, frozenset(codes), frozenset(held), _premises(held, set(state) | set(current), release))


def read_history(files: Iterable[tuple[Release, Path, Path]], only: set[str] | None,
                 skipped: Iterable[str] = ()) -> History:
    """Each earlier release's codes (those named in `only`, and the ones in the same categories that the current
    release no longer holds), then the current release's; and what each earlier release says differently."""
    current = release_state(only)
    current_parents = release_parents()
    # a partial build keeps, of an earlier release, its codes and those of the same categories since deleted
    keep = None if only is None else (set(current), {code[:3] for code in current}, set(release_state()))
    releases, states, volatile = [], [], []
    for release, code_list, tabular in sorted(files, key=lambda f: f[0].effective):
        with loaded(code_list, tabular):
            state = release_state()
            if keep is not None:
                named, categories, everything = keep
                state = {c: s for c, s in state.items()
                         if c in named or (c[:3] in categories and c not in everything)}
            volatile.append(_volatile(release, state, release_parents(), current, current_parents))
        releases.append(release)
        states.append(state)
    changed = set().union(*(v.codes for v in volatile)) & set(current)
    now = _premises(changed, set(current), CURRENT) if changed else ()
    return History([*releases, CURRENT], [*states, current], list(skipped), volatile, now)
