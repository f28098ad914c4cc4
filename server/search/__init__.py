"""`/search`: code-native lookup over every code of the snapshot (CPT, HCPCS, modifiers, all of ICD-10-CM).

One query understands exact codes (``G89.3``), codes typed without their dot (``g893``), ranges
(``62360-62370``), prefixes (``G35*``) and words in labels and descriptors, ranked (BM25 over the
labels; every query word that matches counts first) and typo-tolerant (edit distance 1, or 2 for long
words). The index is built once per process, lazily, from one SPARQL query through the app's store, and is
pure Python: an inverted token index, a sorted vocabulary for word prefixes, a deletion neighbourhood
for typos and a sorted list of compact notations for code prefixes and ranges.
"""

from __future__ import annotations

import bisect
import csv
import heapq
import io
import math
import re
import threading
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from kg.contract import GRAPH_ASSERTED, ID_BASE, PREFIXES

from ..store import INFERENCE_GRAPHS

bp = Blueprint("search", __name__, template_folder="templates")

SITE_BASE = "https://w3id.org/medcode/"  # IRIs below it are served locally at /{rest}
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_QUERY = 200  # characters looked at; a longer query is cut, never refused

# One query, no joins (a union of single-pattern scans: several times faster than joining them in SPARQL
# on the on-disk store); rows are grouped by code in Python. Labels come from the asserted graph only.
INDEX_QUERY = f"""PREFIX mc: <{PREFIXES['mc']}>
PREFIX skos: <{PREFIXES['skos']}>
SELECT ?c ?k ?v WHERE {{
  {{ ?c a mc:Code BIND("code" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:notation ?v }} BIND("notation" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:inScheme ?v }} BIND("scheme" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:prefLabel ?v }} BIND("label" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c skos:altLabel ?v }} BIND("alt" AS ?k) }}
  UNION {{ GRAPH <{GRAPH_ASSERTED}> {{ ?c mc:longDescriptor ?v }} BIND("long" AS ?k) }}
}}"""

STOP_WORDS = frozenset("a an and or of the for with to in on by eg ie at as".split())
WORD = re.compile(r"[a-z0-9]+")
CODE_CHUNK = re.compile(r"^[A-Za-z]{0,2}\d[A-Za-z0-9.]*$|^[A-Za-z]\d?[A-Za-z0-9]?$|^[A-Za-z0-9]{2}$")
RANGE = re.compile(r"^\s*([A-Za-z]?\d[A-Za-z0-9.]*)\s*[-\u2013]\s*([A-Za-z]?\d[A-Za-z0-9.]*)\s*$")

SYSTEM_LABELS = {"cpt": "CPT", "hcpcs": "HCPCS", "icd10cm": "ICD-10-CM", "modifier": "Modifier"}


