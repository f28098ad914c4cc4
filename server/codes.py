"""What a code is, once for every surface: its normal form, near matches, CURIEs and code-system names."""

from __future__ import annotations

import re
from collections.abc import Iterable

import curies
from rapidfuzz import process
from rapidfuzz.distance import OSA

from kg.contract import ID_BASE, PREFIXES
from kg.search_index import normalise_code  # the one normal form: the index is written with it

#: code system (the path segment under /id/) -> the name people use for it
SYSTEM_LABELS = {"cpt": "CPT", "hcpcs": "HCPCS Level II", "modifier": "Modifier", "icd10cm": "ICD-10-CM"}
SEMAPV = "https://w3id.org/semapv/vocab/"
#: one CURIE map for pages, exports and JSON-LD: the predeclared SPARQL prefixes plus the ICD-10-CM
#: chapter and block namespaces and the SSSOM justification vocabulary (the longest namespace wins)
CURIE_MAP = {**PREFIXES, "icd10cm.block": ID_BASE + "icd10cm/block/",
             "icd10cm.chapter": ID_BASE + "icd10cm/chapter/", "semapv": SEMAPV}
CONVERTER = curies.Converter.from_prefix_map(CURIE_MAP)
__all__ = ["CONVERTER", "CURIE_MAP", "SEMAPV", "SYSTEM_LABELS", "control_character", "curie", "edit_distance",
           "expand", "nearest", "normalise_code", "system_of"]
#: characters no code, name or text a request gives may hold (C0 controls but tab, LF and CR; DEL)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_character(text: str) -> str | None:
    """The first control character in `text` as U+XXXX, or None. `normalise_code` drops every character that
    is not a letter or digit, so a code is checked with this first: "G35\\u0000" is malformed, not G35."""
    found = CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None



def curie(iri: str) -> str:
    """`cpt:96522` for an IRI in a known namespace, else the IRI itself."""
    short = CONVERTER.compress(iri)
    return short if short and not short.endswith(":") else iri


def expand(value: str) -> str:
    """The IRI of a CURIE in the map, else the value unchanged."""
    return (CONVERTER.expand(value) if ":" in value else None) or value


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a transposition counts 1); limit+1 once it is above `limit`."""
    return OSA.distance(a, b, score_cutoff=limit)


def nearest(key: str, candidates: Iterable[str], limit: int, keep: int = 8) -> list[tuple[str, int]]:
    """The candidates within `limit` edits of `key`, nearest first: (candidate, distance)."""
    found = process.extract(key, list(candidates), scorer=OSA.distance, score_cutoff=limit, limit=keep)
    return [(choice, int(score)) for choice, score, _ in found]


def system_of(iri: str) -> str:
    """The code system segment of a code IRI (.../id/icd10cm/G35 -> icd10cm), or ''."""
    return iri[len(ID_BASE):].split("/", 1)[0] if iri.startswith(ID_BASE) else ""
