"""The ICD-10-CM notes on a code page: the item's own, then those it inherits from the items above it.

The graph states each note once, at the item the Tabular List states it (ontology/icd10cm.ttl); a note
of a category, block or chapter applies to every code below it, so the page reads the notes of the
code and of its ancestors (the chain of skos:broader the page has read) in one query and shows the
ancestors' as inherited, nearest first. Inclusion terms belong to their code alone and are never
inherited. In a note's text, the codes, blocks and chapters it names (mc:refersTo) are linked where
the text writes them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from .terms import ASSERTED, MCNS, iri_list, natural, select_terms
from .view import Link, View

#: the kinds of note, in the order a page shows them (the Tabular List's own order)
KINDS = tuple(MCNS + name for name in (
    "inclusionTerm", "includes", "excludes1", "excludes2", "codeFirst", "useAdditionalCode", "codeAlso",
    "generalNote", "seventhCharacterNote", "seventhCharacter"))
NOT_INHERITED = {MCNS + "inclusionTerm"}
SEVENTH_CHARACTER = MCNS + "seventhCharacter"
RANGE_IN_LABEL = re.compile(r"\(([A-Z0-9.]+-[A-Z0-9.]+)\)$")  # a chapter's label ends with its range


@dataclass
class Note:
    """One note: its text, the character it defines (7th characters) and the items it names."""

    iri: str
    text: str
    character: str = ""
    targets: list[str] = field(default_factory=list)


@dataclass
class NoteRows:
    """The notes of a code and its ancestors: item -> kind -> notes, and the ancestors nearest first."""

    by_item: dict[str, dict[str, list[Note]]]
    ancestors: list[str]

    def iris(self) -> set[str]:
        """Every item a note belongs to or names: the page loads their labels."""
        found = set(self.by_item)
        for kinds in self.by_item.values():
            found.update(t for notes in kinds.values() for n in notes for t in n.targets)
        return found


def read_notes(iri: str, ancestors: list[str]) -> NoteRows:
    """The notes stated at `iri` and at each of its `ancestors` (nearest first)."""
    by_item: dict[str, dict[str, dict[str, Note]]] = defaultdict(lambda: defaultdict(dict))
    # the items as VALUES: Oxigraph evaluates `iri skos:broader* ?item` joined with the rest by a scan (~3 s);
    # in a sub-select, which Virtuoso 7.2 joins first (40 ms as a bare VALUES block, 13 ms so)
    for row in select_terms(f"""SELECT ?item ?kind ?n ?text ?char ?target WHERE {{
        {{ SELECT ?item WHERE {{ VALUES ?item {{ {iri_list([iri, *ancestors])} }} }} }}
        GRAPH <{ASSERTED}> {{ ?item ?kind ?n }} ?n a mc:TabularNote ; rdfs:label ?text .
        OPTIONAL {{ ?n mc:character ?char }} OPTIONAL {{ ?n mc:refersTo ?target }} }}"""):
        notes = by_item[row["item"].value][row["kind"].value]
        note = notes.setdefault(row["n"].value, Note(row["n"].value, row["text"].value,
                                                     row["char"].value if "char" in row else ""))
        if "target" in row and row["target"].value not in note.targets:
            note.targets.append(row["target"].value)
    ordered = {item: {kind: sorted(notes.values(), key=lambda n: natural(n.iri)) for kind, notes in kinds.items()}
               for item, kinds in by_item.items()}
    return NoteRows(ordered, [a for a in ancestors if a in ordered])


def note_sections(iri: str, rows: NoteRows, view: View) -> list[dict]:
    """Per kind of note that applies: its heading, the code's own notes and the inherited ones by item (and for
    7th characters, the code's own: the last of a seven-character code)."""
    notation = view.link(iri).notation.replace(".", "")
    sections = []
    for kind in KINDS:
        own = rows.by_item.get(iri, {}).get(kind, [])
        inherited = [] if kind in NOT_INHERITED else [
            (view.link(item), rows.by_item[item][kind]) for item in rows.ancestors if kind in rows.by_item[item]]
        if own or inherited:
            sections.append({"kind": kind, "heading": _capitalised(view.vocab.label(kind)), "id": kind[len(MCNS):],
                             "own": [_shown(n, view) for n in own],
                             "inherited": [(link, [_shown(n, view) for n in notes]) for link, notes in inherited],
                             "characters": kind == SEVENTH_CHARACTER,
                             "this_character": notation[6:] if len(notation) == 7 else ""})
    return sections


def _shown(note: Note, view: View) -> dict:
    return {"iri": note.iri, "character": note.character, "segments": segments(note.text, note.targets, view)}


def segments(text: str, targets: list[str], view: View) -> list[tuple[str, Link | None]]:
    """A note's text cut into plain runs and the places that write an item it names, each with its link:
    a code as its notation (with a trailing '.-' or '-' for its subdivisions), a block by its range, a
    chapter as 'Chapter N' or by its range."""
    names: dict[str, Link] = {}
    for target in targets:
        link = view.link(target)
        for name in _names(link):
            names.setdefault(name, link)
    if not names:
        return [(text, None)]
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    written = re.compile(rf"(?<![0-9A-Za-z.])({alternatives})(?:\.?-)?(?![0-9A-Za-z])(?!\.[0-9A-Za-z])")
    out: list[tuple[str, Link | None]] = []
    at = 0
    for match in written.finditer(text):
        if match.start() > at:
            out.append((text[at:match.start()], None))
        out.append((match[0], names[match[1]]))
        at = match.end()
    if at < len(text):
        out.append((text[at:], None))
    return out


def _names(link: Link) -> list[str]:
    """How a note may write an item: a chapter as 'Chapter N' or by the range its label ends with."""
    if link.level != "chapter":
        return [link.notation] if link.notation else []
    in_label = RANGE_IN_LABEL.search(link.label)
    return [f"Chapter {link.notation}", f"chapter {link.notation}"] + ([in_label.group(1)] if in_label else [])


def _capitalised(label: str) -> str:
    """A heading from a property's label ('code first' -> 'Code first'; 'Excludes1' stays)."""
    return label[:1].upper() + label[1:]
