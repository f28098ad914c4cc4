"""NCCI files in CMS's layouts (tests/data/ncci/, made-up rows): the reader, its triples, and the claim
check over a graph built with them.

The graph is the curated family plus the NCCI files, built as `medcode build --ncci DIR` builds it
(kg.pipeline.build with `ncci=`: the files' triples in the asserted graph, then reasoning and SHACL
validation). With
MEDCODE_TEST_STORE=virtuoso it is published to a Virtuoso of its own, so the same claims are checked
through a remote engine.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import virtuoso as virtuoso_server
from click.testing import CliRunner
from conftest import REMOTE
from helpers import free_port
from rdflib import Literal, URIRef
from rdflib.namespace import RDF, SKOS

import kg.pipeline
from kg.contract import DCTERMS, ID_BASE, MC, current_snapshot, open_store, read_meta
from kg.namespaces import code_iri
from kg.ncci import SETTING_NODES, ncci_triples, read_mue, read_ncci, read_ptp, source_node
from kg.publish import publish
from kg.records import SourceError
from kg.validation import ValidationError
from medcode.cli import main
from server import create_app

NCCI = Path(__file__).parent / "data" / "ncci"
PTP = NCCI / "ccipra-v321r0-f1.txt"
MUE = NCCI / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"
DATE = "2026-03-02"
MI1_EDIT = ID_BASE + "edit/ncci/practitioner/96522_96523/20100101"
ICD10CM = ["G89.3", "G89.29", "Z45.1"]


# -- the reader ----------------------------------------------------------------------------------
def test_ptp_rows_are_read_below_the_preamble_and_the_header():
    edits = list(read_ptp(PTP, "practitioner"))
    assert [(e.column1, e.column2, e.modifier_indicator) for e in edits] == [
        ("96522", "96523", "1"), ("62362", "62367", "0"), ("62362", "62368", "0"), ("96522", "99211", "1"),
        ("62350", "62355", "9")]
    deleted = edits[1]
    assert (deleted.effective, deleted.deleted) == (datetime.date(2007, 1, 1), datetime.date(2020, 1, 1))
    assert edits[0].deleted is None and edits[0].rationale == "Misuse of column two code with column one code"
    assert edits[0].line == 9 and edits[0].setting == "practitioner"


def test_mue_tables_name_their_setting_in_the_header():
    setting, rows = read_mue(MUE)
    assert setting == "practitioner"
    assert [(r.code, r.value, r.adjudication_indicator) for r in rows] == [
        ("96522", 1, "3"), ("96523", 1, "1"), ("62369", 1, "2")]
    assert rows[0].rationale == "Clinical: Data"


def test_a_directory_holds_both_tables_of_both_settings():
    tables = read_ncci(NCCI)
    assert {(path.name, kind, setting) for path, kind, setting in tables.files} == {
        ("ccipra-v321r0-f1.txt", "ptp", "practitioner"), ("ccioph-v321r0-f1.txt", "ptp", "outpatient-hospital"),
        ("MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", "mue", "practitioner"),
        ("MCR_MUE_OutpatientHospitalServices_Eff_01-01-2026.csv", "mue", "outpatient-hospital")}
    assert len(tables.pair_edits) == 6 and len(tables.units_edits) == 4


HEADER = ("Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\tModifier\t"
          "PTP Edit Rationale\n")


@pytest.mark.parametrize(("name", "text", "where"), [
    ("ccipra-x.txt", HEADER + "96522\t96523\t\t20100101\t*\t2\tx\n", ":2: field 'Modifier'"),
    ("ccipra-x.txt", HEADER + "96522\t96523\t\t20100101\t*\t1\tx\n96522\t9652\t\t20100101\t*\t1\tx\n",
     ":3: field 'Column 2'"),
    ("ccipra-x.txt", HEADER + "96522\t96523\t\t20100101\t2020-01-01\t1\tx\n", ":2: field 'Deletion Date'"),
    ("ccipra-x.txt", HEADER + "96522\t96523\t\t20100101\t*\t1\tx\n96522 96524\n", ":3: a PTP row"),
    ("ccipra-x.txt", "96522\t96523\t\t20100101\t*\t1\tx\n", "no 'Column 1 / Column 2' header"),
    ("ccipra-x.txt", HEADER + "96522\t96523\t\t20100101\t*\t1\tx\n96522\t96523\t\t20100101\t*\t0\ty\n",
     ":3: the same edit as ccipra-x.txt:2"),
    ("edits.txt", HEADER, "not a PTP file CMS names ccipra-*"),
    ("mue.csv", "HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n"
                "96522,one,3 Date of Service Edit: Clinical,x\n", ":2: field 'MUE Values'"),
    ("mue.csv", "HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n"
                "96522,1,Clinical,x\n", ":2: field 'MUE Adjudication Indicator'"),
    ("mue.csv", "HCPCS/CPT Code,Ambulance Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n",
     "is not a practitioner, outpatient hospital or DME supplier table"),
    ("mue.csv", "code,units\n96522,1\n", "no '... MUE Values' header"),
])
def test_a_row_off_the_layout_fails_naming_file_line_and_field(tmp_path, name, text, where):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(SourceError) as failed:
        read_ncci(tmp_path)
    assert where in str(failed.value) and name in str(failed.value)


def test_an_empty_directory_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no NCCI PTP"):
        read_ncci(tmp_path)


def test_ptp_rows_are_code_pair_edits_like_the_curated_ones():
    triples = set(ncci_triples(read_ncci(NCCI), known={code_iri("cpt", c) for c in ("96522", "96523")}))
    edit = URIRef(MI1_EDIT)
    facts = {(p, o) for s, p, o in triples if s == edit}
    assert (RDF.type, MC.CodePairEdit) in facts
    assert {(MC.column1, code_iri("cpt", "96522")), (MC.column2, code_iri("cpt", "96523")),
            (MC.modifierIndicator, URIRef(ID_BASE + "valueset/ptp-modifier-indicator/1")),
            (MC.serviceSetting, SETTING_NODES["practitioner"]), (DCTERMS.source, source_node(PTP))} <= facts
    # the curated edits' properties, plus the table the edit belongs to
    assert {p for p, _ in facts} == {RDF.type, MC.column1, MC.column2, MC.modifierIndicator, MC.effectiveDate,
                                      MC.rationale, MC.editBasis, MC.serviceSetting, DCTERMS.source}
    # a code only an NCCI file names gets its identity; codes the graph describes are left alone
    stub = {(p, o) for s, p, o in triples if s == code_iri("cpt", "99211")}
    assert {(RDF.type, MC.CPTCode), (SKOS.notation, Literal("99211")), (SKOS.inScheme, URIRef(ID_BASE + "cpt")),
            (DCTERMS.source, source_node(PTP))} <= stub
    assert not any(s == code_iri("cpt", "96523") for s, _, _ in triples)


# -- the check over a graph built with the files ------------------------------------------------
@pytest.fixture(scope="module")
def ncci_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The curated family, a few ICD-10-CM codes and the NCCI files, built and validated."""
    data = tmp_path_factory.mktemp("ncci-data")
    kg.pipeline.build(data, icd10cm=ICD10CM, ncci=NCCI, echo=lambda _line: None)
    return data


