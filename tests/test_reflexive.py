"""Reflexive matches (issue 12, item 3): the OWL 2 RL closure keeps G35 skos:exactMatch G35 (exactMatch is
symmetric and transitive), but no page, export or named query shows a code, or a condition, matching
itself. Checked for every resource the graph relates to itself, not only the examples in the issue."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from kg.namespaces import GRAPH_ASSERTED, PREFIXES
from server import create_app
from server.exports import CROSSWALKS
from server.named_queries import load_named_queries

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
MAPPING_PROPERTIES = ("exactMatch", "closeMatch", "mappingRelation")


@pytest.fixture(scope="module")
def client(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir), "QUERY_TIMEOUT": 60})
    yield app.test_client()
    app.extensions["medcode.store"].close()


@pytest.fixture(scope="module")
def reflexive(store) -> list[tuple[str, str]]:
    """Every (resource, property) the graph relates to itself."""
    found = [(s["x"].value, s["p"].value)
             for s in store.query("SELECT DISTINCT ?x ?p WHERE { ?x ?p ?x }", use_default_graph_as_union=True)]
    assert found, "the closure should hold reflexive matches (G35 exactMatch G35)"
    return found


def local(iri: str) -> str:
    return iri.removeprefix("https://w3id.org/medcode")


def test_the_graph_keeps_owl_rl_semantics(store):
    """Every asserted exact match still entails x skos:exactMatch x (symmetry, then transitivity)."""
    asserted = f"GRAPH <{GRAPH_ASSERTED}> {{ ?x skos:exactMatch ?y }}"
    assert store.query(f"ASK {{ {asserted} }}", prefixes=PREFIXES, use_default_graph_as_union=True)
    assert not store.query(f"ASK {{ {asserted} FILTER NOT EXISTS {{ ?x skos:exactMatch ?x }} }}", prefixes=PREFIXES,
                           use_default_graph_as_union=True)


def test_no_page_lists_a_resource_related_to_itself(client, reflexive):
    for iri in sorted({x for x, _ in reflexive}):
        text = client.get(local(iri), headers={"Accept": BROWSER}).get_data(as_text=True)
        href = f'href="{local(iri)}"'
        # a code page's other relations, a generic page's properties (a condition), what points here
        for section in ("other", "properties", "reverse"):
            if f'id="{section}"' in text:
                start = text.index(f'id="{section}"')
                assert href not in text[start:text.index("</section>", start)], (iri, section)


def test_no_rdf_page_states_a_resource_related_to_itself(client, reflexive):
    for iri in sorted({x for x, _ in reflexive}):
        body = client.get(local(iri), headers={"Accept": "application/n-triples"}).get_data(as_text=True)
        for prop in MAPPING_PROPERTIES:
            assert f"<{iri}> <{PREFIXES['skos']}{prop}> <{iri}> ." not in body, (iri, prop)


def test_reverse_counts_leave_out_the_resource_itself(client):
    text = client.get("/id/icd10cm/G35", headers={"Accept": BROWSER}).get_data(as_text=True)
    rev = text[text.index('id="reverse"'):]
    assert "/id/condition/multiple-sclerosis" in rev or "Nothing in the graph links" in rev
    assert 'href="/id/icd10cm/G35"' not in rev


@pytest.mark.parametrize("name", [n for n, xw in CROSSWALKS.items() if xw.kind == "mapping"])
def test_no_export_row_maps_a_code_to_itself(client, name):
    response = client.get(f"/export/{name}.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert rows and not [r for r in rows if r["subject_iri"] == r["object_iri"]]


CODES = ("G35", "G89.3", "Z45.1", "Z51.11", "96522", "62362", "C1772")


@pytest.mark.parametrize("name", sorted(n for n, q in load_named_queries().items() if "export" not in q.header))
def test_no_named_query_row_relates_a_code_to_itself(client, name):
    """Within a row, no IRI stands in two columns (a code and its own match). The crosswalks' queries are
    checked as the exports above."""
    query = load_named_queries()[name]
    codes = CODES if any(p.name == "code" for p in query.params) else (None,)
    for code in codes:
        args = {"code": code} if code else {}
        response = client.get(f"/api/{name}", query_string=args, headers={"Accept": "application/json"})
        assert response.status_code == 200, response.data
        for row in json.loads(response.data)["results"]["bindings"]:
            iris = [v["value"] for v in row.values() if v["type"] == "uri"]
            assert len(iris) == len(set(iris)), (name, code, row)
