"""Import the whole ICD-10-CM release shipped by `simple-icd-10-cm` as a SKOS hierarchy, with its notes.

Chapters and blocks are groupings (``.../icd10cm/chapter/6``, ``.../icd10cm/block/G89-G99``);
categories and subcategories are ``mc:ICD10CMCode``s at ``.../icd10cm/{code}`` with their dot, and
``mc:billable`` is true exactly on the leaves. Each item's Tabular List notes (inclusion terms,
Includes, Excludes1/2, Code first, Use additional code, Code also, notes, 7th characters) become
``mc:TabularNote``s minted under it (ontology/icd10cm.ttl), each linked to the items it names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD

from .curated import Curation
from .icd10cm_mentions import CHAPTER_RANGE, Mention, mentions
from .namespaces import DCTERMS, ID, ID_BASE, MC
from .records import SourceError

SCHEME = URIRef(ID_BASE + "icd10cm")
FHIR_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
OID = "2.16.840.1.113883.6.90"

Triple = tuple[URIRef, URIRef, object]


def _cm():
    import simple_icd_10_cm as cm  # imported lazily: parsing its XML takes ~2 s

    return cm


def release() -> str:
    from importlib.metadata import version

    return f"April 1 2026 release (FY2026), simple-icd-10-cm {version('simple-icd-10-cm')}"


def selection(curation: Curation, codes: Iterable[str] | None) -> set[str]:
    """The items to import instead of the whole release: `codes`, the codes the curated records name,
    and every ancestor of those (category, block, chapter), so the hierarchy stays whole."""
    cm = _cm()
    wanted = {code for _, _, code in curation.icd_references} | set(codes or ())
    unknown = sorted(wanted.difference(cm.get_all_codes(True)))
    if unknown:
        raise ValueError(f"not ICD-10-CM items of the {release()} (write codes with their dot): {', '.join(unknown)}")
    return wanted.union(*(cm.get_ancestors(code) for code in wanted))


def icd_triples(only: set[str] | None = None) -> Iterator[Triple]:
    """Every chapter, block, category and subcategory (or those in `only`), with label, parent, billable flag and
    notes."""
    cm = _cm()
    yes, no = Literal(True), Literal(False)
    source = ID["source/ICD-10-CM-2026"]
    yield SCHEME, RDF.type, MC.CodeSystem
    yield SCHEME, SKOS.prefLabel, Literal("ICD-10-CM", lang="en")
    yield SCHEME, MC.fhirSystem, Literal(FHIR_SYSTEM, datatype=XSD.anyURI)
    yield SCHEME, MC.oid, Literal(OID)
    yield SCHEME, MC.release, Literal(release())
    yield SCHEME, DCTERMS.source, source
    seen: set[str] = set()
    iri_of: dict[str, URIRef] = {}
    names = Resolver(cm)
    items = cm.get_all_codes(True)  # in hierarchy order: every parent before its children
    for code in items if only is None else (item for item in items if item in only):
        # 39 single-category blocks share their category's code: the first occurrence is the block
        if cm.is_chapter(code):
            iri, cls, parent = URIRef(f"{ID_BASE}icd10cm/chapter/{code}"), MC.ICD10CMChapter, None
        elif cm.is_block(code) and code not in seen:
            iri, cls, parent = URIRef(f"{ID_BASE}icd10cm/block/{code}"), MC.ICD10CMBlock, cm.get_parent(code)
            if cm.is_category(code):  # the category's parent is this block, not the chapter
                parent = _chapter_of(cm, code)
        else:
            iri = URIRef(f"{ID_BASE}icd10cm/{code}")
            cls = MC.ICD10CMCategory if cm.is_category(code) else MC.ICD10CMSubcategory
            parent = cm.get_parent(code)
        parent_iri = iri_of.get(parent) if parent else None
        if code in seen and cls != MC.ICD10CMBlock:
            parent_iri = iri_of[code]  # the category under its same-named block
        seen.add(code)
        yield iri, RDF.type, cls
        yield iri, SKOS.notation, Literal(code)
        yield iri, SKOS.prefLabel, Literal(cm.get_description(code), lang="en")
        yield iri, SKOS.inScheme, SCHEME
        if parent_iri is None:
            yield iri, SKOS.topConceptOf, SCHEME
        else:
            yield iri, SKOS.broader, parent_iri
        if cls in (MC.ICD10CMCategory, MC.ICD10CMSubcategory):
            yield iri, MC.billable, yes if cm.is_leaf(code) else no
        yield from note_triples(cm, code, iri, cls == MC.ICD10CMBlock, names, only, source)
        iri_of[code] = iri


# (property, IRI segment, the release's notes of an item: cm, code, prioritize_blocks -> lines), in the
# order a code page shows them
NOTE_KINDS: tuple[tuple[URIRef, str, Callable[..., list[str]]], ...] = (
    (MC.inclusionTerm, "inclusion-term", lambda cm, code, block: cm.get_inclusion_term(code, block)),
    (MC.includes, "includes", lambda cm, code, block: cm.get_includes(code, block)),
    (MC.excludes1, "excludes1", lambda cm, code, block: cm.get_excludes1(code, block)),
    (MC.excludes2, "excludes2", lambda cm, code, block: cm.get_excludes2(code, block)),
    (MC.codeFirst, "code-first", lambda cm, code, block: _lines(cm.get_code_first(code, False, block))),
    (MC.useAdditionalCode, "use-additional-code",
     lambda cm, code, block: _lines(cm.get_use_additional_code(code, False, block))),
    (MC.codeAlso, "code-also", lambda cm, code, block: _lines(cm.get_code_also(code, False, block))),
    (MC.generalNote, "note", lambda cm, code, block: _lines(cm.get_notes(code, False, block))),
    (MC.seventhCharacterNote, "seventh-character-note",
     lambda cm, code, block: _lines(cm.get_seven_chr_note(code, False, block))),
)


def _lines(text: str) -> list[str]:
    """A note the package joins into one string, one line per note."""
    return [line for line in text.split("\n") if line.strip()]


def note_triples(cm, code: str, iri: URIRef, block: bool, names: Resolver, only: set[str] | None,
                 source: URIRef) -> Iterator[Triple]:
    """The notes the release (`source`) states at one item (`block`: the block of a single-category block, not
    its category), each linked to the items it names (those imported, when `only` limits the import)."""
    if cm.is_extended_subcategory(code):  # made by the package from a 7th character: it states no notes
        return
    for prop, segment, lines in NOTE_KINDS:
        for n, text in enumerate(lines(cm, code, block), start=1):
            note = URIRef(f"{iri}/{segment}/{n}")
            yield iri, prop, note
            yield note, RDF.type, MC.TabularNote
            yield note, RDFS.label, Literal(text.strip(), lang="en")
            yield note, DCTERMS.source, source
            for item in names.items_named(text):
                if only is None or item in only:
                    yield note, MC.refersTo, names.iri(item)
    for character, meaning in cm.get_seven_chr_def(code, False, block).items():
        note = URIRef(f"{iri}/seventh-character/{character}")
        yield iri, MC.seventhCharacter, note
        yield note, RDF.type, MC.SeventhCharacter
        yield note, MC.character, Literal(character)
        yield note, RDFS.label, Literal(meaning.strip(), lang="en")
        yield note, DCTERMS.source, source


class Resolver:
    """Which items of the release a note's mentions name, and their IRIs (ranges cached: notes repeat them)."""

    def __init__(self, cm) -> None:
        self.cm = cm
        self.order = cm.get_all_codes(True)
        # a single-category block's name is at its category (cm.get_index is a linear search)
        self.position = {code: i for i, code in enumerate(self.order)}
        self.chapters = {m.group(1): code for code in self.order if cm.is_chapter(code)
                         if (m := CHAPTER_RANGE.search(cm.get_description(code)))}
        self.ranges: dict[tuple[str, str], list[str]] = {}

    def items_named(self, text: str) -> list[str]:
        """The items the mentions of `text` name, once each, in the order they are written."""
        return list(dict.fromkeys(item for mention in mentions(text) for item in self.items(mention)))

    def items(self, mention: Mention) -> list[str]:
        """A code itself; a range as the block or chapter of that name, else the items from its first code to its
        last (`_span`); the ends that exist when the range is not in the release."""
        cm, first, last = self.cm, mention.first, mention.last
        if last is None:
            return [first] if cm.is_valid_item(first) else []
        name = f"{first}-{last}"
        if name in self.chapters:
            return [self.chapters[name]]
        if cm.is_valid_item(name):
            return [name]
        if not (cm.is_valid_item(first) and cm.is_valid_item(last)) or self.position[first] > self.position[last]:
            return [end for end in (first, last) if cm.is_valid_item(end)]
        if (first, last) not in self.ranges:
            self.ranges[first, last] = self._span(first, last)
        return self.ranges[first, last]

    def _span(self, first: str, last: str) -> list[str]:
        """The items from `first` to `last` in release order, an item standing for the items below it unless
        the range ends inside it."""
        cm, i, stop, found = self.cm, self.position[first], self.position[last], []
        while i <= stop:
            item = self.order[i]
            below = len(cm.get_descendants(item))
            # a single-category block (followed by its same-named category), or an item the range ends
            # inside: its children stand for it
            if self.order[i + 1:i + 2] == [item] or i < stop <= i + below:
                i += 1
                continue
            found.append(item)
            i += 1 + below
        return list(dict.fromkeys(found))

    def iri(self, item: str) -> URIRef:
        """A chapter's, a block's or a code's IRI (a single-category block's name is its category's code)."""
        if self.cm.is_chapter(item):
            return URIRef(f"{ID_BASE}icd10cm/chapter/{item}")
        if self.cm.is_block(item) and not self.cm.is_category(item):
            return URIRef(f"{ID_BASE}icd10cm/block/{item}")
        return URIRef(f"{ID_BASE}icd10cm/{item}")


def _chapter_of(cm, code: str) -> str:
    ancestors = cm.get_ancestors(code)
    return next(a for a in ancestors if cm.is_chapter(a))


def check_references(curation: Curation) -> None:
    """Every ICD-10-CM code a curated record names must exist in the release."""
    cm = _cm()
    for record, field, code in curation.icd_references:
        if not cm.is_valid_item(code) or cm.is_chapter(code) or code != cm.add_dot(code):
            raise SourceError(record.path, record.line_of(field), field,
                              f"'{code}' is not an ICD-10-CM code of the {release()} (write it with its dot)")
