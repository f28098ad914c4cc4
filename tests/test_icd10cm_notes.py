"""ICD-10-CM notes (issue 12, item 5): every note simple-icd-10-cm ships is in the graph as a documented
mc:TabularNote linked to the codes it names; code pages show them, own and inherited; inclusion terms
are found by /search and by SPARQL. The mention parser is tested on the release's own notes."""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path

import pytest
import simple_icd_10_cm as cm

from kg.icd10cm import Resolver
from kg.icd10cm_mentions import Mention, mentions
from kg.namespaces import ID_BASE, PREFIXES
from server import create_app

ICD = ID_BASE + "icd10cm/"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def client(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir)})
    yield app.test_client()
    app.extensions["medcode.store"].close()


def rows(store, query: str) -> list[dict[str, str]]:
    solutions = store.query(query, prefixes=PREFIXES, use_default_graph_as_union=True)
    names = [v.value for v in solutions.variables]
    return [{name: s[name].value for name in names if s[name] is not None} for s in solutions]


def ask(store, query: str) -> bool:
    return bool(store.query(query, prefixes=PREFIXES, use_default_graph_as_union=True))


def page(client, path: str) -> str:
    response = client.get(path, headers={"Accept": BROWSER})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", markup)))


# what the package ships per item (its public API), independent of the import's own table
PACKAGE_NOTES = {
    "inclusionTerm": lambda code, block: cm.get_inclusion_term(code, block),
    "includes": lambda code, block: cm.get_includes(code, block),
    "excludes1": lambda code, block: cm.get_excludes1(code, block),
    "excludes2": lambda code, block: cm.get_excludes2(code, block),
    "codeFirst": lambda code, block: cm.get_code_first(code, False, block).splitlines(),
    "useAdditionalCode": lambda code, block: cm.get_use_additional_code(code, False, block).splitlines(),
    "codeAlso": lambda code, block: cm.get_code_also(code, False, block).splitlines(),
    "generalNote": lambda code, block: cm.get_notes(code, False, block).splitlines(),
    "seventhCharacterNote": lambda code, block: cm.get_seven_chr_note(code, False, block).splitlines(),
}


def release_notes():
    """(item, kind, line) for every note line of the release."""
    seen: set[str] = set()
    for code in cm.get_all_codes(True):
        block = cm.is_block(code) and code not in seen  # a single-category block comes before its category
        seen.add(code)
        for kind, lines in PACKAGE_NOTES.items():
            for line in lines(code, block):
                yield code, kind, line


def note_of(code: str, kind: str, part: str) -> str:
    """The line of a code's notes of one kind that contains `part`."""
    return next(line for line in PACKAGE_NOTES[kind](code, False) if part in line)


# ------------------------------------------------------------------ the mention parser, on real notes


@pytest.mark.parametrize("code,kind,part,expected", [
    ("Z45", "excludes2", "(Z46.-)", [("Z46.-", "Z46", None)]),
    ("G89", "excludes2", "chest pain", [("R07.1-R07.9", "R07.1", "R07.9")]),
    ("S14", "codeAlso", "cervical vertebra", [("S12.0--S12.6.-", "S12.0", "S12.6")]),
    ("G89", "excludes2", "prosthetic devices", [("T82.84", "T82.84", None), ("T83.84", "T83.84", None),
                                                ("T84.84", "T84.84", None), ("T85.84-", "T85.84", None)]),
    ("E64", "generalNote", "E50-E63", [("E43", "E43", None), ("E44", "E44", None), ("E46", "E46", None),
                                       ("E50-E63", "E50", "E63")]),
    ("G71.035", "inclusionTerm", "LGMD R12", []),  # a gene subtype, not R12 heartburn
    ("E53.8", "inclusionTerm", "Vitamin B12", []),
])
def test_mentions_in_real_notes(code, kind, part, expected):
    assert [(m.text, m.first, m.last) for m in mentions(note_of(code, kind, part))] == expected


def test_chapter_mentions():
    text = next(line for _, _, line in release_notes() if "Chapter 4" in line)
    assert Mention("Chapter 4", "4") in mentions(text)


def test_ranges_resolve_to_blocks_chapters_or_their_items():
    names = Resolver(cm)
    assert names.items(Mention("R07.1-R07.9", "R07.1", "R07.9")) == ["R07.1", "R07.2", "R07.8", "R07.9"]
    assert names.items(Mention("G89-G99", "G89", "G99")) == ["G89-G99"]
    assert str(names.iri("G89-G99")) == f"{ICD}block/G89-G99"
    assert names.items(Mention("A00-B99", "A00", "B99")) == ["1"] and str(names.iri("1")) == f"{ICD}chapter/1"
    # a range ending inside an item takes that item's children, not all of it
    assert names.items(Mention("T85.6-T85.79", "T85.6", "T85.79")) == ["T85.6", "T85.71", "T85.72", "T85.73",
                                                                         "T85.79"]
    # a single-category block (B10) is named by its category
    assert names.items(Mention("A00-B19", "A00", "B19"))[-6:] == ["B10", "B15", "B16", "B17", "B18", "B19"]
    assert str(names.iri("B10")) == f"{ICD}B10"
    # a range the release does not hold (I64 is ICD-10, not ICD-10-CM): the end that exists
    assert names.items(Mention("I60-I64", "I60", "I64")) == ["I60"]


