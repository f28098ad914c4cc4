"""Result formats and strict content negotiation (q-values, specificity, 406 naming what works)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Format:
    name: str          # short name for ?format=
    media_type: str    # what we send in Content-Type
    aliases: tuple[str, ...] = ()  # other media types that ask for it
    short: tuple[str, ...] = ()    # other ?format= names (e.g. SPARQLWrapper's "xml" for RDF/XML)


RESULT_FORMATS = (
    Format("json", "application/sparql-results+json", ("application/json",)),
    Format("xml", "application/sparql-results+xml", ("application/xml", "text/xml")),
    Format("csv", "text/csv"),
    Format("tsv", "text/tab-separated-values"),
)
GRAPH_FORMATS = (
    Format("turtle", "text/turtle", ("application/x-turtle",)),
    Format("ntriples", "application/n-triples", ("text/plain",), ("n3",)),
    Format("rdfxml", "application/rdf+xml", ("application/xml", "text/xml"), ("xml", "rdf+xml")),
    Format("jsonld", "application/ld+json", ("application/json",), ("json",)),
    Format("trig", "application/trig"),
    Format("nquads", "application/n-quads"),
)
FORMAT_ALIASES = {"ttl": "turtle", "nt": "ntriples", "n-triples": "ntriples", "rdf": "rdfxml",
                  "json-ld": "jsonld", "nq": "nquads", "srj": "json", "srx": "xml"}


class NotAcceptable(Exception):
    """Nothing the client accepts can be produced; the message names what can."""


class BadAccept(ValueError):
    """The Accept header or format parameter is malformed."""


def parse_accept(header: str | None) -> list[tuple[str, str, float, int]]:
    """[(type, subtype, q, order)] from an Accept header; no header means */*."""
    if not header or not header.strip():
        return [("*", "*", 1.0, 0)]
    ranges = []
    for order, part in enumerate(header.split(",")):
        part = part.strip()
        if not part:
            continue
        media, *params = (p.strip() for p in part.split(";"))
        if "/" not in media:
            raise BadAccept(f"Invalid media range in Accept header: '{media}'")
        type_, subtype = (x.strip().lower() for x in media.split("/", 1))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            key = key.strip().lower()
            if key == "q":
                try:
                    q = float(value)
                except ValueError as exc:
                    raise BadAccept(f"Invalid q-value in Accept header: '{value}'") from exc
                if not 0 <= q <= 1:
                    raise BadAccept(f"Invalid q-value in Accept header: '{value}'")
            elif key == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
                q = 0.0  # we only write UTF-8
        ranges.append((type_, subtype, q, order))
    return ranges


def _quality(fmt: Format, ranges: list[tuple[str, str, float, int]]) -> tuple[float, int, int]:
    """(q, specificity, -order) of the most specific range matching any of fmt's media types."""
    best = (-1.0, -1, 0)
    for media in (fmt.media_type, *fmt.aliases):
        t, s = media.split("/")
        exact_bonus = 1 if media == fmt.media_type else 0
        for rt, rs, q, order in ranges:
            if (rt, rs) == (t, s):
                spec = 3
            elif rt == t and rs == "*":
                spec = 2
            elif rt == "*" and rs == "*":
                spec = 1
            else:
                continue
            candidate = (q, spec * 2 + exact_bonus, -order)
            # the most specific matching range decides q for this media type
            if spec * 2 + exact_bonus > best[1]:
                best = candidate
    return best


def _by_name(formats: tuple[Format, ...], value: str) -> Format:
    key = value.strip().lower()
    key = FORMAT_ALIASES.get(key, key)
    for fmt in formats:
        if key in (fmt.name, fmt.media_type) or key in fmt.aliases or key in fmt.short:
            return fmt
    raise NotAcceptable(f"format '{value}' is not available here; use one of " + ", ".join(f.name for f in formats))


def _first_known(formats: tuple[Format, ...], value: str) -> Format:
    """A format value may list alternatives ("application/ld+json,application/x-json+ld")."""
    for part in value.split(","):
        try:
            return _by_name(formats, part)
        except NotAcceptable:
            continue
    return _by_name(formats, value)


def negotiate(formats: tuple[Format, ...], accept: str | None, override: str | None) -> Format:
    """Pick a format: `override` (?format=) wins; else the highest q, then specificity, then order.

    `override` may hold several NUL-separated values (a repeated parameter): they must agree.
    """
    if override:
        chosen = {_first_known(formats, value) for value in override.split("\x00")}
        if len(chosen) > 1:
            raise BadAccept("The 'format' parameter was given more than once with different values.")
        return chosen.pop()
    return formats[_best_for_accept(formats, accept)]


@lru_cache(maxsize=256)
def _best_for_accept(formats: tuple[Format, ...], accept: str | None) -> int:
    """The index of the best of `formats` for an Accept header (kept: clients send the same few headers again
    and again). An index, not the Format: surfaces define equal Formats of their own and compare by identity,
    so a cached object from another surface's equal tuple would not be theirs."""
    ranges = parse_accept(accept)
    scored = [(_quality(fmt, ranges), -i) for i, fmt in enumerate(formats)]
    scored = [s for s in scored if s[0][0] > 0]
    if not scored:
        raise NotAcceptable("None of the requested media types can be produced; acceptable: "
                            + ", ".join(f.media_type for f in formats))
    # highest q; among equals prefer the client's more specific range, then our order
    scored.sort(key=lambda s: (s[0][0], s[0][1], s[1]), reverse=True)
    return -scored[0][1]
