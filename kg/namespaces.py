"""IRIs of the public vocabulary: the contract users' saved queries rely on."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from rdflib import Namespace, URIRef

MC = Namespace("https://w3id.org/medcode/ontology#")
ID_BASE = "https://w3id.org/medcode/id/"
ID = Namespace(ID_BASE)
ONTOLOGY_IRI = URIRef("https://w3id.org/medcode/ontology")
GRAPH_ASSERTED = URIRef("https://w3id.org/medcode/graph/asserted")
GRAPH_INFERRED = URIRef("https://w3id.org/medcode/graph/inferred")
#: where `medcode publish` writes the snapshot's metadata on a remote engine (not part of any query's dataset)
GRAPH_META = URIRef("https://w3id.org/medcode/graph/meta")
#: why each inferred triple holds (kg.derivations): a named graph of its own, outside every `inference=` default
GRAPH_DERIVATIONS = URIRef("https://w3id.org/medcode/graph/derivations")
DCTERMS = Namespace("http://purl.org/dc/terms/")
PROV = Namespace("http://www.w3.org/ns/prov#")

PREFIXES: dict[str, str] = {
    "mc": str(MC),
    "id": ID_BASE,
    "cpt": ID_BASE + "cpt/",
    "hcpcs": ID_BASE + "hcpcs/",
    "icd10cm": ID_BASE + "icd10cm/",
    "modifier": ID_BASE + "modifier/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": str(DCTERMS),
    "prov": str(PROV),
}


def _shipped(name: str) -> Path:
    """A folder the build or the server reads at run time, shipped inside the `kg` package.

    The repository keeps ontology/ and queries/ at its top level; kg/ontology_files and kg/queries
    are links to them, so setuptools ships them as package data and importlib.resources finds them
    alike in a checkout, an editable install and an installed wheel.
    """
    folder = files("kg") / name
    if not isinstance(folder, Path):
        raise RuntimeError(f"kg is installed zipped; {name}/ must be a directory (install with pip)")
    return folder


ONTOLOGY_DIR = _shipped("ontology_files")  # medcode.ttl, icd10cm.ttl, skos-axioms.ttl, shapes.ttl
SOURCES_DIR = _shipped("sources")  # the curated YAML (kg/sources/README.md)
QUERIES_DIR = _shipped("queries")  # the named queries (*.rq with a '#+ ' YAML header)

CODE_SYSTEMS = ("cpt", "hcpcs", "icd10cm", "modifier")


def code_iri(system: str, code: str) -> URIRef:
    """The IRI of a code, e.g. ('icd10cm', 'G89.3') -> .../id/icd10cm/G89.3."""
    return URIRef(f"{ID_BASE}{system}/{code}")


def pair_key(column1: str, column2: str) -> URIRef:
    """The mc:pairKey of a code-pair edit: an IRI naming both codes, column 1 first (`…/id/pair/cpt/96522/cpt/96523`),
    so that the claim check finds a pair's edits with one index lookup bound on both codes. An IRI, not a
    literal: Virtuoso looks an IRI from a VALUES block up by its index, a literal it scans for (40 s at 2 M edits)."""
    return URIRef(ID_BASE + "pair/" + "/".join(iri[len(ID_BASE):] if iri.startswith(ID_BASE) else iri
                                                for iri in (column1, column2)))


def ref_iri(ref: str) -> URIRef:
    """The IRI of a `system/code` reference as written in the curated sources."""
    return URIRef(ID_BASE + ref)
