"""Crosswalk exports and FHIR $translate: every crosswalk in every format it offers round-trips through the
library that validates that format (csv, json, sssom, fhir.resources R5 and R4B, pyoxigraph), and its row
count matches an independent SPARQL count over the snapshot."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest
from click.testing import CliRunner
from fhir.resources.conceptmap import ConceptMap
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.parameters import Parameters
from fhir.resources.R4B.conceptmap import ConceptMap as ConceptMapR4B
from fhir.resources.R4B.parameters import Parameters as ParametersR4B
from sssom.constants import SchemaValidationType
from sssom.parsers import parse_sssom_table
from sssom.validators import validate

from kg.contract import ANSWERS_DIR, ANSWERS_INDEX, current_snapshot, kept_answer, open_store
from kg.export_answers import export_queries
from kg.namespaces import PREFIXES, QUERIES_DIR
from medcode.cli import main
from server import create_app
from server.exports import CROSSWALKS, FORMATS, RELATIONSHIPS, export_meta, export_text
from server.exports import run_crosswalk as run_query
from server.exports.crosswalks import load_crosswalks
from server.exports.rows import node_links
from server.exports.writers.tables import csv_line
from server.named_queries import HeaderError
from server.store import query_worker

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
MAPPINGS = ["device-crosswalk", "indication-icd10cm", "icd10cm-hierarchy"]
TABLES = ["ncci-ptp-edits", "fee-schedule-indicators"]
ALL_FORMATS = ["csv", "json", "sssom.tsv", "fhir.json", "fhir.json/r4b", "ttl", "jsonld"]
NCCI_HEADER = ["Column 1", "Column 2", "* = In existence prior to 1996", "Effective Date", "Deletion Date *=no data",
               "Modifier 0=not allowed 1=allowed 9=not applicable", "PTP Edit Rationale", "Source", "Basis", "Edit"]
ICD_NS = "https://w3id.org/medcode/id/icd10cm/"
HCPCS_NS = "https://w3id.org/medcode/id/hcpcs/"
ASSERTED = "https://w3id.org/medcode/graph/asserted"

# Independent counts: written from the data model, not copied from the crosswalk queries.
EXPECTED_COUNTS = {
    "device-crosswalk": f"""SELECT (COUNT(*) AS ?n) WHERE {{ SELECT DISTINCT ?s ?p ?o WHERE {{
        {{ ?s mc:usesDevice ?d . ?o mc:denotesDevice ?d . FILTER(STRSTARTS(STR(?o), "{HCPCS_NS}")) BIND(1 AS ?p) }}
        UNION {{ ?s mc:usualDeviceCode ?o . BIND(1 AS ?p) }}
        UNION {{ GRAPH <{ASSERTED}> {{ ?s skos:closeMatch ?o }}
                 FILTER(STRSTARTS(STR(?s), "{HCPCS_NS}") && STRSTARTS(STR(?o), "{HCPCS_NS}")) BIND(2 AS ?p) }} }} }}""",
    "indication-icd10cm": f"""SELECT (COUNT(*) AS ?n) WHERE {{ SELECT DISTINCT ?c ?i ?k ?icd WHERE {{
        ?c mc:indication ?i . ?i mc:condition ?k . ?k skos:closeMatch ?icd .
        FILTER(STRSTARTS(STR(?icd), "{ICD_NS}")) }} }}""",
    "icd10cm-hierarchy": f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{ASSERTED}> {{ ?s skos:broader ?o }} }}",
    "ncci-ptp-edits": "SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE { ?e a mc:CodePairEdit }",
    "fee-schedule-indicators": """SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE {
        ?p rdfs:subPropertyOf mc:feeScheduleIndicator . FILTER(?p != mc:feeScheduleIndicator) ?c ?p ?v }""",
}


def count(store: ox.Store, query: str) -> int:
    return int(next(store.query(query, prefixes=PREFIXES, use_default_graph_as_union=True))["n"].value)


@pytest.fixture(scope="module")
def app(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir)})
    yield app
    app.extensions["medcode.store"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def expected(store) -> dict[str, int]:
    return {name: count(store, query) for name, query in EXPECTED_COUNTS.items()}


@pytest.fixture(scope="module")
def export(app):
    """export(name, fmt) -> text; each crosswalk's query runs once for all of its formats."""
    payloads: dict[str, bytes] = {}
    texts: dict[tuple[str, str], str] = {}

    def get(name: str, fmt: str) -> str:
        if (name, fmt) not in texts:
            ext, _, fhir = fmt.partition("/")
            with app.app_context():
                xw = CROSSWALKS[name]
                if name not in payloads:
                    payloads[name] = run_query(xw)
                texts[name, fmt] = "".join(export_text(xw, FORMATS[ext], payloads[name], export_meta(), fhir or "r5"))
        return texts[name, fmt]

    return get


