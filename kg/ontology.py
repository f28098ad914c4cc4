"""The ontology files as an rdflib graph (read once per process)."""

from __future__ import annotations

from functools import lru_cache

from rdflib import Graph

from .namespaces import ONTOLOGY_DIR


@lru_cache(maxsize=1)
def load_ontology() -> Graph:
    """medcode.ttl, the ICD-10-CM notes' terms (icd10cm.ttl) and the SKOS axioms the reasoner needs (not the
    SHACL shapes)."""
    graph = Graph()
    for name in ("medcode.ttl", "icd10cm.ttl", "skos-axioms.ttl"):
        graph.parse(ONTOLOGY_DIR / name, format="turtle")
    return graph


def load_shapes() -> Graph:
    """The SHACL shapes the build validates against."""
    return Graph().parse(ONTOLOGY_DIR / "shapes.ttl", format="turtle")
