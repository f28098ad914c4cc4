"""Linked-data pages: every IRI the graph mints is served under its own path.

``https://w3id.org/medcode/id/cpt/96522`` is served at ``/id/cpt/96522`` (the public base is
``PUBLIC_BASE``), ontology terms at ``/ontology`` (``/ontology#Term``). One URL, several
representations: HTML for people, Turtle, JSON-LD, RDF/XML and N-Triples for RDF clients, chosen by
the Accept header or ``?format=``. Responses carry ``Vary: Accept`` and an ETag tied to the
snapshot (304 on If-None-Match). Every lookup goes through ``store.query`` so the pages work on any
store; lists that can be long (reverse links, children, code-system members) are counted and paged.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, redirect, render_template, request

from kg.contract import DCTERMS, MC, ONTOLOGY_IRI, PREFIXES

from ..http.errors import error_response
from ..http.formats import GRAPH_FORMATS, BadAccept, Format, NotAcceptable, negotiate
from ..store import INFERENCE_GRAPHS, QueryError

bp = Blueprint("pages", __name__, template_folder="templates")

HTML = Format("html", "text/html", ("application/xhtml+xml",))
RDF_FORMATS = tuple(f for f in GRAPH_FORMATS if f.name in ("turtle", "jsonld", "rdfxml", "ntriples"))
PAGE_FORMATS = (HTML, *RDF_FORMATS)
ALTERNATES = (("turtle", "text/turtle", "Turtle"), ("jsonld", "application/ld+json", "JSON-LD"),
              ("rdfxml", "application/rdf+xml", "RDF/XML"), ("ntriples", "application/n-triples", "N-Triples"))

PAGE_SIZE = 50       # reverse links per page
LIST_SIZE = 100      # children and code-system members per page
MAX_SIZE = 500       # largest ?size= accepted
SMALL = 300          # a list this short is loaded whole and sorted; a longer one pages in index order
ORDER_LIMIT = 1000   # ORDER BY a notation only below this many rows (sorting is the expensive part)
CACHE_SIZE = 512     # rendered responses kept per app

ASSERTED = INFERENCE_GRAPHS["asserted"][0]
INFERRED = INFERENCE_GRAPHS["inferred"][0]
MCNS = str(MC)
ONTOLOGY = str(ONTOLOGY_IRI)
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
DCT = str(DCTERMS)
TYPE, LABEL, PREF, NOTATION = RDF_NS + "type", RDFS + "label", SKOS + "prefLabel", SKOS + "notation"
BROADER, SOURCE, TITLE, DEFINITION = SKOS + "broader", DCT + "source", DCT + "title", SKOS + "definition"
BILLABLE = MCNS + "billable"
CODE_SYSTEMS = {"cpt": "CPT", "hcpcs": "HCPCS Level II", "modifier": "Modifiers", "icd10cm": "ICD-10-CM"}
CODE_CLASSES = {MCNS + c for c in ("Code", "CPTCode", "HCPCSCode", "ICD10CMCode", "Modifier", "ICD10CMCategory",
                                   "ICD10CMSubcategory", "ICD10CMGrouping", "ICD10CMChapter", "ICD10CMBlock")}
ICD_LEVELS = {MCNS + "ICD10CMChapter": "chapter", MCNS + "ICD10CMBlock": "block",
              MCNS + "ICD10CMCategory": "category", MCNS + "ICD10CMSubcategory": "subcategory"}
ONTOLOGY_KINDS = ("owl:Ontology", "owl:Class", "owl:ObjectProperty", "owl:DatatypeProperty",
                  "owl:AnnotationProperty", "owl:NamedIndividual")

# (property, heading) in the order the seed pages use; None entries are the structured sections
PROFILE_SECTIONS = (
    ("purpose", "Purpose"), (None, "indications"), ("preparation", "Preparation"), (None, "steps"),
    ("equipment", "Tools and equipment"), ("anesthesia", "Anesthesia"), ("duration", "Duration"),
    ("setting", "Setting"), ("personnel", "Personnel"), ("risk", "Risks and complications"),
    ("benefit", "Benefits"), ("recovery", "Recovery"), ("alternative", "Alternatives"),
    ("prosAndCons", "Pros and cons"), ("patientExperience", "Patient experience"),
    ("commonLanguageDescription", "Common language description"), ("postProcedure", "Post-procedure"),
    ("billingGuideline", "Billing guidelines"), ("commonName", "Common names"), ("technicalTerm", "Technical term"),
)
STANDARD_LABELS = {
    TYPE: "type", LABEL: "label", RDFS + "comment": "comment", RDFS + "seeAlso": "see also",
    RDFS + "subClassOf": "subclass of", RDFS + "subPropertyOf": "subproperty of", RDFS + "domain": "domain",
    RDFS + "range": "range", PREF: "preferred label", SKOS + "altLabel": "alternative label", NOTATION: "notation",
    DEFINITION: "definition", SKOS + "note": "note", SKOS + "inScheme": "in scheme",
    SKOS + "topConceptOf": "top concept of", SKOS + "hasTopConcept": "has top concept", BROADER: "broader",
    SKOS + "narrower": "narrower", SKOS + "broaderTransitive": "broader (transitive)",
    SKOS + "narrowerTransitive": "narrower (transitive)", SKOS + "exactMatch": "exact match",
    SKOS + "closeMatch": "close match", SKOS + "broadMatch": "broad match", SKOS + "narrowMatch": "narrow match",
    SKOS + "relatedMatch": "related match", SKOS + "mappingRelation": "mapping relation",
    SKOS + "semanticRelation": "semantic relation", SKOS + "related": "related", SKOS + "Concept": "SKOS concept",
    SKOS + "ConceptScheme": "SKOS concept scheme", OWL + "Class": "OWL class", OWL + "Thing": "thing",
    OWL + "NamedIndividual": "named individual", OWL + "ObjectProperty": "object property",
    OWL + "DatatypeProperty": "datatype property", OWL + "Ontology": "ontology",
    OWL + "inverseOf": "inverse of", OWL + "disjointWith": "disjoint with", OWL + "equivalentClass": "equivalent class",
    OWL + "propertyChainAxiom": "property chain", OWL + "versionInfo": "version",
    OWL + "SymmetricProperty": "symmetric property", OWL + "FunctionalProperty": "functional property",
    OWL + "TransitiveProperty": "transitive property", RDF_NS + "Statement": "statement",
    RDF_NS + "subject": "subject", RDF_NS + "predicate": "predicate", RDF_NS + "object": "object",
    RDF_NS + "Property": "property", SOURCE: "source", TITLE: "title", DCT + "description": "description",
    DCT + "license": "license", "http://www.w3.org/ns/prov#Entity": "entity",
}
# JSON-LD terms for standard properties; `True` marks IRI-valued ones
STANDARD_TERMS = {
    "label": (LABEL, False), "comment": (RDFS + "comment", False), "seeAlso": (RDFS + "seeAlso", True),
    "subClassOf": (RDFS + "subClassOf", True), "subPropertyOf": (RDFS + "subPropertyOf", True),
    "domain": (RDFS + "domain", True), "range": (RDFS + "range", True), "prefLabel": (PREF, False),
    "altLabel": (SKOS + "altLabel", False), "notation": (NOTATION, False), "definition": (DEFINITION, False),
    "note": (SKOS + "note", False), "inScheme": (SKOS + "inScheme", True),
    "topConceptOf": (SKOS + "topConceptOf", True), "hasTopConcept": (SKOS + "hasTopConcept", True),
    "broader": (BROADER, True), "narrower": (SKOS + "narrower", True),
    "broaderTransitive": (SKOS + "broaderTransitive", True), "narrowerTransitive": (SKOS + "narrowerTransitive", True),
    "exactMatch": (SKOS + "exactMatch", True), "closeMatch": (SKOS + "closeMatch", True),
    "mappingRelation": (SKOS + "mappingRelation", True), "source": (SOURCE, True), "title": (TITLE, False),
    "description": (DCT + "description", False), "license": (DCT + "license", True),
    "subject": (RDF_NS + "subject", True), "predicate": (RDF_NS + "predicate", True),
    "object": (RDF_NS + "object", False), "inverseOf": (OWL + "inverseOf", True),
    "disjointWith": (OWL + "disjointWith", True), "versionInfo": (OWL + "versionInfo", False),
}
# what a code page shows in its own sections rather than in "other properties"
CODE_HANDLED = {TYPE, NOTATION, PREF, LABEL, SKOS + "inScheme", SKOS + "topConceptOf", SOURCE, BROADER,
                SKOS + "broaderTransitive"} | {MCNS + p for p in (
                    "shortDescriptor", "mediumDescriptor", "longDescriptor", "profile", "indication", "history",
                    "route", "usesDevice", "denotesDevice", "mue", "mueAdjudicationIndicator", "listedModifier",
                    "notReportedWith", "column1Of", "column2Of", "similarCode", "billable", "codeStatus",
                    "addedDate", "feeScheduleIndicator")}
_IRI = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20<>"{}|^`\\]*$')


class PageError(Exception):
    """A page could not be produced; answered as a plain-text (or JSON) error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Missing(Exception):
    """Nothing is known about the requested IRI; `suggestions` are near matches."""

    def __init__(self, iri: str, suggestions: list[Link]) -> None:
        super().__init__(iri)
        self.iri = iri
        self.suggestions = suggestions


