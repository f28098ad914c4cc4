"""ValueSet/$expand of the implicit value sets beyond the HL7-format cases (tests/fhir_tx/expand/): offset
paging reaches every code of a value set once, in one order, whichever way the request comes; totals
agree with the graph; bad input is a 400 OperationOutcome, never a 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.valueset import ValueSet

from kg.contract import PREFIXES
from server import create_app
from server.fhir import expansion
from server.search.lifecycle import get_index

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
EXPAND = "/fhir/ValueSet/$expand"
MAX_EXPANSION = 1000  # server/fhir/expansion.py: the most one answer holds


@pytest.fixture(scope="module")
def client(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir)})
    yield app.test_client()
    app.extensions["medcode.store"].close()


def expand(client, **args) -> dict:
    response = client.get(EXPAND, query_string=args)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    ValueSet.model_validate(body)
    return body["expansion"]


def codes(expansion: dict) -> list[str]:
    return [entry["code"] for entry in expansion.get("contains", [])]


def notations(store, query: str) -> list[str]:
    rows = store.query(query, prefixes=PREFIXES, use_default_graph_as_union=True)
    return [row["code"].value for row in rows]


def test_paging_reaches_every_code_of_a_subtree_once(client, store):
    """isa/S82 (fractures of the lower leg: 3,346 codes) in pages of 1,000: the graph's subtree, each once."""
    url = f"{ICD}?fhir_vs=isa/S82"
    first = expand(client, url=url, count=MAX_EXPANSION)
    paged = codes(first)
    while len(paged) < first["total"]:
        page = expand(client, url=url, count=MAX_EXPANSION, offset=len(paged))
        assert page["total"] == first["total"] and page["offset"] == len(paged) and codes(page)
        paged += codes(page)
    subtree = notations(store, "SELECT ?code WHERE { ?c skos:broaderTransitive* icd10cm:S82 ; skos:notation ?code }")
    assert len(paged) == len(set(paged)) == first["total"] and set(paged) == set(subtree)
    assert paged[0] == "S82" and paged.index("S82.0") < paged.index("S82.00")  # shorter codes first


def test_kept_subtrees_page_alike_and_give_way(client, monkeypatch):
    """A subtree larger than a page is kept for the snapshot: its pages are the same read again, and when the
    room (here 4,000 codes) is needed for another, the least recently asked for is dropped, then read anew."""
    monkeypatch.setattr(expansion, "KEPT_SUBTREE_CODES", 4_000)
    s82, s72 = f"{ICD}?fhir_vs=isa/S82", f"{ICD}?fhir_vs=isa/S72"
    first = codes(expand(client, url=s82, count=MAX_EXPANSION, offset=1_000))
    with client.application.app_context():
        kept = expansion.snapshot_memo()["fhir-subtrees"]
        assert list(kept) == ["https://w3id.org/medcode/id/icd10cm/S82"]
        assert codes(expand(client, url=s72, count=MAX_EXPANSION))  # S72: 1,000 < its codes
        assert list(kept) == ["https://w3id.org/medcode/id/icd10cm/S72"]  # S82 made way
    assert codes(expand(client, url=s82, count=MAX_EXPANSION, offset=1_000)) == first


def test_pages_of_the_whole_system_join_up(client):
    """Two adjacent pages are one page of twice the size; past the end there are no codes, the total stays."""
    url = f"{ICD}?fhir_vs"
    both = expand(client, url=url, offset=50_000, count=100)
    halves = codes(expand(client, url=url, offset=50_000, count=50)) + codes(expand(client, url=url, offset=50_050,
                                                                                      count=50))
    assert codes(both) == halves and len(halves) == 100
    total = both["total"]
    tail = expand(client, url=url, offset=total - 2, count=10)
    assert len(codes(tail)) == 2 and tail["total"] == total
    beyond = expand(client, url=url, offset=total + 5, count=10)
    assert "contains" not in beyond and beyond["total"] == total


def test_a_page_says_which_codes_may_not_be_billed_as_the_graph_does(client, store):
    """`abstract` (from the snapshot's set of non-billable codes, no query) and the notSelectable property (a
    query over the page's codes) agree with mc:billable, page by page; the order is the search index's."""
    url = f"{ICD}?fhir_vs"
    page = expand(client, url=url, offset=20_000, count=MAX_EXPANSION, property="notSelectable")
    plain = expand(client, url=url, offset=20_000, count=MAX_EXPANSION)
    assert codes(page) == codes(plain) and len(codes(page)) == MAX_EXPANSION
    values = " ".join(json.dumps(code) for code in codes(page))
    billable = {row["code"].value: row["billable"].value == "true" for row in store.query(
        "SELECT ?code ?billable WHERE { VALUES ?code { " + values + " } ?c skos:notation ?code ; "
        "skos:inScheme <https://w3id.org/medcode/id/icd10cm> ; mc:billable ?billable }",
        prefixes=PREFIXES, use_default_graph_as_union=True)}
    assert len(billable) == MAX_EXPANSION and not all(billable.values()) and any(billable.values())
    for entry, bare in zip(page["contains"], plain["contains"], strict=True):
        assert entry.get("abstract", False) == bare.get("abstract", False) == (not billable[entry["code"]])
        assert entry["property"] == [{"code": "notSelectable", "valueBoolean": not billable[entry["code"]]}]
    with client.application.app_context():  # the app's own index: the memoised order is its SQL order
        order = [code for (code,) in get_index().db.execute(
            "SELECT notation FROM codes WHERE system = 'icd10cm' ORDER BY length(key), key, tie "
            "LIMIT 1000 OFFSET 20000")]
    assert codes(plain) == order


