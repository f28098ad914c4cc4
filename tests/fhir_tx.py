"""A small runner for FHIR terminology test cases in the HL7 terminology-ecosystem format
(the `fhir-tx-ecosystem-ig` repository's tests/): a request Parameters resource, and the expected
response as a template that the actual response must match.

A case file (tests/fhir_tx/<group>/<name>.json) holds `name`, `description`, `operation` (lookup,
cs-validate-code, validate-code, subsumes, expand, translate, metadata, term-caps), optionally
`http-code` (200 by default; "4xx" matches any client error), `methods` (["POST", "GET"] by default:
the request is sent as a POST Parameters resource and, when every value is a primitive or a Coding, as
a GET query string too), `query` (extra query arguments, e.g. {"fhir": "r4b"}), `request` and `response`.

Matching follows the HL7 runner (org.hl7.fhir.utilities CompareUtilities and the IG's testcases page):
* strings: `$$`, `$id$`, `$uuid$`, `$url$`, `$token$`, `$string$`, `$date$`, `$instant$`, `$semver$`,
  `$version$` (also inside a longer string), `$choice:a|b$`, `$fragments:a|b$` (case-insensitive), and
  `$external:N:a|b$` (no externals file here: its fragments, or anything when it has none);
* objects: every actual property must be expected and every expected one present, except those the
  object lists in `$optional-properties$` (`*`: all); `fhir_comments` is ignored; `$count-arrays$`
  compares only the length of the arrays it names;
* arrays: in order, an expected entry with `$optional$` may be missing (`true`, a `!mode` other than
  ours, a mode we are not in, `version:N` of our version); `$only$` entries not for us must be absent.
  Parameters' `parameter` and `part` arrays are compared as sets (the HL7 runner sorts them first).
Before comparing, server detail is removed from the actual response as the HL7 runner does: `meta`,
narrative `text`, and `diagnostics` of OperationOutcome issues.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

CASES = Path(__file__).parent / "fhir_tx"
MODES = {"general"}
URLS = {
    "lookup": "/fhir/CodeSystem/$lookup", "cs-validate-code": "/fhir/CodeSystem/$validate-code",
    "validate-code": "/fhir/ValueSet/$validate-code", "subsumes": "/fhir/CodeSystem/$subsumes",
    "expand": "/fhir/ValueSet/$expand", "translate": "/fhir/ConceptMap/$translate",
    "metadata": "/fhir/metadata", "term-caps": "/fhir/metadata?mode=terminology",
}
PATTERNS = {
    "$$": r".*",
    "$id$": r"[A-Za-z0-9\-.]{1,64}",
    "$uuid$": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "$url$": r"(https?|urn|ftp):\S+",
    "$token$": r"\S+",
    "$string$": r"\S(.*\S)?",
    "$date$": r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?",
    "$instant$": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
    "$semver$": r"[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?",
}
MARKERS = ("$optional$", "$only$", "$optional-properties$", "$count-arrays$", "fhir_comments")


@dataclass
class Case:
    """One test case as read from its file."""

    path: Path
    name: str
    operation: str
    request: dict[str, Any] | None
    response: dict[str, Any]
    http_code: str = "200"
    methods: list[str] = field(default_factory=lambda: ["POST", "GET"])
    query: dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.path.parent.name


def load_cases(root: Path = CASES) -> list[Case]:
    """Every case under `root`, by group and name."""
    cases = []
    for path in sorted(root.glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        reads = data["operation"] in ("metadata", "term-caps")
        methods = data.get("methods") or (["GET"] if reads else ["POST", "GET"])
        cases.append(Case(path, data["name"], data["operation"], data.get("request"), data["response"],
                          str(data.get("http-code", "200")), methods, data.get("query", {})))
    return cases


def _query_value(entry: dict[str, Any]) -> str | None:
    """A Parameters entry as a query-string value, or None when it has no such form."""
    for key, value in entry.items():
        if key == "valueCoding":
            return f"{value.get('system', '')}|{value['code']}" if "version" not in value else None
        if key.startswith("value") and not isinstance(value, (dict, list)):
            return json.dumps(value) if isinstance(value, bool) else str(value)
    return None


def as_query(request: dict[str, Any] | None) -> list[tuple[str, str]] | None:
    """The request Parameters as query arguments, or None when a value cannot be written so."""
    pairs = []
    for entry in (request or {}).get("parameter", []):
        value = _query_value(entry)
        if value is None:
            return None
        pairs.append((entry["name"], value))
    return pairs


def requests_of(case: Case) -> list[tuple[str, str, Any]]:
    """(method, url, JSON body or None) for each way the case is sent."""
    base = URLS[case.operation]
    extra = urlencode(case.query)
    sent = []
    for method in case.methods:
        if method == "POST":
            sent.append(("POST", base + (f"?{extra}" if extra else ""), case.request))
            continue
        pairs = as_query(case.request)
        if pairs is not None:
            joined = "&".join(part for part in (urlencode(pairs), extra) if part)
            sent.append(("GET", base + (("&" if "?" in base else "?") + joined if joined else ""), None))
    return sent


def status_matches(expected: str, actual: int) -> bool:
    """`http-code`: an exact status, or "4xx"-style classes."""
    return str(actual)[0] == expected[0] if expected.endswith("xx") else str(actual) == expected


def scrub(actual: Any) -> Any:
    """The response without server detail: meta, narrative text, OperationOutcome diagnostics."""
    if isinstance(actual, list):
        return [scrub(item) for item in actual]
    if not isinstance(actual, dict):
        return actual
    kept = {}
    for key, value in actual.items():
        if key == "meta" or (key == "text" and isinstance(value, dict) and "div" in value) or key == "diagnostics":
            continue
        kept[key] = scrub(value)
    return kept


class Matcher:
    """Compares an actual response with an expected template; `version` is the server's FHIR version."""

    def __init__(self, version: str, modes: set[str] | None = None) -> None:
        self.version = version
        self.modes = modes or MODES

    def _filter_passes(self, value: Any) -> bool:
        """Does an `$optional$`/`$only$` filter pass for this runner (mode and version)?"""
        if value is True:
            return True
        if not isinstance(value, str):
            return False
        if value.startswith("version:"):
            return self.version.startswith(value.removeprefix("version:"))
        if value.startswith("warning:"):
            return True
        if value.startswith("!"):
            return value[1:] not in self.modes
        return value not in self.modes

    def string(self, expected: str, actual: str) -> bool:
        """Does `actual` match the expected string or template?"""
        if expected.startswith("$") and expected.endswith("$") and len(expected) > 1:
            if expected.startswith("$choice:"):
                return actual in expected[8:-1].split("|")
            if expected.startswith("$fragments:"):
                return all(f.lower() in actual.lower() for f in expected[11:-1].split("|"))
            if expected.startswith("$external:"):
                parts = expected[1:-1].split(":", 2)
                return len(parts) < 3 or all(f.lower() in actual.lower() for f in parts[2].split("|"))
            if expected == "$version$":
                return actual == self.version
            if expected not in PATTERNS:
                raise ValueError(f"unknown template {expected}")
            return re.fullmatch(PATTERNS[expected], actual) is not None
        return actual == expected.replace("$version$", self.version)

    def compare(self, expected: Any, actual: Any, path: str = "") -> str | None:
        """The first difference, or None when `actual` matches."""
        if isinstance(expected, dict) and isinstance(actual, dict):
            return self._objects(expected, actual, path)
        if isinstance(expected, list) and isinstance(actual, list):
            return self._arrays(expected, actual, path)
        if isinstance(expected, str) and isinstance(actual, str):
            return None if self.string(expected, actual) else f"{path}: expected {expected!r}, got {actual!r}"
        if type(expected) is not type(actual) or expected != actual:
            return f"{path}: expected {expected!r}, got {actual!r}"
        return None

    def _objects(self, expected: dict, actual: dict, path: str) -> str | None:
        optional = set(expected.get("$optional-properties$", []))
        counted = set(expected.get("$count-arrays$", []))
        for key, value in actual.items():
            if key == "fhir_comments":
                continue
            if key not in expected:
                return f"{path}: unexpected property {key}"
            if key in counted:
                if len(value) != len(expected[key]):
                    return f"{path}.{key}: expected {len(expected[key])} items, got {len(value)}"
                continue
            found = self.compare(expected[key], value, f"{path}.{key}")
            if found:
                return found
        for key in expected:
            if key not in MARKERS and key not in actual and key not in optional and "*" not in optional:
                return f"{path}: missing property {key}"
        return None

    def _expected_entries(self, expected: list) -> list[tuple[Any, bool]]:
        """(entry, optional) for the entries this runner expects (`$only$` entries not for it dropped)."""
        kept = []
        for entry in expected:
            if isinstance(entry, dict) and "$only$" in entry and not self._only_for_us(entry["$only$"]):
                continue
            kept.append((entry, isinstance(entry, dict) and "$optional$" in entry
                         and self._filter_passes(entry["$optional$"])))
        return kept

    def _only_for_us(self, value: Any) -> bool:
        if isinstance(value, str) and value.startswith("version:"):
            return self.version.startswith(value.removeprefix("version:"))
        if isinstance(value, str) and value.startswith("!"):
            return value[1:] not in self.modes
        return value is True or value in self.modes

    def _arrays(self, expected: list, actual: list, path: str) -> str | None:
        entries = self._expected_entries(expected)
        if path.endswith((".parameter", ".part")):
            return self._unordered(entries, actual, path)
        position = 0
        for index, (entry, optional) in enumerate(entries):
            if position >= len(actual):
                if optional:
                    continue
                return f"{path}[{index}]: missing"
            found = self.compare(entry, actual[position], f"{path}[{index}]")
            if found and not optional:
                return found
            if not found:
                position += 1
        return f"{path}[{position}]: unexpected item" if position < len(actual) else None

    def _unordered(self, entries: list[tuple[Any, bool]], actual: list, path: str) -> str | None:
        left = list(range(len(actual)))
        for entry, optional in entries:
            match = next((i for i in left if self.compare(entry, actual[i], path) is None), None)
            if match is not None:
                left.remove(match)
            elif not optional:
                name = entry.get("name") if isinstance(entry, dict) else entry
                near = [self.compare(entry, actual[i], f"{path}[{i}]") for i in left
                        if isinstance(actual[i], dict) and actual[i].get("name") == name]
                return f"{path}: no match for {name!r}" + (f" ({near[0]})" if near else "")
        if left:
            return f"{path}: unexpected {[actual[i].get('name') for i in left]}"
        return None