# ------------------------------------------------------------------------------------------- terms


@dataclass(frozen=True)
class Term:
    type: str            # uri | literal | bnode | triple
    value: str
    lang: str = ""
    datatype: str = ""

    @property
    def is_iri(self) -> bool:
        return self.type == "uri"


def _term(binding: dict) -> Term:
    if binding["type"] == "triple":
        return Term("triple", json.dumps(binding["value"]))
    return Term(binding["type"], binding["value"], binding.get("xml:lang", ""), binding.get("datatype", ""))


def sparql_iri(iri: str) -> str:
    """`<iri>` for a SPARQL query; refuses anything that is not a plain absolute IRI."""
    if not _IRI.match(iri):
        raise ValueError(f"not an IRI: {iri!r}")
    return f"<{iri}>"


def valid_iri(iri: str) -> bool:
    return bool(_IRI.match(iri))


def natural(text: str) -> list:
    """Sort key that orders G89.2 before G89.10 the way people expect (digits compare as numbers)."""
    return [int(t) if i % 2 else t.lower() for i, t in enumerate(re.split(r"(\d+)", text))]


def curie(iri: str) -> str:
    best = ""
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(ns) > len(PREFIXES.get(best, "")):
            best = prefix
    return f"{best}:{iri[len(PREFIXES[best]):]}" if best else iri


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def normalise(code: str) -> str:
    """Case, dots, dashes and spaces ignored: 'g89.3' and 'G 893' both become 'G893'."""
    return re.sub(r"[\s.\-_]", "", code).upper()


# ------------------------------------------------------------------------------------------ store


def _store():
    return current_app.extensions["medcode.store"]


def _run(query: str, fmt: str, graphs: str = "all") -> bytes:
    cfg = current_app.config
    try:
        return _store().query(query, fmt=fmt, limit=cfg["MAX_RESULTS"], timeout=cfg["QUERY_TIMEOUT"],
                              default_graph=INFERENCE_GRAPHS[graphs], named_graphs=INFERENCE_GRAPHS["all"])
    except QueryError as exc:
        raise PageError(exc.status, f"The page's query failed: {exc}") from exc


def select(query: str, graphs: str = "all") -> list[dict[str, Term]]:
    data = json.loads(_run(query, "json", graphs))
    return [{k: _term(v) for k, v in row.items()} for row in data["results"]["bindings"]]


def count(query: str) -> int:
    rows = select(query)
    return int(rows[0]["n"].value) if rows and "n" in rows[0] else 0


def _values(iris: Iterable[str]) -> str:
    return " ".join(sparql_iri(i) for i in iris)


def _chunks(items: list, size: int = 400) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# ----------------------------------------------------------------------------------- vocabulary


@dataclass
class Vocab:
    """What pages need to know about the ontology, read once per app from the store."""

    labels: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    supers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    inverses: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    context: dict = field(default_factory=dict)

    def sub_properties(self, prop: str) -> set[str]:
        """`prop` and every property below it."""
        found, changed = {prop}, True
        while changed:
            changed = False
            for p, ss in self.supers.items():
                if p not in found and ss & found:
                    found.add(p)
                    changed = True
        return found

    def label(self, iri: str) -> str:
        return self.labels.get(iri) or STANDARD_LABELS.get(iri) or curie(iri)

    def explains(self, prop: str, stated: str, reverse: bool) -> bool:
        """Could `stated` (subject→object, or object→subject when `reverse`) entail `prop`?"""
        if not reverse:
            return stated in self.sub_properties(prop)
        if stated == prop and OWL + "SymmetricProperty" in self.kinds.get(prop, ()):
            return True
        return any(stated in self.sub_properties(inv) for inv in self.inverses.get(prop, ()))


def vocab() -> Vocab:
    app = current_app._get_current_object()
    cached = app.extensions.get("medcode.pages.vocab")
    if cached is not None:
        return cached
    v = Vocab()
    kinds = " ".join(ONTOLOGY_KINDS + ("owl:SymmetricProperty", "owl:FunctionalProperty"))
    for row in select(f"SELECT ?t ?k ?l WHERE {{ GRAPH <{ASSERTED}> {{ VALUES ?k {{ {kinds} }} ?t a ?k "
                      "OPTIONAL { ?t rdfs:label ?l } } }"):
        t = row["t"].value
        v.kinds[t].add(row["k"].value)
        if "l" in row and (t not in v.labels or row["l"].lang in ("en", "")):
            v.labels[t] = row["l"].value
    for row in select(f"SELECT ?p ?s WHERE {{ GRAPH <{ASSERTED}> {{ ?p rdfs:subPropertyOf ?s }} }}"):
        v.supers[row["p"].value].add(row["s"].value)
    for row in select(f"SELECT ?p ?q WHERE {{ GRAPH <{ASSERTED}> {{ ?p owl:inverseOf ?q }} }}"):
        v.inverses[row["p"].value].add(row["q"].value)
        v.inverses[row["q"].value].add(row["p"].value)
    v.context = _context(v)
    app.extensions["medcode.pages.vocab"] = v
    return v


def _context(v: Vocab) -> dict:
    """The published JSON-LD @context: prefixes, standard terms and every ontology property by name."""
    ctx: dict = {"@version": 1.1, **PREFIXES}
    for name, (iri, is_ref) in STANDARD_TERMS.items():
        ctx[name] = {"@id": curie(iri), "@type": "@id"} if is_ref else curie(iri)
    for term, kinds in sorted(v.kinds.items()):
        if not term.startswith(MCNS):
            continue
        name = term[len(MCNS):]
        if name in ctx or not name[:1].islower():
            continue
        if OWL + "ObjectProperty" in kinds:
            ctx[name] = {"@id": "mc:" + name, "@type": "@id"}
        elif OWL + "DatatypeProperty" in kinds:
            ctx[name] = "mc:" + name
    return ctx


# ---------------------------------------------------------------------------------- view helpers


