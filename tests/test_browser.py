"""The web UI in a real headless Chromium (Playwright), against `medcode serve` on a loopback port.

Code search from its page, the YASGUI query editor (served by the app itself from /static/vendor) running a
named query, the plain query form without JavaScript, and a code page's 'not reported with' link. Every
request the browser makes to any other host is blocked and fails the test; so does a Content Security
Policy violation or an uncaught script error.

Needs Chromium at /usr/bin/chromium (Debian package `chromium`) and the Playwright Python package; the
editor test needs the YASGUI files (`npm ci && python -m server.assets --no-npm`) and is skipped, saying
so, without them. Set MEDCODE_REQUIRE_BROWSER=1 (as .ci/run does) to make a missing browser or missing
editor files a failure instead of a skip. Set MEDCODE_SCREENSHOTS=<dir> to save screenshots of the search
page and the query editor there (docs/ holds the ones the README shows).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.error import URLError
from urllib.request import Request, urlopen

import pytest
from helpers import free_port, medcode_command

from server import assets, create_app
from server.named_queries import load_named_queries

CHROMIUM = os.environ.get("MEDCODE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("MEDCODE_REQUIRE_BROWSER") == "1"
SCREENSHOTS = os.environ.get("MEDCODE_SCREENSHOTS")
NOT_REPORTED_WITH_95990 = ["62367", "62368", "62369", "62370"]
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses process groups")


def missing(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(reason + " (MEDCODE_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def fetch(url: str, timeout: float, accept: str = "text/html") -> tuple[int, bytes]:
    with urlopen(Request(url, headers={"Accept": accept}), timeout=timeout) as response:
        return response.status, response.read()


class Server:
    def __init__(self, process: subprocess.Popen, base: str, log: Path) -> None:
        self.process, self.base, self.log = process, base, log

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`medcode serve` (gunicorn, one worker) in its own process group on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("browser") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [medcode_command(), "serve", "--data", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    srv = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"medcode serve exited with {process.returncode}:\n{srv.log_tail()}")
            try:
                if fetch(srv.base + "/", timeout=2)[0] == 200:
                    break
            except (URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"medcode serve did not answer within 60 s:\n{srv.log_tail()}")
            time.sleep(0.2)
        # the search index is built on the first search (seconds on the full graph): do it now
        status, body = fetch(srv.base + "/search?q=g893", timeout=180, accept="application/json")
        assert status == 200 and json.loads(body)["results"], body
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the Playwright Python package is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watch:
    """What a page did that it should not: requests to other hosts, CSP violations, script errors."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.foreign: list[str] = []
        self.problems: list[str] = []

    def route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.base + "/") or url == self.base or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"console {message.type}: {text}")

    def check(self) -> None:
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"
        assert self.problems == [], "\n".join(self.problems)


def open_page(browser, server: Server, javascript: bool = True):
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    watch = Watch(server.base)
    context.route("**/*", watch.route)
    page = context.new_page()
    page.on("console", watch.console)
    page.on("pageerror", lambda error: watch.problems.append(f"page error: {error}"))
    return context, page, watch


@pytest.fixture
def page(browser, server: Server):
    context, page, watch = open_page(browser, server)
    page.watch = watch
    yield page
    context.close()


def screenshot(page, name: str, full_page: bool = False) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=full_page)


# -- code search ---------------------------------------------------------------------------------

def test_search_for_a_code_and_follow_the_result(page, server):
    page.goto(server.base + "/search")
    page.get_by_label("Code, range, prefix or words").fill("g893")
    page.get_by_label("Code, range, prefix or words").press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=g893"))
    first = page.locator("#results li a").first
    assert first.inner_text().strip() == "G89.3"
    first.click()
    page.wait_for_url(server.base + "/id/icd10cm/G89.3")
    assert "G89.3" in page.locator("h1").inner_text()
    page.watch.check()


def test_search_words_rank_and_link(page, server):
    page.goto(server.base + "/search")
    box = page.get_by_role("searchbox", name="Code, range, prefix or words")
    box.fill("refill implantable pump systemic")
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#results")
    items = page.locator("#results li")
    assert items.first.locator("a").inner_text().strip() == "96522"
    assert "systemic" in items.first.inner_text()
    assert page.locator("#results li a").first.get_attribute("href") == "/id/cpt/96522"
    screenshot(page, "search.png")
    page.watch.check()