def test_every_mention_of_every_note_names_release_items():
    """Across the whole release: a mention names nothing only when no code it writes is in the release."""
    names = Resolver(cm)
    unresolved = Counter()
    for _, _, line in release_notes():
        for mention in mentions(line):
            if not names.items(mention):
                unresolved[mention.text] += 1
                assert not any(cm.is_valid_item(c) for c in (mention.first, mention.last) if c), mention
    assert sum(unresolved.values()) < 20, unresolved  # 'GM2', 'CR3', 'G31.90' (not in this release), ...


# ------------------------------------------------------------------ the graph (SPARQL)


def test_every_note_of_the_release_is_in_the_graph(store):
    expected = Counter(PREFIXES["mc"] + kind for _, kind, _ in release_notes())
    found = {r["kind"]: int(r["n"]) for r in rows(store, """SELECT ?kind (COUNT(*) AS ?n) WHERE {
        GRAPH <https://w3id.org/medcode/graph/asserted> { ?item ?kind ?note } ?note a mc:TabularNote
        FILTER(?kind != mc:seventhCharacter) } GROUP BY ?kind""")}
    assert found == dict(expected)
    characters = sum(len(cm.get_seven_chr_def(c)) for c in dict.fromkeys(cm.get_all_codes(True)))
    assert rows(store, "SELECT (COUNT(*) AS ?n) WHERE { ?i mc:seventhCharacter ?c . ?c a mc:SeventhCharacter }")[0][
        "n"] == str(characters)


def test_every_note_names_the_release_as_its_source(store):
    release = f"<{ID_BASE}source/ICD-10-CM-2026>"
    assert not ask(store, f"ASK {{ ?n a mc:TabularNote FILTER NOT EXISTS {{ ?n dcterms:source {release} }} }}")
    assert ask(store, f"ASK {{ {release} skos:notation ?n }}")


def test_z45_notes(store):
    found = rows(store, """SELECT ?kind ?text ?target WHERE { icd10cm:Z45 ?kind ?n . ?n a mc:TabularNote ;
        rdfs:label ?text OPTIONAL { ?n mc:refersTo ?target } }""")
    assert {(r["kind"].rsplit("#")[1], r["text"], r.get("target")) for r in found} == {
        ("includes", "removal or replacement of implanted device", None),
        ("excludes1", "malfunction or other complications of device - see Alphabetical Index", None),
        ("excludes2", "encounter for fitting and adjustment of non-implanted device (Z46.-)", ICD + "Z46")}


def test_inclusion_terms_are_queryable(store):
    terms = rows(store, "SELECT ?t WHERE { icd10cm:G89.3 mc:inclusionTerm/rdfs:label ?t }")
    assert {r["t"] for r in terms} == {"Cancer associated pain", "Pain due to malignancy (primary) (secondary)",
                                       "Tumor associated pain"}
    found = rows(store, """SELECT ?code WHERE { ?c mc:inclusionTerm/rdfs:label ?t ; skos:notation ?code
        FILTER(CONTAINS(LCASE(STR(?t)), "tumor associated pain")) }""")
    assert [r["code"] for r in found] == ["G89.3"]


def test_one_pattern_asks_for_every_kind_of_note(store):
    """Every kind of note has the range mc:TabularNote (a 7th character is one by subclass, inferred).

    One step of rdfs:subClassOf reaches every subclass, since the inferred graph holds the closure; the
    path `rdfs:range/rdfs:subClassOf*` would say the same, but Virtuoso 7.2 answers it with no row once
    it is joined (README, remote-mode quirks)."""
    kinds = rows(store, "SELECT DISTINCT ?k WHERE { { ?k rdfs:range mc:TabularNote } "
                        "UNION { ?k rdfs:range/rdfs:subClassOf mc:TabularNote } }")
    assert {k["k"] for k in kinds} == {PREFIXES["mc"] + k for k in (*PACKAGE_NOTES, "seventhCharacter")}
    assert len(rows(store, "SELECT ?n WHERE { icd10cm:Z45 ?kind ?n . ?n a mc:TabularNote }")) == 3
    assert ask(store, "ASK { icd10cm:S14 mc:seventhCharacter ?c . ?c mc:character 'S' ; a mc:TabularNote }")


def test_seventh_characters(store):
    found = rows(store, "SELECT ?c ?meaning WHERE { icd10cm:S14 mc:seventhCharacter ?n . ?n mc:character ?c ; "
                        "rdfs:label ?meaning }")
    assert {(r["c"], r["meaning"]) for r in found} == {("A", "initial encounter"), ("D", "subsequent encounter"),
                                                       ("S", "sequela")}