@dataclass
class Link:
    iri: str
    href: str | None
    notation: str = ""
    label: str = ""
    billable: bool | None = None
    level: str = ""

    @property
    def text(self) -> str:
        return self.label or self.notation or curie(self.iri)


def public_base() -> str:
    base = current_app.config["PUBLIC_BASE"]
    return base if base.endswith("/") else base + "/"


def local_href(iri: str) -> str | None:
    """A local path for IRIs under PUBLIC_BASE; other http(s) IRIs stay absolute."""
    base = public_base()
    if iri.startswith(base):
        return request.script_root + "/" + quote(iri[len(base):], safe="/#:@!$&'()*+,;=-._~")
    if iri.startswith(("http://", "https://")):
        return iri
    return None


class View:
    """Per-request label cache and link builder, handed to templates as `V`."""

    def __init__(self) -> None:
        self.vocab = vocab()
        self.info: dict[str, dict[str, list[Term]]] = {}

    def load(self, iris: Iterable[str], extra: tuple[str, ...] = ()) -> None:
        """Fetch notation, labels, billable flag and types (plus `extra` properties) for many IRIs at once."""
        props = (NOTATION, PREF, LABEL, TITLE, BILLABLE, TYPE, *extra)
        todo = sorted({i for i in iris if valid_iri(i) and (extra or i not in self.info)})
        for iri in todo:
            self.info.setdefault(iri, {})
        for chunk in _chunks(todo):
            # (VALUES ?x, then FILTER on ?p: two VALUES blocks make the planner scan every triple)
            rows = select(f"SELECT ?x ?p ?v WHERE {{ VALUES ?x {{ {_values(chunk)} }} ?x ?p ?v "
                          f"FILTER(?p IN ({', '.join(sparql_iri(p) for p in props)})) }}")
            for row in rows:
                vals = self.info[row["x"].value].setdefault(row["p"].value, [])
                if row["v"] not in vals:
                    vals.append(row["v"])

    def values(self, iri: str, prop: str) -> list[Term]:
        return self.info.get(iri, {}).get(prop, [])

    def first(self, iri: str, prop: str) -> str:
        vals = self.values(iri, prop)
        for v in vals:
            if v.lang in ("en", ""):
                return v.value
        return vals[0].value if vals else ""

    def link(self, iri: str) -> Link:
        info = self.info.get(iri)
        if info is None:
            label = self.vocab.labels.get(iri) or STANDARD_LABELS.get(iri, "")
            return Link(iri, local_href(iri), "", label or curie(iri))
        label = self.first(iri, PREF) or self.first(iri, LABEL) or self.first(iri, TITLE) or \
            self.vocab.labels.get(iri, "") or STANDARD_LABELS.get(iri, "")
        billable = self.first(iri, BILLABLE)
        level = next((ICD_LEVELS[t.value] for t in self.values(iri, TYPE) if t.value in ICD_LEVELS), "")
        return Link(iri, local_href(iri), self.first(iri, NOTATION), label or _fallback(iri),
                    None if not billable else billable == "true", level)

    def prop(self, iri: str) -> Link:
        return Link(iri, local_href(iri), "", self.vocab.label(iri))

    def curie(self, iri: str) -> str:
        return curie(iri)

    @staticmethod
    def url(**changes) -> str:
        """The current URL with some query parameters changed (None removes one)."""
        args = {k: v for k, v in request.args.items()}
        for k, v in changes.items():
            if v is None:
                args.pop(k, None)
            else:
                args[k] = str(v)
        return request.script_root + request.path + ("?" + urlencode(args) if args else "")


def _fallback(iri: str) -> str:
    base = public_base()
    if iri.startswith(base + "id/"):
        return iri[len(base) + 3:]
    return curie(iri)


# ------------------------------------------------------------------------------------- facts


@dataclass
class Fact:
    prop: str
    value: Term
    inferred: bool
    sources: list[str] = field(default_factory=list)
    via: list[tuple[str, str, str, bool]] = field(default_factory=list)  # (other, predicate, source, reverse)


@dataclass
class Description:
    iri: str
    facts: list[Fact]
    by_prop: dict[str, list[Fact]]

    def get(self, prop: str) -> list[Fact]:
        return self.by_prop.get(prop, [])

    def iris(self) -> set[str]:
        found = set()
        for f in self.facts:
            found.add(f.prop)
            if f.value.is_iri:
                found.add(f.value.value)
            found.update(f.sources)
            found.update(x for v in f.via for x in (v[0], v[2]))
        return found

    def types(self) -> set[str]:
        return {f.value.value for f in self.get(TYPE)}


# inverse links the reasoner adds for every member of a scheme or child of a concept: pages list
# those members and children paged (from the other direction), never all at once
UNBOUNDED = (SKOS + "hasTopConcept", SKOS + "narrower", SKOS + "narrowerTransitive")
_NOT_UNBOUNDED = f"FILTER(?p NOT IN ({', '.join(f'<{p}>' for p in UNBOUNDED)}))"


def describe(iri: str) -> Description | None:
    """Every triple with `iri` as subject (less UNBOUNDED), marked inferred or not, with its sources."""
    s = sparql_iri(iri)
    rows = select(f"SELECT ?p ?o ?g WHERE {{ GRAPH ?g {{ {s} ?p ?o }} {_NOT_UNBOUNDED} }}")
    if not rows and not exists(iri):
        return None
    graphs: dict[tuple[str, Term], set[str]] = {}
    for row in rows:
        graphs.setdefault((row["p"].value, row["o"]), set()).add(row["g"].value)
    direct: dict[tuple[str, str], list[str]] = defaultdict(list)
    related: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    # the direction is a string: some engines (Virtuoso) answer BIND(true ...) with the integer 1
    for row in select(f"""SELECT ?x ?p ?o ?src ?dir WHERE {{
        {{ ?a rdf:subject {s} ; rdf:predicate ?p ; rdf:object ?o ; dcterms:source ?src . BIND("out" AS ?dir) }}
        UNION {{ ?a rdf:object {s} ; rdf:subject ?x ; rdf:predicate ?p ; dcterms:source ?src . BIND("in" AS ?dir) }}
    }}"""):
        if row["dir"].value == "in":
            related[row["x"].value].append((row["p"].value, row["src"].value, True))
        else:
            o = row["o"]
            direct[(row["p"].value, o.value)].append(row["src"].value)
            if o.is_iri:
                related[o.value].append((row["p"].value, row["src"].value, False))
    facts = []
    v = vocab()
    for (p, o), gs in graphs.items():
        fact = Fact(p, o, gs == {INFERRED}, sorted(set(direct.get((p, o.value), []))))
        if fact.inferred and not fact.sources and o.is_iri:
            # the sourced statements between the same two resources that entail this one
            candidates = sorted(set(related.get(o.value, [])))
            fact.via = [(o.value, vp, src, rev) for vp, src, rev in candidates if v.explains(p, vp, rev)]
        facts.append(fact)
    facts.sort(key=lambda f: (f.prop, natural(f.value.value)))
    by_prop: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        by_prop[f.prop].append(f)
    return Description(iri, facts, dict(by_prop))


def exists(iri: str) -> bool:
    if not valid_iri(iri):
        return False
    s = sparql_iri(iri)
    return bool(select(f"SELECT ?x WHERE {{ {{ {s} ?p ?o }} UNION {{ ?x ?p {s} }} }} LIMIT 1"))


# ---------------------------------------------------------------------------------- paging