def test_the_snapshot_records_the_files_it_read(ncci_data):
    meta = read_meta(current_snapshot(ncci_data))  # what was read, and from which bytes
    recorded = {(f["file"], f["table"], f["setting"], f["rows"]) for f in meta["ncci"]}
    assert recorded == {("ccipra-v321r0-f1.txt", "ptp", "practitioner", 5),
                        ("ccioph-v321r0-f1.txt", "ptp", "outpatient-hospital", 1),
                        ("MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", "mue", "practitioner", 3),
                        ("MCR_MUE_OutpatientHospitalServices_Eff_01-01-2026.csv", "mue", "outpatient-hospital", 1)}
    ptp_file = next(f for f in meta["ncci"] if f["file"] == PTP.name)
    assert ptp_file["sha256"] == hashlib.sha256(PTP.read_bytes()).hexdigest()
    assert ptp_file["source"] == str(source_node(PTP))


def test_every_edit_has_the_pair_key_the_check_looks_up(ncci_data):
    store = open_store(current_snapshot(ncci_data))
    edits = {row["edit"].value for row in store.query(f"SELECT ?edit WHERE {{ ?edit a <{MC}CodePairEdit> }}",
                                                      use_default_graph_as_union=True)}
    keys = {row["edit"].value: row["key"].value for row in store.query(
        f"SELECT ?edit ?key WHERE {{ ?edit <{MC}pairKey> ?key }}", use_default_graph_as_union=True)}
    assert set(keys) == edits and len(edits) > 6
    assert keys[MI1_EDIT] == ID_BASE + "pair/cpt/96522/cpt/96523"
    assert keys[ID_BASE + "edit/95990_62369"] == ID_BASE + "pair/cpt/95990/cpt/62369"  # a curated edit


