"""Lists that can be long (reverse links, children, code-system members) are counted, then paged.

A short list is loaded whole and sorted by notation; a long one pages in the store's order, since
sorting tens of thousands of rows is what makes such a query slow.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from flask import request

from ..codes import expand
from ..http.errors import HTTPError
from .terms import INFERRED, Term, count, not_itself, select_terms, sparql_iri, valid_iri
from .view import View, by_notation

PAGE_SIZE = 50       # reverse links per page
LIST_SIZE = 100      # children and code-system members per page
MAX_SIZE = 500       # largest ?size= accepted
SMALL = 300          # a list this short is loaded whole and sorted; a longer one pages in index order
ORDER_LIMIT = 1000   # ORDER BY a notation only below this many rows (sorting is the expensive part)


def page_arg(name: str = "page") -> int:
    """The page number asked for in `name` (1 when absent); 400 for anything but a positive number."""
    raw = request.args.get(name, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise HTTPError(400, f"'{name}' must be a positive whole number, not '{raw}'.")
    return int(raw)


def size_arg(default: int) -> int:
    """The page size asked for in `size`; 400 outside 1..MAX_SIZE."""
    raw = request.args.get("size")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SIZE:
        raise HTTPError(400, f"'size' must be a whole number from 1 to {MAX_SIZE}, not '{raw}'.")
    return int(raw)


@dataclass
class Paged:
    """One page of a counted list; `param` is the query parameter that turns its pages."""

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
    """What points at a resource: counts per predicate and one page of links (subject, predicate, inferred)."""

    counts: list[tuple[str, int, int]]   # (predicate, total, inferred)
    paged: Paged
    rel: str | None


def rel_arg() -> str | None:
    """The predicate `?rel=` filters reverse links by, as an IRI (a CURIE is expanded)."""
    rel = request.args.get("rel")
    if not rel:
        return None
    iri = expand(rel)
    if not valid_iri(iri):
        raise HTTPError(400, f"'rel' must be an IRI or a prefixed name, not '{iri}'.")
    return iri


def _reverse_counts(iri: str) -> dict[str, list[int]]:
    """[total, inferred] links per predicate pointing at `iri` (from other resources)."""
    by_prop: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in select_terms(f"SELECT ?p ?g (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p {sparql_iri(iri)} }} "
                            f"{not_itself('?s', iri)} }} GROUP BY ?p ?g"):
        n = int(row["n"].value)
        by_prop[row["p"].value][0] += n
        if row["g"].value == INFERRED:
            by_prop[row["p"].value][1] += n
    return by_prop


@dataclass
class ReverseRows:
    """What `read_reverse` found: links per predicate ([total, inferred]) and the rows of the page asked for."""

    by_prop: dict[str, list[int]]
    rows: list[dict[str, Term]]
    rel: str | None
    page: int
    size: int

    def subjects(self) -> set[str]:
        """The linking resources, whose labels the page shows."""
        return {r["s"].value for r in self.rows if r["s"].is_iri}


def read_reverse(iri: str) -> ReverseRows:
    """The counts per predicate pointing at `iri`, then the rows of the page asked for (no labels yet)."""
    o = sparql_iri(iri)
    rel = rel_arg()
    page, size = page_arg(), size_arg(PAGE_SIZE)
    by_prop = _reverse_counts(iri)
    total = by_prop[rel][0] if rel else sum(t for t, _ in by_prop.values())
    pattern = f"GRAPH ?g {{ ?s {sparql_iri(rel)} {o} BIND({sparql_iri(rel)} AS ?p) }}" if rel else \
        f"GRAPH ?g {{ ?s ?p {o} }}"
    window = "" if total <= SMALL else f"LIMIT {size} OFFSET {(page - 1) * size}"
    rows = select_terms(f"SELECT ?s ?p ?g WHERE {{ {pattern} {not_itself('?s', iri)} }} {window}")
    return ReverseRows(by_prop, rows, rel, page, size)


def reverse_page(found: ReverseRows, view: View) -> Reverse:
    """The page of reverse links, sorted by predicate and subject (labels of the subjects loaded here unless
    the caller has loaded them with the rest of the page's)."""
    by_prop, rel, page, size = found.by_prop, found.rel, found.page, found.size
    counts = sorted(((p, t, i) for p, (t, i) in by_prop.items()), key=lambda c: (-c[1], view.vocab.label(c[0])))
    total = by_prop[rel][0] if rel else sum(t for _, t, _ in counts)
    view.load(found.subjects())
    items = [(r["s"], r["p"].value, r["g"].value == INFERRED) for r in found.rows]
    items.sort(key=lambda x: (view.vocab.label(x[1]), _subject_key(x[0], view)))
    if total <= SMALL:
        items = items[(page - 1) * size:page * size]
    return Reverse(counts, Paged(total, page, size, items), rel)


def reverse_links(iri: str, view: View) -> Reverse:
    """What else points at `iri`: counts per predicate, and one page of (subject, predicate, inferred)."""
    return reverse_page(read_reverse(iri), view)


def _subject_key(subject: Term, view: View) -> list:
    return by_notation(view.link(subject.value)) if subject.is_iri else [subject.value]


def reverse_triples(iri: str, rev: Reverse) -> list[tuple[str, str, str]]:
    """The shown page of reverse links as triples, for the RDF versions of a page."""
    return [(s.value, p, iri) for s, p, _ in rev.paged.rows if s.is_iri]


def page_of(pattern: str, total: int, page: int, size: int) -> list[str]:
    """The ?c that `pattern` binds on one page, in notation order while the list is short enough to sort."""
    order = "ORDER BY ?n" if total <= ORDER_LIMIT else ""
    rows = select_terms(f"SELECT ?c ?n WHERE {{ {pattern} OPTIONAL {{ ?c skos:notation ?n }} }} "
                        f"{order} LIMIT {size} OFFSET {(page - 1) * size}") if total else []
    return list(dict.fromkeys(r["c"].value for r in rows))


def ordered_page(pattern: str, total: int, page: int, size: int, view: View) -> list:
    """One page of the ?c that `pattern` binds, as links in notation order."""
    iris = page_of(pattern, total, page, size)
    view.load(iris)
    return sorted((view.link(i) for i in iris), key=by_notation)


def children_total(iri: str) -> int:
    """How many concepts are directly narrower than `iri`."""
    return count(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?c skos:broader {sparql_iri(iri)} }}")


def children_page(iri: str, total: int) -> tuple[int, int, list[str]]:
    """(page, size, IRIs) of the page of children asked for with ?cpage=, before their labels are loaded."""
    page, size = page_arg("cpage"), size_arg(LIST_SIZE)
    return page, size, page_of(f"?c skos:broader {sparql_iri(iri)}", total, page, size)


def children_paged(total: int, shown: tuple[int, int, list[str]], view: View) -> Paged:
    """The children as links in notation order (their labels loaded here unless the caller has)."""
    page, size, iris = shown
    view.load(iris)
    return Paged(total, page, size, sorted((view.link(i) for i in iris), key=by_notation), "cpage")


def children(iri: str, view: View) -> Paged:
    """Direct narrower concepts (skos:broader pointing here), ordered by notation, paged with ?cpage=."""
    total = children_total(iri)
    return children_paged(total, children_page(iri, total), view)