def normalise(text: str) -> str:
    """Lower case, accents dropped (NFKD), so 'Ménière' and 'meniere' are one token."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def tokens(text: str) -> list[str]:
    """Normalised word tokens; punctuation separates words."""
    return WORD.findall(normalise(text))


def stem(token: str) -> str:
    """A deliberately small suffix stripper: refilling/refill, implanted/implantable/implant, pumps/pump."""
    if len(token) <= 4 or token.isdigit():
        return token
    for suffix, repl in (("ies", "y"), ("able", ""), ("ible", ""), ("ing", ""), ("ed", ""), ("es", "e")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)] + repl
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def compact(notation: str) -> str:
    """A notation as typed without its punctuation: 'G89.3' and 'g893' are both 'G893'."""
    return NOT_ALNUM.sub("", notation).upper()


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a transposition counts 1); returns limit+1 once above limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@dataclass(frozen=True)
class Entry:
    iri: str
    notation: str
    system: str
    label: str


class SearchIndex:
    """Everything a query needs, in memory; immutable once built (safe to share between threads)."""

    # weight of a query word matching an index term exactly, by stem, as a prefix, with a typo
    EXACT, STEM, PREFIX, TYPO = 1.0, 0.85, 0.7, 0.6
    MAX_EXPANSIONS = 100  # index terms one query word may stand for (prefixes of short words)

    def __init__(self, records: list[tuple[str, str, str, list[str], list[str]]]) -> None:
        """records: (iri, notation, system, labels (prefLabel first, then altLabels), descriptors)."""
        self.entries: list[Entry] = []
        postings: dict[str, dict[int, float]] = defaultdict(dict)
        lengths: list[int] = []
        for doc, (iri, notation, system, labels, descriptors) in enumerate(records):
            label = next((x for x in labels if x), "") or next((x for x in descriptors if x), "")
            self.entries.append(Entry(iri, notation, system, label))
            label_tokens = [tokens(text) for text in labels]
            seen_label = {t for words in label_tokens for t in words}
            seen_desc = {t for text in descriptors for t in tokens(text)} - seen_label
            for term in seen_label:
                postings[term][doc] = 1.0
            for term in seen_desc:
                postings[term][doc] = 0.8
            lengths.append(len(label_tokens[0]) if label_tokens and label_tokens[0] else 1)
        count = len(self.entries) or 1
        average = sum(lengths) / len(lengths) if lengths else 1.0
        # BM25 with tf = 1 (k1 = 1.2, b = 0.75): only the length normalisation varies by document
        self.norm = [2.2 / (1 + 1.2 * (0.25 + 0.75 * n / average)) for n in lengths]
        self.postings = dict(postings)
        self.idf = {t: math.log(1 + (count - len(d) + 0.5) / (len(d) + 0.5)) for t, d in self.postings.items()}
        self.max_idf = max(self.idf.values(), default=1.0)
        self.vocabulary = sorted(self.postings)
        self.stems: dict[str, list[str]] = defaultdict(list)
        self.neighbours: dict[str, list[str]] = defaultdict(list)
        for term in self.vocabulary:
            self.stems[stem(term)].append(term)
            if len(term) >= 4 and not term.isdigit():
                for variant in _deletes(term):
                    self.neighbours[variant].append(term)
        compacts = [compact(e.notation) for e in self.entries]
        # ties are broken by the shorter, then alphabetically first notation
        self.order = [0] * len(self.entries)
        for rank, doc in enumerate(sorted(range(len(self.entries)),
                                          key=lambda d: (len(compacts[d]), compacts[d], self.entries[d].system))):
            self.order[doc] = rank
        self.by_notation: dict[str, list[int]] = defaultdict(list)
        self.by_compact: dict[str, list[int]] = defaultdict(list)
        by_length: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
        for doc, entry in enumerate(self.entries):
            self.by_notation[entry.notation.upper()].append(doc)
            self.by_compact[compacts[doc]].append(doc)
            by_length[entry.system, len(compacts[doc])].append((compacts[doc], doc))
        self.sorted_compact = sorted((key, doc) for doc, key in enumerate(compacts))
        self.compact_keys = [key for key, _ in self.sorted_compact]
        # per code system and notation length, for ranges: {(system, length): (sorted keys, docs)}
        self.ranges = {k: ([key for key, _ in v], [doc for _, doc in v])
                       for k, v in ((k, sorted(v)) for k, v in by_length.items())}
        self._ranked: dict[str, list[int]] = {}

    @classmethod
    def from_rows(cls, rows: Iterable[list[str]]) -> SearchIndex:
        """Build from INDEX_QUERY's (code IRI, kind, value) rows."""
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
            records.append((iri, min(item["notation"]), system, labels, sorted(item.get("long", []))))
        return cls(records)

    # -- query side -----------------------------------------------------------------------------

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> tuple[list[tuple[Entry, float]], int]:
        """Ranked (entry, score) pairs, best first, at most `limit`; and how many matched in all."""
        query = (query or "")[:MAX_QUERY].strip()
        limit = max(1, limit)
        if not query:
            return [], 0
        match = RANGE.match(query)
        if match:
            return self._range(match.group(1), match.group(2), limit)
        chunks = query.split()
        if len(chunks) == 1 and chunks[0].endswith("*"):
            stripped = compact(chunks[0].rstrip("*"))
            # G35* and 623* are code prefixes; pump* is a word prefix (handled with the words)
            if stripped and (any(ch.isdigit() for ch in stripped) or len(stripped) <= 2):
                return self._code_prefix(stripped, limit)
        if len(chunks) == 1 and CODE_CHUNK.match(chunks[0]):
            hits = self._code(chunks[0], limit)
            if hits[0]:
                return hits
        return self._text(chunks, limit)

    def _prefix_docs(self, prefix: str) -> list[int]:
        lo = bisect.bisect_left(self.compact_keys, prefix)
        hi = bisect.bisect_left(self.compact_keys, prefix + "~", lo)  # '~' sorts after [0-9A-Z]
        return [doc for _, doc in self.sorted_compact[lo:hi]]

    def _code(self, chunk: str, limit: int) -> tuple[list[tuple[Entry, float]], int]:
        """An exact notation first, then the same code typed otherwise (no dot, other case), then codes
        below it (the compact notation as a prefix)."""
        key = compact(chunk)
        literal = self.by_notation.get(chunk.upper(), [])
        ranked: list[tuple[int, float]] = [(d, 1.0) for d in literal]
        ranked += [(d, 0.95) for d in self.by_compact.get(key, []) if d not in literal]
        seen = {d for d, _ in ranked}
        if key:
            ranked += [(d, 0.8) for d in self._prefix_docs(key) if d not in seen]  # in tree order
        return [(self.entries[d], s) for d, s in ranked[:limit]], len(ranked)

    def _code_prefix(self, prefix: str, limit: int) -> tuple[list[tuple[Entry, float]], int]:
        docs = self._prefix_docs(prefix)
        ranked = [(self.entries[d], 1.0 if self.entries[d].notation.upper() == prefix else 0.9)
                  for d in docs[:limit]]
        return ranked, len(docs)

    def _range(self, low: str, high: str, limit: int) -> tuple[list[tuple[Entry, float]], int]:
        """Codes whose compact notation lies between the ends (inclusive), as long as the ends, and in
        the code system(s) of the ends when either is a known code (62360-62370, G89.0-G89.4, G89-G99)."""
        lo, hi = compact(low), compact(high)
        if len(lo) == len(hi) and lo > hi:
            lo, hi = hi, lo
        systems = {self.entries[d].system for key in (lo, hi) for d in self.by_compact.get(key, [])}
        if not systems:
            systems = {e.system for e in self.entries} if "." not in low + high else {"icd10cm"}
        lengths = range(min(len(lo), len(hi)), max(len(lo), len(hi)) + 1)
        slices = []
        total = 0
        for system in sorted(systems):
            for length in lengths:
                keys, docs = self.ranges.get((system, length), ([], []))
                start = bisect.bisect_left(keys, lo)
                stop = bisect.bisect_left(keys, hi + "~", start)  # x[:len(hi)] <= hi
                if stop > start:
                    total += stop - start
                    end = min(stop, start + limit)
                    slices.append(list(zip(keys[start:end], docs[start:end], strict=True)))
        first = heapq.nsmallest(limit, (item for part in slices for item in part))
        return [(self.entries[d], 1.0) for _, d in first], total

    def _expand(self, word: str) -> dict[str, float]:
        """Index terms a query word stands for, with the weight of each kind of match."""
        out: dict[str, float] = {}
        if word in self.postings:
            out[word] = self.EXACT
        for term in self.stems.get(stem(word), ()):
            out.setdefault(term, self.STEM)
        if len(word) >= 3 and not word.isdigit():
            i = bisect.bisect_left(self.vocabulary, word)
            while i < len(self.vocabulary) and self.vocabulary[i].startswith(word) \
                    and len(out) < self.MAX_EXPANSIONS:
                out.setdefault(self.vocabulary[i], self.PREFIX)
                i += 1
        if word not in self.postings and len(word) >= 4 and not word.isdigit():  # typos: words the index lacks
            limit = 2 if len(word) >= 8 else 1
            candidates = {word} | _deletes(word)
            if limit == 2:
                candidates |= {d2 for d1 in _deletes(word) for d2 in _deletes(d1)}
            near = {t for c in candidates for t in self.neighbours.get(c, ())}
            near |= {c for c in candidates if c in self.postings}
            for term in near:
                if term not in out:
                    distance = edit_distance(word, term, limit)
                    if distance <= limit:
                        out[term] = self.TYPO / distance
        return out

    def _ranked_postings(self, term: str) -> list[int]:
        """A term's documents, best first for that term alone (computed on first use)."""
        ranked = self._ranked.get(term)
        if ranked is None:
            posting = self.postings[term]
            ranked = sorted(posting, key=lambda d: (-posting[d] * self.norm[d], self.order[d]))
            self._ranked[term] = ranked
        return ranked

    def _prepared(self, unit: dict[str, float]) -> list[tuple[dict[int, float], float]]:
        """(posting, value) per term of a query word, highest value first (so scoring can stop early)."""
        return sorted(((self.postings[t], value) for t, value in unit.items()), key=lambda x: -x[1])

    @staticmethod
    def _unit_score(prepared: list[tuple[dict[int, float], float]], doc: int) -> float:
        best = 0.0
        for posting, value in prepared:
            if value <= best:  # fields weigh at most 1: no later term can beat it
                break
            field = posting.get(doc)
            if field is not None and value * field > best:
                best = value * field
        return best

    def _unit_scores(self, unit: dict[str, float], within: set[int] | None = None) -> dict[int, float]:
        """{doc: score} for one query word, over `within` when given. A document matched by several of the
        word's terms scores by the best-valued term it has (exact over stem over prefix over typo)."""
        scores: dict[int, float] = {}
        for posting, value in reversed(self._prepared(unit)):  # ascending, so better terms overwrite
            if within is None:
                scores.update({d: value * f for d, f in posting.items()})
            elif len(posting) > len(within):
                scores.update({d: value * posting[d] for d in within if d in posting})
            else:
                scores.update({d: value * f for d, f in posting.items() if d in within})
        return scores

    def _text(self, chunks: list[str], limit: int) -> tuple[list[tuple[Entry, float]], int]:
        """Words (and any codes among them): rank by how many query units match, then by BM25 (with each
        word's best kind of match), then shorter notations first."""
        code_units: list[dict[int, float]] = []  # a code among the words: {doc: score}
        words: list[str] = []
        for chunk in chunks:
            if CODE_CHUNK.match(chunk) and compact(chunk) in self.by_compact:
                code_units.append({d: self.max_idf * 2 for d in self.by_compact[compact(chunk)]})
                continue
            prefix_only = chunk.endswith("*")
            words += [w + ("*" if prefix_only else "") for w in tokens(chunk)]
        content = list(dict.fromkeys([w for w in words if w.rstrip("*") not in STOP_WORDS] or words))
        word_units: list[dict[str, float]] = []  # per query word: {index term: weight x idf}
        for word in content:
            bare = word.rstrip("*")
            expansion = self._expand(bare)
            if word.endswith("*"):
                expansion = {t: w for t, w in expansion.items() if t.startswith(bare)}
            if expansion:  # a word matching nothing, not even with a typo, is left out
                # a rarer term the word stands for (a prefix or stem match) never outweighs the word itself
                base = self.idf.get(bare) or max((self.idf[t] for t, w in expansion.items() if w > self.TYPO),
                                                 default=math.inf)
                word_units.append({t: w * min(self.idf[t], base) for t, w in expansion.items()})
        n = len(content) + len(code_units)
        ideal = 2.2 * (sum(self.idf.get(w.rstrip("*"), self.max_idf) for w in content)
                       + self.max_idf * 2 * len(code_units)) or 1.0
        docsets = [set().union(*(self.postings[t].keys() for t in unit)) for unit in word_units]
        docsets += [set(unit) for unit in code_units]
        if not docsets:
            return [], 0
        total = len(set().union(*docsets))
        norm, order = self.norm, self.order
        if len(docsets) == 1 and word_units:
            # one word: the best documents of each term it stands for hold the best overall
            unit = word_units[0]
            candidates = {d for term in unit for d in self._ranked_postings(term)[:limit]}
            prepared = self._prepared(unit)
            scored = [(-1, -self._unit_score(prepared, d) * norm[d], order[d], d) for d in candidates]
        else:
            full = set.intersection(*sorted(docsets, key=len))
            within = full if len(full) >= limit else None  # else every document with any word counts
            per_unit = [self._unit_scores(unit, within) for unit in word_units]
            per_unit += [unit if within is None else {d: unit[d] for d in within} for unit in code_units]
            if within is not None:
                totals = dict.fromkeys(within, 0.0)
                for scores in per_unit:
                    totals = {d: v + scores[d] for d, v in totals.items()}
                cov = -len(docsets)
                scored = [(cov, -v * norm[d], order[d], d) for d, v in totals.items()]
            else:
                coverage: Counter[int] = Counter()
                totals = defaultdict(float)
                for scores in per_unit:
                    coverage.update(scores.keys())
                    for d, v in scores.items():
                        totals[d] += v
                scored = [(-c, -totals[d] * norm[d], order[d], d) for d, c in coverage.items()]
        ranked = []
        for neg_cov, neg_value, _, doc in heapq.nsmallest(limit, scored):
            fraction = min(-neg_value / ideal, 0.999)
            ranked.append((self.entries[doc], round((-neg_cov + fraction) / (n + 1), 4)))
        return ranked, total


