"""The code search index: written once per snapshot as SQLite FTS5, read by every server process.

`medcode build` writes it into the snapshot (`SEARCH_INDEX`) from the store it has just written; in
remote mode the server writes the same file from the engine's rows, with the same code (`write_rows`),
so both modes search alike. Text is analysed here, once, for both sides: the index stores words
already analysed (lower case, accents dropped, punctuation splitting words) and the server analyses a
query with the same `tokens` and `stem`, so a query word and an index word can only agree.

The file holds, per code, what ranking needs (a BM25 length norm and a tie-break rank), the code's
notation key for code, prefix and range lookups, every word with its stem and IDF, an FTS5 table of
each code's label words and, apart, its descriptor and ICD-10-CM inclusion-term words, and the
inclusion terms themselves (a result shows those a query matched). Documents are numbered best-first (by
norm, then tie-break rank), so FTS5's rowid order is each word's ranking order.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import sys
import tempfile
import unicodedata
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
from rdflib.namespace import RDF, RDFS, SKOS

from .contract import GRAPH_ASSERTED, ID_BASE, INFERENCE_GRAPHS, PREFIXES
from .namespaces import MC

FORMAT = "2"  # the file layout below; a reader refuses any other

# One query, no joins (a union of single-pattern scans: several times faster than joining them in SPARQL
# on the on-disk store; the inclusion terms' one join is small); rows are grouped by code in Python.
# Labels come from the asserted graph only.
INDEX_QUERY = f"""PREFIX mc: <{PREFIXES['mc']}>
PREFIX skos: <{PREFIXES['skos']}>
PREFIX rdfs: <{PREFIXES['rdfs']}>
SELECT ?c ?k ?v WHERE {{
  {{ ?c a mc:Code BIND("code" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:notation ?v }} BIND("notation" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:inScheme ?v }} BIND("scheme" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:prefLabel ?v }} BIND("label" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:altLabel ?v }} BIND("alt" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c mc:longDescriptor ?v }} BIND("long" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c mc:inclusionTerm ?n . ?n rdfs:label ?v }} BIND("inclusion" AS ?k) }}
}}"""

TYPED, INCLUSION, LABEL = object(), object(), object()  # rows_from_triples' other kinds of triple
#: INDEX_QUERY's kinds of asserted value, by predicate (for `rows_from_triples`)
KINDS = {SKOS.notation: "notation", SKOS.inScheme: "scheme", SKOS.prefLabel: "label", SKOS.altLabel: "alt",
         MC.longDescriptor: "long"}

SCHEMA = """
-- format, codes, max_idf; and per document, in document order, packed little-endian: 'norms' (doubles, the
-- BM25 length norm of its first label: tf = 1, k1 = 1.2, b = 0.75) and 'ties' (32-bit, as codes.tie)
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE codes(
  doc INTEGER PRIMARY KEY,  -- the FTS5 rowid; numbered best-first (norm, then tie)
  iri TEXT NOT NULL, notation TEXT NOT NULL, system TEXT NOT NULL,
  label TEXT NOT NULL,      -- what a result shows: the preferred label, else a descriptor
  key TEXT NOT NULL,        -- the notation as typed without case or punctuation (G89.3 -> G893)
  tie INTEGER NOT NULL      -- rank by (key length, key, system, IRI): equal scores go to the shorter code
);
CREATE INDEX codes_notation ON codes(upper(notation));
CREATE INDEX codes_key ON codes(key, tie);
CREATE INDEX codes_range ON codes(system, length(key), key, tie);
CREATE TABLE terms(term TEXT PRIMARY KEY, stem TEXT NOT NULL, idf REAL NOT NULL) WITHOUT ROWID;
-- a code's label words, and apart the words of its descriptors and inclusion terms its labels lack (they weigh less)
CREATE VIRTUAL TABLE words USING fts5(labels, descriptors, content='', columnsize=0, detail='column',
                                      tokenize='ascii');
