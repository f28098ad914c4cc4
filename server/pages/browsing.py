"""Ways in besides a code: the code systems (/browse, /id/{system}), the device class tree
(/browse/devices) and the routes of drug delivery (/browse/routes), each as HTML or RDF.

On the device tree a code for a choice of kinds ("pump or reservoir") is listed under its own device
and, as that choice, under each kind the choice covers, so every code that applies to a kind is
under it."""

from __future__ import annotations

from collections import defaultdict

from ..http.formats import Format
from .describe import describe, describe_rdf, empty, group, rdf_body
from .labels import SCHEME_NAMES
from .paging import LIST_SIZE, Paged, ordered_page, page_arg, size_arg
from .respond import render
from .terms import ASSERTED, INFERRED, MCNS, SKOS, TYPE, count, iri_list, select_terms, sparql_iri
from .view import Link, View, by_notation, public_base

DEVICE_CLASSES = f"GRAPH <{ASSERTED}> {{ ?c rdfs:subClassOf* mc:MedicalProduct }}"
DEVICE_ROOT = MCNS + "MedicalProduct"


def scheme_iri(system: str) -> str:
    """The code system's IRI (a skos:ConceptScheme) under the public base."""
    return public_base() + "id/" + system


def _members_count(scheme: str) -> int:
    return count(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?c skos:inScheme {sparql_iri(scheme)} }}")


# ----------------------------------------------------------------------------------- code systems


def browse_html() -> str:
    """The code systems and how many codes each holds."""
    view = View()
    systems = [(view.link(scheme_iri(system)), name, _members_count(scheme_iri(system)))
               for system, name in SCHEME_NAMES.items()]
    return render("pages/browse.html", V=view, systems=systems)


def browse_rdf(fmt: Format) -> bytes:
    """What the graph states about the code systems."""
    schemes = iri_list(scheme_iri(s) for s in SCHEME_NAMES)
    return rdf_body(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ VALUES ?s {{ {schemes} }} ?s ?p ?o }}", fmt)


def _members(scheme: str, system: str, view: View) -> Paged:
    """One page of a code system: its codes by notation; for ICD-10-CM, its chapters."""
    page, size = page_arg(), size_arg(LIST_SIZE)
    if system != "icd10cm":
        total = _members_count(scheme)
        return Paged(total, page, size, ordered_page(f"?c skos:inScheme {sparql_iri(scheme)}", total, page, size, view))
    rows = select_terms(f"SELECT ?c WHERE {{ ?c skos:topConceptOf {sparql_iri(scheme)} ; a mc:ICD10CMChapter }}")
    iris = [r["c"].value for r in rows]
    view.load(iris)
    links = sorted((view.link(i) for i in iris), key=by_notation)
    return Paged(len(iris), page, size, links[(page - 1) * size:page * size])


def system_html(system: str) -> str:
    """The index page of a code system."""
    iri = scheme_iri(system)
    view = View()
    d = describe(iri) or empty(iri)
    view.load(d.iris() | {iri})
    return render("pages/system.html", V=view, iri=iri, d=d, me=view.link(iri), system=system,
                  name=SCHEME_NAMES[system], members=_members(iri, system, view), total_codes=_members_count(iri),
                  groups=group(d.facts, skip={TYPE}), types=d.get(TYPE))


def system_rdf(system: str, fmt: Format) -> bytes:
    """The code system and the page of members the HTML shows."""
    iri = scheme_iri(system)
    rel = SKOS + "topConceptOf" if system == "icd10cm" else SKOS + "inScheme"
    return describe_rdf(iri, fmt, [(m.iri, rel, iri) for m in _members(iri, system, View()).rows])


# ---------------------------------------------------------------------------------------- devices


def _device_classes() -> dict[str, set[str]]:
    """Every device class with its direct superclasses (asserted)."""
    supers: dict[str, set[str]] = {}
    for row in select_terms(f"""SELECT ?c ?super WHERE {{ {DEVICE_CLASSES}
        OPTIONAL {{ GRAPH <{ASSERTED}> {{ ?c rdfs:subClassOf ?super }} }} }}"""):
        found = supers.setdefault(row["c"].value, set())
        if "super" in row:
            found.add(row["super"].value)
    return supers


def _devices_by_class(classes: set[str]) -> dict[str, list[str]]:
    devices: dict[str, list[str]] = defaultdict(list)
    if classes:
        for row in select_terms(f"""SELECT ?d ?c WHERE {{ VALUES ?c {{ {iri_list(classes)} }}
            GRAPH <{ASSERTED}> {{ ?d a ?c }} }}"""):
            devices[row["c"].value].append(row["d"].value)
    return devices


