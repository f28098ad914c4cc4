"""The competency questions, answered by the named queries in queries/*.rq against a built snapshot.

Each question runs the saved query file as a user would: its ``#+`` header names the parameters and
their defaults, and a parameter is bound to the query variable of the same name (SEP-0007
substitution), never spliced into the text. The default graph is the union of the asserted and the
inferred named graphs, so answers include what the reasoner derived.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import pytest
import yaml
from pyoxigraph import Literal, NamedNode

from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, ID_BASE, MC, QUERIES_DIR
from server.named_queries import bind_values

XSD = "http://www.w3.org/2001/XMLSchema#"
PREFIXES = f"""PREFIX mc: <{MC}>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX dcterms: <http://purl.org/dc/terms/>
"""
EXPECTED_QUERIES = {
    "not-reported-with", "programmable-pump-procedures", "implantable-pump-device-codes",
    "portable-pump-alternative", "portable-pump-alternative-of", "code-facts", "routes",
    "icd-billable-descendants", "indication-icd-codes", "device-crosswalk",
}


# -- running named queries ---------------------------------------------------------------------
@lru_cache
def named_query(name: str) -> tuple[dict[str, Any], str]:
    """(header, text) of queries/<name>.rq; the header is the YAML in its leading `#+ ` lines."""
    text = (QUERIES_DIR / f"{name}.rq").read_text(encoding="utf-8")
    header_lines = [line[3:] for line in text.splitlines() if line.startswith("#+ ")]
    return yaml.safe_load("\n".join(header_lines)), text


def run(store, name: str, **params: str) -> list[dict[str, Any]]:
    """Run a named query with its defaults, overridden by `params`; rows as {variable: term}."""
    header, text = named_query(name)
    declared = header.get("params") or {}
    unknown = set(params) - set(declared)
    assert not unknown, f"{name}.rq declares no parameter {unknown}"
    values = {key: str(spec["default"]) for key, spec in declared.items()}
    values.update(params)
    # bound the way the server binds them: a VALUES block of RDF terms opening the WHERE group
    bound = bind_values(text, {key: ("literal", value, None) for key, value in values.items()})
    solutions = store.query(bound, use_default_graph_as_union=True)
    names = [v.value for v in solutions.variables]
    return [{n: row[n] for n in names} for row in solutions]


def column(rows: list[dict[str, Any]], name: str) -> set[str]:
    """The distinct lexical values of one result column (unbound cells left out)."""
    return {row[name].value for row in rows if row[name] is not None}


def ask(store, query: str) -> bool:
    return bool(store.query(PREFIXES + query, use_default_graph_as_union=True))


def select(store, query: str) -> list[dict[str, Any]]:
    solutions = store.query(PREFIXES + query, use_default_graph_as_union=True)
    names = [v.value for v in solutions.variables]
    return [{n: row[n] for n in names} for row in solutions]


# -- the query files themselves ----------------------------------------------------------------
def test_every_competency_question_has_a_named_query_file():
    assert {p.stem for p in QUERIES_DIR.glob("*.rq")} >= EXPECTED_QUERIES


@pytest.mark.parametrize("name", sorted(EXPECTED_QUERIES))
def test_query_header_declares_title_description_and_typed_params(name):
    header, text = named_query(name)
    assert isinstance(header.get("title"), str) and header["title"].strip()
    assert isinstance(header.get("description"), str) and header["description"].strip()
    params = header.get("params")
    assert isinstance(params, dict)
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    projection = re.search(r"SELECT\s+(?:DISTINCT\s+)?(.*?)\s+WHERE", body, re.S | re.I)
    assert projection, f"{name}.rq is not a SELECT query"
    for key, spec in params.items():
        assert spec.get("type") == "string" and str(spec.get("default", "")).strip(), (name, key, spec)
        # bound by substitution: the variable must be used, and SEP-0007 needs it projected
        assert re.search(rf"\?{key}\b", body[projection.end():]), f"?{key} unused in {name}.rq"
        assert f"?{key}" in projection.group(1).split(), f"?{key} not projected in {name}.rq"


# -- 1. exclusions -----------------------------------------------------------------------------
def test_q1_codes_not_reported_with_95990(store):
    assert column(run(store, "not-reported-with"), "notation") == {"62367", "62368", "62369", "62370"}
    assert column(run(store, "not-reported-with", code="95990"), "notation") == {"62367", "62368", "62369", "62370"}


def test_q1_codes_not_reported_with_62369_from_column_2(store):
    assert column(run(store, "not-reported-with", code="62369"), "notation") == {"95990", "95991"}


def test_q1_not_reported_with_is_only_inferred_from_the_edits(store):
    assert not ask(store, f"ASK {{ GRAPH <{GRAPH_ASSERTED}> {{ ?a mc:notReportedWith ?b }} }}")
    pair = f"<{ID_BASE}cpt/62369> mc:notReportedWith <{ID_BASE}cpt/95990>"  # 62369 is in column 2 only
    assert ask(store, f"ASK {{ GRAPH <{GRAPH_INFERRED}> {{ {pair} }} }}")
    # the edits it is inferred from are asserted, one direction each
    edits = select(store, f"""SELECT ?c1 ?c2 WHERE {{ GRAPH <{GRAPH_ASSERTED}> {{
        ?e a mc:CodePairEdit ; mc:column1 ?x ; mc:column2 ?y }} ?x skos:notation ?c1 . ?y skos:notation ?c2 }}""")
    assert {(r["c1"].value, r["c2"].value) for r in edits} == {
        (c1, c2) for c1 in ("95990", "95991") for c2 in ("62367", "62368", "62369", "62370")}


# -- 2. procedures on a programmable pump ------------------------------------------------------
def test_q2_cpt_codes_using_a_programmable_implantable_pump(store):
    rows = run(store, "programmable-pump-procedures")
    assert column(rows, "notation") == {"62362", "62367", "62368", "62369", "62370"}


# -- 3. device codes for any implantable infusion pump -----------------------------------------
def test_q3_hcpcs_codes_denoting_an_implantable_infusion_pump(store):
    rows = run(store, "implantable-pump-device-codes")
    assert column(rows, "notation") == {"C1772", "C1891", "C2626", "E0782", "E0783", "E0786"}


def test_q3_devices_are_asserted_only_as_their_most_specific_class(store):
    devices = {row["device"] for row in run(store, "implantable-pump-device-codes")}
    assert {d.value for d in devices} == {ID_BASE + "device/programmable-implantable-pump",
                                          ID_BASE + "device/nonprogrammable-implantable-pump"}
    for device in devices:
        asserted = {r["t"].value for r in select(store, f"""SELECT ?t WHERE {{
            GRAPH <{GRAPH_ASSERTED}> {{ {device} a ?t }} FILTER(STRSTARTS(STR(?t), "{MC}")) }}""")}
        assert len(asserted) == 1, (device, asserted)
        assert str(MC.ImplantableInfusionPump) not in asserted
        (cls,) = asserted
        assert cls in {str(MC.ProgrammableImplantablePump), str(MC.NonProgrammableImplantablePump)}
        assert ask(store, f"ASK {{ GRAPH <{GRAPH_INFERRED}> {{ {device} a mc:ImplantableInfusionPump }} }}")


# -- 4. portable-pump alternative ---------------------------------------------------------------
def test_q4_refill_of_an_external_portable_pump_is_96521(store):
    assert column(run(store, "portable-pump-alternative"), "notation") == {"96521"}
    assert column(run(store, "portable-pump-alternative", code="96522"), "notation") == {"96521"}


def test_q4_inverse_portable_pump_alternative_of_is_inferred(store):
    assert column(run(store, "portable-pump-alternative-of", code="96521"), "notation") == {"96522"}
    triple = f"<{ID_BASE}cpt/96521> mc:portablePumpAlternativeOf <{ID_BASE}cpt/96522>"
    assert ask(store, f"ASK {{ GRAPH <{GRAPH_INFERRED}> {{ {triple} }} }}")
    assert not ask(store, f"ASK {{ GRAPH <{GRAPH_ASSERTED}> {{ {triple} }} }}")


# -- 5. MUE, added date, listed modifiers ------------------------------------------------------
def test_q5_facts_of_96522(store):
    rows = run(store, "code-facts", code="96522")
    assert {row["mue"] for row in rows} == {Literal("1", datatype=NamedNode(XSD + "integer"))}
    assert {row["added"] for row in rows} == {Literal("2006-01-01", datatype=NamedNode(XSD + "date"))}
    assert column(rows, "modifier") == {"59", "XU", "XE", "95", "AQ", "Q1"}


# -- 6. routes ----------------------------------------------------------------------------------
def test_q6_routes_of_96522(store):
    routes = {term.value for term in (row["route"] for row in run(store, "routes", code="96522"))}
    assert all(r.startswith(str(MC)) for r in routes)
    assert {r.removeprefix(str(MC)) for r in routes} == {"Intravenous", "IntraArterial"}


# -- 7. ICD-10-CM billable descendants -----------------------------------------------------------
def test_q7_g35_is_not_billable_and_its_billable_descendants(store):
    rows = run(store, "icd-billable-descendants")  # default G35
    assert {row["billable"] for row in rows} == {Literal("false", datatype=NamedNode(XSD + "boolean"))}
    assert column(rows, "descendantNotation") == {
        "G35.A", "G35.B0", "G35.B1", "G35.B2", "G35.C0", "G35.C1", "G35.C2", "G35.D"}


def test_q7_a_billable_leaf_has_no_descendants(store):
    rows = run(store, "icd-billable-descendants", code="G35.A")
    assert len(rows) == 1
    assert rows[0]["billable"] == Literal("true", datatype=NamedNode(XSD + "boolean"))
    assert rows[0]["descendant"] is None


# -- device crosswalk ----------------------------------------------------------------------------
def test_device_crosswalk_of_62362(store):
    rows = run(store, "device-crosswalk")  # default 62362
    assert column(rows, "notation") == {"C1772", "E0783", "E0786"}
    assert column(rows, "device") == {ID_BASE + "device/programmable-implantable-pump"}


# -- seed defects, indications, provenance, code systems ----------------------------------------
PROFILE_TEXT = """SELECT ?text WHERE {{
    <{id}cpt/{code}> mc:profile ?profile . ?profile dcterms:source <{id}source/S003> .
    {{ ?profile ?p ?text }} UNION {{ ?profile mc:procedureStep ?step . ?step rdfs:label ?text }}
    FILTER(isLiteral(?text)) }}"""
DEFECT = "The provider does not reprogram the pump during this service."


def test_62368_profile_drops_the_seed_sentence_copied_from_62367(store):
    texts_62368 = {r["text"].value for r in select(store, PROFILE_TEXT.format(id=ID_BASE, code="62368"))}
    assert "The provider reprograms the infusion rate to increase the infusion rate to treat a patient with " \
           "increased pain." in texts_62368
    assert DEFECT not in texts_62368
    # the sentence is modelled where it belongs, so the query above would have found it
    assert DEFECT in {r["text"].value for r in select(store, PROFILE_TEXT.format(id=ID_BASE, code="62367"))}


def test_96522_indications_from_the_seeds_match_icd10cm_codes(store):
    rows = run(store, "indication-icd-codes", code="96522")
    seeds = {row["source"].value for row in rows if row["source"].value.startswith("S00")}
    assert seeds == {"S000", "S004"}
    for seed in seeds:
        assert any(row["icd"] is not None for row in rows if row["source"].value == seed), seed
    z5111 = [row for row in rows if row["icdNotation"] is not None and row["icdNotation"].value == "Z51.11"]
    assert {row["source"].value for row in z5111} == {"S000", "S004"}
    assert {row["match"].value for row in z5111} == {"exact"}
    # issue 12: Z51.11 is an encounter reason, not the condition; G35 is a category, not billable
    assert column(z5111, "condition") == {ID_BASE + "encounter-reason/antineoplastic-chemotherapy"}
    assert column(z5111, "role") == {"encounter reason"}
    assert column(rows, "match") == {"exact", "close", "category"}


def test_icd10cm_scheme_holds_every_item_of_the_release(store):
    import simple_icd_10_cm as cm

    codes = cm.get_all_codes(True)
    distinct = set(codes)
    # simple-icd-10-cm lists 98,505 items (22 chapters, blocks, categories, subcategories), but 39
    # of them appear twice: a block made of a single category shares that category's code (B10,
    # B20, C7A, ...). The graph gives each occurrence its own IRI (.../icd10cm/block/B20 and
    # .../icd10cm/B20), so it holds 98,466 distinct codes + 39 duplicated ones = 98,505 concepts.
    assert len(codes) - len(distinct) == 39
    rows = select(store, f"""SELECT (COUNT(DISTINCT ?x) AS ?items) (COUNT(DISTINCT ?n) AS ?notations) WHERE {{
        ?x skos:inScheme <{ID_BASE}icd10cm> ; skos:notation ?n .
        {{ ?x a mc:ICD10CMCode }} UNION {{ ?x a mc:ICD10CMGrouping }} }}""")
    assert int(rows[0]["items"].value) == len(codes) == len(distinct) + 39
    assert int(rows[0]["notations"].value) == len(distinct)


def test_code_systems_carry_fhir_uris_and_oids(store):
    rows = select(store, """SELECT ?scheme ?fhir ?oid WHERE {
        ?scheme a mc:CodeSystem ; mc:fhirSystem ?fhir ; mc:oid ?oid }""")
    systems = {row["scheme"].value.removeprefix(ID_BASE): (row["fhir"].value, row["oid"].value) for row in rows}
    assert len(rows) == len(systems)  # one FHIR URI and one OID each
    assert systems["cpt"] == ("http://www.ama-assn.org/go/cpt", "2.16.840.1.113883.6.12")
    assert systems["icd10cm"] == ("http://hl7.org/fhir/sid/icd-10-cm", "2.16.840.1.113883.6.90")
    # issue 12: the modifier list is no code system of its own (each modifier's is its mc:modifierSystem)
    assert set(systems) == {"cpt", "hcpcs", "icd10cm"}
    assert {row["fhir"].datatype.value for row in rows} == {XSD + "anyURI"}


def test_every_assertion_names_its_source(store):
    count = select(store, "SELECT (COUNT(?a) AS ?n) WHERE { ?a a mc:Assertion }")
    assert int(count[0]["n"].value) > 0
    assert not ask(store, "ASK { ?a a mc:Assertion FILTER NOT EXISTS { ?a dcterms:source ?s } }")
    assert not ask(store, "ASK { ?a a mc:Assertion ; dcterms:source ?s FILTER NOT EXISTS { ?s a mc:Source } }")


def test_seed_documents_with_their_file_names(store):
    rows = select(store, "SELECT ?id ?file WHERE { ?s a mc:SeedDocument ; skos:notation ?id ; mc:fileName ?file }")
    assert {row["id"].value: row["file"].value for row in rows} == {
        "S000": "000_58b2bf221185fe5b.txt",
        "S001": "001_902c727c5a2610a9.txt",
        "S002": "002_d6c9dbd7b933a0f5.txt",
        "S003": "003_6b6a907f09847979.txt",
        "S004": "004_694a8cfb323c70f5.txt",
    }