def test_a_bad_row_fails_the_build_before_anything_is_written(tmp_path, ncci_data):
    bad = tmp_path / "ncci"
    bad.mkdir()
    (bad / PTP.name).write_text(PTP.read_text(encoding="utf-8").replace("96522\t96523\t\t20100101",
                                                                        "96522\t96523\t\t2010-01-01"),
                                encoding="utf-8")
    live = current_snapshot(ncci_data)
    with pytest.raises(SourceError, match=r"ccipra-v321r0-f1.txt:9: field 'Effective Date'"):
        kg.pipeline.build(ncci_data, icd10cm=ICD10CM, ncci=bad, echo=lambda _line: None)
    assert current_snapshot(ncci_data) == live


@pytest.mark.parametrize(("row", "message"), [
    ("96522\t96523\t\t20200101\t20100101\t1\tx", "An edit is deleted on or after its effective date."),
    ("96522\t96522\t\t20100101\t*\t1\tx", "An edit pairs two different codes."),
])
def test_ncci_rows_the_shapes_reject_fail_the_build(tmp_path, row, message):
    bad = tmp_path / "ncci"
    bad.mkdir()
    (bad / "ccipra-x-f1.txt").write_text(f"{HEADER}{row}\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=message):
        kg.pipeline.build(tmp_path / "data", icd10cm=ICD10CM, ncci=bad, echo=lambda _line: None)
    assert current_snapshot(tmp_path / "data") is None


def test_cli_build_names_the_bad_file_line_and_field(tmp_path):
    (tmp_path / "ccioph-x-f1.txt").write_text(HEADER + "96522\t96523\t\t20100101\t*\t3\tx\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", "--data", str(tmp_path / "data"), "--ncci", str(tmp_path),
                                       "--no-releases"])  # tests fetch nothing
    assert result.exit_code == 1
    assert "ccioph-x-f1.txt:2: field 'Modifier'" in result.output and "previous snapshot is unchanged" in result.output


