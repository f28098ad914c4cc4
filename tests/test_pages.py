"""Linked-data pages: dereferenceable IRIs, content negotiation, ETags, 404 suggestions and page content."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
import rdflib
from rdflib import Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, ID_BASE, MC
from kg.snapshot import publish, write_snapshot
from server import create_app

RDF_PARSERS = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/rdf+xml": "xml",
               "application/n-triples": "nt"}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def app(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir)})
    yield app
    app.extensions["medcode.store"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def page(client, url: str, status: int = 200) -> str:
    response = client.get(url, headers={"Accept": BROWSER})
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def section(text: str, element_id: str) -> str:
    """The HTML of the <section> (or other element) with this id, nested sections included."""
    start = text.index(f'id="{element_id}"')
    start = text.rindex("<", 0, start)
    tag = re.match(r"<(\w+)", text[start:]).group(1)
    depth, pos = 0, start
    for match in re.finditer(rf"<(/?){tag}\b", text[start:]):
        depth += -1 if match.group(1) else 1
        pos = start + match.end()
        if depth == 0:
            return text[start:pos]
    return text[start:]


def parse(response, media: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=response.get_data(as_text=True), format=RDF_PARSERS[media])
    return graph


# ------------------------------------------------------------------------- content negotiation

CASES = [
    ("/id/cpt/96522", ID_BASE + "cpt/96522", "96522"),
    ("/ontology", str(MC.Intrathecal), "IT"),
    ("/id/valueset/mpfs-status/A", ID_BASE + "valueset/mpfs-status/A", "A"),
    ("/id/icd10cm/G89.3", ID_BASE + "icd10cm/G89.3", "G89.3"),
]


@pytest.mark.parametrize("url,subject,notation", CASES)
@pytest.mark.parametrize("media", list(RDF_PARSERS))
def test_rdf_by_accept_header(client, url, subject, notation, media):
    response = client.get(url, headers={"Accept": media})
    assert response.status_code == 200
    assert response.mimetype == media
    assert "Accept" in response.headers["Vary"]
    graph = parse(response, media)
    assert Literal(notation) in set(graph.objects(URIRef(subject), SKOS.notation))


@pytest.mark.parametrize("url,subject,notation", CASES)
def test_html_for_browsers(client, url, subject, notation):
    text = page(client, url)
    assert "Accept" in client.get(url, headers={"Accept": BROWSER}).headers["Vary"]
    for media in ("text/turtle", "application/ld+json"):
        assert re.search(rf'<link rel="alternate" type="{re.escape(media)}" href="[^"]+"', text)
    assert notation in text
    assert '<html lang="en">' in text
    assert text.count("<h1") == 1


@pytest.mark.parametrize("fmt,media", [("turtle", "text/turtle"), ("ttl", "text/turtle"),
                                       ("jsonld", "application/ld+json"), ("rdfxml", "application/rdf+xml"),
                                       ("nt", "application/n-triples"), ("html", "text/html")])
def test_format_parameter_overrides_accept(client, fmt, media):
    response = client.get(f"/id/cpt/96522?format={fmt}", headers={"Accept": BROWSER})
    assert response.status_code == 200
    assert response.mimetype == media


def test_ontology_document(client):
    graph = parse(client.get("/ontology", headers={"Accept": "text/turtle"}), "text/turtle")
    assert (URIRef("https://w3id.org/medcode/ontology"), RDF.type, OWL.Ontology) in graph
    assert (MC.portablePumpAlternative, RDFS.subPropertyOf, MC.reportInstead) in graph
    # the property chain is a proper RDF list
    chain = graph.value(MC.notReportedWith, OWL.propertyChainAxiom)
    assert [str(x) for x in Collection(graph, chain)] == [str(MC.column1Of), str(MC.column2)]
    text = page(client, "/ontology")
    assert 'id="CPTCode"' in text and 'id="Intrathecal"' in text
    assert 'href="/ontology#Code"' in text  # ontology terms link to their anchors, locally


def test_jsonld_uses_published_context(client):
    ctx = client.get("/context.jsonld")
    assert ctx.status_code == 200
    assert ctx.mimetype == "application/ld+json"
    context = json.loads(ctx.data)["@context"]
    assert context["mc"] == str(MC)
    assert context["notation"] == "skos:notation"
    assert context["usesDevice"] == {"@id": "mc:usesDevice", "@type": "@id"}
    doc = json.loads(client.get("/id/cpt/96522", headers={"Accept": "application/ld+json"}).data)
    assert doc["@context"] == context
    node = next(n for n in doc["@graph"] if n["@id"] in ("cpt:96522", ID_BASE + "cpt/96522"))
    assert node["notation"] == "96522"


def test_unacceptable_and_bad_requests(client):
    assert client.get("/id/cpt/96522", headers={"Accept": "application/pdf"}).status_code == 406
    assert client.get("/id/cpt/96522?format=pdf").status_code == 406
    assert client.get("/id/cpt/96522?page=0").status_code == 400
    assert client.get("/id/cpt/96522?size=100000").status_code == 400


# ------------------------------------------------------------------------------ caching


def test_etag_and_304(client, app):
    etag_of = {}
    for media in ("text/html", "text/turtle"):
        response = client.get("/id/cpt/96522", headers={"Accept": media})
        etag = response.headers["ETag"]
        assert app.extensions["medcode.store"].etag in etag
        etag_of[media] = etag
        again = client.get("/id/cpt/96522", headers={"Accept": media, "If-None-Match": etag})
        assert again.status_code == 304
        assert again.data == b""
        assert again.headers["ETag"] == etag
        assert "Accept" in again.headers["Vary"]
        weak = client.get("/id/cpt/96522", headers={"Accept": media, "If-None-Match": "W/" + etag})
        assert weak.status_code == 304
    assert etag_of["text/html"] != etag_of["text/turtle"]  # one ETag per representation
    stale = client.get("/id/cpt/96522", headers={"Accept": "text/turtle", "If-None-Match": '"old-snapshot"'})
    assert stale.status_code == 200


# --------------------------------------------------------------------------- 404 suggestions


def test_unknown_icd_code_suggests_normalised_match(client):
    text = page(client, "/id/icd10cm/g893", status=404)
    first = re.search(r'<ul class="suggestions">\s*<li><a href="([^"]+)"', text).group(1)
    assert first == "/id/icd10cm/G89.3"


def test_unknown_cpt_code_with_space(client):
    text = page(client, "/id/cpt/96%20522", status=404)
    first = re.search(r'<ul class="suggestions">\s*<li><a href="([^"]+)"', text).group(1)
    assert first == "/id/cpt/96522"


@pytest.mark.parametrize("accept", ["text/turtle", "application/ld+json", "application/json"])
def test_unknown_code_plain_text_for_rdf_and_json(client, accept):
    response = client.get("/id/icd10cm/g893", headers={"Accept": accept})
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert "Accept" in response.headers["Vary"]
    lines = response.get_data(as_text=True).splitlines()
    assert "Did you mean:" in lines
    assert lines[lines.index("Did you mean:") + 1].split("\t")[0].endswith("/id/icd10cm/G89.3")


def test_nearest_notations_by_prefix(client):
    text = page(client, "/id/icd10cm/G89.9", status=404)  # no such code: its siblings are offered
    assert 'href="/id/icd10cm/G89.4"' in text and 'href="/id/icd10cm/G89"' in text
    text = page(client, "/id/modifier/xu", status=404)
    assert re.search(r'<li><a href="/id/modifier/XU"', text)


# ------------------------------------------------------------------------------- code pages


@pytest.fixture(scope="module")
def page_96522(app):
    return page(app.test_client(), "/id/cpt/96522")


def test_96522_units_and_modifiers(page_96522):
    units = section(page_96522, "units")
    assert '<span class="mue">1</span>' in units
    modifiers = section(page_96522, "modifiers")
    for modifier in ("59", "XU", "XE", "95", "AQ", "Q1"):
        assert f'href="/id/modifier/{modifier}"' in modifiers


def test_96522_both_seed_profiles(page_96522):
    profiles = section(page_96522, "profiles")
    for source in ("S000", "S004"):
        assert f'href="/id/source/{source}"' in profiles
    for heading in ("Purpose", "Indications", "Preparation", "Procedure steps", "Tools and equipment", "Anesthesia",
                    "Duration", "Setting", "Personnel", "Risks and complications", "Benefits", "Recovery",
                    "Alternatives", "Patient experience", "Common language description", "Post-procedure"):
        assert f"<h4>{heading}</h4>" in profiles, heading
    s004 = profiles[profiles.index('href="/id/source/S004"'):]
    steps = [s004.index(step) for step in ("Patient Preparation:", "Accessing the Pump:", "Refilling the Pump:",
                                           "Programming the Pump:", "Function Check:", "Post-Procedure Care:")]
    assert steps == sorted(steps)  # ordered by mc:stepNumber
    summary = section(page_96522, "summary")
    assert "refilling and maintaining an implantable pump" in summary and 'href="/id/source/S000"' in summary


def test_96522_indications_link_icd10cm(page_96522):
    profiles = section(page_96522, "profiles")
    assert 'href="/id/icd10cm/G89.29"' in profiles  # chronic pain -> G89.29 (close match)
    indications = section(page_96522, "indications")
    assert 'href="/id/icd10cm/Z45.1"' in indications
    assert 'href="/id/source/NCD-280.14"' in indications


def test_96522_fee_schedule_meanings_and_sources(page_96522):
    fee = section(page_96522, "fee-schedule")
    row = next(r for r in fee.split("<tr>") if "MPFS status code" in r)
    assert "<code>A</code>" in row and "Active code" in row and 'href="/id/source/S004"' in row
    assert 'href="/id/valueset/opps-status-indicator/S"' in fee


def test_96522_relations(page_96522):
    instead = section(page_96522, "report-instead")
    row = next(r for r in instead.split("<tr>") if 'href="/id/cpt/96521"' in r)
    assert "report instead for an external portable pump" in row
    assert 'href="/id/source/S004"' in row
    similar = section(page_96522, "similar")
    assert 'href="/id/cpt/96521"' in similar and "inferred" in similar  # symmetric, entailed
    devices = section(page_96522, "devices")
    assert 'href="/id/device/implantable-pump-or-reservoir"' in devices
    assert 'href="/ontology#IntraArterial"' in devices
    assert 'href="/id/cpt/95990"' in section(devices, "crosswalk")
    history = section(page_96522, "history")
    assert "2006-01-01" in history and "Added" in history


def test_95990_not_reported_with_inferred_and_modifier_indicator(client):
    text = page(client, "/id/cpt/95990")
    nrw = section(text, "not-reported-with")
    rows = [r for r in nrw.split("<tr>")[2:]]
    codes = [re.search(r'href="/id/cpt/(\d+)"', r).group(1) for r in rows]
    assert codes == ["62367", "62368", "62369", "62370"]
    for row in rows:
        assert 'class="badge inferred"' in row
        assert '<code class="mi">0</code>' in row
        assert 'href="/id/source/S003"' in row


def test_icd_breadcrumb(client):
    text = page(client, "/id/icd10cm/G35.A")
    crumbs = text[text.index('<nav class="breadcrumb"'):]
    crumbs = crumbs[:crumbs.index("</nav>")]
    order = [crumbs.index(href) for href in ('href="/id/icd10cm"', 'href="/id/icd10cm/chapter/6"',
                                             'href="/id/icd10cm/block/G35-G37"', 'href="/id/icd10cm/G35"')]
    assert order == sorted(order)
    assert crumbs.index("G35.A") > order[-1]
    assert "not billable" in crumbs and 'class="badge billable"' in crumbs


def test_chapter_children_paged(client):
    text = page(client, "/id/icd10cm/chapter/19?cpage=2&size=10")
    kids = section(text, "children")
    assert "page 2 of 3" in kids
    assert 'href="/id/icd10cm/block/T07"' in kids and 'href="/id/icd10cm/block/S00-S09"' not in kids
    assert len(re.findall(r"<tr><th scope=\"row\">", kids)) == 10
    assert "cpage=3" in section(text, "hierarchy")


def test_chapter_reverse_links_paged(client):
    first = section(page(client, "/id/icd10cm/chapter/19"), "reverse")
    second = section(page(client, "/id/icd10cm/chapter/19?page=2"), "reverse")
    assert "54,285" in first  # the descendants (skos:broaderTransitive), counted, never all listed
    # a row is (subject, predicate): one subject may point here by skos:broader on one page and by
    # skos:broaderTransitive on the next (which depends on the store's order), but no row comes twice
    rows = [re.findall(r'<tr><td><a href="([^"]+)".*?</a></td><td>([^<]+)', s) for s in (first, second)]
    assert len(rows[0]) == len(rows[1]) == 50
    assert not set(rows[0]) & set(rows[1])
    assert 'rel="next"' in second and 'rel="prev"' in second
    filtered = section(page(client, "/id/icd10cm/chapter/19?rel=skos:broader"), "reverse")
    assert len(re.findall(r'<tr><td><a href="([^"]+)"', filtered)) == 24
    turtle = client.get("/id/icd10cm/chapter/19?page=2", headers={"Accept": "text/turtle"})
    graph = parse(turtle, "text/turtle")
    chapter = URIRef(ID_BASE + "icd10cm/chapter/19")
    assert len(set(graph.subjects(SKOS.broaderTransitive, chapter))) >= 40


# ------------------------------------------------------------------------- other resources


def test_generic_resource_pages(client):
    text = page(client, "/id/device/implantable-pump-or-reservoir")
    assert "Implanted pump or subcutaneous reservoir" in text
    assert 'href="/ontology#ImplantableDrugDeliveryDevice"' in text
    assert 'href="/id/cpt/96522"' in section(text, "reverse")
    text = page(client, "/id/edit/95990_62367")
    assert 'href="/id/cpt/95990"' in text and 'href="/id/valueset/ptp-modifier-indicator/0"' in text
    text = page(client, "/resource?iri=" + str(MC.CPTCode).replace("#", "%23"))
    assert "CPT code" in text and "rdf:type" not in text
    assert 'href="http://www.w3.org/2004/02/skos/core#Concept"' in page(client, "/id/cpt/96522")  # external IRIs


def test_code_system_indexes(client):
    assert 'href="/id/cpt/96522"' in page(client, "/id/cpt")
    assert 'href="/id/hcpcs/C1772"' in page(client, "/id/hcpcs")
    assert 'href="/id/modifier/XU"' in page(client, "/id/modifier")
    chapters = section(page(client, "/id/icd10cm"), "members")
    numbers = re.findall(r'href="/id/icd10cm/chapter/(\d+)"', chapters)
    assert numbers[:3] == ["1", "2", "3"] and "19" in numbers and "22" in numbers


def test_browse_devices_and_routes(client):
    devices = page(client, "/browse/devices")
    assert 'href="/ontology#ImplantableInfusionPump"' in devices
    tree = devices[devices.index('href="/id/device/implantable-pump-or-reservoir"'):]
    assert 'href="/id/cpt/96522"' in tree[:tree.index("</ul>")]
    routes = page(client, "/browse/routes")
    block = routes[routes.index('href="/ontology#Intrathecal"'):]
    assert 'href="/id/cpt/95990"' in block[:block.index("</section>")]
    graph = parse(client.get("/browse/routes", headers={"Accept": "text/turtle"}), "text/turtle")
    assert (URIRef(ID_BASE + "cpt/95990"), MC.route, MC.Intrathecal) in graph


def test_public_base_without_trailing_slash(data_dir):
    app = create_app({"MEDCODE_DATA": str(data_dir), "PUBLIC_BASE": "https://w3id.org/medcode", "QUERY_WORKERS": 1})
    try:
        text = page(app.test_client(), "/id/cpt/96522")
        assert 'href="/id/cpt/96521"' in text
    finally:
        app.extensions["medcode.store"].close()



def test_links_follow_the_mount_point(client):
    response = client.get("/id/cpt/96522", base_url="http://localhost/medcode/", headers={"Accept": "text/html"})
    text = response.get_data(as_text=True)
    assert 'href="/medcode/id/cpt/96521"' in text and 'href="/medcode/ontology#Code"' in text
    assert response.headers["Link"].startswith("</medcode/id/cpt/96522?format=turtle>")


# -------------------------------------------------------------------------------- escaping

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def evil_app(tmp_path_factory):
    """A tiny snapshot whose only code has a label containing markup."""
    data = tmp_path_factory.mktemp("evil-data")
    code, device = URIRef(ID_BASE + "cpt/99999"), URIRef(ID_BASE + "device/evil")
    asserted = [
        (code, RDF.type, MC.CPTCode), (code, SKOS.notation, Literal("99999")),
        (code, SKOS.prefLabel, Literal(EVIL, lang="en")), (code, SKOS.inScheme, URIRef(ID_BASE + "cpt")),
        (code, SKOS.note, Literal('"><img src=x onerror=alert(2)>')),
        (URIRef(ID_BASE + "cpt"), SKOS.prefLabel, Literal(EVIL)),
        (device, RDF.type, MC.InfusionPump), (device, RDFS.label, Literal(EVIL)), (code, MC.usesDevice, device),
        (MC.InfusionPump, RDFS.subClassOf, MC.MedicalProduct), (MC.InfusionPump, RDFS.label, Literal(EVIL)),
    ]
    snapshot = write_snapshot(data, {str(GRAPH_ASSERTED): asserted, str(GRAPH_INFERRED): []}, {"reasoner": "none"})
    publish(data, snapshot)
    # its own tiny snapshot, served embedded in both test modes (the templates escape, not the store)
    app = create_app({"MEDCODE_DATA": str(data), "QUERY_WORKERS": 1, "MEDCODE_STORE": "embedded"})
    yield app
    app.extensions["medcode.store"].close()


@pytest.mark.parametrize("url", ["/id/cpt/99999", "/id/cpt", "/id/cpt/9999", "/id/device/evil", "/browse/devices",
                                 "/resource?iri=" + str(MC.InfusionPump).replace("#", "%23")])
def test_labels_are_escaped(evil_app, url):
    response = evil_app.test_client().get(url, headers={"Accept": "text/html"})
    assert response.status_code in (200, 404)
    text = response.get_data(as_text=True)
    assert "<script>" not in text
    assert "<img" not in text
    assert html.escape(EVIL, quote=False) in text


def test_markup_in_the_path_is_escaped(evil_app):
    response = evil_app.test_client().get("/id/cpt/%3Cscript%3Ealert(1)%3C/script%3E",
                                          headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "<script>" not in response.get_data(as_text=True)


def test_a_trailing_slash_redirect_keeps_the_query(client):
    response = client.get("/id/icd10cm/G35/?format=turtle&as_of=2025-06-01")
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/id/icd10cm/G35?format=turtle&as_of=2025-06-01")


@pytest.mark.parametrize("url", ["/id/icd10cm/G35%00", "/id/cpt/62362%01", "/id/icd10cm/G35%00.json"])
def test_a_control_character_is_a_400_never_stripped(client, url):
    # normalise_code drops everything but letters and digits, so G35\u0000 would otherwise be G35's page
    response = client.get(url)
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("The path holds a control character")
