"""Why each inferred fact holds: the derivations graph (kg/derivations.py) and `/why` (server/why/).

The completeness check runs on a small fixture build (the curated family with a few ICD-10-CM codes);
the traces run on the session's full build, embedded or (MEDCODE_TEST_STORE=virtuoso) on Virtuoso.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kg import build
from kg.contract import DUMP_FILE, GRAPH_DERIVATIONS, INFERENCE_GRAPHS, ONTOLOGY_IRI, current_snapshot, open_store
from kg.namespaces import ID_BASE, MC
from server import create_app

DERIVATIONS = str(GRAPH_DERIVATIONS)
INFERRED, ASSERTED = INFERENCE_GRAPHS["inferred"][0], INFERENCE_GRAPHS["asserted"][0]
S003 = ID_BASE + "source/S003"
SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
PUMP_CODES = ("62367", "62368", "62369", "62370")
REFILL_CODES = ("95990", "95991")
PLACEHOLDERS = {str(MC.conclusionSubject): 0, str(MC.conclusionObject): 2}


FIXTURE_CODES = ["G35.A", "G89.3"]


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small build: the curated family and two ICD-10-CM codes with their ancestors."""
    target = tmp_path_factory.mktemp("why-data")
    build(target, icd10cm=FIXTURE_CODES, echo=lambda _line: None)
    return target


@pytest.fixture(scope="module")
def fixture_store(fixture_data: Path):
    return open_store(current_snapshot(fixture_data))


@pytest.fixture(scope="module")
def client(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir)})
    yield app.test_client()
    app.extensions["medcode.store"].close()


def _rows(store, query: str) -> list[tuple]:
    return [tuple(row) for row in store.query(query)]


def _premises(store) -> dict:
    """Each rule instance's premise patterns, and its via node."""
    found: dict = {}
    for d, s, p, o in _rows(store, f"""SELECT ?d ?s ?p ?o WHERE {{ GRAPH <{DERIVATIONS}> {{
        ?d <{MC.premise}> ?pattern . ?pattern <http://www.w3.org/1999/02/22-rdf-syntax-ns#subject> ?s ;
        <http://www.w3.org/1999/02/22-rdf-syntax-ns#predicate> ?p .
        OPTIONAL {{ ?pattern <http://www.w3.org/1999/02/22-rdf-syntax-ns#object> ?o }} }} }}"""):
        found.setdefault(d.value, []).append((s, p, o))
    return found


def test_every_inferred_triple_has_one_well_founded_derivation(fixture_store):
    every = "SELECT ?s ?p ?o WHERE {{ GRAPH <{}> {{ ?s ?p ?o }} }}"
    inferred, asserted = (set(_rows(fixture_store, every.format(graph))) for graph in (INFERRED, ASSERTED))
    assert len(inferred) > 1000
    derived = {}
    for s, d, o, p, via in _rows(fixture_store, f"""SELECT ?s ?d ?o ?p ?via WHERE {{ GRAPH <{DERIVATIONS}> {{
        ?s ?d ?o . ?d <{MC.conclusionPredicate}> ?p . OPTIONAL {{ ?d <{MC.via}> ?via }} }} }}"""):
        derived.setdefault((s, p, o), []).append((d.value, via))
    assert set(derived) <= inferred and all(len(ds) == 1 for ds in derived.values())
    query = f"""SELECT ?d ?p ?c WHERE {{ GRAPH <{DERIVATIONS}> {{
        ?d <{MC.defaultFor}> ?p . OPTIONAL {{ ?d <{MC.concludedClass}> ?c }} }} }}"""
    defaults = {(p, c): d.value for d, p, c in _rows(fixture_store, query)}
    stated = len(derived)
    for s, p, o in inferred - set(derived):  # the others have their conclusion's default
        derived[s, p, o] = [(defaults.get((p, o)) or defaults[p, None], None)]
    assert len(defaults) >= 3 and stated < len(inferred)
    patterns = _premises(fixture_store)
    depth: dict = {}

    def settle(triple: tuple, path: frozenset) -> int:
        """The derivation depth of a triple; fails on a premise that is not in the graph or on a cycle."""
        if triple in asserted or triple[2] is None:  # no object: a property chain axiom (asserted)
            return 0
        assert triple in inferred, f"premise not in the graph: {triple}"
        assert triple not in path, f"cycle through {triple}"
        if triple not in depth:
            (d, via), = derived[triple]

            def fill(term):
                if term is None or term.value not in (*PLACEHOLDERS, str(MC.viaNode)):
                    return term
                return via if term.value == str(MC.viaNode) else triple[PLACEHOLDERS[term.value]]

            premises = [tuple(fill(t) for t in pattern) for pattern in patterns.get(d, [])]
            depth[triple] = 1 + max((settle(p, path | {triple}) for p in premises), default=0)
        return depth[triple]

    assert max(settle(t, frozenset()) for t in inferred) >= 3


