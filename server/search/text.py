"""How a search query is read: a range of codes, a code prefix, one code, or words (with codes among them).

Words are analysed with the index's own `tokens` (kg.search_index), so a query word and an indexed
word can only agree; what is here is the query's side: its shapes and the words that do not count.
"""

from __future__ import annotations

import re

from kg.search_index import stem, tokens

from ..codes import normalise_code

MAX_QUERY = 200  # characters looked at; a longer query is cut, never refused
STOP_WORDS = frozenset("a an and or of the for with to in on by eg ie at as".split())
CODE_CHUNK = re.compile(r"^[A-Za-z]{0,2}\d[A-Za-z0-9.]*$|^[A-Za-z]\d?[A-Za-z0-9]?$|^[A-Za-z0-9]{2}$")
RANGE = re.compile(r"^\s*([A-Za-z]?\d[A-Za-z0-9.]*)\s*[-\u2013]\s*([A-Za-z]?\d[A-Za-z0-9.]*)\s*$")


def range_ends(query: str) -> tuple[str, str] | None:
    """The two ends of a range query (`62360-62370`, `G89.0 - G89.4`), else None."""
    match = RANGE.match(query)
    return (match.group(1), match.group(2)) if match else None


def code_prefix(chunks: list[str]) -> str | None:
    """The code prefix a lone `G35*` or `623*` asks for (normalised); None for anything else, so that
    `pump*` stays a word prefix."""
    if len(chunks) != 1 or not chunks[0].endswith("*"):
        return None
    stripped = normalise_code(chunks[0].rstrip("*"))
    if stripped and (any(ch.isdigit() for ch in stripped) or len(stripped) <= 2):
        return stripped
    return None


def looks_like_code(chunk: str) -> bool:
    """Whether a chunk of the query could be a code (G89.3, g893, 96522, E0782, 59, XE)."""
    return bool(CODE_CHUNK.match(chunk))


def matched_terms(terms: tuple[str, ...], query: str) -> list[str]:
    """Of a result's inclusion terms, those that share the most of the query's words (by stem), if any: what a
    result shows of why it matched words its label may lack."""
    wanted = {stem(word.rstrip("*")) for word in query_words(query[:MAX_QUERY].split())}
    shared = {term: len(wanted & {stem(word) for word in tokens(term)}) for term in terms}
    most = max(shared.values(), default=0)
    return [term for term in terms if most and shared[term] == most]


def query_words(chunks: list[str]) -> list[str]:
    """The words of query chunks, once each, stop words left out unless nothing else is left. A word from a
    chunk ending in `*` keeps the star: it matches only words it begins."""
    words: list[str] = []
    for chunk in chunks:
        star = "*" if chunk.endswith("*") else ""
        words += [word + star for word in tokens(chunk)]
    content = [word for word in words if word.rstrip("*") not in STOP_WORDS] or words
    return list(dict.fromkeys(content))