# -- the index of the running app ---------------------------------------------------------------

_lock = threading.Lock()


def get_index() -> SearchIndex:
    """The app's index for its live snapshot, built on first use (one build even under concurrency)."""
    store = current_app.extensions["medcode.store"]
    cached = current_app.extensions.get("medcode.search")
    if cached is not None and cached[0] == store.etag:
        return cached[1]
    with _lock:
        cached = current_app.extensions.get("medcode.search")
        if cached is not None and cached[0] == store.etag:
            return cached[1]
        started = time.perf_counter()
        cfg = current_app.config
        answer = store.query(INDEX_QUERY, fmt="csv", limit=cfg["EXPORT_MAX_ROWS"], timeout=cfg["EXPORT_TIMEOUT"],
                             default_graph=INFERENCE_GRAPHS["all"], named_graphs=INFERENCE_GRAPHS["all"])
        rows = csv.reader(io.StringIO(answer.decode("utf-8"), newline=""))
        next(rows)  # the header
        index = SearchIndex.from_rows(rows)
        current_app.logger.info("search index: %d codes, %d terms in %.1f s", len(index.entries),
                                len(index.vocabulary), time.perf_counter() - started)
        current_app.extensions["medcode.search"] = (store.etag, index)
        return index


def local_path(iri: str) -> str:
    """The app's own path for an IRI under https://w3id.org/medcode/ (else the IRI itself)."""
    if iri.startswith(SITE_BASE):
        return request.script_root + "/" + iri[len(SITE_BASE):]
    return iri


