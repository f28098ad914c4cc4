"""Where an ICD-10-CM note names codes: the mentions in its text, as the Tabular List writes them.

A mention is a code (``G37.9``), a code with its subdivisions (``Z46.-``, ``H92.0-``, ``S12.6.-``), a
range (``R07.1-R07.9``, ``S12.0--S12.6.-``, ``C00-D49``) or a chapter ("Chapter 20"). Text only: which
items of the release a mention names is `kg.icd10cm`'s job. A bare three-character code outside
parentheses counts only where the words before it introduce codes ("in category H54", "E08, E09 and
E13"), so that names such as "LGMD R12" or "vitamin B12" are not read as codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CODE = r"[A-Z](?:\d[0-9A-Z]|[A-Z]\d)(?:\.[0-9A-Z]{1,4})?"  # G89.3, O9A.2, QA0, T36.0X1
MENTION = re.compile(rf"(?<![0-9A-Za-z.])(?P<first>{CODE})(?:(?:\.?-)?-(?P<last>{CODE}))?(?P<below>\.?-)?"
                     r"(?![0-9A-Za-z])")
CHAPTER = re.compile(r"\b[Cc]hapter (?P<first>[1-9][0-9]?)\b")  # its item is the chapter's number
#: a chapter's description ends with its range: "Diseases of the nervous system (G00-G99)"
CHAPTER_RANGE = re.compile(rf"\(({CODE}-{CODE})\)$")
#: words after which a bare code outside parentheses is a code
INTRODUCERS = frozenset("category categories code codes to in under from and or except see with".split())
LAST_WORD = re.compile(r"([A-Za-z]+)\W*$")


@dataclass(frozen=True)
class Mention:
    """One mention: as written, its first code (a chapter's number), and the last code of a range (None for one
    code)."""

    text: str
    first: str
    last: str | None = None


def mentions(text: str) -> list[Mention]:
    """The code, range and chapter mentions of a note's text, in the order they are written."""
    found = [(match.start(), Mention(match[0], match["first"])) for match in CHAPTER.finditer(text)]
    for match in MENTION.finditer(text):
        bare = match["last"] is None and match["below"] is None and "." not in match["first"]
        if bare and not _introduced(text[:match.start()]):
            continue
        found.append((match.start(), Mention(match[0], match["first"], match["last"])))
    return [mention for _, mention in sorted(found, key=lambda pair: pair[0])]


def _introduced(before: str) -> bool:
    """Is a bare code written after this text a code: inside parentheses, after a comma or a word that
    introduces codes?"""
    if before.count("(") > before.count(")"):
        return True
    stripped = before.rstrip()
    if stripped.endswith((",", ";")):
        return True
    word = LAST_WORD.search(stripped)
    return bool(word) and word.group(1).lower() in INTRODUCERS