def _derivation_lines(data: Path) -> set[str]:
    """The derivations graph's quads as the snapshot's N-Quads dump holds them."""
    tail = f"<{DERIVATIONS}> .\n"
    with (current_snapshot(data) / DUMP_FILE).open(encoding="utf-8") as dump:
        return {line for line in dump if line.endswith(tail)}


def test_two_builds_record_the_same_derivations(fixture_data: Path, tmp_path: Path):
    """The derivations follow from the input alone, not from the order the engine or an rdflib graph hands the
    triples over in, nor from string hashing: the same build in another process, with another hash seed."""
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    script = ("import sys; from pathlib import Path; from kg import build; "
              "build(Path(sys.argv[1]), icd10cm=sys.argv[2:], echo=lambda _line: None)")
    subprocess.run([sys.executable, "-c", script, str(tmp_path), *FIXTURE_CODES], check=True, timeout=600,
                   cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONHASHSEED": seed})
    first, second = _derivation_lines(fixture_data), _derivation_lines(tmp_path)
    assert len(first) > 1000
    assert first == second, f"{len(first ^ second)} quads differ, e.g. {sorted(first ^ second)[:3]}"


def _why(client, s: str, p: str, o: str, status: int = 200) -> dict:
    response = client.get("/why", query_string={"s": s, "p": p, "o": o}, headers={"Accept": "application/json"})
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_json()


def _leaves(node: dict) -> list[dict]:
    if node["status"] == "asserted":
        return [node]
    return [leaf for premise in node["premises"] for leaf in _leaves(premise)]


@pytest.mark.parametrize("pump", PUMP_CODES)
@pytest.mark.parametrize("refill", REFILL_CODES)
def test_each_ordered_exclusion_traces_to_its_seed_edit(client, pump: str, refill: str):
    edit = f"{ID_BASE}edit/{refill}_{pump}"
    for s, o in ((refill, pump), (pump, refill)):
        tree = _why(client, f"cpt:{s}", "mc:notReportedWith", f"cpt:{o}")
        assert tree["status"] == "inferred"
        data = [leaf for leaf in _leaves(tree) if leaf["s"]["value"].startswith(ID_BASE)]
        assert {leaf["s"]["value"] for leaf in data} == {edit}  # the edit of this pair, and only it
        assert {leaf["p"]["value"] for leaf in data} == {str(MC.column1), str(MC.column2)}
        assert all(leaf["sources"] == [S003] for leaf in data)
        assert S003 in tree["documents"]
        axioms = [leaf for leaf in _leaves(tree) if leaf not in data]
        assert axioms and all(leaf["sources"] == [str(ONTOLOGY_IRI)] for leaf in axioms)


def test_a_subclass_closure_fact_traces_to_the_ontology_axiom(client):
    tree = _why(client, "icd10cm:G35.A", "rdf:type", "skos:Concept")
    axioms = [leaf for leaf in _leaves(tree) if leaf["p"]["value"] == SUBCLASS]
    assert axioms and all(leaf["sources"] == [str(ONTOLOGY_IRI)] for leaf in axioms)
    assert tree["rule"] == "cax-sco"
    facts = [leaf for leaf in _leaves(tree) if leaf["p"]["value"] != SUBCLASS]
    assert [leaf["s"]["value"] for leaf in facts] == [ID_BASE + "icd10cm/G35.A"]
    assert facts[0]["sources"] == [ID_BASE + "source/ICD-10-CM-2026"]


def test_a_transitive_ancestor_traces_step_by_step_to_the_release(client):
    tree = _why(client, "icd10cm:G35.A", "skos:broaderTransitive", f"<{ID_BASE}icd10cm/chapter/6>")
    steps = {leaf["s"]["value"].removeprefix(ID_BASE + "icd10cm/") for leaf in _leaves(tree)
             if leaf["p"]["value"].endswith("#broader")}
    assert steps == {"G35.A", "G35", "block/G35-G37"}  # G35.A -> G35 -> block G35-G37 -> chapter 6
    assert tree["documents"] == sorted({ID_BASE + "source/ICD-10-CM-2026", str(ONTOLOGY_IRI)})


def test_an_asserted_triple_is_answered_with_its_source(client):
    tree = _why(client, f"<{ID_BASE}edit/95990_62367>", "mc:column1", "cpt:95990")
    assert tree["status"] == "asserted" and tree["sources"] == [S003]


@pytest.mark.parametrize("o", ["false", '"false"^^xsd:boolean'])
def test_a_boolean_may_be_written_as_turtle_writes_it(client, o: str):
    tree = _why(client, "icd10cm:G35", "mc:billable", o)
    assert tree["status"] == "asserted"


def test_an_inferred_label_is_asked_for_as_a_literal(client):
    tree = _why(client, "icd10cm:G35.A", "rdfs:label", '"Relapsing-remitting multiple sclerosis"@en')
    assert tree["rule"] == "prp-spo1" and tree["premises"][0]["status"] == "asserted"


@pytest.mark.parametrize(("query", "status", "words"), [
    ({"s": "cpt:62367", "p": "mc:notReportedWith", "o": "cpt:99999"}, 404, "neither states nor entails"),
    ({"s": "cpt:62367", "p": "mc:notReportedWith"}, 400, "o is required"),
    ({"s": "62367", "p": "mc:notReportedWith", "o": "cpt:95990"}, 400, "IRI or a CURIE"),
    ({"s": "nope:62367", "p": "mc:notReportedWith", "o": "cpt:95990"}, 404, "nope:62367"),
    ({"s": "cpt:62367", "p": "mc:notReportedWith", "o": '"unclosed'}, 400, "Turtle syntax"),
    ({"s": "<http://x> } DROP", "p": "mc:notReportedWith", "o": "cpt:95990"}, 400, "IRI or a CURIE"),
])
def test_bad_questions_are_clear_errors(client, query: dict, status: int, words: str):
    response = client.get("/why", query_string=query, headers={"Accept": "application/json"})
    assert response.status_code == status
    assert words in response.get_json()["error"]


def test_the_html_tree(client):
    response = client.get("/why", query_string={"s": "cpt:62367", "p": "mc:notReportedWith", "o": "cpt:95990"},
                          headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["Link"].count("format=json") == 1
    text = response.get_data(as_text=True)
    assert "prp-symp" in text and "prp-spo2" in text and 'href="/id/source/S003"' in text


def test_code_pages_link_why_beside_inferred_facts(client):
    response = client.get("/id/cpt/62367", headers={"Accept": "text/html"})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    page = response.get_data(as_text=True)
    links = [html.unescape(h) for h in re.findall(r'class="why" href="([^"]+)"', page)]
    exclusions = [link for link in links if "notReportedWith" in link]
    assert len(exclusions) == 2 and len(links) > len(exclusions)  # 95990 and 95991; and the inferred types
    for link in exclusions + links[:2]:
        answer = client.get(link, headers={"Accept": "application/json"})
        assert answer.status_code == 200, (link, answer.get_data(as_text=True)[:300])


def test_the_derivations_graph_is_queryable_in_sparql(client):
    query = f"""SELECT ?rule WHERE {{ GRAPH <{DERIVATIONS}> {{ cpt:95990 ?d cpt:62367 .
        ?d mc:conclusionPredicate mc:notReportedWith ; mc:rule ?rule }} }}"""
    response = client.get("/sparql", query_string={"query": query},
                          headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [b["rule"]["value"] for b in response.get_json()["results"]["bindings"]] == [str(MC["prp-spo2"])]


def test_as_of_is_refused_not_ignored(client):
    # the derivations are today's graph's: a date would change the answer, so it is a 400, never dropped
    url = "/why?s=cpt:62367&p=mc:notReportedWith&o=cpt:95990&format=json"
    assert client.get(url).status_code == 200
    response = client.get(url + "&as_of=2025-06-01")
    assert response.status_code == 400 and "as_of is not supported by /why" in response.get_data(as_text=True)