SSSOM_PARSED_ROWS = 5000  # the sssom library builds a checked object per row: ~0.5 ms each, 50 s for the hierarchy


def sssom_body(text: str) -> str:
    """The TSV table of an SSSOM file, below its `#` metadata block."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


def sssom_prefix(text: str, rows: int) -> str:
    """The SSSOM file with its metadata, its header and its first `rows` mappings: the sssom library parses and
    checks these; the row count and the values of every row are checked with the csv module."""
    lines = text.splitlines(keepends=True)
    meta = [line for line in lines if line.startswith("#")]
    return "".join(meta + [line for line in lines if not line.startswith("#")][: rows + 1])


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def mapping_triples(rows: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    return {(r["subject_iri"], PREFIXES["skos"] + r["predicate"].split(":")[1], r["object_iri"]) for r in rows}


def parse_rdf(text: str, fmt: ox.RdfFormat) -> set[tuple[str, str, str]]:
    return {(t.subject.value, t.predicate.value, t.object.value) for t in ox.parse(text.encode(), format=fmt)}


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", MAPPINGS)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_mapping_round_trips(name: str, fmt: str, export, expected, tmp_path: Path) -> None:
    text = export(name, fmt)
    rows = csv_rows(export(name, "csv"))
    assert len(rows) == expected[name] > 0
    if fmt == "csv":
        assert list(rows[0]) == list(CROSSWALKS[name].columns)
        assert all(r["predicate"] in RELATIONSHIPS for r in rows)
        assert not any(r["predicate"] == "skos:exactMatch" for r in rows)  # never exact for these crosswalks
    elif fmt == "json":
        doc = json.loads(text)
        assert doc["columns"] == list(CROSSWALKS[name].columns)
        assert doc["rows"] == rows
    elif fmt == "sssom.tsv":
        table = list(csv.DictReader(io.StringIO(sssom_body(text), newline=""), delimiter="\t"))
        assert len(table) == len(rows)
        assert {r["predicate_id"] for r in table} == {r["predicate"] for r in rows}
        path = tmp_path / f"{name}.sssom.tsv"
        path.write_text(sssom_prefix(text, SSSOM_PARSED_ROWS), encoding="utf-8")
        msdf = parse_sssom_table(path)
        assert len(msdf.df) == min(len(rows), SSSOM_PARSED_ROWS)
        assert msdf.metadata["license"] == "https://creativecommons.org/licenses/by/4.0/"
        assert msdf.metadata["mapping_set_id"].endswith(f"/export/{name}.sssom.tsv")
        assert {r["mapping_justification"] for r in table} <= {
            "semapv:ManualMappingCuration", "semapv:LogicalReasoning", "semapv:MappingChaining"}
        assert set(msdf.df["predicate_id"]) <= {r["predicate"] for r in rows}
        if name != "icd10cm-hierarchy":  # the full schema check takes minutes on ~98.5k rows
            reports = validate(msdf, [SchemaValidationType.JsonSchema, SchemaValidationType.PrefixMapCompleteness])
            assert all(not report.results for report in reports.values()), reports
    elif fmt.startswith("fhir.json"):
        model = ConceptMapR4B if fmt.endswith("r4b") else ConceptMap
        cm = model.model_validate_json(text)
        targets = [t for g in cm.group for e in g.element for t in e.target]
        assert len(targets) == len(rows)
        kinds = {t.equivalence if fmt.endswith("r4b") else t.relationship for t in targets}
        assert kinds <= {r[1] if fmt.endswith("r4b") else r[0] for r in RELATIONSHIPS.values()}
        assert {(g.source, g.target) for g in cm.group} == {(r["subject_system"], r["object_system"]) for r in rows}
    else:
        triples = parse_rdf(text, ox.RdfFormat.TURTLE if fmt == "ttl" else ox.RdfFormat.JSON_LD)
        expected_triples = mapping_triples(rows)
        mapping_predicates = {p for _, p, _ in expected_triples}
        assert {t for t in triples if t[1] in mapping_predicates} == expected_triples
        labels = {s for s, p, _ in triples if p == PREFIXES["skos"] + "prefLabel"}
        assert {r["subject_iri"] for r in rows} <= labels


@pytest.mark.parametrize("name", TABLES)
def test_table_round_trips(name: str, export, expected, store) -> None:
    rows = csv_rows(export(name, "csv"))
    assert len(rows) == expected[name] > 0
    doc = json.loads(export(name, "json"))
    assert len(doc["rows"]) == len(rows)
    assert [r[c] for r in doc["rows"] for c in doc["columns"]] == [v for r in rows for v in r.values()]


@pytest.mark.parametrize("name", [n for n in CROSSWALKS if CROSSWALKS[n].pivot is None])
def test_rows_match_named_query(name: str, export, store) -> None:
    """The export holds exactly the crosswalk query's solutions (one row each)."""
    xw = CROSSWALKS[name]
    graphs = [ox.NamedNode(ASSERTED)] + ([ox.NamedNode("https://w3id.org/medcode/graph/inferred")]
                                          if xw.graphs == "all" else [])
    solutions = store.query(xw.named_query().text, prefixes=PREFIXES, default_graph=graphs)
    if xw.node_rows:  # one row per node and parent: a root's row (no parent) is no link
        assert sum(1 for row in solutions if row["object_iri"] is not None) == len(csv_rows(export(name, "csv")))
    else:
        assert sum(1 for _ in solutions) == len(csv_rows(export(name, "csv")))


