"""Ranking a words query: how many query units match first, then BM25, then shorter notations first.

A unit is a query word, or a code typed among the words. A word stands for index terms (itself, its
stem's family, words it begins, near spellings: `SearchIndex.expand`), each weighted by the kind of
match and capped at the word's own IDF, so a rarer term a word stands for never outweighs the word. A
document matched by several of a word's terms scores by the best of them; fields weigh 1 (labels) or
0.8 (only descriptors or inclusion terms); BM25 uses tf = 1, so a code's length norm is its only per-document factor.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..codes import normalise_code
from . import text

if TYPE_CHECKING:
    from .index import Hits, SearchIndex

Scores = dict[int, float]  # document -> score
Ranked = tuple[int, float, int, int]  # (-coverage, -score x norm, tie, document): smallest is best
TOP_NORM = 2.2  # BM25's k1 + 1, the highest length norm: with it, the score of a perfect match


def rank(index: SearchIndex, chunks: list[str], limit: int) -> Hits:
    """The best `limit` documents for query chunks that are words (and any codes among them)."""
    return _Query(index, chunks).rank(limit)


@dataclass
class _Query:
    """One words query against one index: its units, read once, then ranked."""

    index: SearchIndex
    chunks: list[str]
    code_units: list[Scores] = field(default_factory=list)  # a code among the words: {document: score}
    word_units: list[dict[str, float]] = field(default_factory=list)  # a word: {index term: weight x idf}
    content: list[str] = field(default_factory=list)  # the query words that count
    postings: dict[str, Scores] = field(default_factory=dict)  # read once per query

    def __post_init__(self) -> None:
        index = self.index
        word_chunks = []
        for chunk in self.chunks:
            docs = index.key_docs(normalise_code(chunk)) if text.looks_like_code(chunk) else []
            if docs:
                self.code_units.append(dict.fromkeys(docs, index.max_idf * 2))
            else:
                word_chunks.append(chunk)
        self.content = text.query_words(word_chunks)
        for word in self.content:
            unit = self._word_unit(word)
            if unit:  # a word matching nothing, not even with a typo, is left out
                self.word_units.append(unit)

    def _word_unit(self, word: str) -> dict[str, float]:
        """{index term: weight x IDF} for one query word; a trailing `*` keeps only the terms it begins."""
        index, bare = self.index, word.rstrip("*")
        expansion = index.expand(bare)
        if word.endswith("*"):
            expansion = {t: w for t, w in expansion.items() if t.startswith(bare)}
        if not expansion:
            return {}
        base = index.idf.get(bare) or max((index.idf[t] for t, w in expansion.items() if w > index.TYPO),
                                          default=math.inf)
        return {t: w * min(index.idf[t], base) for t, w in expansion.items()}

    def posting(self, term: str) -> Scores:
        """The term's {document: field weight}, built once per query."""
        if term not in self.postings:
            self.postings[term] = self.index.posting(term)
        return self.postings[term]

    def rank(self, limit: int) -> Hits:
        """The best `limit` documents, scored in (0, 1): units matched, plus the BM25 share of a perfect match."""
        units = len(self.content) + len(self.code_units)
        idf, max_idf = self.index.idf, self.index.max_idf
        ideal = TOP_NORM * (sum(idf.get(w.rstrip("*"), max_idf) for w in self.content)
                            + max_idf * 2 * len(self.code_units)) or 1.0
        if len(self.word_units) == 1 and not self.code_units:
            scored, total = self._one_word(self.word_units[0], limit)
        elif self.word_units or self.code_units:
            scored, total = self._many(limit)
        else:
            return [], 0
        ranked = []
        for neg_coverage, neg_value, _, doc in heapq.nsmallest(limit, scored):
            fraction = min(-neg_value / ideal, 0.999)
            ranked.append((doc, round((-neg_coverage + fraction) / (units + 1), 4)))
        return self.index.hits(ranked, total)

    def _one_word(self, unit: dict[str, float], limit: int) -> tuple[list[Ranked], int]:
        """One word: the best `limit` documents of each term it stands for hold the best overall, and each of
        those scores by its best term among them."""
        norm, tie = self.index.norm, self.index.tie
        best: Scores = {}
        for term, value in unit.items():
            for doc, weight in self.index.posting(term, limit).items():
                best[doc] = max(best.get(doc, 0.0), value * weight)
        scored = [(-1, -score * norm[doc], tie[doc], doc) for doc, score in best.items()]
        return scored, len(set().union(*(self.posting(term).keys() for term in unit)))

    def _many(self, limit: int) -> tuple[list[Ranked], int]:
        """Several units: documents with all of them, when there are `limit` such; else every document with
        any, ranked by how many it has."""
        docsets = [set().union(*(self.posting(t).keys() for t in unit)) for unit in self.word_units]
        docsets += [set(unit) for unit in self.code_units]
        total = len(set().union(*docsets))
        full = set.intersection(*sorted(docsets, key=len))
        within = full if len(full) >= limit else None
        per_unit = [self._unit_scores(unit, within) for unit in self.word_units]
        per_unit += [unit if within is None else {d: unit[d] for d in within} for unit in self.code_units]
        coverage: Counter[int] = Counter()
        totals: Scores = defaultdict(float)
        for scores in per_unit:
            coverage.update(scores.keys())
            for doc, value in scores.items():
                totals[doc] += value
        norm, tie = self.index.norm, self.index.tie
        return [(-c, -totals[doc] * norm[doc], tie[doc], doc) for doc, c in coverage.items()], total

    def _unit_scores(self, unit: dict[str, float], within: set[int] | None) -> Scores:
        """{document: score} for one query word, over `within` when given. A document matched by several of
        the word's terms scores by the best-valued term it has (exact over stem over prefix over typo)."""
        scores: Scores = {}
        # ascending, so better terms overwrite (equal ones: the first expanded wins)
        for term, value in reversed(sorted(unit.items(), key=lambda item: -item[1])):
            posting = self.posting(term)
            if within is None:
                scores.update({d: value * f for d, f in posting.items()})
            elif len(posting) > len(within):
                scores.update({d: value * posting[d] for d in within if d in posting})
            else:
                scores.update({d: value * f for d, f in posting.items() if d in within})
        return scores
