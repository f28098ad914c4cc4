"""A coder can trust every answer (issue 12): device kinds, modifier systems, billable ICD-10-CM
mappings, the modifier a code is reported with, the project's own CPT wording, and provenance.

Each question is asked as a user would, through SPARQL against the built snapshot or over HTTP.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from test_competency import column, run

from kg.contract import PREFIXES
from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, ID_BASE
from server import create_app

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SOURCE = ID_BASE + "source/"
PUMP_OR_RESERVOIR = {"62365", "95990", "95991", "96522", "61215", "36576", "36578", "36590"}
ANALYSIS = {"62367", "62368", "62369", "62370"}  # "includes evaluation of reservoir status": the pump's own


@pytest.fixture(scope="module")
def app(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir)})
    yield app
    app.extensions["medcode.store"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def ask(store, query: str) -> bool:
    """An ASK with every prefix the endpoint predeclares (cpt:, hcpcs:, icd10cm:, modifier:, id:, ...)."""
    return bool(store.query(query, prefixes=PREFIXES, use_default_graph_as_union=True))


def select(store, query: str) -> list[dict]:
    solutions = store.query(query, prefixes=PREFIXES, use_default_graph_as_union=True)
    names = [v.value for v in solutions.variables]
    return [{n: row[n] for n in names} for row in solutions]


def notations(store, where: str) -> set[str]:
    return {r["n"].value for r in select(store, f"SELECT DISTINCT ?n WHERE {{ {where} ?c skos:notation ?n }}")}


def source_of(store, subject: str, predicate: str, obj: str) -> set[str]:
    """The notations of the sources the mc:Assertion of one fact names."""
    rows = select(store, f"""SELECT ?s WHERE {{ ?a a mc:Assertion ; rdf:subject {subject} ; rdf:predicate {predicate} ;
        rdf:object {obj} ; dcterms:source [ skos:notation ?s ] }}""")
    return {r["s"].value for r in rows}


# -- 1. device kinds: "pump or reservoir" codes are found by every kind they cover --------------------
def test_a_query_by_reservoir_finds_every_pump_or_reservoir_code(store):
    found = notations(store, "?c mc:usesDevice/a mc:SubcutaneousReservoir .")
    assert found >= PUMP_OR_RESERVOIR | {"62360", "96523", "96542"}
    assert not found & ANALYSIS  # the pump's internal reservoir is no reservoir device


def test_a_query_by_implantable_pump_finds_pump_or_reservoir_and_portable_or_implantable_codes(store):
    found = notations(store, "?c mc:usesDevice/a mc:ImplantableInfusionPump .")
    assert found >= PUMP_OR_RESERVOIR | ANALYSIS | {"62361", "62362", "36260", "36261", "36262", "36563", "36583",
                                                    "96416", "96425", "C8957"}
    assert "62360" not in found  # a reservoir alone is no pump
    # a programmable-pump question still answers only what needs a programmable pump
    programmable = notations(store, "?c mc:usesDevice/a mc:ProgrammableImplantablePump ; a mc:CPTCode .")
    assert programmable == {"62362"} | ANALYSIS


def test_the_coders_questions(store):
    removal_spinal = notations(store, """?c mc:usesDevice/a mc:SubcutaneousReservoir, mc:ImplantableInfusionPump ;
        mc:route mc:Intrathecal .""")
    assert removal_spinal == {"62365", "95990", "95991"}  # 62365 removes, 95990/95991 refill
    systemic_refill = notations(store, """?c mc:usesDevice/a mc:SubcutaneousReservoir, mc:ImplantableInfusionPump ;
        mc:route mc:Intravenous .""")
    assert "96522" in systemic_refill and not systemic_refill & {"95990", "95991", "62365"}


def test_coverage_is_inferred_from_the_device_the_code_names(store):
    reservoir, named = f"<{ID_BASE}device/subcutaneous-reservoir>", f"<{ID_BASE}device/implantable-pump-or-reservoir>"
    assert ask(store, f"ASK {{ GRAPH <{GRAPH_ASSERTED}> {{ cpt:96522 mc:usesDevice {named} }} }}")
    assert not ask(store, f"ASK {{ GRAPH <{GRAPH_ASSERTED}> {{ cpt:96522 mc:usesDevice {reservoir} }} }}")
    assert ask(store, f"ASK {{ GRAPH <{GRAPH_INFERRED}> {{ cpt:96522 mc:usesDevice {reservoir} }} }}")
    assert ask(store, f"ASK {{ {named} mc:coversDevice {reservoir} }}")


def test_codes_by_device_kind_named_query(store):
    rows = run(store, "codes-by-device-kind")  # default SubcutaneousReservoir
    assert column(rows, "code") >= PUMP_OR_RESERVOIR | {"62360", "C1788", "A4301"}
    assert not column(rows, "code") & ANALYSIS
    via = {r["code"].value for r in rows if r["via"] is not None}
    assert via == PUMP_OR_RESERVOIR
    rows = run(store, "codes-by-device-kind", kind="ProgrammableImplantablePump")
    fit = {r["code"].value: r["fit"].value for r in rows}
    assert {c for c, f in fit.items() if f == "this kind"} == {"62362", "C1772", "E0783", "E0786"} | ANALYSIS
    assert {"95990", "96522", "62365", "36260"} <= {c for c, f in fit.items() if f == "broader kind"}
    portable = column(run(store, "codes-by-device-kind", kind="PortablePump"), "code")
    assert {"96521", "96425", "E0779"} <= portable and "E0791" not in portable  # stationary is not portable


def test_browse_devices_lists_pump_or_reservoir_codes_under_each_kind(client):
    text = client.get("/browse/devices").get_data(as_text=True)
    item = text[text.index('<li class="device"><a href="/id/device/subcutaneous-reservoir"'):]
    item = item[:item.index("</ul>")]
    assert 'href="/id/cpt/96522"' in item and 'href="/id/device/implantable-pump-or-reservoir"' in item
    assert not any(f'href="/id/cpt/{code}"' in item for code in ANALYSIS)
    item = text[text.index('<li class="device"><a href="/id/device/implantable-pump-or-reservoir"'):]
    assert 'class="covers"' in item[:item.index("<ul")]


# -- 2. each modifier resolves to exactly its own code system -----------------------------------------
def test_each_modifier_has_exactly_its_own_fhir_system(store):
    rows = select(store, """SELECT ?n (COUNT(DISTINCT ?f) AS ?systems) (SAMPLE(?f) AS ?fhir) WHERE {
        ?m a mc:Modifier ; skos:notation ?n . OPTIONAL { ?m (skos:inScheme|mc:modifierSystem)/mc:fhirSystem ?f } }
        GROUP BY ?n""")
    systems = {r["n"].value: (int(r["systems"].value), r["fhir"].value) for r in rows}
    assert systems["59"] == systems["95"] == (1, CPT)
    assert all(systems[m] == (1, HCPCS) for m in ("XU", "XE", "XS", "XP", "AQ", "Q1", "KD"))
    assert set(systems) == {"59", "95", "XU", "XE", "XS", "XP", "AQ", "Q1", "KD"}
    assert not ask(store, "ASK { ?m a mc:Modifier ; skos:inScheme/mc:fhirSystem ?f }")  # the list has none
    assert not ask(store, f"ASK {{ <{ID_BASE}modifier> mc:oid ?oid }}")


def test_fhir_translate_knows_a_modifier_only_in_its_own_system(client):
    for code, system, other in (("59", CPT, HCPCS), ("95", CPT, HCPCS), ("XU", HCPCS, CPT), ("KD", HCPCS, CPT)):
        assert client.get(f"/fhir/ConceptMap/$translate?system={system}&code={code}").status_code == 200
        wrong = client.get(f"/fhir/ConceptMap/$translate?system={other}&code={code}")
        assert wrong.status_code == 404 and wrong.get_json()["issue"][0]["code"] == "not-found"


def test_export_systems_are_derived_per_code(client, store):
    expected = {r["iri"].value: r["fhir"].value for r in select(store, """SELECT ?iri ?fhir WHERE {
        { ?iri a mc:Code } ?iri (skos:inScheme|mc:modifierSystem)/mc:fhirSystem ?fhir
        FILTER(!STRSTARTS(STR(?iri), "https://w3id.org/medcode/id/icd10cm/")) }""")}
    for name in ("device-crosswalk", "indication-icd10cm"):
        rows = list(csv.DictReader(io.StringIO(client.get(f"/export/{name}.csv").get_data(as_text=True))))
        for row in rows:
            for side in ("subject", "object"):
                iri, system = row[f"{side}_iri"], row[f"{side}_system"]
                assert system == expected.get(iri, ICD), (name, iri, system)


# -- 4. a coder can bill every mapping: billable codes or marked categories; Z codes as encounter reasons
def test_conditions_match_billable_codes_only(store):
    for cls in ("mc:Condition", "mc:EncounterReason"):
        assert not ask(store, f"""ASK {{ ?k a {cls} ; skos:closeMatch ?icd .
            ?icd a mc:ICD10CMCode ; mc:billable false }}""")


def test_every_condition_code_is_a_leaf_of_the_release(store):
    import simple_icd_10_cm as cm

    rows = select(store, """SELECT ?k ?n ?p WHERE { VALUES ?p { skos:closeMatch mc:categoryMatch }
        { ?k a mc:Condition } UNION { ?k a mc:EncounterReason }
        ?k ?p ?icd . ?icd a mc:ICD10CMCode ; skos:notation ?n }""")
    assert rows
    for r in rows:
        category = r["p"].value.endswith("categoryMatch")
        assert cm.is_leaf(r["n"].value) != category, (r["k"].value, r["n"].value)


def test_a_category_offers_all_its_billable_descendants(store):
    categories = select(store, "SELECT ?k ?cat WHERE { ?k mc:categoryMatch ?cat }")
    assert {(r["k"].value.rsplit("/", 1)[1], r["cat"].value.rsplit("/", 1)[1]) for r in categories} >= {
        ("multiple-sclerosis", "G35"), ("post-stroke-hemiplegia", "I69.35")}
    # mc:billable ?billable FILTER(?billable), not `mc:billable true`: Oxigraph starts from the constant (every
    # billable code) and takes seconds; the same question from the category's descendants takes milliseconds
    assert not ask(store, """ASK { ?k mc:categoryMatch ?cat . ?leaf skos:broaderTransitive ?cat ;
        mc:billable ?billable . FILTER(?billable) FILTER NOT EXISTS { ?k skos:closeMatch ?leaf } }""")
    assert not ask(store, "ASK { ?k a mc:Condition ; skos:exactMatch icd10cm:G35 }")


def test_z_codes_are_encounter_reasons_not_conditions(store):
    z = 'FILTER(STRSTARTS(STR(?icd), "https://w3id.org/medcode/id/icd10cm/Z"))'
    assert not ask(store, f"ASK {{ ?k a mc:Condition ; skos:mappingRelation ?icd {z} }}")
    assert not ask(store, f"ASK {{ ?i mc:condition/skos:closeMatch ?icd {z} }}")
    assert not ask(store, f"ASK {{ <{ID_BASE}condition/localized-tumor> skos:closeMatch icd10cm:Z51.11 }}")
    assert ask(store, "ASK { cpt:96522 mc:indication/mc:encounterReason/skos:exactMatch icd10cm:Z45.1 }")
    assert not ask(store, """ASK { ?r a mc:EncounterReason ; skos:closeMatch ?icd . ?icd a mc:ICD10CMCode
        FILTER(!STRSTARTS(STR(?icd), "https://w3id.org/medcode/id/icd10cm/Z")) }""")


def test_indications_of_96522_name_conditions_categories_and_encounter_reasons(store):
    rows = run(store, "indication-icd-codes", code="96522")
    g35 = [r for r in rows if r["icdNotation"] is not None and r["icdNotation"].value == "G35"]
    assert {(r["match"].value, r["billable"].value) for r in g35} == {("category", "false")}
    offered = {r["icdNotation"].value for r in rows if r["categoryNotation"] is not None
               and r["categoryNotation"].value == "G35"}
    assert offered == {"G35.A", "G35.B0", "G35.B1", "G35.B2", "G35.C0", "G35.C1", "G35.C2", "G35.D"}
    z45 = [r for r in rows if r["icdNotation"] is not None and r["icdNotation"].value == "Z45.1"]
    assert z45 and {r["role"].value for r in z45} == {"encounter reason"}
    billed = [r for r in rows if r["icd"] is not None and r["match"].value != "category"]
    assert all(r["billable"].value == "true" for r in billed)


def test_the_indication_export_holds_billable_condition_codes_only(client, store):
    rows = list(csv.DictReader(io.StringIO(client.get("/export/indication-icd10cm.csv").get_data(as_text=True))))
    billable = {r["n"].value for r in select(store, """SELECT DISTINCT ?n WHERE { ?k a mc:Condition ;
        skos:closeMatch ?icd . ?icd mc:billable true ; skos:notation ?n }""")}
    assert rows and {r["object_code"] for r in rows} <= billable
    assert not any(r["object_code"].startswith("Z") for r in rows)
    assert {r["category"] for r in rows if r["object_code"].startswith("G35")} == {"G35"}


# -- 6. J7799 is reported with modifier KD: a relation ----------------------------------------------
def test_j7799_is_reported_with_kd(store):
    assert ask(store, """ASK { hcpcs:J7799 mc:reportedWithModifier modifier:KD .
        modifier:KD mc:modifierReportedWith hcpcs:J7799 }""")
    assert source_of(store, "hcpcs:J7799", "mc:reportedWithModifier", "modifier:KD") == {"curated"}
    assert column(run(store, "code-facts", code="J7799"), "reportedWith") == {"KD"}
    assert column(run(store, "code-facts", code="96522"), "reportedWith") == set()


# -- 7. CPT wording: seed descriptors from their seed, every other label the project's own -----------
CPT_OPENINGS = ("Implantation", "Insertion of", "Removal of", "Revision of", "Repair of", "Replacement",
                "Refilling and maintenance", "Irrigation of", "Chemotherapy administration", "Daily hospital",
                "Injection(s)", "Arterial catheterization", "Home infusion/specialty", "Subcutaneous infusion for")


def test_cpt_labels_are_seed_descriptors_or_the_projects_own(store):
    # the kind is asked as a word: Virtuoso answers a boolean expression (EXISTS) as the integer 1
    rows = select(store, """SELECT ?n ?label ?src ?kind WHERE {
        ?c a mc:CPTCode ; skos:notation ?n ; skos:prefLabel ?label .
        ?a rdf:subject ?c ; rdf:predicate skos:prefLabel ; rdf:object ?label ; dcterms:source ?s .
        ?s skos:notation ?src . BIND(IF(EXISTS { ?s a mc:SeedDocument }, "seed", "other") AS ?kind) }""")
    assert rows
    for r in rows:
        code, label = r["n"].value, r["label"].value
        if r["kind"].value == "seed":  # a seed's descriptor, quoted as the seed quotes it
            assert ask(store, f'ASK {{ cpt:{code} mc:longDescriptor "{label}" }}'), code
        else:
            assert not label.startswith(CPT_OPENINGS) and ";" not in label and len(label) <= 100, (code, label)


# -- 8. every fact's source is the document that states it -----------------------------------------
def test_62370_performers_follow_from_the_descriptor(store):
    rows = select(store, """SELECT ?n ?who ?src WHERE { ?a rdf:subject ?c ; rdf:predicate mc:performer ;
        rdf:object ?who ; dcterms:source [ skos:notation ?src ] . ?c skos:notation ?n }""")
    by_code = {}
    for r in rows:
        by_code.setdefault(r["n"].value, set()).add(r["src"].value)
    assert by_code["62370"] == {"descriptor"}
    assert by_code["62367"] == by_code["62368"] == by_code["62369"] == {"S003"}


def test_hcpcs_modifier_texts_cite_the_hcpcs_file(store):
    for m in ("XS", "XP"):
        rows = select(store, f"""SELECT ?p ?src WHERE {{ ?a rdf:subject modifier:{m} ; rdf:predicate ?p ;
            dcterms:source [ skos:notation ?src ] }}""")
        assert {r["src"].value for r in rows} == {"ANWEB-2019"}, m
    assert source_of(store, "modifier:59", "mc:modifierSystem", "id:cpt") == {"curated"}  # S004 does not say so
    assert source_of(store, "modifier:XU", "mc:modifierSystem", "id:hcpcs") == {"ANWEB-2019"}


def test_seed_facts_are_stated_by_their_seed(store):
    # S003 states the pairs of its instruction, not how they are classified
    edit = f"<{ID_BASE}edit/95990_62367>"
    assert ask(store, f"ASK {{ {edit} dcterms:source <{SOURCE}S003> }}")
    indicator = f"<{ID_BASE}valueset/ptp-modifier-indicator/0>"
    assert source_of(store, edit, "mc:modifierIndicator", indicator) == {"curated"}
    # the variant relation follows from the descriptors S003 quotes
    assert source_of(store, "cpt:62370", "mc:physicianSkillVariantOf", "cpt:62369") == {"descriptor"}
    # NCD 280.14 names a condition, not its ICD-10-CM codes
    pain = f"<{ID_BASE}condition/chronic-intractable-pain>"
    assert source_of(store, pain, "skos:closeMatch", "icd10cm:G89.4") == {"curated"}
    # S002 prints 96425's descriptor, not its number
    assert not ask(store, f"ASK {{ cpt:96425 dcterms:source <{SOURCE}S002> }}")
    label = select(store, "SELECT ?l WHERE { cpt:96425 skos:prefLabel ?l }")[0]["l"]
    assert source_of(store, "cpt:96425", "skos:prefLabel", f'"{label.value}"@en') == {"S002"}
    # notes are the maintainers' words
    assert not ask(store, "ASK { ?a rdf:predicate skos:note ; dcterms:source ?s . ?s a mc:SeedDocument }")