def test_the_hierarchy_is_every_link_with_both_labels(export, store) -> None:
    """The node rows' links are exactly what joining both sides' labels to every link gives (a multiset: one
    row per link and pair of labels), written here as that join, independently of the crosswalk query."""
    query = f"""SELECT ?s ?sl ?o ?ol WHERE {{ GRAPH <{ASSERTED}> {{ ?s skos:broader ?o
        FILTER(STRSTARTS(STR(?s), "{ICD_NS}")) OPTIONAL {{ ?s skos:prefLabel ?sl }} OPTIONAL {{ ?o skos:prefLabel ?ol }}
        }} }}"""
    joined = Counter((r["s"].value, r["sl"].value if r["sl"] else "", r["o"].value, r["ol"].value if r["ol"] else "")
                     for r in store.query(query, prefixes=PREFIXES))
    exported = Counter((r["subject_iri"], r["subject_label"], r["object_iri"], r["object_label"])
                       for r in csv_rows(export("icd10cm-hierarchy", "csv")))
    assert exported == joined and len(joined) > 90_000


def test_node_links_multiplies_labels_as_the_join_does() -> None:
    """Two labels of a parent give two rows per child; a parent without a row of its own gives an empty label; a
    node with two parents gives a row for each; a root gives no row."""
    payload = (b"subject_iri,subject_label,object_iri\r\n"
               b"c1,Child one,p\r\nc2,\"Child, two\",p\r\nc2,\"Child, two\",q\r\n"
               b"p,Parent,\r\np,Parent (alt),\r\nc3,Orphan,x\r\n")
    rows = [tuple(r.values()) for r in node_links(payload)]
    assert sorted(rows) == sorted([
        ("c1", "Child one", "p", "Parent"), ("c1", "Child one", "p", "Parent (alt)"),
        ("c2", "Child, two", "p", "Parent"), ("c2", "Child, two", "p", "Parent (alt)"),
        ("c2", "Child, two", "q", ""), ("c3", "Orphan", "x", "")])


@pytest.mark.parametrize("seed", range(3))
def test_csv_line_is_the_csv_module(seed: int) -> None:
    """The CSV writer's own quoting writes what csv.writer writes, for values full of what needs quoting."""
    chars = ["a", ",", '"', "\n", "\r", " ", "é", "", "\t", ";", "'"]
    rng = random.Random(seed)
    for _ in range(20_000):
        values = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 4))]
        buf = io.StringIO()
        csv.writer(buf).writerow(values)
        assert csv_line(values) == buf.getvalue(), values


