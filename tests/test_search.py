"""`/search` through the Flask test client, on the real snapshot (all of ICD-10-CM included).

The expected codes are the curated ones: CPT 62360-62370 holds exactly 62360, 62361, 62362, 62365,
62367, 62368, 62369 and 62370; G35 has the children G35.A-G35.D (FY2026); J0475 and J0476 are the
baclofen codes; 96522 is the refill of an implantable pump for systemic drug delivery.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from search_files import small_index as SearchIndex

from kg.search_index import stem, tokens
from server import create_app
from server.codes import edit_distance
from server.codes import normalise_code as compact

RANGE_62360_62370 = ["62360", "62361", "62362", "62365", "62367", "62368", "62369", "62370"]


@pytest.fixture(scope="module")
def app(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir), "QUERY_WORKERS": 1})
    yield app
    app.extensions["medcode.store"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def search(client, q: str, **params) -> dict:
    response = client.get("/search", query_string={"q": q, **params}, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def notations(body: dict) -> list[str]:
    return [r["notation"] for r in body["results"]]


# -- code-native lookup ------------------------------------------------------------------------

def test_code_without_dot_any_case(client):
    body = search(client, "g893")
    assert notations(body)[0] == "G89.3"
    assert body["results"][0]["system"] == "icd10cm"


def test_exact_code(client):
    first = search(client, "G89.3")["results"][0]
    assert first == {"notation": "G89.3", "label": "Neoplasm related pain (acute) (chronic)", "system": "icd10cm",
                     "iri": "https://w3id.org/medcode/id/icd10cm/G89.3", "score": 1.0}


def test_exact_code_lists_its_children_after_it(client):
    found = notations(search(client, "G89.2"))
    assert found[0] == "G89.2"
    assert {"G89.21", "G89.22", "G89.28", "G89.29"} <= set(found[1:])


@pytest.mark.parametrize("code,system", [("96522", "cpt"), ("E0782", "hcpcs"), ("J0475", "hcpcs"),
                                         ("59", "modifier"), ("xe", "modifier")])
def test_other_systems_exact(client, code, system):
    first = search(client, code)["results"][0]
    assert (first["notation"].upper(), first["system"]) == (code.upper(), system)


def test_range_is_exactly_the_curated_codes_in_it(client):
    body = search(client, "62360-62370")
    assert notations(body) == RANGE_62360_62370
    assert body["total"] == len(RANGE_62360_62370)
    assert {r["system"] for r in body["results"]} == {"cpt"}


def test_range_with_spaces_and_reversed_ends(client):
    assert notations(search(client, "62370 - 62360")) == RANGE_62360_62370


def test_icd_range_with_dots(client):
    assert notations(search(client, "G89.0-G89.4")) == ["G89.0", "G89.1", "G89.2", "G89.3", "G89.4"]


def test_prefix(client):
    found = notations(search(client, "G35*"))
    assert found[0] == "G35"
    assert {"G35.A", "G35.B", "G35.C", "G35.D"} <= set(found)
    assert all(n.startswith("G35") for n in found)


def test_prefix_without_dot_lowercase(client):
    assert set(notations(search(client, "g35b*"))) == {"G35.B", "G35.B0", "G35.B1", "G35.B2"}


# -- words -------------------------------------------------------------------------------------

def test_words_rank_the_best_code_first(client):
    assert notations(search(client, "refill implantable pump systemic"))[0] == "96522"


def test_words_find_baclofen_codes(client):
    assert {"J0475", "J0476"} <= set(notations(search(client, "baclofen"))[:5])


@pytest.mark.parametrize("typo", ["baclofne", "bacolfen", "baclofen", "baclfen", "baaclofen"])
def test_one_letter_typo_still_finds(client, typo):
    assert {"J0475", "J0476"} <= set(notations(search(client, typo))[:5])


def test_typo_in_a_phrase(client):
    assert notations(search(client, "refil implantible pump systemic"))[0] == "96522"


def test_accents_and_case_do_not_matter(client):
    plain = notations(search(client, "meniere disease"))
    assert plain[0] == "H81.0"
    assert notations(search(client, "MÉNIÈRE Disease")) == plain


def test_icd_words(client):
    assert notations(search(client, "multiple sclerosis"))[0] == "G35"
    assert notations(search(client, "type 2 diabetes mellitus without complications"))[0] == "E11.9"


def test_alt_label_is_searched(client):
    assert "C1891" in notations(search(client, "pain pump"))[:5]


def test_limit(client):
    body = search(client, "pain", limit=3)
    assert len(body["results"]) == 3 and body["total"] > 3


# -- shape and robustness ----------------------------------------------------------------------

def test_json_shape(client):
    body = search(client, "96522")
    assert body["query"] == "96522"
    assert isinstance(body["results"], list) and body["results"]
    for result in body["results"]:
        assert set(result) == {"notation", "label", "system", "iri", "score"}
        assert result["iri"].startswith("https://w3id.org/medcode/id/")
        assert isinstance(result["score"], float) and 0 < result["score"] <= 1
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_format_json_parameter(client):
    response = client.get("/search?q=g893&format=json")
    assert response.mimetype == "application/json"
    assert response.get_json()["results"][0]["notation"] == "G89.3"


@pytest.mark.parametrize("q", ["", "   ", "!!!", "*", "-", "--", "???*", "a-", "-5", "\x00", "%", "'\"",
                               "x" * 5000, "zzzzqqqq", "SELECT * WHERE { ?s ?p ?o }", "\u202e\u0301", "9" * 40,
                               "A-Z", "0-0", "G89.3-", "*G35", "limit"])
def test_empty_or_garbage_is_200_with_no_error(client, q):
    body = search(client, q)
    assert body["query"] == q
    assert isinstance(body["results"], list)
    html_response = client.get("/search", query_string={"q": q}, headers={"Accept": "text/html"})
    assert html_response.status_code == 200


@pytest.mark.parametrize("q", ["", "   ", "!!!", "zzzzqqqq"])
def test_empty_and_nonsense_have_no_results(client, q):
    assert search(client, q)["results"] == []


def test_bad_limit_is_ignored(client):
    assert search(client, "pain", limit="lots")["results"]
    assert len(search(client, "pain", limit="-4")["results"]) == 1


# -- the HTML page -----------------------------------------------------------------------------

def test_html_page_has_a_labelled_form(client):
    response = client.get("/search", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert re.search(r'<label for="q">[^<]+</label>', page)
    assert re.search(r'<input type="search" id="q" name="q"', page)


def test_html_results_link_to_local_code_pages(client):
    page = client.get("/search?q=g893", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert 'href="/id/icd10cm/G89.3"' in page
    assert "Neoplasm related pain" in page
    page = client.get("/search?q=62360-62370", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert re.findall(r'href="/id/cpt/(\d+)"', page) == RANGE_62360_62370


def test_browsers_get_html_by_default(client):
    response = client.get("/search?q=g893", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.mimetype == "text/html"


def test_html_escapes_the_query_echo(client):
    evil = '<script>alert("x")</script>'
    page = client.get("/search", query_string={"q": evil}, headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "<script>alert" not in page
    assert html.escape(evil, quote=False) in page or "&lt;script&gt;alert(" in page
    assert 'value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"' in page


def test_csp_allows_no_inline_script(client):
    response = client.get("/search?q=pump", headers={"Accept": "text/html"})
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script" not in response.get_data(as_text=True)


# -- the index's building blocks ---------------------------------------------------------------

def test_tokens_normalise_case_accents_punctuation():
    assert tokens("Ménière's DISEASE, intra-arterial (eg)") == ["meniere", "s", "disease", "intra", "arterial", "eg"]


def test_compact_and_stem():
    assert compact("g89.3") == compact("G893") == "G893"
    assert stem("refilling") == stem("refill") == "refill"
    assert stem("implanted") == stem("implantable") == "implant"
    assert stem("pumps") == "pump"


def test_edit_distance():
    assert edit_distance("baclofen", "baclofen", 2) == 0
    assert edit_distance("baclofne", "baclofen", 2) == 1  # transposition
    assert edit_distance("baclfen", "baclofen", 2) == 1
    assert edit_distance("pump", "sump", 1) == 1
    assert edit_distance("pump", "dumps", 1) == 2  # above the limit: limit + 1


def test_small_index_without_a_store():
    index = SearchIndex([
        ("urn:a", "A1.1", "icd10cm", ["Alpha pump failure"], []),
        ("urn:b", "A11", "icd10cm", ["Beta gamma delta"], ["long descriptor about pumps"]),
        ("urn:c", "B20", "cpt", ["Gamma"], []),
    ])
    assert [e.notation for e, _ in index.search("a11")[0]][:2] == ["A11", "A1.1"]
    assert [e.notation for e, _ in index.search("pump")[0]] == ["A1.1", "A11"]
    assert index.search("")[0] == [] and index.search("zz")[0] == []
