"""An unknown IRI answers 404 with near matches: the same code typed differently, then the nearest
notations of its kind (longest common start, then fewest edits), then the nearest existing ancestor.

A code is compared in `normalise_code` form, the one /search uses, so both agree on what was meant.
"""

from __future__ import annotations

import re
from os.path import commonprefix

from flask import Response, render_template, request

from ..codes import SYSTEM_LABELS, nearest, normalise_code
from ..http.errors import HTTPError
from ..http.representations import choose
from .respond import HTML, PAGE_FORMATS
from .terms import iri_list, natural, select_terms, valid_iri
from .view import Link, View, public_base

KEEP = 8  # suggestions at most
POOL_LIMIT = 5000  # candidates read for one unknown IRI
#: kinds of resource under /id/<head>/ whose candidates are every resource of the kind
KIND_POOLS = {
    "device": "?c a/rdfs:subClassOf* mc:MedicalProduct .",
    "condition": "?c a mc:Condition .",
    "encounter-reason": "?c a mc:EncounterReason .",
    "source": "?c a/rdfs:subClassOf* mc:Source .",
    "edit": "?c a mc:CodePairEdit .",
}


class Missing(HTTPError):
    """Nothing is known about the requested IRI; `suggestions` are near matches."""

    def __init__(self, iri: str, suggestions: list[Link]) -> None:
        super().__init__(404, f"Not found: nothing is known about <{iri}>.")
        self.iri = iri
        self.suggestions = suggestions


def suggest(iri: str) -> list[Link]:
    """Near IRIs for an unknown one under PUBLIC_BASE/id/ (none for any other IRI)."""
    base = public_base() + "id/"
    if not iri.startswith(base):
        return []
    head, _, tail = iri[len(base):].partition("/")
    key, pool = _key_and_pool(base, head, tail)
    chosen = list(dict.fromkeys([*(_rank(key, pool) if key else []), *_existing_ancestors(iri)]))
    view = View()
    view.load(chosen)
    return [view.link(i) for i in chosen]


def _key_and_pool(base: str, head: str, tail: str) -> tuple[str, list[tuple[str, str]]]:
    """The code as typed (normalised) and the (IRI, notation) candidates it is compared with."""
    if head == "icd10cm" and tail.startswith(("chapter/", "block/")):
        kind = "ICD10CMChapter" if tail.startswith("chapter/") else "ICD10CMBlock"
        return normalise_code(tail.partition("/")[2]), _pool(f"?c a mc:{kind} ; skos:notation ?n .")
    key = normalise_code(tail)
    if head == "icd10cm" and tail:
        return key, _icd_pool(key)
    if head in SYSTEM_LABELS and tail and "/" not in tail:
        return key, _pool(f"?c skos:inScheme <{base}{head}> ; skos:notation ?n .")
    if head == "valueset":
        return _valueset_key_and_pool(base, tail)
    return key, _pool(KIND_POOLS[head]) if head in KIND_POOLS else []


def _valueset_key_and_pool(base: str, tail: str) -> tuple[str, list[tuple[str, str]]]:
    """A value of an indicator scheme (`mpfs-status/A`), or the scheme itself."""
    if "/" not in tail:
        return normalise_code(tail), _pool("?c a mc:IndicatorScheme .")
    scheme, _, value = tail.partition("/")
    if not valid_iri(f"{base}valueset/{scheme}"):
        return normalise_code(value), []
    return normalise_code(value), _pool(f"?c skos:inScheme <{base}valueset/{scheme}> ; skos:notation ?n .")


def _pool(pattern: str) -> list[tuple[str, str]]:
    rows = select_terms(f"SELECT ?c ?n WHERE {{ {pattern} }} LIMIT {POOL_LIMIT}")
    return [(r["c"].value, r["n"].value if "n" in r else r["c"].value.rsplit("/", 1)[-1]) for r in rows]


def _icd_pool(key: str) -> list[tuple[str, str]]:
    """ICD-10-CM is large: look only under the category the input names, or in the block that would hold it."""
    category = key[:3]
    if not re.fullmatch(r"[A-Z][0-9][0-9A-Z]", category):
        return []
    cat = f"{public_base()}id/icd10cm/{category}"
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
    return _pool(f"VALUES ?b {{ {iri_list(blocks)} }} ?c skos:broader ?b ; skos:notation ?n .")


def _rank(key: str, pool: list[tuple[str, str]]) -> list[str]:
    """Exact normalised matches first, then close ones: a longer common start, then fewer edits."""
    keys = [normalise_code(n) for _, n in pool]
    exact = [iri for (iri, _), k in zip(pool, keys, strict=True) if k == key]
    # no two strings are further apart than the longer one is long: every candidate gets its distance
    distance = dict(nearest(key, set(keys), limit=max(map(len, [key, *keys])), keep=len(keys)))
    near = [(len(commonprefix([k, key])), distance[k], natural(n), iri)
            for (iri, n), k in zip(pool, keys, strict=True)
            if iri not in exact and (k[:1] == key[:1] or distance[k] <= max(1, len(key) // 3))]
    near.sort(key=lambda item: (-item[0], item[1], item[2]))
    return (exact + [iri for *_, iri in near])[:KEEP]


def _existing_ancestors(iri: str) -> list[str]:
    """The nearest path above `iri` that the graph knows (…/icd10cm/block/X → …/icd10cm)."""
    base = public_base() + "id/"
    parts = iri[len(base):].split("/")
    candidates = [c for c in (base + "/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)) if valid_iri(c)]
    if not candidates:
        return []
    rows = select_terms(f"SELECT ?x WHERE {{ VALUES ?x {{ {iri_list(candidates)} }} FILTER EXISTS {{ ?x ?p ?o }} }}")
    found = {r["x"].value for r in rows}
    return [c for c in candidates if c in found][:1]


def missing_response(exc: Missing) -> Response:
    """The 404: an HTML page of suggestions for browsers, plain text (one suggestion a line) otherwise."""
    try:
        fmt = choose(PAGE_FORMATS)
    except HTTPError:
        fmt = HTML
    if fmt is HTML:
        body = render_template("pages/notfound.html", V=View(), iri=exc.iri, suggestions=exc.suggestions,
                               alternates=[])
        return Response(body, status=404, content_type="text/html; charset=utf-8")
    lines = [str(exc)]
    if exc.suggestions:
        host = request.host_url.rstrip("/")
        lines.append("Did you mean:")
        lines += [f"  {host}{s.href if s.href and s.href.startswith('/') else s.iri}\t{s.notation}\t{s.label}".rstrip()
                  for s in exc.suggestions]
    return Response("\n".join(lines) + "\n", status=404, content_type="text/plain; charset=utf-8")