def test_a_concept_map_element_is_one_source_iri(export) -> None:
    """An ICD-10-CM block and its same-named category (block/B99, B99) share a code but stay two elements, even where
    the rows put them side by side: one element per run of one child IRI's rows, as many as the child IRIs."""
    children = {row["subject_iri"] for row in csv_rows(export("icd10cm-hierarchy", "csv"))}
    concept_map = json.loads(export("icd10cm-hierarchy", "fhir.json"))
    elements = [e for g in concept_map["group"] for e in g["element"]]
    assert len(elements) == len(children)
    b99 = sorted(len(e["target"]) for e in elements if e["code"] == "B99")
    assert b99 == [1, 1]  # the block under chapter 1, the category under the block


def test_the_row_limit_counts_the_query_rows(app, client, store, monkeypatch) -> None:
    """EXPORT_MAX_ROWS is still exact through Oxigraph's CSV writer: the hierarchy query's own row count passes,
    one row less is the 400 naming the limit."""
    xw = CROSSWALKS["icd10cm-hierarchy"]
    answer = store.query(xw.named_query().text, prefixes=PREFIXES, default_graph=[ox.NamedNode(ASSERTED)])
    rows = sum(1 for _ in answer)
    for asked in ("", "?as_of=2026-05-01"):  # the build's kept answer, then the store's (a date's state)
        monkeypatch.setitem(app.config, "EXPORT_MAX_ROWS", rows)
        assert client.get("/export/icd10cm-hierarchy.csv" + asked).status_code == 200
        monkeypatch.setitem(app.config, "EXPORT_MAX_ROWS", rows - 1)
        refused = client.get("/export/icd10cm-hierarchy.csv" + asked)
        assert refused.status_code == 400 and f"more than {rows - 1:,} rows" in refused.get_data(as_text=True)


def test_a_second_download_reuses_the_kept_answer(app, client, monkeypatch) -> None:
    """The export answers are kept per snapshot: a second download, in another format, asks the store nothing and
    describes the same rows; with MEDCODE_EXPORT_CACHE=0 nothing is kept."""
    first = client.get("/export/device-crosswalk.csv").get_data()
    store = app.extensions["medcode.store"]

    def no_query(*args, **kwargs):
        raise AssertionError("the store was asked again")

    monkeypatch.setattr(store, "query", no_query)
    assert client.get("/export/device-crosswalk.csv").get_data() == first
    assert client.get("/export/device-crosswalk.json").status_code == 200
    monkeypatch.undo()
    kept = app.extensions.pop("medcode.exports.answers")
    assert kept.size > len(first) // 2
    monkeypatch.setitem(app.config, "EXPORT_CACHE_BYTES", 0)
    assert client.get("/export/device-crosswalk.csv").get_data() == first
    assert app.extensions.pop("medcode.exports.answers").size == 0


def concatenated(value: str) -> str:
    """A GROUP_CONCAT's '; '-separated values in one order."""
    return "; ".join(sorted(value.split("; ")))


@pytest.mark.embedded_only
def test_the_snapshot_keeps_each_export_querys_answer_as_the_store_gives_it(data_dir: Path) -> None:
    """The build asked every export query once: its kept answer is the store's answer to the query as the
    exports ask it, the same header and rows (rows that tie under a query's ORDER BY, and the values inside a
    GROUP_CONCAT, may come in another order in another process, as they may from one server process to the
    next: the writers sort the `joined` columns)."""
    snapshot = current_snapshot(data_dir)
    store = open_store(snapshot)
    queries = export_queries()
    index = json.loads((snapshot / ANSWERS_DIR / ANSWERS_INDEX).read_text())
    assert len(queries) == len(CROSSWALKS) and len(index) == len(queries)
    for text, graphs in queries:
        status, asked = query_worker.run(store, {"query": text, "format": "csv", "limit": 10**7,
                                                 "prefixes": PREFIXES, "default_graph": graphs})
        assert status == "ok", asked
        kept = kept_answer(snapshot, text, graphs)
        assert kept is not None
        kept_rows, asked_rows = ([tuple(map(concatenated, row))
                                  for row in csv.reader(io.StringIO(a.decode(), newline=""))] for a in (kept, asked))
        assert kept_rows[0] == asked_rows[0] and Counter(kept_rows) == Counter(asked_rows)
    assert kept_answer(snapshot, queries[0][0] + " ", queries[0][1]) is None  # another text is asked


