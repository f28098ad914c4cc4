"""Inspect a query before it runs: its form, and anything that would leave the process.

A public endpoint must never fetch: SERVICE, LOAD and FROM/FROM NAMED IRIs outside the local named
graphs are refused before execution. The scan skips comments, strings and IRIs, so a keyword inside
a literal is not mistaken for one, and one hidden in odd spacing is still found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

TOKENS = re.compile(
    r"""
    (?P<comment>\#[^\n\r]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
               |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<pname>(?:[A-Za-z][A-Za-z0-9_\-.]*)?:[^\s{}()\[\]<>,;"'\#]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<var>[?$][A-Za-z0-9_]+)
  | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)
FORMS = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
UPDATE_WORDS = {"INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD"}


class Refused(ValueError):
    """The query asks for something this endpoint does not do (the message says why)."""


@dataclass(frozen=True)
class Inspection:
    form: str  # SELECT | ASK | CONSTRUCT | DESCRIBE
    from_graphs: tuple[str, ...]
    from_named_graphs: tuple[str, ...]


_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def _unescape(query: str) -> str:
    """SPARQL processes \\u/\\U code point escapes before parsing (SPARQL 1.1 §19.2): so do we."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), query)


def _graph_iri(token: tuple[str, str], prefixes: dict[str, str]) -> str | None:
    kind, text = token
    if kind == "iri":
        return text[1:-1]
    if kind == "pname":
        prefix, _, local = text.partition(":")
        if prefix in prefixes:
            return prefixes[prefix] + local
    return None


MEMO_QUERY_CHARS = 8192  # queries up to this length have their inspection kept (1,024 of them at most)


def inspect(query: str, local_graphs: set[str], default_prefixes: dict[str, str] | None = None) -> Inspection:
    """Return the query form; raise Refused for SERVICE, LOAD, updates or non-local FROM IRIs.

    Syntax errors are left to the engine's parser, which reports them with their position. The
    inspection of a short query is kept: clients repeat their queries, and tokenising one costs more
    than answering it from the answer cache.
    """
    run = _kept_inspection if len(query) <= MEMO_QUERY_CHARS else _inspection
    return run(query, frozenset(local_graphs), tuple((default_prefixes or {}).items()))


def _inspection(query: str, local_graphs: frozenset[str], default_prefixes: tuple[tuple[str, str], ...]
                ) -> Inspection:
    tokens = [(m.lastgroup, m.group()) for m in TOKENS.finditer(_unescape(query)) if m.lastgroup != "comment"]
    prefixes = dict(default_prefixes)
    form = None
    from_graphs: list[str] = []
    from_named: list[str] = []
    for i, (kind, text) in enumerate(tokens):
        if kind != "word":
            continue  # IRIs, strings and prefixed names (ex:SERVICE) are never keywords
        word = text.upper()
        if word == "PREFIX" and i + 2 < len(tokens) and tokens[i + 1][0] == "pname" and tokens[i + 2][0] == "iri":
            prefixes[tokens[i + 1][1].rstrip(":")] = tokens[i + 2][1][1:-1]
        if word == "SERVICE":
            raise Refused("SERVICE (federated query) is not allowed: this endpoint makes no outbound requests")
        if word in UPDATE_WORDS and form is None:
            raise Refused("This endpoint is read-only: SPARQL Update (including LOAD) is not accepted")
        if form is None and word in FORMS:
            form = word
        if word == "FROM":
            named = i + 1 < len(tokens) and tokens[i + 1][1].upper() == "NAMED"
            target = tokens[i + 2] if named and i + 2 < len(tokens) else (
                tokens[i + 1] if not named and i + 1 < len(tokens) else ("", ""))
            iri = _graph_iri(target, prefixes)
            if iri is None:
                raise Refused(f"FROM{' NAMED' if named else ''} must name a local graph by IRI or a declared prefix")
            if iri not in local_graphs:
                raise Refused(f"FROM{' NAMED' if named else ''} <{iri}> is not a graph of this endpoint "
                              f"(no remote graphs are loaded); local graphs: {', '.join(sorted(local_graphs))}")
            (from_named if named else from_graphs).append(iri)
    if form is None:
        form = "SELECT"  # let the parser report what is wrong
    return Inspection(form, tuple(from_graphs), tuple(from_named))


_kept_inspection = lru_cache(maxsize=1024)(_inspection)