def page_arg(name: str = "page") -> int:
    raw = request.args.get(name, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise PageError(400, f"'{name}' must be a positive whole number, not '{raw}'.")
    return int(raw)


def size_arg(default: int) -> int:
    raw = request.args.get("size")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SIZE:
        raise PageError(400, f"'size' must be a whole number from 1 to {MAX_SIZE}, not '{raw}'.")
    return int(raw)


@dataclass
class Paged:
    total: int
    page: int
    size: int
    rows: list
    param: str = "page"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return min(self.total, (self.page - 1) * self.size + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.size)


@dataclass
class Reverse:
    counts: list[tuple[str, int, int]]   # (predicate, total, inferred)
    paged: Paged
    rel: str | None


def reverse_links(iri: str, view: View) -> Reverse:
    """What points at `iri`: counts per predicate, and one page of (subject, predicate, inferred)."""
    o = sparql_iri(iri)
    rel = request.args.get("rel")
    if rel:
        rel = _expand(rel)
    by_prop: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in select(f"SELECT ?p ?g (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p {o} }} }} GROUP BY ?p ?g"):
        n = int(row["n"].value)
        by_prop[row["p"].value][0] += n
        if row["g"].value == INFERRED:
            by_prop[row["p"].value][1] += n
    counts = sorted(((p, t, i) for p, (t, i) in by_prop.items()), key=lambda c: (-c[1], view.vocab.label(c[0])))
    total = by_prop[rel][0] if rel else sum(t for _, t, _ in counts)
    page, size = page_arg(), size_arg(PAGE_SIZE)
    pattern = f"GRAPH ?g {{ ?s {sparql_iri(rel)} {o} BIND({sparql_iri(rel)} AS ?p) }}" if rel else \
        f"GRAPH ?g {{ ?s ?p {o} }}"
    if total <= SMALL:
        rows = select(f"SELECT ?s ?p ?g WHERE {{ {pattern} }}")
    else:
        rows = select(f"SELECT ?s ?p ?g WHERE {{ {pattern} }} LIMIT {size} OFFSET {(page - 1) * size}")
    view.load({r["s"].value for r in rows if r["s"].is_iri})
    items = [(r["s"], r["p"].value, r["g"].value == INFERRED) for r in rows]
    items.sort(key=lambda x: (view.vocab.label(x[1]), natural(view.link(x[0].value).notation or x[0].value)
                              if x[0].is_iri else [x[0].value]))
    if total <= SMALL:
        items = items[(page - 1) * size:page * size]
    return Reverse(counts, Paged(total, page, size, items), rel)


def _expand(name: str) -> str:
    if ":" in name and not name.startswith(("http://", "https://")):
        prefix, _, local = name.partition(":")
        if prefix in PREFIXES:
            name = PREFIXES[prefix] + local
    if not valid_iri(name):
        raise PageError(400, f"'rel' must be an IRI or a prefixed name, not '{name}'.")
    return name


def children(iri: str, view: View) -> Paged:
    """Direct narrower concepts (skos:broader pointing here), ordered by notation, paged with ?cpage=."""
    o = sparql_iri(iri)
    total = count(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?c skos:broader {o} }}")
    page, size = page_arg("cpage"), size_arg(LIST_SIZE)
    order = "ORDER BY ?n" if total <= ORDER_LIMIT else ""
    rows = select(f"SELECT ?c ?n WHERE {{ ?c skos:broader {o} OPTIONAL {{ ?c skos:notation ?n }} }} "
                  f"{order} LIMIT {size} OFFSET {(page - 1) * size}") if total else []
    iris = list(dict.fromkeys(r["c"].value for r in rows))
    view.load(iris)
    links = sorted((view.link(i) for i in iris), key=lambda link: natural(link.notation or link.iri))
    return Paged(total, page, size, links, "cpage")


# ----------------------------------------------------------------------------- conneg and cache


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


def _cache() -> _LRU:
    ext = current_app.extensions
    if "medcode.pages.cache" not in ext:
        ext["medcode.pages.cache"] = _LRU(CACHE_SIZE)
    return ext["medcode.pages.cache"]


def _choose() -> Format:
    override = "\x00".join(request.args.getlist("format")) or None
    try:
        return negotiate(PAGE_FORMATS, request.headers.get("Accept"), override)
    except BadAccept as exc:
        raise PageError(400, str(exc)) from exc
    except NotAcceptable as exc:
        raise PageError(406, str(exc)) from exc


def _content_type(fmt: Format) -> str:
    if fmt is HTML:
        return "text/html; charset=utf-8"
    return fmt.media_type if fmt.name in ("jsonld", "rdfxml") else fmt.media_type + "; charset=utf-8"


def _alternate_links() -> list[dict[str, str]]:
    return [{"href": View.url(format=name), "type": media, "title": title} for name, media, title in ALTERNATES]


def serve(html: Callable[[], str], rdf: Callable[[Format], bytes]) -> Response:
    """Negotiate, answer 304 for a current ETag, else build (or reuse) the chosen representation."""
    fmt = _choose()
    etag = f"{_store().etag}-{fmt.name}"
    headers = {"Vary": "Accept", "ETag": f'"{etag}"', "Cache-Control": "public, max-age=600"}
    if request.if_none_match and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    key = (fmt.name, request.script_root, request.full_path, current_app.config["PUBLIC_BASE"])
    cache = _cache()
    body = cache.get(key)
    if body is None:
        body = html() if fmt is HTML else rdf(fmt)
        cache.put(key, body)
    response = Response(body, status=200, content_type=_content_type(fmt), headers=headers)
    if fmt is HTML:
        response.headers["Link"] = ", ".join(f'<{a["href"]}>; rel="alternate"; type="{a["type"]}"'
                                             for a in _alternate_links())
    return response


@bp.errorhandler(PageError)
def _page_error(exc: PageError) -> Response:
    response = error_response(exc.status, exc.message)
    response.headers["Vary"] = "Accept"
    return response


@bp.errorhandler(Missing)
def _missing(exc: Missing) -> Response:
    try:
        fmt = _choose()
    except PageError:
        fmt = HTML
    if fmt is HTML:
        body = render_template("pages/notfound.html", V=View(), iri=exc.iri, suggestions=exc.suggestions,
                               alternates=[])
        response = Response(body, status=404, content_type="text/html; charset=utf-8")
    else:
        lines = [f"Not found: nothing is known about <{exc.iri}>."]
        if exc.suggestions:
            lines.append("Did you mean:")
            lines += [f"  {request.host_url.rstrip('/')}{s.href if s.href and s.href.startswith('/') else s.iri}"
                      f"\t{s.notation}\t{s.label}".rstrip() for s in exc.suggestions]
        response = Response("\n".join(lines) + "\n", status=404, content_type="text/plain; charset=utf-8")
    response.headers["Vary"] = "Accept"
    return response


def render(template: str, **ctx) -> str:
    return render_template(template, alternates=_alternate_links(), **ctx)


# ------------------------------------------------------------------------------------ RDF output


def rdf_body(construct: str, fmt: Format, graphs: str = "all") -> bytes:
    """Run a CONSTRUCT and serialise it; JSON-LD is compacted with the published context."""
    if fmt.name != "jsonld":
        return _run(construct, fmt.name, graphs)
    import rdflib

    graph = rdflib.Graph()
    graph.parse(data=_run(construct, "ntriples", graphs).decode(), format="nt")
    return graph.serialize(format="json-ld", context=vocab().context, auto_compact=True).encode()


def _label_branch(pattern: str) -> str:
    """Labels of the ?s that `pattern` binds (FILTER, not VALUES, on ?p: VALUES makes the planner scan)."""
    return (f"{{ {pattern} FILTER(isIRI(?s)) ?s ?p ?o . "
            "FILTER(?p IN (skos:notation, skos:prefLabel, rdfs:label, dcterms:title, mc:billable)) }")