@pytest.mark.embedded_only
def test_a_first_download_in_todays_state_asks_the_store_nothing(data_dir: Path, monkeypatch) -> None:
    """Today's export reads the snapshot's kept answer; an export as of a date asks the store."""
    fresh = create_app({"MEDCODE_DATA": str(data_dir)})
    store, asked = fresh.extensions["medcode.store"], []
    ask = store.query
    monkeypatch.setattr(store, "query", lambda *args, **kwargs: asked.append(args[0]) or ask(*args, **kwargs))
    client = fresh.test_client()
    today = client.get("/export/icd10cm-hierarchy.csv")
    assert today.status_code == 200 and len(today.get_data().splitlines()) > 90_000 and asked == []
    assert client.get("/export/device-crosswalk.csv?as_of=2026-05-01").status_code == 200
    assert len(asked) == 1
    store.close()


def test_ncci_layout(export, store) -> None:
    text = export("ncci-ptp-edits", "csv")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == NCCI_HEADER
    body = rows[1:]
    assert len(body) == 8  # one row per mc:CodePairEdit ...
    pairs = count(store, "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?a ?b WHERE { ?a mc:notReportedWith ?b } }")
    assert pairs == 16  # ... while the symmetric relation holds both orders of each pair
    assert {(r[0], r[1]) for r in body} == {(c1, c2) for c1 in ("95990", "95991")
                                           for c2 in ("62367", "62368", "62369", "62370")}
    for r in body:
        assert r[2] == ""     # "* = in existence prior to 1996": empty
        assert r[4] == "*"    # no deletion date
        assert r[5] == "0"    # modifier indicator
        assert r[6] == "CPT Manual or CMS manual coding instructions"
        assert r[7] == "S003"
    assert text.endswith("\r\n")


def test_fee_schedule_columns(export) -> None:
    rows = csv_rows(export("fee-schedule-indicators", "csv"))
    columns = list(rows[0])
    assert columns[:3] == ["system", "code", "label"] and columns[-1] == "code_iri"
    indicators = columns[3:-1:2]
    assert indicators == sorted(indicators) and columns[4:-1:2] == [f"{i}_meaning" for i in indicators]
    assert {"mpfsStatus", "oppsStatusIndicator", "globalDays", "typeOfService"} <= set(indicators)
    codes = [(r["system"], r["code"]) for r in rows]
    assert len(codes) == len(set(codes))  # one row per code
    r96522 = next(r for r in rows if r["code"] == "96522")
    assert (r96522["mpfsStatus"], r96522["mpfsStatus_meaning"]) == ("A", "Active code")
    assert r96522["oppsStatusIndicator"] == "S"


def test_device_crosswalk_content(export) -> None:
    rows = csv_rows(export("device-crosswalk", "csv"))
    by_pair = {(r["subject_code"], r["object_code"]): r for r in rows}
    row = by_pair["62362", "C1772"]
    assert row["predicate"] == "skos:relatedMatch" and row["object_system"] == HCPCS
    assert row["basis"] == "shared device: Programmable implantable infusion pump; usual device code"
    assert by_pair["62362", "E0783"]["predicate"] == "skos:relatedMatch"
    assert by_pair["C1772", "E0783"]["predicate"] == "skos:closeMatch"
    assert ("E0783", "C1772") not in by_pair  # a symmetric pair once
    fhir = json.loads(export("device-crosswalk", "fhir.json/r4b"))
    targets = [t for g in fhir["group"] for e in g["element"] for t in e["target"]]
    assert all(t["comment"] for t in targets if t["equivalence"] == "inexact")  # required by FHIR R4 (tgt-1)


def test_indication_provenance(export) -> None:
    rows = csv_rows(export("indication-icd10cm", "csv"))
    g893 = [r for r in rows if r["object_code"] == "G89.3"]
    assert any(r["condition"] == "neoplasm-related-pain" and r["condition_match"] == "exact" for r in g893)
    assert any(r["condition_match"] == "close" for r in g893)
    assert {r["indication_source_kind"] for r in rows} <= {"seed", "public", "curated"}
    assert {r["indication_source_kind"] for r in rows} >= {"seed", "public"}
    assert all(r["indication"] and r["indication_source"] and r["object_system"] == ICD for r in rows)


# ------------------------------------------------------------------------------ HTTP