def test_totals_agree_with_the_graph(client, store):
    """The whole system holds every code of its scheme plus the modifiers it defines (59 and 95 in CPT)."""
    icd = notations(store, "SELECT ?code WHERE { ?c a mc:Code ; skos:inScheme <https://w3id.org/medcode/id/icd10cm> ; "
                           "skos:notation ?code }")
    assert expand(client, url=f"{ICD}?fhir_vs", count=0)["total"] == len(icd)
    cpt = expand(client, url=f"{CPT}?fhir_vs", count=MAX_EXPANSION)
    graph = notations(store, "SELECT ?code WHERE { ?c a mc:Code ; skos:notation ?code . "
                             "VALUES ?cpt { <https://w3id.org/medcode/id/cpt> } "
                             "{ ?c skos:inScheme ?cpt } UNION { ?c mc:modifierSystem ?cpt } }")
    assert sorted(codes(cpt)) == sorted(graph) and codes(cpt)[-2:] == ["59", "95"]


def test_get_form_and_parameters_give_one_expansion(client):
    args = {"url": f"{ICD}?fhir_vs=isa/G89", "filter": "chronic", "count": 3, "offset": 1, "property": "parent"}
    by_get = client.get(EXPAND, query_string=args).get_json()
    by_form = client.post(EXPAND, data=args).get_json()
    by_parameters = client.post(EXPAND, content_type="application/fhir+json", data=json.dumps({
        "resourceType": "Parameters", "parameter": [
            {"name": "url", "valueUri": args["url"]}, {"name": "filter", "valueString": "chronic"},
            {"name": "count", "valueInteger": 3}, {"name": "offset", "valueInteger": 1},
            {"name": "property", "valueCode": "parent"}]})).get_json()
    for body in (by_get, by_form, by_parameters):
        body["expansion"].pop("identifier"), body["expansion"].pop("timestamp")
    assert by_get == by_form == by_parameters
    assert codes(by_get["expansion"]) == ["G89.3", "G89.4", "G89.21"]  # G89.2, G89.3, G89.4 say chronic


@pytest.mark.parametrize("filter_text", ["%", "_", "%_%", "'--", '"}) } ;', "\\"])
def test_filters_are_text_not_syntax(client, filter_text):
    """LIKE wildcards and quotes in a filter are text: with no letters or digits it matches nothing."""
    expansion = expand(client, url=f"{ICD}?fhir_vs", filter=filter_text, count=5)
    assert expansion["total"] == 0 and "contains" not in expansion


def test_a_filter_with_punctuation_keeps_its_words_and_code(client):
    by_words = expand(client, url=f"{ICD}?fhir_vs=isa/G35", filter="'progressive%' (primary)")
    assert codes(by_words) == ["G35.B", "G35.B0", "G35.B1", "G35.B2"]
    by_code = expand(client, url=f"{ICD}?fhir_vs", filter="g35.b%", count=10)
    assert codes(by_code) == ["G35.B", "G35.B0", "G35.B1", "G35.B2"]


@pytest.mark.parametrize("filter_text", ["progress", "non-act", "G35.b", "sclerosis unspec", "(active)"])
def test_a_whole_system_and_a_subtree_filter_alike(client, filter_text):
    """The whole system filters in the search index (SQL), a subtree in Python: the same rule."""
    whole = codes(expand(client, url=f"{ICD}?fhir_vs", filter=filter_text, count=MAX_EXPANSION))
    subtree = codes(expand(client, url=f"{ICD}?fhir_vs=isa/G35", filter=filter_text))
    assert subtree and [code for code in whole if code.startswith("G35")] == subtree


@pytest.mark.parametrize("args,status,issue", [
    ({}, 400, "invalid"),
    ({"url": f"{ICD}?fhir_vs", "count": "-1"}, 400, "invalid"),
    ({"url": f"{ICD}?fhir_vs", "count": "ten"}, 400, "invalid"),
    ({"url": f"{ICD}?fhir_vs", "offset": "1e3"}, 400, "invalid"),
    ({"url": f"{ICD}?fhir_vs", "activeOnly": "perhaps"}, 400, "invalid"),
    ({"url": [f"{ICD}?fhir_vs", f"{CPT}?fhir_vs"]}, 400, "invalid"),
    ({"url": f"{ICD}?fhir_vs=isa/"}, 400, "not-supported"),
    ({"url": f"{ICD}?fhir_vs=isa/<script>"}, 404, "not-found"),
    ({"url": f"{ICD}?fhir_vs=isa/G35", "count": "5000"}, 200, None),  # at most 1,000 come back
    ({"url": f"{ICD}?fhir_vs", "count": "5", "filter": " ".join(["pain"] * 13)}, 400, "invalid"),
    ({"url": f"{ICD}?fhir_vs", "count": "5", "filter": "p" * 201}, 400, "invalid"),
])
def test_bad_requests_are_operation_outcomes(client, args, status, issue):
    response = client.get(EXPAND, query_string=args)
    assert response.status_code == status and response.content_type.startswith("application/fhir+json")
    if issue:
        outcome = response.get_json()
        OperationOutcome.model_validate(outcome)
        assert outcome["issue"][0]["code"] == issue