def describe_rdf(iri: str, fmt: Format, extra: Iterable[tuple[str, str, str]] = ()) -> bytes:
    """The resource, the nodes it owns (profiles, steps, indications, history), its edits, its sourced
    assertions, the labels of what it links to, and `extra` triples (the current page of reverse links)."""
    s = sparql_iri(iri)
    extra = list(extra)
    linked = " ".join(f"({sparql_iri(a)} {sparql_iri(b)} {sparql_iri(c)})" for a, b, c in extra)
    extra_iris = {x for a, _, c in extra for x in (a, c)}
    query = f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
      {{ VALUES ?s {{ {s} }} ?s ?p ?o {_NOT_UNBOUNDED} }}
      UNION {{ {s} (mc:profile|mc:indication|mc:history|mc:profile/mc:procedureStep) ?s OPTIONAL {{ ?s ?p ?o }} }}
      UNION {{ ?s (mc:column1|mc:column2) {s} ; a mc:CodePairEdit ; ?p ?o }}
      UNION {{ ?s rdf:subject {s} ; a mc:Assertion ; ?p ?o }}
      UNION {_label_branch(f"{s} ?q ?s . FILTER(?q NOT IN ({', '.join(f'<{p}>' for p in UNBOUNDED)}))")}
      UNION {_label_branch(f"{s} (mc:indication/mc:condition) ?s .")}
      {f"UNION {{ VALUES (?s ?p ?o) {{ {linked} }} ?s ?p ?o }}" if linked else ""}
      {f"UNION {_label_branch(f'VALUES ?s {{ {_values(extra_iris)} }}')}" if extra_iris else ""}
    }}"""
    return rdf_body(query, fmt)


def _reverse_triples(iri: str, rev: Reverse) -> list[tuple[str, str, str]]:
    return [(s.value, p, iri) for s, p, _ in rev.paged.rows if s.is_iri]


# --------------------------------------------------------------------------------- suggestions


def suggest(iri: str) -> list[Link]:
    """Near IRIs for an unknown one: same code normalised, then nearest notations by prefix and edit distance."""
    base = public_base() + "id/"
    if not iri.startswith(base):
        return []
    rest = iri[len(base):]
    head, _, tail = rest.partition("/")
    pool: list[tuple[str, str]] = []
    key = normalise(tail)
    if head == "icd10cm" and tail.startswith(("chapter/", "block/")):
        kind = "ICD10CMChapter" if tail.startswith("chapter/") else "ICD10CMBlock"
        key = normalise(tail.partition("/")[2])
        pool = _pool(f"?c a mc:{kind} ; skos:notation ?n .")
    elif head == "icd10cm" and tail:
        pool = _icd_pool(key)
    elif head in CODE_SYSTEMS and tail and "/" not in tail:
        pool = _pool(f"?c skos:inScheme <{base}{head}> ; skos:notation ?n .")
    elif head == "device":
        pool = _pool("?c a/rdfs:subClassOf* mc:MedicalProduct .")
    elif head == "condition":
        pool = _pool("?c a mc:Condition .")
    elif head == "source":
        pool = _pool("?c a/rdfs:subClassOf* mc:Source .")
    elif head == "edit":
        pool = _pool("?c a mc:CodePairEdit .")
    elif head == "valueset" and "/" in tail:
        scheme, _, value = tail.partition("/")
        key = normalise(value)
        if valid_iri(f"{base}valueset/{scheme}"):
            pool = _pool(f"?c skos:inScheme <{base}valueset/{scheme}> ; skos:notation ?n .")
    elif head == "valueset":
        pool = _pool("?c a mc:IndicatorScheme .")
    ranked = _rank(key, pool) if key else []
    parents = _existing_ancestors(iri)
    view = View()
    chosen = list(dict.fromkeys([*ranked, *parents]))
    view.load(chosen)
    return [view.link(i) for i in chosen]


def _pool(pattern: str, limit: int = 5000) -> list[tuple[str, str]]:
    rows = select(f"SELECT ?c ?n WHERE {{ {pattern} }} LIMIT {limit}")
    return [(r["c"].value, r["n"].value if "n" in r else r["c"].value.rsplit("/", 1)[-1]) for r in rows]


def _icd_pool(key: str) -> list[tuple[str, str]]:
    """ICD-10-CM is large: look only under the category the input names, or in the block that would hold it."""
    base = public_base() + "id/icd10cm/"
    category = key[:3]
    if not re.fullmatch(r"[A-Z][0-9][0-9A-Z]", category):
        return []
    cat = f"{base}{category}"
    pool = _pool(f"{{ BIND(<{cat}> AS ?c) }} UNION {{ ?c skos:broader+ <{cat}> }} ?c skos:notation ?n .")
    if pool:
        return pool
    blocks = []
    for b, n in _pool("?c a mc:ICD10CMBlock ; skos:notation ?n ."):
        start, _, end = n.partition("-")
        if start[:3] <= category <= (end or start)[:3]:
            blocks.append(b)
    if not blocks:
        return []
    return _pool(f"VALUES ?b {{ {_values(blocks)} }} ?c skos:broader ?b ; skos:notation ?n .")


def _rank(key: str, pool: list[tuple[str, str]], keep: int = 8) -> list[str]:
    exact = [iri for iri, n in pool if normalise(n) == key]

    def score(item: tuple[str, str]) -> tuple:
        n = normalise(item[1])
        prefix = 0
        while prefix < min(len(n), len(key)) and n[prefix] == key[prefix]:
            prefix += 1
        return (-prefix, levenshtein(n, key), natural(item[1]))

    near = [iri for iri, n in sorted(pool, key=score) if iri not in exact]
    near = [iri for iri in near if _close(key, dict(pool)[iri])]
    return (exact + near)[:keep]


def _close(key: str, notation: str) -> bool:
    n = normalise(notation)
    return n[:1] == key[:1] or levenshtein(n, key) <= max(1, len(key) // 3)


def _existing_ancestors(iri: str) -> list[str]:
    base = public_base() + "id/"
    parts = iri[len(base):].split("/")
    candidates = [base + "/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
    candidates = [c for c in candidates if valid_iri(c)]
    if not candidates:
        return []
    rows = select(f"SELECT ?x WHERE {{ VALUES ?x {{ {_values(candidates)} }} FILTER EXISTS {{ ?x ?p ?o }} }}")
    found = {r["x"].value for r in rows}
    return [c for c in candidates if c in found][:1]


# ---------------------------------------------------------------------------------------- routes


@bp.route("/id")
@bp.route("/id/")
def id_root() -> Response:
    return redirect(request.script_root + "/browse", code=303)


@bp.route("/id/<path:rest>")
def by_path(rest: str) -> Response:
    if rest.endswith("/"):
        return redirect(request.script_root + "/id/" + quote(rest.rstrip("/")), code=301)
    iri = public_base() + "id/" + rest
    if rest in CODE_SYSTEMS:
        return serve(lambda: system_html(iri, rest), lambda fmt: system_rdf(iri, rest, fmt))
    return resource(iri)


@bp.route("/resource")
def any_resource() -> Response:
    """Any IRI of the graph, including ontology terms (hash IRIs) and external vocabulary terms."""
    iri = request.args.get("iri", "")
    if not valid_iri(iri):
        raise PageError(400, "Give the resource as ?iri= followed by an absolute IRI.")
    base = public_base()
    if iri.startswith(base + "id/") and "#" not in iri:
        return redirect(local_href(iri), code=303)
    return resource(iri)


def resource(iri: str) -> Response:
    if not valid_iri(iri) or not exists(iri):
        raise Missing(iri, suggest(iri) if valid_iri(iri) or iri.startswith(public_base()) else [])
    return serve(lambda: resource_html(iri), lambda fmt: resource_rdf(iri, fmt))


def resource_rdf(iri: str, fmt: Format) -> bytes:
    view = View()
    rev = reverse_links(iri, view)
    extra = _reverse_triples(iri, rev)
    if request.args.get("cpage") or iri.startswith(public_base() + "id/icd10cm"):
        extra += [(c.iri, BROADER, iri) for c in children(iri, view).rows]
    return describe_rdf(iri, fmt, extra)


def resource_html(iri: str) -> str:
    view = View()
    d = describe(iri)
    if d is None:  # known only as an object: a page of reverse links
        d = Description(iri, [], {})
    view.load(d.iris())
    view.load([iri])
    rev = reverse_links(iri, view)
    if d.types() & CODE_CLASSES:
        return code_html(iri, d, view, rev)
    return render("pages/resource.html", V=view, iri=iri, d=d, me=view.link(iri), rev=rev,
                  groups=_group(d.facts, skip={TYPE}), types=d.get(TYPE),
                  ontology_term=iri.startswith(ONTOLOGY))


def _group(facts: list[Fact], skip: set[str] = frozenset()) -> list[tuple[str, list[Fact]]]:
    groups: dict[str, list[Fact]] = {}
    for f in facts:
        if f.prop not in skip:
            groups.setdefault(f.prop, []).append(f)
    return list(groups.items())


# ------------------------------------------------------------------------------------ code pages


def code_html(iri: str, d: Description, view: View, rev: Reverse) -> str:
    s = sparql_iri(iri)
    v = view.vocab
    # the nodes the code owns: profiles, their steps, indications, history events
    owned: dict[str, dict[str, list[Term]]] = defaultdict(lambda: defaultdict(list))
    # OPTIONAL keeps the join in this order on engines that would otherwise scan every ?n ?p ?o (Virtuoso)
    for row in select(f"""SELECT ?n ?p ?o WHERE {{
        {s} (mc:profile|mc:indication|mc:history|mc:profile/mc:procedureStep) ?n OPTIONAL {{ ?n ?p ?o }} }}"""):
        if "o" in row and row["o"] not in owned[row["n"].value][row["p"].value]:
            owned[row["n"].value][row["p"].value].append(row["o"])
    conditions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in select(f"""SELECT DISTINCT ?c ?rel ?icd WHERE {{ {s} mc:indication/mc:condition ?c .
        GRAPH <{ASSERTED}> {{ ?c ?rel ?icd VALUES ?rel {{ skos:exactMatch skos:closeMatch }} }} }}"""):
        conditions[row["c"].value].append((row["rel"].value, row["icd"].value))
    edits = select(f"""SELECT ?e ?col ?other ?mi ?src ?basis WHERE {{
        {{ ?e mc:column1 {s} ; mc:column2 ?other BIND(1 AS ?col) }}
        UNION {{ ?e mc:column2 {s} ; mc:column1 ?other BIND(2 AS ?col) }}
        ?e a mc:CodePairEdit .
        OPTIONAL {{ ?e mc:modifierIndicator ?mi }} OPTIONAL {{ ?e dcterms:source ?src }}
        OPTIONAL {{ ?e mc:editBasis ?basis }} }}""")
    crosswalk = select(f"""SELECT DISTINCT ?d ?other ?rel WHERE {{
        {s} ?mine ?d . VALUES ?mine {{ mc:usesDevice mc:denotesDevice }}
        ?other ?rel ?d . VALUES ?rel {{ mc:usesDevice mc:denotesDevice }} FILTER(?other != {s}) }}""")
    chain = select(f"SELECT ?x ?parent WHERE {{ {s} skos:broader* ?x . OPTIONAL {{ ?x skos:broader ?parent }} }}")

    iris: set[str] = {iri}
    for props in owned.values():
        for vals in props.values():
            iris.update(t.value for t in vals if t.is_iri)
    for c, matches in conditions.items():
        iris.add(c)
        iris.update(m for _, m in matches)
    for row in edits + crosswalk + chain:
        iris.update(t.value for t in row.values() if t.is_iri)
    view.load(iris)
    fee_values = [f.value.value for p in v.sub_properties(MCNS + "feeScheduleIndicator") for f in d.get(p)]
    view.load(fee_values, extra=(DEFINITION, SKOS + "inScheme"))

    # --- hierarchy
    parent_of: dict[str, str] = {}
    for row in chain:
        if "parent" in row:
            parent_of.setdefault(row["x"].value, row["parent"].value)
    breadcrumb, node, seen = [], iri, set()
    while node in parent_of and node not in seen:
        seen.add(node)
        node = parent_of[node]
        breadcrumb.append(view.link(node))
    breadcrumb.reverse()

    # --- profiles and indications
    profiles = []
    for f in d.get(MCNS + "profile"):
        p_iri = f.value.value
        props = owned.get(p_iri, {})
        steps = []
        for step in props.get(MCNS + "procedureStep", []):
            sp = owned.get(step.value, {})
            number = int(sp[MCNS + "stepNumber"][0].value) if sp.get(MCNS + "stepNumber") else 0
            steps.append((number, sp.get(LABEL, [Term("literal", "")])[0].value, step.value))
        steps.sort()
        sections = []
        for prop, heading in PROFILE_SECTIONS:
            if prop is None:
                sections.append((heading, None))
            elif props.get(MCNS + prop):
                sections.append((heading, [t.value for t in props[MCNS + prop]]))
        profiles.append({
            "iri": p_iri, "link": view.link(p_iri),
            "source": props[SOURCE][0].value if props.get(SOURCE) else None,
            "title": _one(props.get(MCNS + "pageTitle")), "summary": [t.value for t in props.get(MCNS + "summary", [])],
            "sections": sections, "steps": steps,
            "indications": _indications(d, owned, conditions, view, prefix=p_iri + "/indication/"),
        })
    profiles.sort(key=lambda p: natural(view.link(p["source"]).notation if p["source"] else p["iri"]))
    profile_iris = tuple(p["iri"] + "/" for p in profiles)
    code_indications = _indications(d, owned, conditions, view, exclude=profile_iris)

    history = []
    for f in d.get(MCNS + "history"):
        props = owned.get(f.value.value, {})
        history.append({"iri": f.value.value, "date": _one(props.get(MCNS + "eventDate")),
                        "action": _one(props.get(MCNS + "action")), "note": _one(props.get(RDFS + "comment")),
                        "source": props[SOURCE][0].value if props.get(SOURCE) else None})
    history.sort(key=lambda h: h["date"])

    # --- fee schedule
    fee_props = v.sub_properties(MCNS + "feeScheduleIndicator") - {MCNS + "feeScheduleIndicator"}
    fee = [(p, f) for p in fee_props for f in d.get(p)]
    specific = {f.value.value for _, f in fee}
    fee += [(MCNS + "feeScheduleIndicator", f) for f in d.get(MCNS + "feeScheduleIndicator")
            if f.value.value not in specific]
    fee.sort(key=lambda pf: v.label(pf[0]).lower())

    # --- relations
    edit_by_other: dict[str, list[dict]] = defaultdict(list)
    for row in edits:
        edit_by_other[row["other"].value].append({
            "iri": row["e"].value, "column": int(row["col"].value),
            "mi": row["mi"].value if "mi" in row else None, "source": row["src"].value if "src" in row else None,
            "basis": row["basis"].value if "basis" in row else ""})
    not_reported = [(f, edit_by_other.get(f.value.value, [])) for f in d.get(MCNS + "notReportedWith")]
    not_reported.sort(key=lambda x: natural(view.link(x[0].value.value).notation))
    instead = _most_specific(d, v, MCNS + "reportInstead", view)
    instead_of = _most_specific(d, v, MCNS + "reportedInsteadOf", view)
    handled = CODE_HANDLED | v.sub_properties(MCNS + "reportInstead") | v.sub_properties(MCNS + "reportedInsteadOf") \
        | fee_props
    xwalk: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in crosswalk:
        xwalk[row["d"].value].append((row["rel"].value, row["other"].value))
    for entries in xwalk.values():
        entries.sort(key=lambda e: (e[0], natural(view.link(e[1]).notation)))
    kids = children(iri, view)
    labels = [f for f in d.get(LABEL) if f.value.value not in {p.value.value for p in d.get(PREF)}]

    return render(
        "pages/code.html", V=view, iri=iri, d=d, me=view.link(iri), rev=rev,
        scheme=[f for f in d.get(SKOS + "inScheme")], types=d.get(TYPE), breadcrumb=breadcrumb,
        is_icd=iri.startswith(public_base() + "id/icd10cm"),
        descriptors=[(name, d.get(MCNS + p)) for name, p in (("Short", "shortDescriptor"), ("Medium",
                     "mediumDescriptor"), ("Long", "longDescriptor")) if d.get(MCNS + p)],
        summaries=[(p["summary"], p["source"]) for p in profiles if p["summary"]],
        profiles=profiles, indications=code_indications, history=history, fee=fee,
        routes=d.get(MCNS + "route"), uses=d.get(MCNS + "usesDevice"), denotes=d.get(MCNS + "denotesDevice"),
        xwalk=sorted(xwalk.items()), mue=d.get(MCNS + "mue"), mai=d.get(MCNS + "mueAdjudicationIndicator"),
        modifiers=sorted(d.get(MCNS + "listedModifier"), key=lambda f: natural(view.link(f.value.value).notation)),
        not_reported=not_reported, instead=instead, instead_of=instead_of, similar=d.get(MCNS + "similarCode"),
        parents=d.get(BROADER), children=kids, status=d.get(MCNS + "codeStatus"), added=d.get(MCNS + "addedDate"),
        billable=d.get(BILLABLE), sources=d.get(SOURCE), extra_labels=labels,
        others=_group(d.facts, skip=handled | {LABEL}),
    )


def _one(terms: list[Term] | None) -> str:
    return terms[0].value if terms else ""


def _indications(d: Description, owned, conditions, view: View, prefix: str = "",
                 exclude: tuple[str, ...] = ()) -> list[dict]:
    out = []
    for f in d.get(MCNS + "indication"):
        i = f.value.value
        if (prefix and not i.startswith(prefix)) or (exclude and i.startswith(exclude)):
            continue
        props = owned.get(i, {})
        conds = []
        for c in props.get(MCNS + "condition", []):
            matches = sorted(conditions.get(c.value, []), key=lambda m: (m[0], natural(view.link(m[1]).notation)))
            conds.append((c.value, matches))
        out.append({"iri": i, "text": _one(props.get(LABEL)), "conditions": conds, "inferred": f.inferred,
                    "source": props[SOURCE][0].value if props.get(SOURCE) else None})
    out.sort(key=lambda x: natural(x["iri"]))
    return out


def _most_specific(d: Description, v: Vocab, top: str, view: View) -> list[Fact]:
    """Facts of `top` and its sub-properties; a bare `top` fact entailed by a sub-property is left out."""
    props = v.sub_properties(top)
    facts = [f for p in props for f in d.get(p)]
    specific = {f.value.value for f in facts if f.prop != top}
    facts = [f for f in facts if f.prop != top or f.value.value not in specific]
    return sorted(facts, key=lambda f: (natural(view.link(f.value.value).notation), v.label(f.prop)))


# ------------------------------------------------------------------------------ code-system index


def _members(scheme: str, system: str, view: View) -> Paged:
    s = sparql_iri(scheme)
    page, size = page_arg(), size_arg(LIST_SIZE)
    if system == "icd10cm":
        rows = select(f"SELECT ?c WHERE {{ ?c skos:topConceptOf {s} ; a mc:ICD10CMChapter }}")
        iris = [r["c"].value for r in rows]
        total = len(iris)
    else:
        total = count(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?c skos:inScheme {s} }}")
        order = "ORDER BY ?n" if total <= ORDER_LIMIT else ""
        rows = select(f"SELECT ?c WHERE {{ ?c skos:inScheme {s} OPTIONAL {{ ?c skos:notation ?n }} }} "
                      f"{order} LIMIT {size} OFFSET {(page - 1) * size}")
        iris = [r["c"].value for r in rows]
    view.load(iris)
    links = sorted((view.link(i) for i in iris), key=lambda link: natural(link.notation or link.iri))
    if system == "icd10cm":
        links = links[(page - 1) * size:page * size]
    return Paged(total, page, size, links)


def system_html(iri: str, system: str) -> str:
    view = View()
    d = describe(iri) or Description(iri, [], {})
    view.load(d.iris() | {iri})
    members = _members(iri, system, view)
    total_codes = count(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?c skos:inScheme {sparql_iri(iri)} }}")
    return render("pages/system.html", V=view, iri=iri, d=d, me=view.link(iri), system=system,
                  name=CODE_SYSTEMS[system], members=members, total_codes=total_codes,
                  groups=_group(d.facts, skip={TYPE}), types=d.get(TYPE))


def system_rdf(iri: str, system: str, fmt: Format) -> bytes:
    view = View()
    members = _members(iri, system, view)
    rel = SKOS + "topConceptOf" if system == "icd10cm" else SKOS + "inScheme"
    return describe_rdf(iri, fmt, [(m.iri, rel, iri) for m in members.rows])


# ------------------------------------------------------------------------------------- ontology


ONTOLOGY_TERMS = f"""GRAPH <{ASSERTED}> {{
    {{ SELECT DISTINCT ?t WHERE {{ VALUES ?k {{ {" ".join(ONTOLOGY_KINDS)} mc:Route }} ?t a ?k
       FILTER(STRSTARTS(STR(?t), "{ONTOLOGY}")) }} }} ?t ?p ?o }}"""


@bp.route("/ontology")
def ontology() -> Response:
    return serve(ontology_html, ontology_rdf)


def ontology_rdf(fmt: Format) -> bytes:
    query = f"""CONSTRUCT {{ ?t ?p ?o }} WHERE {{
      {{ {ONTOLOGY_TERMS} }}
      UNION {{ GRAPH <{ASSERTED}> {{ ?x owl:propertyChainAxiom ?l . ?l rdf:rest* ?t . ?t ?p ?o }} }} }}"""
    return rdf_body(query, fmt, graphs="asserted")


def ontology_html() -> str:
    view = View()
    v = view.vocab
    terms: dict[str, list[tuple[str, Term]]] = defaultdict(list)
    for row in select(f"SELECT ?t ?p ?o WHERE {{ {ONTOLOGY_TERMS} }}"):
        terms[row["t"].value].append((row["p"].value, row["o"]))
    chains: dict[str, dict[str, str]] = defaultdict(dict)
    for row in select(f"""SELECT ?n ?first ?rest WHERE {{ GRAPH <{ASSERTED}> {{
        ?x owl:propertyChainAxiom ?l . ?l rdf:rest* ?n . ?n rdf:first ?first ; rdf:rest ?rest }} }}"""):
        chains[row["n"].value] = {"first": row["first"].value, "rest": row["rest"].value}

    def chain(start: str) -> list[str]:
        out, node = [], start
        while node in chains and len(out) < 50:
            out.append(chains[node]["first"])
            node = chains[node]["rest"]
        return out

    iris = {o.value for facts in terms.values() for _, o in facts if o.is_iri} | set(terms)
    iris |= {x for node in chains.values() for x in node.values()}
    view.load(iris)
    sections: dict[str, list[dict]] = {k: [] for k in ("Classes", "Object properties", "Datatype properties",
                                                       "Individuals", "Other terms")}
    header = None
    for t, facts in terms.items():
        kinds = {o.value for p, o in facts if p == TYPE}
        entry = {
            "iri": t, "anchor": t.partition("#")[2], "label": v.label(t), "curie": curie(t),
            "definition": [o.value for p, o in facts if p == DEFINITION],
            "facts": sorted([(p, o) for p, o in facts if p not in (LABEL, DEFINITION) and not o.type == "bnode"],
                            key=lambda x: (v.label(x[0]), x[1].value)),
            "chains": [chain(o.value) for p, o in facts if o.type == "bnode" and p == OWL + "propertyChainAxiom"],
        }
        if t == ONTOLOGY:
            header = entry
        elif OWL + "Class" in kinds:
            sections["Classes"].append(entry)
        elif OWL + "ObjectProperty" in kinds:
            sections["Object properties"].append(entry)
        elif OWL + "DatatypeProperty" in kinds:
            sections["Datatype properties"].append(entry)
        elif OWL + "NamedIndividual" in kinds or MCNS + "Route" in kinds:
            sections["Individuals"].append(entry)
        else:
            sections["Other terms"].append(entry)
    for entries in sections.values():
        entries.sort(key=lambda e: e["anchor"].lower())
    return render("pages/ontology.html", V=view, header=header, sections=[(k, e) for k, e in sections.items() if e],
                  iri=ONTOLOGY)


@bp.route("/context.jsonld")
def context() -> Response:
    etag = f"{_store().etag}-context"
    headers = {"Vary": "Accept", "ETag": f'"{etag}"', "Cache-Control": "public, max-age=600"}
    if request.if_none_match and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    body = json.dumps({"@context": vocab().context}, indent=2, ensure_ascii=False)
    return Response(body, content_type="application/ld+json", headers=headers)


# --------------------------------------------------------------------------------------- browse


@bp.route("/browse")
def browse() -> Response:
    def html() -> str:
        view = View()
        systems = []
        for system, name in CODE_SYSTEMS.items():
            iri = public_base() + "id/" + system
            n = count(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?c skos:inScheme {sparql_iri(iri)} }}")
            systems.append((view.link(iri), name, n))
        return render("pages/browse.html", V=view, systems=systems)

    def rdf(fmt: Format) -> bytes:
        schemes = _values(public_base() + "id/" + s for s in CODE_SYSTEMS)
        return rdf_body(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ VALUES ?s {{ {schemes} }} ?s ?p ?o }}", fmt)

    return serve(html, rdf)


DEVICE_CLASSES = f"GRAPH <{ASSERTED}> {{ ?c rdfs:subClassOf* mc:MedicalProduct }}"


@bp.route("/browse/devices")
def browse_devices() -> Response:
    return serve(devices_html, devices_rdf)


def devices_html() -> str:
    view = View()
    supers: dict[str, set[str]] = defaultdict(set)
    classes = set()
    for row in select(f"""SELECT ?c ?super WHERE {{ {DEVICE_CLASSES}
        OPTIONAL {{ GRAPH <{ASSERTED}> {{ ?c rdfs:subClassOf ?super }} }} }}"""):
        classes.add(row["c"].value)
        if "super" in row:
            supers[row["c"].value].add(row["super"].value)
    devices: dict[str, list[str]] = defaultdict(list)
    uses: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if classes:
        for row in select(f"""SELECT ?d ?c WHERE {{ VALUES ?c {{ {_values(classes)} }}
            GRAPH <{ASSERTED}> {{ ?d a ?c }} }}"""):
            devices[row["c"].value].append(row["d"].value)
    all_devices = sorted({d for ds in devices.values() for d in ds})
    if all_devices:
        for row in select(f"""SELECT ?d ?rel ?code WHERE {{ VALUES ?d {{ {_values(all_devices)} }}
            ?code ?rel ?d . VALUES ?rel {{ mc:usesDevice mc:denotesDevice }} }}"""):
            uses[row["d"].value].append((row["rel"].value, row["code"].value))
    view.load(classes | set(all_devices) | {c for us in uses.values() for _, c in us})
    for us in uses.values():
        us.sort(key=lambda u: (u[0], natural(view.link(u[1]).notation)))
    kids: dict[str, list[str]] = defaultdict(list)
    for c in classes:
        for s in supers[c] & classes:
            kids[s].append(c)

    def node(c: str, path: tuple[str, ...]) -> dict:
        return {"link": view.link(c), "devices": sorted(devices.get(c, []), key=lambda d: view.link(d).text.lower()),
                "children": [node(k, path + (c,)) for k in sorted(kids.get(c, []), key=lambda k: view.link(k).text)
                             if k not in path],
                "other_parents": [view.link(s) for s in sorted(supers[c] & classes) if path and s != path[-1]]}

    root = MCNS + "MedicalProduct"
    tree = [node(root, ())] if root in classes else []
    return render("pages/devices.html", V=view, tree=tree, uses=uses)


def devices_rdf(fmt: Format) -> bytes:
    query = f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
      {{ {DEVICE_CLASSES} GRAPH <{ASSERTED}> {{ ?c ?p ?o }} BIND(?c AS ?s)
         FILTER(?p IN (rdfs:subClassOf, rdfs:label, skos:definition, rdf:type)) }}
      UNION {{ {DEVICE_CLASSES} GRAPH <{ASSERTED}> {{ ?s a ?c ; ?p ?o }} }}
      UNION {{ {DEVICE_CLASSES} GRAPH <{ASSERTED}> {{ ?d a ?c }} ?s ?p ?d .
               FILTER(?p IN (mc:usesDevice, mc:denotesDevice)) BIND(?d AS ?o) }}
      UNION {{ {DEVICE_CLASSES} GRAPH <{ASSERTED}> {{ ?d a ?c }} ?s ?r ?d .
               FILTER(?r IN (mc:usesDevice, mc:denotesDevice))
               ?s ?p ?o . FILTER(?p IN (skos:notation, skos:prefLabel)) }}
    }}"""
    return rdf_body(query, fmt)