def _codes_by_device(devices: list[str]) -> dict[str, list[tuple[str, str, str | None]]]:
    """(relation, code, the choice of kinds it reaches the device through or None) of the codes that
    use or denote each device."""
    uses: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
    if devices:
        for row in select_terms(f"""SELECT DISTINCT ?d ?rel ?code ?via WHERE {{ VALUES ?d {{ {iri_list(devices)} }}
            ?code ?rel ?d . VALUES ?rel {{ mc:usesDevice mc:denotesDevice }}
            OPTIONAL {{ ?code ?rel ?via . ?via mc:coversDevice ?d }} }}"""):
            via = row["via"].value if "via" in row else None
            uses[row["d"].value].append((row["rel"].value, row["code"].value, via))
    return uses


def _covered(devices: list[str]) -> dict[str, list[str]]:
    """The kinds each choice of kinds ("pump or reservoir") covers."""
    covers: dict[str, list[str]] = defaultdict(list)
    if devices:
        for row in select_terms(f"""SELECT ?d ?k WHERE {{ VALUES ?d {{ {iri_list(devices)} }}
            ?d mc:coversDevice ?k }}"""):
            covers[row["d"].value].append(row["k"].value)
    return covers


def _tree(supers: dict[str, set[str]], devices: dict[str, list[str]], view: View) -> list[dict]:
    """The class tree from mc:MedicalProduct down; a class under several parents is listed under each."""
    classes = set(supers)
    kids: dict[str, list[str]] = defaultdict(list)
    for c in classes:
        for s in supers[c] & classes:
            kids[s].append(c)

    def node(c: str, path: tuple[str, ...]) -> dict:
        return {"link": view.link(c), "devices": sorted(devices.get(c, []), key=lambda d: view.link(d).text.lower()),
                "children": [node(k, path + (c,)) for k in sorted(kids.get(c, []), key=lambda k: view.link(k).text)
                             if k not in path],
                "other_parents": [view.link(s) for s in sorted(supers[c] & classes) if path and s != path[-1]]}

    return [node(DEVICE_ROOT, ())] if DEVICE_ROOT in classes else []


def devices_html() -> str:
    """The device class tree with the device individuals, the kinds a choice of kinds covers, and the
    codes that use or denote each device."""
    view = View()
    supers = _device_classes()
    devices = _devices_by_class(set(supers))
    all_devices = sorted({d for ds in devices.values() for d in ds})
    uses = _codes_by_device(all_devices)
    covers = _covered(all_devices)
    view.load(set(supers) | set(all_devices) | {c for us in uses.values() for _, c, _ in us})
    for us in uses.values():
        us.sort(key=lambda u: (u[0], view.notation_key(u[1])))
    for kinds in covers.values():
        kinds.sort(key=lambda k: view.link(k).text.lower())
    return render("pages/devices.html", V=view, tree=_tree(supers, devices, view), uses=uses, covers=covers)


def devices_rdf(fmt: Format) -> bytes:
    """The device classes, their individuals (with the kinds they cover), and the codes linked to those
    (with their labels)."""
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


# ----------------------------------------------------------------------------------------- routes


def routes_html() -> str:
    """Each route with the codes that name it, asserted or inferred."""
    view = View()
    routes = [r["r"].value for r in select_terms("SELECT DISTINCT ?r WHERE { ?r a mc:Route }")]
    codes: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    if routes:
        for row in select_terms(f"""SELECT ?r ?code ?g WHERE {{ VALUES ?r {{ {iri_list(routes)} }}
            GRAPH ?g {{ ?code mc:route ?r }} }}"""):
            codes[row["r"].value].append((row["code"].value, row["g"].value == INFERRED))
    view.load(set(routes) | {c for cs in codes.values() for c, _ in cs})
    for cs in codes.values():
        cs.sort(key=lambda c: view.notation_key(c[0]))
    items: list[tuple[Link, list]] = sorted(((view.link(r), codes.get(r, [])) for r in routes),
                                            key=lambda x: x[0].text.lower())
    return render("pages/routes.html", V=view, routes=items)


def routes_rdf(fmt: Format) -> bytes:
    """The routes and the codes that name them (with their labels)."""
    query = """CONSTRUCT { ?s ?p ?o } WHERE {
      { ?s a mc:Route ; ?p ?o . FILTER(?p IN (rdf:type, rdfs:label, skos:notation)) }
      UNION { ?o a mc:Route . ?s mc:route ?o . BIND(mc:route AS ?p) }
      UNION { ?r a mc:Route . ?s mc:route ?r ; ?p ?o . FILTER(?p IN (skos:notation, skos:prefLabel)) }
    }"""
    return rdf_body(query, fmt)