CREATE TABLE inclusion_terms(doc INTEGER NOT NULL, term TEXT NOT NULL);  -- a code's ICD-10-CM inclusion terms
CREATE INDEX inclusion_terms_doc ON inclusion_terms(doc);
"""

WORD = re.compile(r"[a-z0-9]+")
NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
STEM_SUFFIXES = (("ies", "y"), ("able", ""), ("ible", ""), ("ing", ""), ("ed", ""), ("es", "e"))


def normalise_code(text: str) -> str:
    """A code as typed, without case or punctuation: 'g89.3', 'G 89-3' and 'G893' are all 'G893'."""
    return NOT_ALNUM.sub("", text).upper()


def fold(text: str) -> str:
    """Lower case, accents dropped (NFKD), so 'Ménière' and 'meniere' are one word."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def tokens(text: str) -> list[str]:
    """The words of a text as the index holds them; punctuation separates words."""
    return WORD.findall(fold(text))


def stem(token: str) -> str:
    """A deliberately small suffix stripper: refilling/refill, implanted/implantable/implant, pumps/pump."""
    if len(token) <= 4 or token.isdigit():
        return token
    for suffix, replacement in STEM_SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)] + replacement
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


@dataclass(frozen=True)
class Record:
    """One code as the index sees it."""

    iri: str
    notation: str
    system: str
    labels: Sequence[str]  # the preferred label(s) first, then alternative labels
    descriptors: Sequence[str] = ()
    inclusion_terms: Sequence[str] = ()  # ICD-10-CM: the terms classified to the code (mc:inclusionTerm)


def records_from_rows(rows: Iterable[Sequence[str]]) -> list[Record]:
    """Group INDEX_QUERY's (code IRI, kind, value) rows into one record per code, by IRI; codes without a
    notation or a code system are left out."""
    codes: set[str] = set()
    fields: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for iri, kind, value in rows:
        if kind == "code":
            codes.add(iri)
        else:
            fields[iri][kind].append(value)
    records = []
    for iri in sorted(codes):
        item = fields.get(iri)
        if not item or not item.get("notation") or not item.get("scheme"):
            continue
        scheme = min(item["scheme"])
        system = scheme[len(ID_BASE):] if scheme.startswith(ID_BASE) else scheme.rsplit("/", 1)[-1]
        labels = sorted(item.get("label", [])) + sorted(item.get("alt", []))
        records.append(Record(iri, min(item["notation"]), system, labels, sorted(item.get("long", [])),
                              sorted(item.get("inclusion", []))))
    return records


def write_search_index(store: ox.Store, target: Path) -> dict[str, int]:
    """Index the codes of a snapshot's store (read only) into `target`; returns what was written."""
    graphs = [ox.NamedNode(g) for g in INFERENCE_GRAPHS["all"]]
    solutions = store.query(INDEX_QUERY, default_graph=graphs)
    rows = ((s["c"].value, s["k"].value, s["v"].value if s["v"] is not None else "") for s in solutions)
    return write_rows(rows, target)


def rows_from_triples(asserted: Iterable[tuple], inferred: Iterable[tuple]) -> list[tuple[str, str, str]]:
    """INDEX_QUERY's rows from the build's own rdflib triples, so the build need not wait for its store and
    ask it (the query alone costs ~5 s of CPU on the full graph); a test holds both ways to the same file."""
    rows: list[tuple[str, str, str]] = []
    codes: set = set()
    inclusion: list[tuple] = []
    labels: dict = defaultdict(list)
    # one dict look-up per triple: comparing rdflib terms runs in Python (and so does RDF.type's look-up)
    kinds, code = {**KINDS, RDF.type: TYPED, MC.inclusionTerm: INCLUSION, RDFS.label: LABEL}, MC.Code
    for s, p, o in asserted:
        kind = kinds.get(p)
        if kind is None:
            continue
        if kind is TYPED:
            if o == code:
                codes.add(s)
        elif kind is INCLUSION:
            inclusion.append((s, o))
        elif kind is LABEL:
            labels[s].append(str(o))
        else:
            rows.append((str(s), kind, str(o)))
    typed = {RDF.type: TYPED}
    codes.update(s for s, p, o in inferred if p in typed and o == code)
    rows.extend((str(c), "code", "") for c in codes)
    rows.extend((str(c), "inclusion", label) for c, term in inclusion for label in labels.get(term, ()))
    return rows