@bp.route("/browse/routes")
def browse_routes() -> Response:
    return serve(routes_html, routes_rdf)


def routes_html() -> str:
    view = View()
    routes = [r["r"].value for r in select("SELECT DISTINCT ?r WHERE { ?r a mc:Route }")]
    codes: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    if routes:
        for row in select(f"""SELECT ?r ?code ?g WHERE {{ VALUES ?r {{ {_values(routes)} }}
            GRAPH ?g {{ ?code mc:route ?r }} }}"""):
            codes[row["r"].value].append((row["code"].value, row["g"].value == INFERRED))
    view.load(set(routes) | {c for cs in codes.values() for c, _ in cs})
    for cs in codes.values():
        cs.sort(key=lambda c: natural(view.link(c[0]).notation))
    items = sorted(((view.link(r), codes.get(r, [])) for r in routes), key=lambda x: x[0].text.lower())
    return render("pages/routes.html", V=view, routes=items)


def routes_rdf(fmt: Format) -> bytes:
    query = """CONSTRUCT { ?s ?p ?o } WHERE {
      { ?s a mc:Route ; ?p ?o . FILTER(?p IN (rdf:type, rdfs:label, skos:notation)) }
      UNION { ?o a mc:Route . ?s mc:route ?o . BIND(mc:route AS ?p) }
      UNION { ?r a mc:Route . ?s mc:route ?r ; ?p ?o . FILTER(?p IN (skos:notation, skos:prefLabel)) }
    }"""
    return rdf_body(query, fmt)
