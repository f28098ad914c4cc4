"""The search index of one snapshot, opened read-only: what a query needs of it.

The file is written once by `kg.search_index` and never changes (SQLite's `immutable` mode: no locks,
no journal). Opening it reads the small parts ranking needs on every query (the vocabulary with its
stems and IDF, and each code's length norm and tie-break rank); codes and each word's postings stay in
the file (SQLite indexes and FTS5), read per query. Codes, code prefixes and ranges are answered here,
words by `words.rank`.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from array import array
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from kg.search_index import FORMAT, stem, unpacked

from ..codes import nearest, normalise_code
from . import text, words

DEFAULT_LIMIT = 50
#: FTS5 column -> the weight of a word found there (a code's labels, or only its descriptors)
COLUMNS = {"labels": 1.0, "descriptors": 0.8}
AFTER_KEYS = "~"  # sorts after every character of a key ([0-9A-Z]): `key < end + "~"` is `key[:len(end)] <= end`
BELOW = f"FROM codes WHERE key >= ?1 AND key < ?1 || '{AFTER_KEYS}'"  # the codes whose key starts with ?1


class IndexUnusable(RuntimeError):
    """The file is not a search index this server can read (another format, or not one at all)."""


@dataclass(frozen=True)
class Entry:
    """A code as a result shows it."""

    iri: str
    notation: str
    system: str
    label: str
    inclusion_terms: tuple[str, ...] = ()  # ICD-10-CM: the terms classified to the code


Hits = tuple[list[tuple[Entry, float]], int]  # (entry, score) best first, and how many matched in all


class SearchIndex:
    """An index file, opened read-only; nothing changes after opening, so threads share it (each thread has
    its own SQLite connection)."""

    # weight of a query word matching an index term exactly, by stem, as a prefix, with a typo
    EXACT, STEM, PREFIX, TYPO = 1.0, 0.85, 0.7, 0.6
    MAX_EXPANSIONS = 100  # index terms one query word may stand for (prefixes of short words)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        try:
            meta = dict(self.db.execute("SELECT key, value FROM meta"))
            terms = self.db.execute("SELECT term, stem, idf FROM terms ORDER BY term").fetchall()
            self.systems = [s for (s,) in self.db.execute("SELECT DISTINCT system FROM codes ORDER BY system")]
        except sqlite3.DatabaseError as exc:
            raise IndexUnusable(f"{path} is not a search index: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise IndexUnusable(f"{path} is search index format {meta.get('format')!r}, not {FORMAT!r}")
        self.max_idf = float(meta["max_idf"])
        self.norm = unpacked("d", meta["norms"])
        self.tie = unpacked("i", meta["ties"])
        self.vocabulary = [term for term, _, _ in terms]  # sorted, for word prefixes
        self.idf = {term: idf for term, _, idf in terms}
        self.stems: dict[str, list[str]] = defaultdict(list)
        for term, term_stem, _ in terms:
            self.stems[term_stem].append(term)
        self.typo_candidates = [term for term in self.vocabulary if not term.isdigit()]
        self._postings: dict[str, tuple[array, ...]] = {}

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection to the file (read-only, immutable)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
            self._local.db = db
        return db

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> Hits:
        """Ranked (entry, score) pairs, best first, at most `limit`; and how many matched in all."""
        query = (query or "")[:text.MAX_QUERY].strip()
        limit = max(1, limit)
        if not query:
            return [], 0
        ends = text.range_ends(query)
        if ends:
            return self.code_range(*ends, limit)
        chunks = query.split()
        prefix = text.code_prefix(chunks)
        if prefix:
            return self.code_prefix(prefix, limit)
        if len(chunks) == 1 and text.looks_like_code(chunks[0]):
            hits = self.code(chunks[0], limit)
            if hits[0]:
                return hits
        return words.rank(self, chunks, limit)

    # -- codes -------------------------------------------------------------------------------------

    def entries(self, docs: list[int]) -> list[Entry]:
        """The entries of documents, in the order given."""
        marks = ",".join("?" * len(docs))
        rows = self.db.execute(f"SELECT doc, iri, notation, system, label FROM codes WHERE doc IN ({marks})", docs)
        found = {doc: rest for doc, *rest in rows}
        terms: dict[int, list[str]] = defaultdict(list)
        for doc, term in self.db.execute(f"SELECT doc, term FROM inclusion_terms WHERE doc IN ({marks}) ORDER BY rowid",
                                         docs):
            terms[doc].append(term)
        return [Entry(*found[doc], tuple(terms[doc])) for doc in docs]

    def hits(self, scored: list[tuple[int, float]], total: int) -> Hits:
        """(document, score) pairs as a search's answer."""
        entries = self.entries([doc for doc, _ in scored])
        return [(entry, score) for entry, (_, score) in zip(entries, scored, strict=True)], total

    def _docs(self, sql: str, *args: object) -> list[int]:
        return [doc for (doc,) in self.db.execute(sql, args)]

    def key_docs(self, key: str) -> list[int]:
        """Codes whose notation, typed without punctuation, is `key`."""
        return self._docs("SELECT doc FROM codes WHERE key = ? ORDER BY tie", key)

    def _below(self, key: str, limit: int) -> tuple[list[int], int]:
        """The first `limit` codes whose key starts with `key`, in tree order; and how many there are."""
        total = self.db.execute(f"SELECT count(*) {BELOW}", (key,)).fetchone()[0]
        return self._docs(f"SELECT doc {BELOW} ORDER BY key, tie LIMIT ?2", key, limit), total

    def code(self, chunk: str, limit: int) -> Hits:
        """An exact notation first, then the same code typed otherwise (no dot, other case), then codes below
        it (the normalised notation as a prefix), in tree order."""
        key = normalise_code(chunk)
        literal = self._docs("SELECT doc FROM codes WHERE upper(notation) = ? ORDER BY tie", chunk.upper())
        ranked = [(doc, 1.0) for doc in literal]
        ranked += [(doc, 0.95) for doc in self.key_docs(key) if doc not in literal]
        seen = {doc for doc, _ in ranked}
        below, total = self._below(key, limit + len(seen))  # the codes above are among them
        ranked += [(doc, 0.8) for doc in below if doc not in seen]
        return self.hits(ranked[:limit], total)

    def code_prefix(self, prefix: str, limit: int) -> Hits:
        """Codes below a prefix in tree order, the code that is the prefix itself scoring highest."""
        below, total = self._below(prefix, limit)
        hits = [(entry, 1.0 if entry.notation.upper() == prefix else 0.9) for entry in self.entries(below)]
        return hits, total

    def code_range(self, low: str, high: str, limit: int) -> Hits:
        """Codes whose key lies between the ends (inclusive), as long as the ends, and in the code system(s)
        of the ends when either is a known code (62360-62370, G89.0-G89.4, G89-G99)."""
        lo, hi = normalise_code(low), normalise_code(high)
        if len(lo) == len(hi) and lo > hi:
            lo, hi = hi, lo
        systems = [s for (s,) in self.db.execute("SELECT DISTINCT system FROM codes WHERE key IN (?, ?)", (lo, hi))]
        if not systems:
            systems = self.systems if "." not in low + high else ["icd10cm"]
        where = (f"system IN ({','.join('?' * len(systems))}) AND length(key) BETWEEN ? AND ? "
                 "AND key >= ? AND key < ?")
        args = [*systems, min(len(lo), len(hi)), max(len(lo), len(hi)), lo, hi + AFTER_KEYS]
        total = self.db.execute(f"SELECT count(*) FROM codes WHERE {where}", args).fetchone()[0]
        first = self._docs(f"SELECT doc FROM codes WHERE {where} ORDER BY key, tie LIMIT ?", *args, limit)
        return self.hits([(doc, 1.0) for doc in first], total)

    # -- words -------------------------------------------------------------------------------------

    def expand(self, word: str) -> dict[str, float]:
        """Index terms a query word stands for, with the weight of each kind of match."""
        out: dict[str, float] = {}
        if word in self.idf:
            out[word] = self.EXACT
        for term in self.stems.get(stem(word), ()):
            out.setdefault(term, self.STEM)
        if len(word) >= 3 and not word.isdigit():
            i = bisect.bisect_left(self.vocabulary, word)
            while i < len(self.vocabulary) and self.vocabulary[i].startswith(word) and len(out) < self.MAX_EXPANSIONS:
                out.setdefault(self.vocabulary[i], self.PREFIX)
                i += 1
        if word not in self.idf and len(word) >= 4 and not word.isdigit():  # typos: words the index lacks
            limit = 2 if len(word) >= 8 else 1
            for term, distance in nearest(word, self.typo_candidates, limit, keep=self.MAX_EXPANSIONS):
                out.setdefault(term, self.TYPO / distance)
        return out

    def _columns(self, term: str) -> tuple[array, ...]:
        """The documents with `term` (an index word, [a-z0-9]+), per FTS5 column, best first (document order):
        read from the file once, then kept packed (every term of the full graph together: under 4 MB)."""
        columns = self._postings.get(term)
        if columns is None:
            sql = "SELECT group_concat(rowid) FROM words WHERE words MATCH ?"
            found = [self.db.execute(sql, (f'{column} : "{term}"',)).fetchone()[0] for column in COLUMNS]
            columns = tuple(array("i", sorted(map(int, docs.split(","))) if docs else ()) for docs in found)
            self._postings[term] = columns
        return columns

    def posting(self, term: str, limit: int | None = None) -> dict[int, float]:
        """{document: weight of the field it has `term` in} for every document with the term; with `limit`,
        the first `limit` of each field, which hold the term's best `limit` (documents are numbered best-first)."""
        scores: dict[int, float] = {}
        for weight, docs in zip(COLUMNS.values(), self._columns(term), strict=True):
            scores.update(dict.fromkeys(docs[:limit] if limit else docs, weight))
        return scores
