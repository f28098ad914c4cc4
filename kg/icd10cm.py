"""Import the whole ICD-10-CM release shipped by `simple-icd-10-cm` as a SKOS hierarchy.

Chapters and blocks are groupings (``.../icd10cm/chapter/6``, ``.../icd10cm/block/G89-G99``);
categories and subcategories are ``mc:ICD10CMCode``s at ``.../icd10cm/{code}`` with their dot, and
``mc:billable`` is true exactly on the leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, SKOS, XSD

from .curated import Curation
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
    """Every chapter, block, category and subcategory (or those in `only`), with label, parent and billable flag."""
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
        if code in seen and cls is not MC.ICD10CMBlock:
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
        iri_of[code] = iri


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