def test_search_page_escapes_the_query(page, server):
    page.goto(server.base + "/search?q=" + "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert page.locator("img").count() == 0
    assert "<img src=x onerror=alert(1)>" in page.locator("h2").inner_text()
    page.watch.check()


# -- the YASGUI query editor ---------------------------------------------------------------------

def require_editor() -> None:
    if not assets.installed() and shutil.which("npm"):
        assets.install(npm=True)  # the project's own install step, as `medcode serve` runs it
    if not assets.installed():
        missing("the YASGUI files are not installed in server/static/vendor/ "
                "(run `npm ci && python -m server.assets --no-npm`; needs Node.js)")


def test_query_editor_runs_a_named_query(page, server):
    require_editor()
    page.goto(server.base + "/sparql")
    page.wait_for_selector("#yasgui[data-ready=true]")
    tabs = page.locator("#yasgui .tabsList .tab")
    names = [t.strip().rstrip("✖").strip() for t in tabs.all_inner_texts()]
    assert names == list(load_named_queries()), names
    page.locator("#yasgui .tabsList .tab", has_text=re.compile(r"^\s*not-reported-with\s*✖?\s*$")).click()
    panel = page.locator(".tabPanel.active")
    assert 'VALUES (?code) { ("95990") }' in panel.locator(".CodeMirror").inner_text()
    with page.expect_response(lambda r: r.url == server.base + "/sparql" and r.request.method == "POST") as sent:
        panel.locator(".yasqe_queryButton").click()
    assert sent.value.status == 200
    panel.locator(".yasr tbody tr").first.wait_for()
    rows = panel.locator(".yasr tbody tr").all_inner_texts()
    assert [code for code in NOT_REPORTED_WITH_95990 if any(code in row for row in rows)] == NOT_REPORTED_WITH_95990
    assert len(rows) == len(NOT_REPORTED_WITH_95990)
    # IRIs under https://w3id.org/medcode/ link to this server's own pages
    hrefs = panel.locator(".yasr tbody a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert {"/id/cpt/" + code for code in NOT_REPORTED_WITH_95990} <= set(hrefs)
    screenshot(page, "query-ui.png", full_page=True)
    page.watch.check()


def test_query_editor_runs_an_edited_query(page, server):
    require_editor()
    page.goto(server.base + "/sparql")
    page.wait_for_selector("#yasgui[data-ready=true]")
    query = ("PREFIX mc: <https://w3id.org/medcode/ontology#>\n"
             "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
             "SELECT ?n WHERE { ?c mc:usesDevice/a mc:ProgrammableImplantablePump ; a mc:CPTCode ; "
             "skos:notation ?n } ORDER BY ?n")
    page.evaluate("q => window.medcodeYasgui.getTab().getYasqe().setValue(q)", query)
    panel = page.locator(".tabPanel.active")
    panel.locator(".CodeMirror").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => document.querySelectorAll('.tabPanel.active .yasr tbody tr').length === 5")
    cells = panel.locator(".yasr tbody tr").all_inner_texts()
    assert [re.search(r"\d{5}", row).group(0) for row in cells] == ["62362", "62367", "62368", "62369", "62370"]
    page.watch.check()


def test_query_editor_new_tab_has_the_prefixes(page, server):
    require_editor()
    page.goto(server.base + "/sparql")
    page.wait_for_selector("#yasgui[data-ready=true]")
    page.locator("#yasgui .tabsList .addTab").click()
    panel = page.locator(".tabPanel.active")
    text = page.evaluate("window.medcodeYasgui.getTab().getYasqe().getValue()")
    assert "PREFIX cpt: <https://w3id.org/medcode/id/cpt/>" in text and "PREFIX mc: <" in text
    assert page.evaluate("window.medcodeYasgui.getTab().getYasqe().queryValid") is True
    panel.locator(".yasqe_queryButton").click()
    page.wait_for_function("() => document.querySelectorAll('.tabPanel.active .yasr tbody tr').length === 10")
    page.watch.check()


def test_query_editor_makes_no_third_party_requests_while_editing(page, server):
    """Completion at a prefix, a property and a class position must not call prefix.cc or LOV (the page's CSP
    would block them too: either shows up as a foreign request or a CSP console message)."""
    require_editor()
    page.goto(server.base + "/sparql")
    page.wait_for_selector("#yasgui[data-ready=true]")
    page.locator(".tabPanel.active .CodeMirror").click()
    prefixes = "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\nPREFIX owl: <http://www.w3.org/2002/07/owl#>\n"
    for text in ("PREFIX sk", prefixes + "SELECT * WHERE { ?s rdfs:la", prefixes + "SELECT * WHERE { ?s a owl:Cl",
                 prefixes + "SELECT * WHERE { ?s a ?"):
        page.evaluate("""text => { const yasqe = window.medcodeYasgui.getTab().getYasqe();
                                   yasqe.setValue(text); yasqe.focus();
                                   yasqe.getDoc().setCursor(yasqe.getDoc().lastLine(), 1e6);
                                   yasqe.autocomplete(); }""", text)
        page.wait_for_timeout(500)
        page.keyboard.press("Escape")
    page.watch.check()
    completions = page.evaluate("Object.keys(window.medcodeYasgui.getTab().getYasqe().autocompleters)")
    assert sorted(completions) == ["medcode-prefixes", "variables"]


# -- the plain form --------------------------------------------------------------------------------

def test_plain_form_works_without_javascript(browser, server):
    context, page, watch = open_page(browser, server, javascript=False)
    try:
        page.goto(server.base + "/sparql")
        assert page.locator("#plain-form").get_attribute("open") is not None
        assert page.locator("#yasgui").inner_text() == ""
        page.get_by_label("Query", exact=True).fill(
            "PREFIX mc: <https://w3id.org/medcode/ontology#>\nPREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
            'SELECT ?code WHERE { ?c skos:notation "95990" ; mc:notReportedWith ?o . ?o skos:notation ?code } '
            "ORDER BY ?code")
        page.get_by_label("Result format").select_option("json")
        with page.expect_response(lambda r: r.request.method == "POST") as sent:
            page.get_by_role("button", name="Run", exact=True).click()
        assert sent.value.status == 200
        assert sent.value.headers["content-type"].startswith("application/sparql-results+json")
        body = json.loads(page.locator("pre").inner_text())
        assert [b["code"]["value"] for b in body["results"]["bindings"]] == NOT_REPORTED_WITH_95990
        watch.check()
    finally:
        context.close()


def test_plain_form_works_with_javascript_too(page, server):
    page.goto(server.base + "/sparql")
    if assets.installed():
        page.wait_for_selector("#yasgui[data-ready=true]")
        page.locator("#plain-form summary").click()
    page.get_by_label("Result format").select_option("json")
    with page.expect_response(lambda r: r.request.method == "POST") as sent:
        page.get_by_role("button", name="Run", exact=True).click()
    assert sent.value.status == 200
    body = json.loads(page.locator("pre").inner_text())
    assert [b["code"]["value"] for b in body["results"]["bindings"]] == NOT_REPORTED_WITH_95990
    page.watch.check()


# -- a code page -----------------------------------------------------------------------------------

def test_code_page_not_reported_with_link(page, server):
    page.goto(server.base + "/id/cpt/95990")
    section = page.locator("section#not-reported-with")
    links = section.locator("a[href^='/id/cpt/']")
    assert {link.get_attribute("href") for link in links.all()} >= {"/id/cpt/" + c for c in NOT_REPORTED_WITH_95990}
    section.locator("a[href='/id/cpt/62369']").click()
    page.wait_for_url(server.base + "/id/cpt/62369")
    assert "62369" in page.locator("h1").inner_text()
    # the relation is symmetric: the other page links back
    assert page.locator("section#not-reported-with a[href='/id/cpt/95990']").count() >= 1
    page.watch.check()


# -- the query page without a browser --------------------------------------------------------------

@pytest.fixture(scope="module")
def client(data_dir: Path):
    app = create_app({"MEDCODE_DATA": str(data_dir), "QUERY_WORKERS": 1})
    yield app.test_client()
    app.extensions["medcode.store"].close()


def test_query_page_without_the_editor_files_says_how_to_get_them(client, monkeypatch):
    monkeypatch.setattr(assets, "installed", lambda: False)
    page = client.get("/sparql", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "npm ci" in page and "python -m server.assets" in page
    assert "<script" not in page
    assert '<form method="post" action="/sparql">' in page


def test_query_page_with_the_editor_has_no_inline_script(client):
    require_editor()
    page = client.get("/sparql", headers={"Accept": "text/html"}).get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    for attrs, body in scripts:
        assert 'src="/static/' in attrs or 'type="application/json"' in attrs, attrs
        assert 'src="/static/' not in attrs or body == ""
    assert not re.search(r'<(script|link)[^>]*(src|href)="(https?:)?//', page), "assets from another host"
    config = json.loads(re.search(r'<script type="application/json" id="query-ui-config">(.*?)</script>',
                                  page, re.S).group(1))
    assert config["endpoint"] == "/sparql"
    assert config["prefixes"]["cpt"] == "https://w3id.org/medcode/id/cpt/"
    assert [t["name"] for t in config["tabs"]] == list(load_named_queries())


def test_editor_tabs_run_like_the_api_defaults(client):
    """Each tab's text (parameters bound to their defaults) answers as /api/{name} does."""
    for name, query in load_named_queries().items():
        if not query.params:
            continue
        text = assets.tab_query(query)
        accept = {"Accept": "application/sparql-results+json"}
        via_tab = client.post("/sparql", data={"query": text}, headers=accept)
        via_api = client.get(f"/api/{name}", headers=accept)
        assert via_tab.status_code == via_api.status_code == 200, (name, via_tab.get_data(as_text=True))
        assert rows(via_tab) == rows(via_api), name


def rows(response) -> list[str]:
    return sorted(json.dumps(b, sort_keys=True) for b in response.get_json()["results"]["bindings"])