def test_ranges_link_each_item(store):
    targets = rows(store, """SELECT ?t WHERE { ?n rdfs:label "chest pain (R07.1-R07.9)"@en ; mc:refersTo ?t .
        icd10cm:G89 mc:excludes2 ?n }""")
    assert {r["t"] for r in targets} == {ICD + c for c in ("R07.1", "R07.2", "R07.8", "R07.9")}


# ------------------------------------------------------------------ pages


def test_z45_page_shows_its_notes_with_codes_linked(client):
    text = page(client, "/id/icd10cm/Z45")
    notes = text[text.index('id="notes"'):text.index('id="relations"')]
    assert "malfunction or other complications of device - see Alphabetical Index" in notes
    assert "removal or replacement of implanted device" in notes
    assert re.search(r'encounter for fitting and adjustment of non-implanted device \(<a href="/id/icd10cm/Z46"[^>]*>'
                     r'Z46\.-</a>\)', notes)
    assert 'href="#notes"' in text  # in the page's table of contents


def test_g893_page_shows_inclusion_terms_and_inherited_notes(client):
    text = page(client, "/id/icd10cm/G89.3")
    notes = text[text.index('id="notes"'):text.index('id="relations"')]
    start = notes.index('id="notes-inclusionTerm"')
    inclusion = notes[start:notes.index("</section>", start)]
    for term in ("Cancer associated pain", "Pain due to malignancy (primary) (secondary)", "Tumor associated pain"):
        assert term in inclusion
    assert "Inherited from" not in inclusion  # inclusion terms belong to their code alone
    excludes1 = notes[notes.index('id="notes-excludes1"'):]
    assert re.search(r'Inherited from category <a href="/id/icd10cm/G89">', excludes1)
    assert re.search(r'generalized pain NOS \(<a href="/id/icd10cm/R52"[^>]*>R52</a>\)', excludes1)


def test_inherited_from_every_level(client):
    """Z45.1 inherits from its category, its block and its chapter, nearest first."""
    notes = text_of(page(client, "/id/icd10cm/Z45.1"))
    assert notes.index("Inherited from category Z45") < notes.index("malfunction or other complications")
    assert "Inherited from block Z40-Z53" in notes
    assert "Inherited from chapter 21" in notes and "Z codes represent reasons for encounters" in notes


def test_seventh_characters_are_inherited_by_extended_codes(client):
    text = page(client, "/id/icd10cm/S14.109S")
    table = text[text.index('id="notes-seventhCharacter"'):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<code>([ADS])</code></a></th><td>([^<]+)</td>", table) == [
        ("A", "initial encounter"), ("D", "subsequent encounter"), ("S", "sequela")]
    assert "inherited from category" in table
    assert re.search(r"<code>S</code>.*\(this code's 7th character\)", table) and table.count("this code's") == 1


def test_note_ranges_and_chapters_are_linked(client):
    text = page(client, "/id/icd10cm/G89.3")
    assert re.search(r'chest pain \(<a href="/id/icd10cm/R07.1"[^>]*>R07.1</a>-<a href="/id/icd10cm/R07.9"', text)
    chapter2 = page(client, "/id/icd10cm/chapter/2")
    assert re.search(r'<a href="/id/icd10cm/chapter/4"[^>]*>Chapter 4</a>', chapter2)


def test_page_rdf_carries_the_notes(client):
    response = client.get("/id/icd10cm/Z45", headers={"Accept": "application/n-triples"})
    body = response.get_data(as_text=True)
    note = f"<{ICD}Z45/excludes2/1>"
    assert f"<{ICD}Z45> <{PREFIXES['mc']}excludes2> {note} ." in body
    assert f"{note} <{PREFIXES['mc']}refersTo> <{ICD}Z46> ." in body


def test_a_note_has_its_own_page(client):
    text = text_of(page(client, "/id/icd10cm/Z45/excludes2/1"))
    assert "encounter for fitting and adjustment of non-implanted device (Z46.-)" in text
    assert "Z46" in text and "Z45" in text  # what it refers to, and what points to it


# ------------------------------------------------------------------ search


def test_search_finds_inclusion_terms(client):
    body = client.get("/search", query_string={"q": "tumor associated pain", "format": "json"}).get_json()
    first = body["results"][0]
    assert first["notation"] == "G89.3"
    assert first["matched_inclusion_terms"] == ["Tumor associated pain"]
    assert "G89.3" in [r["notation"] for r in client.get(
        "/search", query_string={"q": "cancer associated pain", "format": "json"}).get_json()["results"][:3]]


def test_search_page_shows_the_matched_inclusion_term(client):
    text = page(client, "/search?q=tumor+associated+pain")
    first = text[text.index('<ol class="results"'):text.index("</li>")]
    assert "G89.3" in first and "Inclusion term: Tumor associated pain" in text_of(first)