def test_http_matches_writers(client, export) -> None:
    for name in ("device-crosswalk", "indication-icd10cm", *TABLES):
        for ext in CROSSWALKS[name].formats:
            response = client.get(f"/export/{name}.{ext}")
            assert response.status_code == 200, (name, ext)
            assert response.is_streamed
            assert response.get_data(as_text=True) == export(name, ext)
    response = client.get("/export/device-crosswalk.fhir.json?fhir=r4b")
    assert response.get_data(as_text=True) == export("device-crosswalk", "fhir.json/r4b")
    assert response.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.3"


def test_icd_hierarchy_streams(client, export, expected) -> None:
    response = client.get("/export/icd10cm-hierarchy.csv", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    sizes = [len(chunk) for chunk in response.response]
    response.close()
    assert len(sizes) > 100 and max(sizes) < 1 << 20  # many chunks, none of them the whole export
    assert sum(sizes) == len(export("icd10cm-hierarchy", "csv").encode("utf-8"))


@pytest.mark.parametrize("path,status", [
    ("/export/ncci-ptp-edits.sssom.tsv", 406), ("/export/ncci-ptp-edits.fhir.json", 406),
    ("/export/fee-schedule-indicators.ttl", 406), ("/export/fee-schedule-indicators.jsonld", 406),
    ("/export/no-such-crosswalk.csv", 404), ("/export/device-crosswalk.xml", 404), ("/export/device-crosswalk.", 404),
    ("/export/device-crosswalk.fhir.json?fhir=r2", 400),
])
def test_missing_combinations(client, path: str, status: int) -> None:
    assert client.get(path).status_code == status


@pytest.mark.parametrize("name,accept,status,media", [
    ("device-crosswalk", "text/turtle", 200, "text/turtle"),
    ("device-crosswalk", "application/fhir+json", 200, "application/fhir+json"),
    ("device-crosswalk", "text/tab-separated-values", 200, "text/tab-separated-values"),
    ("ncci-ptp-edits", "*/*", 200, "text/csv"),
    ("ncci-ptp-edits", "application/json", 200, "application/json"),
    ("ncci-ptp-edits", "text/turtle", 406, None),
])
def test_negotiation(client, name: str, accept: str, status: int, media: str | None) -> None:
    with client.get(f"/export/{name}", headers={"Accept": accept}) as response:
        assert response.status_code == status
        if media:
            assert response.content_type.startswith(media)
            response.get_data()


def test_etag(client) -> None:
    with client.get("/export/ncci-ptp-edits.csv") as first:
        first.get_data()
    again = client.get("/export/ncci-ptp-edits.csv", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_export_index(client, expected) -> None:
    listing = client.get("/export.json").get_json()
    assert listing == client.get("/export", headers={"Accept": "application/json"}).get_json()
    crosswalks = listing["crosswalks"]
    assert set(crosswalks) == set(MAPPINGS + TABLES)
    for name, info in crosswalks.items():
        assert info["rows"] == expected[name]
        assert set(info["downloads"]) == set(FORMATS if name in MAPPINGS else ("csv", "json"))
        assert info["downloads"]["csv"].endswith(f"/export/{name}.csv")
    html = client.get("/export", headers={"Accept": "text/html"})
    assert html.status_code == 200 and html.content_type.startswith("text/html")
    page = html.get_data(as_text=True)
    assert "/export/icd10cm-hierarchy.sssom.tsv" in page and f"{expected['icd10cm-hierarchy']:,}" in page
    assert "/export/ncci-ptp-edits.csv" in page and "/export/ncci-ptp-edits.ttl" not in page


# ------------------------------------------------------------------------------ FHIR


def translate(client, query: str):
    return client.get(f"/fhir/ConceptMap/$translate?{query}")


def matches(params: dict) -> list[dict[str, dict]]:
    return [{p["name"]: p for p in m["part"]} for m in params["parameter"] if m["name"] == "match"]


def test_translate_62362(client) -> None:
    response = translate(client, f"system={CPT}&code=62362")
    assert response.status_code == 200 and response.content_type.startswith("application/fhir+json")
    params = response.get_json()
    Parameters.model_validate(params)
    result = {p["name"]: p for p in params["parameter"] if p["name"] != "match"}
    assert result["result"]["valueBoolean"] is True and result["message"]["valueString"]
    found = {(m["concept"]["valueCoding"]["system"], m["concept"]["valueCoding"]["code"]):
             m["relationship"]["valueCode"] for m in matches(params)}
    assert found[HCPCS, "C1772"] == "related-to" and found[HCPCS, "E0783"] == "related-to"
    assert any(system == ICD for system, _ in found)  # and the ICD-10-CM codes of its indications


def test_translate_r4b_reverse_and_target(client) -> None:
    response = translate(client, f"system={HCPCS}&code=E0783&targetsystem={CPT}&fhir=r4b")
    params = response.get_json()
    ParametersR4B.model_validate(params)
    found = {m["concept"]["valueCoding"]["code"]: m["equivalence"]["valueCode"] for m in matches(params)}
    assert found["62362"] == "relatedto" and all(m["concept"]["valueCoding"]["system"] == CPT
                                                  for m in matches(params))
    response = client.get(f"/fhir/ConceptMap/device-crosswalk/$translate?sourceSystem={HCPCS}&sourceCode=E0783"
                          f"&targetSystem={HCPCS}", headers={"Accept": "application/fhir+json; fhirVersion=5.0"})
    params = response.get_json()
    Parameters.model_validate(params)
    found = {m["concept"]["valueCoding"]["code"]: m["relationship"]["valueCode"] for m in matches(params)}
    assert found == {"C1772": "related-to"}  # the closeMatch, read from its other side
    none = translate(client, f"system={CPT}&code=62362&targetsystem=http://www.ama-assn.org/go/cpt").get_json()
    Parameters.model_validate(none)
    assert none["parameter"][0] == {"name": "result", "valueBoolean": False}


@pytest.mark.parametrize("query,status,code", [
    ("code=62362", 400, "required"), (f"system={CPT}", 400, "required"), ("", 400, "required"),
    ("system=http://example.org/nope&code=62362", 404, "not-found"),
    (f"system={CPT}&code=00000", 404, "not-found"), (f"system={CPT}&code=62362&targetsystem=urn:x", 404, "not-found"),
    (f"system={CPT}&code=62362&code=62361", 400, "invalid"), (f"system={CPT}&code=62362&fhir=dstu2", 400, None),
    (f"system={CPT}&code=' OR 1=1 ;%0A}}", 404, "not-found"),
])
def test_translate_errors(client, query: str, status: int, code: str | None) -> None:
    response = translate(client, query)
    assert response.status_code == status
    outcome = response.get_json()
    OperationOutcome.model_validate(outcome)
    if code:
        assert outcome["issue"][0]["code"] == code


def test_concept_map_resource(client) -> None:
    response = client.get("/fhir/ConceptMap/indication-icd10cm")
    assert response.status_code == 200
    cm = ConceptMap.model_validate_json(response.get_data())
    assert cm.url.endswith("/fhir/ConceptMap/indication-icd10cm")
    missing = client.get("/fhir/ConceptMap/ncci-ptp-edits")
    assert missing.status_code == 404
    OperationOutcome.model_validate(missing.get_json())


# ------------------------------------------------------------------------------ CLI


def test_cli_export(data_dir: Path, tmp_path: Path, export) -> None:
    runner = CliRunner()
    out = tmp_path / "devices.sssom.tsv"
    result = runner.invoke(main, ["export", "device-crosswalk", "--format", "sssom", "-o", str(out),
                                  "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert len(parse_sssom_table(out).df) == len(csv_rows(export("device-crosswalk", "csv")))
    result = runner.invoke(main, ["export", "ncci-ptp-edits", "--data", str(data_dir)])
    assert result.exit_code == 0 and result.stdout_bytes.decode("utf-8") == export("ncci-ptp-edits", "csv")
    result = runner.invoke(main, ["export", "indication-icd10cm", "--format", "fhir.json", "--fhir", "r4b",
                                  "--data", str(data_dir)])
    ConceptMapR4B.model_validate_json(result.output)
    listing = runner.invoke(main, ["export"])
    assert all(name in listing.output for name in CROSSWALKS)
    assert runner.invoke(main, ["export", "ncci-ptp-edits", "--format", "ttl", "--data", str(data_dir)]).exit_code
    assert runner.invoke(main, ["export", "nope", "--data", str(data_dir)]).exit_code
    assert runner.invoke(main, ["export", "device-crosswalk", "--format", "xlsx", "--data", str(data_dir)]).exit_code


# ------------------------------------------------------------------------------ crosswalks are query files

ROUTES_QUERY = """#+ title: Routes of each code
#+ export:
#+   name: code-routes
#+   title: Codes and their routes of drug delivery
#+   kind: table
#+   columns: [code, route]
#+   headers: {code: Code, route: Route}
PREFIX mc: <https://w3id.org/medcode/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?code ?route WHERE { ?c skos:notation ?code ; mc:route ?route } ORDER BY ?code ?route
"""


def test_one_query_file_adds_its_operation_and_export(data_dir: Path, tmp_path: Path) -> None:
    for path in QUERIES_DIR.glob("*.rq"):
        shutil.copy(path, tmp_path)
    (tmp_path / "code-routes.rq").write_text(ROUTES_QUERY, encoding="utf-8")
    app = create_app({"MEDCODE_DATA": str(data_dir), "QUERIES_DIR": tmp_path})
    try:
        client = app.test_client()
        assert client.get("/api/code-routes.csv").status_code == 200
        assert "/api/code-routes" in client.get("/api/openapi.json").get_json()["paths"]
        listing = client.get("/export.json").get_json()["crosswalks"]
        assert set(listing) == set(MAPPINGS + TABLES + ["code-routes"])
        assert set(listing["code-routes"]["downloads"]) == {"csv", "json"}
        rows = list(csv.reader(io.StringIO(client.get("/export/code-routes.csv").get_data(as_text=True))))
        assert rows[0] == ["Code", "Route"] and ["96522", PREFIXES["mc"] + "Intravenous"] in rows
        assert client.get("/export/code-routes.ttl").status_code == 406
    finally:
        app.extensions["medcode.store"].close()


@pytest.mark.parametrize("header,message", [
    ("#+ title: [not closed\n", "not valid YAML"),
    ("#+ description: no title\n", "needs a title"),
    ("#+ title: T\n#+ export: {title: X, kind: table, columns: [a]}\n", "needs name"),
    ("#+ title: T\n#+ export: {name: x, title: X, kind: table, columns: [a], formats: [ttl]}\n", "table is not"),
    ("#+ title: T\n#+ export: {name: x, title: X, kind: mapping, columns: [a]}\n", "a mapping's columns need"),
    ("#+ title: T\n#+ export: {name: x, title: X, kind: table, columns: [a], comment: '{b}'}\n", "comment names b"),
    ("#+ title: T\n#+ export: {name: x, title: X, kind: table, columns: [a], pivot: nope}\n", "pivot 'nope'"),
    ("#+ title: T\n#+ export: {name: x, title: X, kind: table, colums: [a]}\n", "unknown export field colums"),
])
def test_bad_header_is_a_load_error_naming_the_file(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "bad-query.rq"
    path.write_text(header + "SELECT * WHERE { ?s ?p ?o }\n", encoding="utf-8")
    with pytest.raises(HeaderError, match=message) as failure:
        load_crosswalks(tmp_path)
    assert str(path) in str(failure.value)


@pytest.mark.parametrize("iri", [
    "https://w3id.org/medcode/id/icd10cm/G35.A", "https://w3id.org/medcode/id/icd10cm/block/G35-G37",
    "https://w3id.org/medcode/id/icd10cm/chapter/6", "https://w3id.org/medcode/id/icd10cm/block/",
    "https://w3id.org/medcode/id/icd10cm/", "https://w3id.org/medcode/id/", "https://w3id.org/medcode/id/source/S004",
    "https://w3id.org/medcode/id/cpt/96522/profile/1", "https://w3id.org/medcode/ontology#Code",
    "https://w3id.org/medcode/ontology#", "http://www.w3.org/2004/02/skos/core#broader", "http://example.org/x",
    "https://w3id.org/semapv/vocab/ManualMappingCuration", "", "urn:x:y",
])
def test_writers_short_names_are_the_shared_curies(iri: str) -> None:
    """The writers' fast CURIEs are exactly `codes.curie` (the longest namespace; the IRI when nothing follows it)."""
    from server.codes import curie
    from server.exports.writers.base import short

    assert short(iri) == curie(iri)


@pytest.mark.parametrize("url", ["/export?as_of=2025-06-01", "/export.json?as_of=2025-06-01"])
def test_the_listing_refuses_as_of_rather_than_ignoring_it(client, url):
    response = client.get(url)
    assert response.status_code == 400 and "as_of is not supported by the export listing" in response.get_data(
        as_text=True)
    assert client.get(url.split("?")[0]).status_code == 200