def _limit() -> int:
    try:
        value = int(request.args.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return DEFAULT_LIMIT
    return max(1, min(value, MAX_LIMIT))


def _wants_json() -> bool:
    fmt = request.args.get("format", "").lower()
    if fmt:
        return fmt == "json"
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


@bp.route("/search")
def search() -> Response:
    query = request.args.get("q", "")
    limit = _limit()
    started = time.perf_counter()
    ranked, total = get_index().search(query, limit) if query.strip() else ([], 0)
    elapsed = time.perf_counter() - started
    results = [{"notation": e.notation, "label": e.label, "system": e.system, "iri": e.iri, "score": score}
               for e, score in ranked]
    if _wants_json():
        response = jsonify({"query": query, "results": results, "total": total})
    else:
        for item in results:
            item["path"] = local_path(item["iri"])
            item["system_label"] = SYSTEM_LABELS.get(item["system"], item["system"])
        response = Response(render_template("search/search.html", q=query, results=results, total=total,
                                            limit=limit, elapsed_ms=elapsed * 1000), mimetype="text/html")
    response.headers["Vary"] = "Accept"
    response.headers["Server-Timing"] = f"search;dur={elapsed * 1000:.1f}"
    return response


@bp.app_context_processor
def _query_ui() -> dict[str, Any]:
    """`query_ui()` for templates/sparql.html: the YASGUI configuration, or None without the assets."""
    from ..assets import query_ui_config  # imported late: `python -m server.assets` runs it as __main__

    return {"query_ui": query_ui_config}