def write_rows(rows: Iterable[Sequence[str]], target: Path) -> dict[str, int]:
    """Write the index of INDEX_QUERY's rows to `target` (from a store or a remote engine's answer)."""
    return write_records(records_from_rows(rows), target)


def write_records(records: Sequence[Record], target: Path) -> dict[str, int]:
    """Write the index of `records` to `target`, atomically: a reader sees the whole file or none."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    partial = Path(name)
    try:
        with closing(sqlite3.connect(partial)) as db:
            db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + SCHEMA)
            stats = _fill(db, records)
            db.execute("INSERT INTO words(words) VALUES ('optimize')")
            db.commit()
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        partial.chmod(0o644)  # readable by every server process, as the rest of a snapshot
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return {**stats, "bytes": target.stat().st_size}


def packed(kind: str, values: Sequence[float]) -> bytes:
    """Numbers as a little-endian packed array (`array` type code `kind`)."""
    numbers = array(kind, values)
    if sys.byteorder == "big":
        numbers.byteswap()
    return numbers.tobytes()


def unpacked(kind: str, data: bytes) -> array:
    """The numbers `packed` wrote."""
    numbers = array(kind)
    numbers.frombytes(data)
    if sys.byteorder == "big":
        numbers.byteswap()
    return numbers


@dataclass
class _Analysed:
    """A record's words: those of its labels, those only its descriptors and inclusion terms have, and its label
    length."""

    record: Record
    label_words: set[str]
    descriptor_words: set[str]
    length: int


def _analyse(record: Record) -> _Analysed:
    label_tokens = [tokens(text) for text in record.labels]
    label_words = {t for words in label_tokens for t in words}
    descriptor_words = {t for text in (*record.descriptors, *record.inclusion_terms) for t in tokens(text)}
    descriptor_words -= label_words
    length = len(label_tokens[0]) if label_tokens and label_tokens[0] else 1
    return _Analysed(record, label_words, descriptor_words, length)


def _fill(db: sqlite3.Connection, records: Sequence[Record]) -> dict[str, int]:
    """Insert the codes, their words and the terms with their IDF; returns the counts."""
    analysed = [_analyse(r) for r in records]
    average = sum(a.length for a in analysed) / len(analysed) if analysed else 1.0
    norms = [2.2 / (1 + 1.2 * (0.25 + 0.75 * a.length / average)) for a in analysed]
    keys = [normalise_code(a.record.notation) for a in analysed]
    by_tie = sorted(range(len(analysed)), key=lambda i: (len(keys[i]), keys[i], analysed[i].record.system))
    tie = {i: rank for rank, i in enumerate(by_tie)}
    best_first = sorted(range(len(analysed)), key=lambda i: (-norms[i], tie[i]))
    frequency: Counter[str] = Counter()
    codes, words, inclusion = [], [], []
    for doc, i in enumerate(best_first):
        item, record = analysed[i], analysed[i].record
        label = next((x for x in record.labels if x), "") or next((x for x in record.descriptors if x), "")
        codes.append((doc, record.iri, record.notation, record.system, label, keys[i], tie[i]))
        words.append((doc, " ".join(sorted(item.label_words)), " ".join(sorted(item.descriptor_words))))
        inclusion.extend((doc, term) for term in record.inclusion_terms)
        frequency.update(item.label_words | item.descriptor_words)
    db.executemany("INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?, ?)", codes)
    db.executemany("INSERT INTO words(rowid, labels, descriptors) VALUES (?, ?, ?)", words)
    db.executemany("INSERT INTO inclusion_terms VALUES (?, ?)", inclusion)
    count = len(analysed) or 1
    idf = {t: math.log(1 + (count - n + 0.5) / (n + 0.5)) for t, n in frequency.items()}
    db.executemany("INSERT INTO terms VALUES (?, ?, ?)", ((t, stem(t), idf[t]) for t in sorted(idf)))
    db.executemany("INSERT INTO meta VALUES (?, ?)",
                   [("format", FORMAT), ("codes", len(analysed)), ("max_idf", max(idf.values(), default=1.0)),
                    ("norms", packed("d", [norms[i] for i in best_first])),
                    ("ties", packed("i", [tie[i] for i in best_first]))])
    return {"codes": len(analysed), "terms": len(idf)}
