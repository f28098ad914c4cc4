"""Write query results with a hard row limit: over the limit is an error, never a silent cut."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

RDF_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES, "rdfxml": ox.RdfFormat.RDF_XML,
    "jsonld": ox.RdfFormat.JSON_LD, "trig": ox.RdfFormat.TRIG, "nquads": ox.RdfFormat.N_QUADS,
}


class TooManyResults(Exception):
    """The answer has more rows or triples than the endpoint's result-size limit."""


def too_many(limit: int, what: str) -> str:
    """The result-size limit's message (the same wherever an answer passes it)."""
    return (f"The result has more than {limit:,} {what}, this endpoint's result-size limit; "
            "add LIMIT/OFFSET to page through it")


def limited(items: Iterable, limit: int, what: str) -> Iterator:
    for n, item in enumerate(items, 1):
        if n > limit:
            raise TooManyResults(too_many(limit, what))
        yield item


XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _json_literal(term: ox.Literal) -> dict:
    if term.language:
        return {"type": "literal", "value": term.value, "xml:lang": term.language}
    datatype = term.datatype.value
    if datatype == XSD_STRING:
        return {"type": "literal", "value": term.value}
    return {"type": "literal", "value": term.value, "datatype": datatype}


def _json_triple(term: ox.Triple) -> dict:
    return {"type": "triple", "value": {"subject": _json_term(term.subject), "predicate": _json_term(term.predicate),
                                        "object": _json_term(term.object)}}


#: term class -> its SPARQL JSON form (a dict lookup per term: this is the inner loop of every answer)
_JSON_TERMS = {ox.NamedNode: lambda term: {"type": "uri", "value": term.value},
               ox.BlankNode: lambda term: {"type": "bnode", "value": term.value},
               ox.Literal: _json_literal, ox.Triple: _json_triple}


def _json_term(term) -> dict:
    write = _JSON_TERMS.get(type(term))
    if write is None:
        raise TypeError(term)
    return write(term)


def _xml_term(term) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{escape(term.value)}</literal>"
        return f"<literal>{escape(term.value)}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


def _plain(term) -> str:
    """CSV: the lexical form only, a blank node as `_:id` (SPARQL 1.1 CSV results, as Oxigraph's writer)."""
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return str(term)
    return term.value if hasattr(term, "value") else str(term)


class _LimitedCSV:
    """A sink for Oxigraph's CSV writer that counts records as the chunks come and stops past the limit.

    A record ends at a newline outside quotes; a quote toggles quoting (an escaped `""` toggles twice), so
    the count is exact even for literals with line breaks."""

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.records, self.quoted, self.limit = -1, False, limit  # -1: the header line is not a row

    def write(self, chunk: bytes) -> int:
        if self.records > self.limit:
            raise TooManyResults(too_many(self.limit, "rows"))
        for i, piece in enumerate(bytes(chunk).split(b'"')):
            if i:
                self.quoted = not self.quoted
            if not self.quoted:
                self.records += piece.count(b"\n")
        if self.records > self.limit:
            raise TooManyResults(too_many(self.limit, "rows"))
        self.parts.append(bytes(chunk))
        return len(chunk)

    def flush(self) -> None:
        """Nothing to flush: the parts are joined at the end."""


def _native_csv(solutions: ox.QuerySolutions, limit: int) -> bytes:
    """SPARQL 1.1 CSV by Oxigraph's own writer (the same bytes as the csv module's, ~40 % less CPU than building
    each row in Python), the row limit still an error. Not for one variable: an unbound value would be an empty
    line, which CSV readers skip, where the csv module writes `""`."""
    sink = _LimitedCSV(limit)
    solutions.serialize(sink, format=ox.QueryResultsFormat.CSV)
    return b"".join(sink.parts)


def write_solutions(solutions: ox.QuerySolutions, fmt: str, limit: int) -> bytes:
    names = [v.value for v in solutions.variables]
    rows = limited(solutions, limit, "rows")
    if fmt == "json":
        bindings = [{n: _json_term(term) for n, term in zip(names, row, strict=True)
                     if term is not None} for row in rows]
        return json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}},
                          ensure_ascii=False, separators=(",", ":")).encode()
    if fmt == "xml":
        parts = ['<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head>']
        parts += [f"<variable name={quoteattr(n)}/>" for n in names]
        parts.append("</head><results>")
        for row in rows:
            parts.append("<result>")
            parts += [f"<binding name={quoteattr(n)}>{_xml_term(row[n])}</binding>"
                      for n in names if row[n] is not None]
            parts.append("</result>")
        parts.append("</results></sparql>")
        return "".join(parts).encode()
    if fmt == "csv":
        if isinstance(solutions, ox.QuerySolutions) and len(names) > 1:
            return _native_csv(solutions, limit)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_plain(row[n]) for n in names])
        return buf.getvalue().encode()
    if fmt == "tsv":
        lines = ["\t".join("?" + n for n in names)]
        for row in rows:
            lines.append("\t".join("" if row[n] is None else str(row[n]) for n in names))
        return ("\n".join(lines) + "\n").encode()
    raise ValueError(fmt)


def write_boolean(value: bool, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps({"head": {}, "boolean": value}).encode()
    if fmt == "xml":
        return (f'<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head/>'
                f"<boolean>{'true' if value else 'false'}</boolean></sparql>").encode()
    if fmt in ("csv", "tsv"):
        return f"{'_askResult' if fmt == 'csv' else '?_askResult'}\n{'true' if value else 'false'}\n".encode()
    raise ValueError(fmt)


def write_triples(triples: Iterable, fmt: str, limit: int, prefixes: dict[str, str]) -> bytes:
    kept = list(limited(triples, limit, "triples"))
    kwargs = {"prefixes": prefixes} if fmt in ("turtle", "trig") else {}
    return ox.serialize(kept, format=RDF_FORMATS[fmt], **kwargs)
