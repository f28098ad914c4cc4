"""What pages call things: standard RDF, RDFS, SKOS, OWL and DCMI terms, code classes and ICD-10-CM levels.

The ontology's own labels are read from the graph (`vocab.py`); these are for the vocabularies the
graph uses but does not define, so that a page never shows a bare IRI where a word would do.
"""

from __future__ import annotations

from ..codes import SYSTEM_LABELS
from .terms import (
    BROADER,
    DCT,
    DEFINITION,
    LABEL,
    MCNS,
    NOTATION,
    OWL,
    PREF,
    RDF_NS,
    RDFS,
    SKOS,
    SOURCE,
    TITLE,
    TYPE,
)

#: the code systems by their path segment; a scheme's index lists its members, so the one whose
#: codes are each "a modifier" is headed in the plural
SCHEME_NAMES = {**SYSTEM_LABELS, "modifier": "Modifiers"}
CODE_CLASSES = {MCNS + c for c in ("Code", "CPTCode", "HCPCSCode", "ICD10CMCode", "Modifier", "ICD10CMCategory",
                                   "ICD10CMSubcategory", "ICD10CMGrouping", "ICD10CMChapter", "ICD10CMBlock",
                                   "DeletedCode")}
ICD_LEVELS = {MCNS + "ICD10CMChapter": "chapter", MCNS + "ICD10CMBlock": "block",
              MCNS + "ICD10CMCategory": "category", MCNS + "ICD10CMSubcategory": "subcategory"}
ONTOLOGY_KINDS = ("owl:Ontology", "owl:Class", "owl:ObjectProperty", "owl:DatatypeProperty",
                  "owl:AnnotationProperty", "owl:NamedIndividual")
STANDARD_LABELS = {
    TYPE: "type", LABEL: "label", RDFS + "comment": "comment", RDFS + "seeAlso": "see also",
    RDFS + "subClassOf": "subclass of", RDFS + "subPropertyOf": "subproperty of", RDFS + "domain": "domain",
    RDFS + "range": "range", PREF: "preferred label", SKOS + "altLabel": "alternative label", NOTATION: "notation",
    DEFINITION: "definition", SKOS + "note": "note", SKOS + "inScheme": "in scheme",
    SKOS + "topConceptOf": "top concept of", SKOS + "hasTopConcept": "has top concept", BROADER: "broader",
    SKOS + "narrower": "narrower", SKOS + "broaderTransitive": "broader (transitive)",
    SKOS + "narrowerTransitive": "narrower (transitive)", SKOS + "exactMatch": "exact match",
    SKOS + "closeMatch": "close match", SKOS + "broadMatch": "broad match", SKOS + "narrowMatch": "narrow match",
    SKOS + "relatedMatch": "related match", SKOS + "mappingRelation": "mapping relation",
    SKOS + "semanticRelation": "semantic relation", SKOS + "related": "related", SKOS + "Concept": "SKOS concept",
    SKOS + "ConceptScheme": "SKOS concept scheme", OWL + "Class": "OWL class", OWL + "Thing": "thing",
    OWL + "NamedIndividual": "named individual", OWL + "ObjectProperty": "object property",
    OWL + "DatatypeProperty": "datatype property", OWL + "Ontology": "ontology",
    OWL + "inverseOf": "inverse of", OWL + "disjointWith": "disjoint with", OWL + "equivalentClass": "equivalent class",
    OWL + "propertyChainAxiom": "property chain", OWL + "versionInfo": "version",
    OWL + "SymmetricProperty": "symmetric property", OWL + "FunctionalProperty": "functional property",
    OWL + "TransitiveProperty": "transitive property", RDF_NS + "Statement": "statement",
    RDF_NS + "subject": "subject", RDF_NS + "predicate": "predicate", RDF_NS + "object": "object",
    RDF_NS + "Property": "property", SOURCE: "source", TITLE: "title", DCT + "description": "description",
    DCT + "license": "license", "http://www.w3.org/ns/prov#Entity": "entity",
}
# JSON-LD terms for standard properties; `True` marks IRI-valued ones
STANDARD_TERMS = {
    "label": (LABEL, False), "comment": (RDFS + "comment", False), "seeAlso": (RDFS + "seeAlso", True),
    "subClassOf": (RDFS + "subClassOf", True), "subPropertyOf": (RDFS + "subPropertyOf", True),
    "domain": (RDFS + "domain", True), "range": (RDFS + "range", True), "prefLabel": (PREF, False),
    "altLabel": (SKOS + "altLabel", False), "notation": (NOTATION, False), "definition": (DEFINITION, False),
    "note": (SKOS + "note", False), "inScheme": (SKOS + "inScheme", True),
    "topConceptOf": (SKOS + "topConceptOf", True), "hasTopConcept": (SKOS + "hasTopConcept", True),
    "broader": (BROADER, True), "narrower": (SKOS + "narrower", True),
    "broaderTransitive": (SKOS + "broaderTransitive", True), "narrowerTransitive": (SKOS + "narrowerTransitive", True),
    "exactMatch": (SKOS + "exactMatch", True), "closeMatch": (SKOS + "closeMatch", True),
    "mappingRelation": (SKOS + "mappingRelation", True), "source": (SOURCE, True), "title": (TITLE, False),
    "description": (DCT + "description", False), "license": (DCT + "license", True),
    "subject": (RDF_NS + "subject", True), "predicate": (RDF_NS + "predicate", True),
    "object": (RDF_NS + "object", False), "inverseOf": (OWL + "inverseOf", True),
    "disjointWith": (OWL + "disjointWith", True), "versionInfo": (OWL + "versionInfo", False),
}
