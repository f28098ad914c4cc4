"""devices.yaml: device individuals, each typed only by its most specific class (the reasoner adds the rest).

A kind named as a choice of kinds ("pump or reservoir") lists them in `covers`; the ontology's
property chain on mc:usesDevice then makes every code that uses it use each covered kind too.
"""

from __future__ import annotations

from rdflib.namespace import OWL, RDF, RDFS, SKOS

from ..namespaces import DCTERMS, ID, MC
from ..records import Record
from .reader import Reader, text


def read_devices(reader: Reader, records: list[Record]) -> None:
    """Define each device, so code records can say which they use or denote."""
    graph = reader.graph
    for r in records:
        reader.check_keys(r, {"id", "class", "label", "source", "note", "covers"})
        reader.require(r, "id", "class", "label", "source")
        node = ID[f"device/{r['id']}"]
        reader.curation.devices.add(str(r["id"]))
        graph.add((node, RDF.type, MC[r["class"]]))
        graph.add((node, RDF.type, OWL.NamedIndividual))
        graph.add((node, RDFS.label, text(r["label"])))
        graph.add((node, DCTERMS.source, reader.source(r, "source", r["source"])))
        if r.get("note"):
            graph.add((node, SKOS.note, text(r["note"])))
    # a kind may cover one defined further down the file, so coverage is read once all are defined
    for r in records:
        source = reader.source(r, "source", r["source"])
        for covered in r.get("covers") or []:
            if covered not in reader.curation.devices or covered == r["id"]:
                raise r.error("covers", f"'{covered}' is not another device defined in devices.yaml")
            reader.assert_fact(ID[f"device/{r['id']}"], MC.coversDevice, ID[f"device/{covered}"], source)
