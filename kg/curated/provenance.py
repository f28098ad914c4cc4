"""sources.yaml: the documents every curated fact names as its source (seeds, public files, curation)."""

from __future__ import annotations

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from ..namespaces import DCTERMS, ID, MC
from ..records import Record
from .reader import Reader, text

SOURCE_KIND_CLASS = {"seed": MC.SeedDocument, "public": MC.PublicSource, "curated": MC.Source}


def read_sources(reader: Reader, records: list[Record]) -> None:
    """Define each source, so later records can name it by id."""
    graph = reader.graph
    for r in records:
        reader.check_keys(r, {"id", "kind", "file", "title", "url"})
        reader.require(r, "id", "kind", "title")
        if r["kind"] not in SOURCE_KIND_CLASS:
            raise r.error("kind", f"must be one of {sorted(SOURCE_KIND_CLASS)}")
        node = ID[f"source/{r['id']}"]
        reader.curation.sources.add(str(r["id"]))
        graph.add((node, RDF.type, SOURCE_KIND_CLASS[r["kind"]]))
        graph.add((node, SKOS.notation, Literal(str(r["id"]))))
        graph.add((node, DCTERMS.title, text(r["title"])))
        graph.add((node, RDFS.label, text(r["title"])))
        if r.get("file"):
            graph.add((node, MC.fileName, Literal(r["file"])))
        if r.get("url"):
            graph.add((node, RDFS.seeAlso, URIRef(r["url"])))
