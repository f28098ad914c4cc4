"""The SPARQL 1.1 Service Description (with VoID counts and the endpoint's limits)."""

from __future__ import annotations

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, XSD

from kg.contract import INFERENCE_GRAPHS, LOCAL_GRAPHS

from ..http.formats import GRAPH_FORMATS, RESULT_FORMATS

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
VOID = Namespace("http://rdfs.org/ns/void#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
MC = Namespace("https://w3id.org/medcode/ontology#")
FORMAT_IRIS = {"json": "SPARQL_Results_JSON", "xml": "SPARQL_Results_XML", "csv": "SPARQL_Results_CSV",
               "tsv": "SPARQL_Results_TSV", "turtle": "Turtle", "ntriples": "N-Triples", "rdfxml": "RDF_XML",
               "jsonld": "JSON-LD", "trig": "TriG", "nquads": "N-Quads"}


def service_description(endpoint: str, meta: dict, config: dict) -> Graph:
    g = Graph()
    g.bind("sd", SD)
    g.bind("void", VOID)
    g.bind("mc", MC)
    svc = URIRef(endpoint)
    g.add((svc, RDF.type, SD.Service))
    g.add((svc, SD.endpoint, svc))
    g.add((svc, SD.supportedLanguage, SD.SPARQL11Query))
    g.add((svc, SD.defaultEntailmentRegime, URIRef("http://www.w3.org/ns/entailment/OWL-RL")))
    g.add((svc, SD.feature, SD.UnionDefaultGraph))
    for fmt in (*RESULT_FORMATS, *GRAPH_FORMATS):
        g.add((svc, SD.resultFormat, FORMATS[FORMAT_IRIS[fmt.name]]))
    dataset = BNode()
    g.add((svc, SD.defaultDataset, dataset))
    g.add((dataset, RDF.type, SD.Dataset))
    default = BNode()
    g.add((dataset, SD.defaultGraph, default))
    g.add((default, RDF.type, SD.Graph))
    # the dataset a query sees without as_of: the local graphs (the dated states' graphs are named in meta.json)
    counts = {iri: n for iri, n in meta.get("triples", {}).items() if iri in LOCAL_GRAPHS}
    # the default graph is the union of the asserted and the inferred graphs (the derivations are named only)
    in_default = sum(n for iri, n in counts.items() if iri in INFERENCE_GRAPHS["all"])
    g.add((default, VOID.triples, Literal(in_default, datatype=XSD.integer)))
    for iri, count in counts.items():
        named = BNode()
        g.add((dataset, SD.namedGraph, named))
        g.add((named, SD.name, URIRef(iri)))
        graph = BNode()
        g.add((named, SD.graph, graph))
        g.add((graph, RDF.type, SD.Graph))
        g.add((graph, VOID.triples, Literal(count, datatype=XSD.integer)))
        if iri.endswith("/inferred"):
            g.add((named, SD.entailmentRegime, URIRef("http://www.w3.org/ns/entailment/OWL-RL")))
    g.add((svc, MC.queryTimeLimitSeconds, Literal(config["QUERY_TIMEOUT"], datatype=XSD.decimal)))
    g.add((svc, MC.resultSizeLimit, Literal(config["MAX_RESULTS"], datatype=XSD.integer)))
    g.add((svc, MC.requestSizeLimitBytes, Literal(config["MAX_CONTENT_LENGTH"], datatype=XSD.integer)))
    g.add((svc, MC.snapshot, Literal(meta.get("snapshot", ""))))
    return g