@pytest.fixture(scope="module")
def ncci_store(ncci_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The app settings that serve the NCCI graph: embedded, or published to a Virtuoso of its own."""
    if not REMOTE:
        yield {"MEDCODE_DATA": str(ncci_data), "MEDCODE_STORE": "embedded"}
        return
    engine = virtuoso_server.Virtuoso(tmp_path_factory.mktemp("virtuoso-ncci"), free_port(), free_port(),
                                      memory_mb=512)
    with engine:
        publish(current_snapshot(ncci_data), engine.url, user=engine.user, password=engine.password,
                echo=lambda _line: None)
        yield {"MEDCODE_DATA": str(ncci_data), "MEDCODE_STORE": f"sparql+{engine.url}"}


@pytest.fixture(scope="module")
def client(ncci_store):
    return create_app(ncci_store).test_client()


def check(client, *lines: dict, date: str = DATE, setting: str = "practitioner") -> dict:
    response = client.post("/check", json={"date_of_service": date, "setting": setting, "lines": list(lines)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def ptp(result: dict) -> list[tuple[str, str, list[int]]]:
    return [(f["rule"], f["severity"], f["lines"]) for f in result["findings"] if f["rule"].startswith("ncci-ptp")]


def test_a_modifier_indicator_1_edit_denies_without_a_bypass_modifier(client):
    result = check(client, {"code": "96522"}, {"code": "96523"})
    assert ptp(result) == [("ncci-ptp", "deny", [0, 1])] and result["clean"] is False
    finding = next(f for f in result["findings"] if f["rule"] == "ncci-ptp")
    assert finding["edit"] == MI1_EDIT and finding["source"] == str(source_node(PTP))
    assert "modifier indicator 1" in finding["message"] and "NCCI PTP edit" in finding["message"]


@pytest.mark.parametrize("lines", [
    ({"code": "96522"}, {"code": "96523", "modifiers": ["XU"]}),
    ({"code": "96522", "modifiers": ["XU"]}, {"code": "96523"}),
    ({"code": "96523", "modifiers": ["59"]}, {"code": "96522"}),
])
def test_with_xu_or_59_on_either_line_the_edit_is_bypassed(client, lines):
    result = check(client, *lines)
    assert ptp(result) == [("ncci-ptp-bypassed", "info", [0, 1])] and result["clean"] is True


def test_an_edit_deleted_before_the_date_of_service_no_longer_applies(client):
    lines = ({"code": "62362"}, {"code": "62367"})
    assert ptp(check(client, *lines)) == []
    assert ptp(check(client, *lines, date="2019-12-31")) == [("ncci-ptp", "deny", [0, 1])]
    assert ptp(check(client, *lines, date="2020-01-01")) == []  # the deletion date is the first day without it


def test_an_edit_applies_from_its_effective_date(client):
    lines = ({"code": "62362"}, {"code": "62368"})
    assert ptp(check(client, *lines)) == []
    assert ptp(check(client, *lines, date="2027-01-01")) == [("ncci-ptp", "deny", [0, 1])]


def test_a_modifier_indicator_9_edit_is_never_applied(client):
    assert ptp(check(client, {"code": "62350"}, {"code": "62355"}, date="2015-01-01")) == []


def test_practitioner_and_outpatient_hospital_tables_apart(client):
    lines = ({"code": "96522"}, {"code": "96521"})
    assert ptp(check(client, *lines)) == []
    outpatient = check(client, *lines, setting="outpatient-hospital")
    assert ptp(outpatient) == [("ncci-ptp", "deny", [0, 1])]
    # the curated (CPT instruction) edits apply in both settings
    curated = check(client, {"code": "62369"}, {"code": "95990"}, setting="outpatient-hospital")
    assert ptp(curated) == [("ncci-ptp", "deny", [0, 1])]


def mue(result: dict) -> list[tuple[list[int], str]]:
    return [(f["lines"], f["message"]) for f in result["findings"] if f["rule"] == "mue"]


def test_a_line_mue_counts_each_line_and_a_date_of_service_mue_sums_them(client):
    assert mue(check(client, {"code": "96523"}, {"code": "96523"})) == []
    [(lines, message)] = mue(check(client, {"code": "96523", "units": 2}))
    assert lines == [0] and "adjudication indicator 1, Line edit" in message
    [(lines, message)] = mue(check(client, {"code": "62369"}, {"code": "62369"}))
    assert lines == [0, 1] and "2 units" in message
    assert "adjudication indicator 2, Date of service edit: policy" in message


def test_the_setting_s_mue_table_comes_before_the_curated_mue(client):
    [(_, message)] = mue(check(client, {"code": "96522", "units": 2}))
    assert "adjudication indicator 3" in message
    assert mue(check(client, {"code": "96522", "units": 2}, setting="outpatient-hospital")) == []
    finding = next(f for f in check(client, {"code": "96522", "units": 2})["findings"] if f["rule"] == "mue")
    assert finding["source"] == str(source_node(MUE))


def test_cli_checks_the_ncci_graph(ncci_store):
    base = ["--data", ncci_store["MEDCODE_DATA"], "--store", ncci_store["MEDCODE_STORE"], "--date", DATE,
            "--format", "json"]
    denied = CliRunner().invoke(main, ["check", "96522", "96523", *base])
    assert denied.exit_code == 1, denied.output
    assert [f["rule"] for f in json.loads(denied.output)["findings"]][:1] == ["ncci-ptp"]
    bypassed = CliRunner().invoke(main, ["check", "96522", "96523", "--modifier", "96523=XU", *base])
    assert bypassed.exit_code == 0, bypassed.output
    assert "ncci-ptp-bypassed" in {f["rule"] for f in json.loads(bypassed.output)["findings"]}


# -- rules on facts of the current sources (the session's graph may be older) -------------------
def test_j7799_without_kd_warns_with_the_rule_s_source(client):
    result = check(client, {"code": "J7799", "modifiers": ["59"]}, {"code": "J7799", "modifiers": ["KD"]})
    [finding] = [f for f in result["findings"] if f["rule"] == "modifier-missing"]
    assert finding["severity"] == "warn" and finding["lines"] == [0]
    assert finding["instead"] == "Report J7799 with modifier KD." and finding["source"] == ID_BASE + "source/curated"


def test_two_diagnoses_in_an_excludes1_relation_warn_once(client):
    result = check(client, {"code": "62362", "diagnoses": ["G89.29", "G89.3"]},
                   {"code": "62350", "diagnoses": ["G89.3"]})
    [finding] = [f for f in result["findings"] if f["rule"] == "diagnosis-excludes1"]
    assert finding["severity"] == "warn" and finding["lines"] == [0, 1]
    assert "the note of G89.2 names G89.3" in finding["message"]
    assert finding["edit"].startswith(ID_BASE + "icd10cm/G89.2/excludes1/")
