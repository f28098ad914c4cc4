"""One reader of a FHIR operation's input, whichever way it came: GET query arguments, a POST form body,
or a POST `Parameters` resource (application/fhir+json or application/json).

Each operation asks for its parameters by name, R4's first and then R5's where they differ
(`inp.text("code", "sourceCode")`), and gets the value in one shape: text, a boolean, an integer, a
`Coding` or a list of them (a CodeableConcept). A value of the wrong type, a malformed body or a
parameter given twice where one is allowed is a FHIRError 400 `invalid` naming the parameter; a body
of another media type is 415 `not-supported`. In a query string or form a Coding may be written
`system|code` (as HAPI FHIR accepts it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from flask import request

from ..codes import control_character
from .resources import FHIRError

#: Parameters value[x] types read as text
TEXT_TYPES = ("valueCode", "valueUri", "valueString", "valueCanonical", "valueUrl", "valueId", "valueDateTime",
              "valueDate", "valueMarkdown", "valueOid", "valueUuid")
#: Parameters value[x] types read as what they are (the others are refused, naming the parameter)
TYPED = ("valueBoolean", "valueInteger", "valueCoding", "valueCodeableConcept")
#: what a text parameter may be given as ("text": a query string's or form's value)
TEXT_KINDS = ("text", *TEXT_TYPES)
JSON_TYPES = ("application/fhir+json", "application/json")
FORM_TYPE = "application/x-www-form-urlencoded"
#: a value as given: (FHIR type or "text" for a query string or form, the value)
Given = tuple[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Coding:
    """A code in a system, as a Coding or a `system|code` text gives it."""

    system: str | None
    code: str | None
    version: str | None = None
    display: str | None = None


def _invalid(name: str, why: str) -> FHIRError:
    """A 400 about one parameter, naming it in the issue's `expression` too (as FHIR's OperationOutcome asks)."""
    return FHIRError(400, "invalid", f"Parameter '{name}' {why}.", "invalid-data", name)


def _clean(name: str, value: str) -> str:
    """`value` stripped; a control character in it (FHIR strings hold none but tab, CR and LF) is a 400, never
    stripped away, so that "G35\\u0000" is not read as G35."""
    found = control_character(value)
    if found:
        raise _invalid(name, f"holds a control character ({found})")
    return value.strip()


def _text(name: str, given: Given) -> str:
    """A given value that must be text (a code, URI or string), stripped."""
    kind, value = given
    if kind not in TEXT_KINDS or not isinstance(value, str):
        raise _invalid(name, "must be a code, uri or string")
    return _clean(name, value)


def _coding(name: str, value: Any) -> Coding:
    """A Coding from its JSON, every part it has a string."""
    if not isinstance(value, dict):
        raise _invalid(name, "must be a Coding (an object with system and code)")
    parts = {key: value.get(key) for key in ("system", "code", "version", "display")}
    for key, part in parts.items():
        if part is not None and (not isinstance(part, str) or not part.strip()):
            raise _invalid(name, f"has a {key} that is not a non-empty string")
    return Coding(**{key: _clean(name, part) if part else None for key, part in parts.items()})


def _coding_text(name: str, text: str) -> Coding:
    """`system|code` (or a bare code) from a query string or form."""
    system, bar, code = _clean(name, text).rpartition("|")
    if not code or (bar and not system):
        raise _invalid(name, "must be written system|code")
    return Coding(system.strip() or None, code.strip())


def _boolean(name: str, given: Given) -> bool:
    kind, value = given
    if kind == "valueBoolean" and isinstance(value, bool):
        return value
    if kind == "text" and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(name, "must be true or false")


def _integer(name: str, given: Given, minimum: int) -> int:
    kind, value = given
    if kind == "text" and re.fullmatch(r"\s*-?[0-9]{1,9}\s*", value):
        value = int(value)
    elif kind != "valueInteger" or isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, "must be an integer")
    if value < minimum:
        raise _invalid(name, f"must be at least {minimum}")
    return value


def _as_coding(name: str, given: Given) -> Coding:
    kind, value = given
    if kind == "valueCoding":
        return _coding(name, value)
    if kind == "text":
        return _coding_text(name, value)
    raise _invalid(name, "must be a Coding")


def _codings(name: str, given: Given) -> list[Coding]:
    """A CodeableConcept's codings (at least one), or one `system|code` text."""
    kind, value = given
    if kind == "text":
        return [_coding_text(name, value)]
    codings = value.get("coding") if kind == "valueCodeableConcept" and isinstance(value, dict) else None
    if not isinstance(codings, list) or not codings:
        raise _invalid(name, "must be a CodeableConcept with at least one coding")
    return [_coding(name, coding) for coding in codings]


def _entries(body: Any) -> list[tuple[str, Given]]:
    """(name, given) for each entry of a Parameters resource; 400 naming what is wrong."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FHIRError(400, "invalid", "The request body must be a FHIR Parameters resource.", "invalid-data",
                        "Parameters")
    entries = body.get("parameter", [])
    if not isinstance(entries, list):
        raise FHIRError(400, "invalid", "Parameters.parameter must be a list.", "invalid-data", "Parameters.parameter")
    read = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise FHIRError(400, "invalid", f"Parameters.parameter[{index}] has no name.", "invalid-data",
                            f"Parameters.parameter[{index}]")
        kinds = [key for key in entry if key.startswith("value")]
        if len(kinds) > 1:
            raise _invalid(name, "has more than one value[x]")
        if kinds and kinds[0] not in TEXT_TYPES + TYPED:
            raise _invalid(name, f"cannot be a {kinds[0].removeprefix('value')} here")
        if kinds:
            read.append((name, (kinds[0], entry[kinds[0]])))
        elif "resource" in entry or "part" in entry:
            read.append((name, ("resource" if "resource" in entry else "part", entry.get("resource"))))
        else:
            raise _invalid(name, "has no value")
    return read


def _body_entries() -> list[tuple[str, Given]]:
    """The POST body's entries: a form's fields or a Parameters resource's."""
    media_type = (request.mimetype or "").lower()
    if not request.get_data(cache=True):
        return []
    if media_type == FORM_TYPE:
        return [(name, ("text", value)) for name, value in request.form.items(multi=True)]
    if media_type not in JSON_TYPES:
        raise FHIRError(415, "not-supported", f"A POST body must be a Parameters resource ({JSON_TYPES[0]}) or "
                                              f"a form ({FORM_TYPE}), not '{media_type or 'untyped'}'.")
    try:
        body = json.loads(request.get_data(cache=True).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FHIRError(400, "invalid", f"The request body is not JSON: {exc}") from exc
    return _entries(body)


class OperationInput:
    """The parameters of one operation call, looked up by name (R4's first, then R5's)."""

    def __init__(self, entries: list[tuple[str, Given]]) -> None:
        self.given: dict[str, list[Given]] = {}
        for name, value in entries:
            self.given.setdefault(name, []).append(value)

    def names(self) -> set[str]:
        """Every parameter name given."""
        return set(self.given)

    def each_once(self) -> None:
        """400 when any parameter is given more than once (for operations whose parameters all are 0..1)."""
        twice = sorted(name for name, values in self.given.items() if len(values) > 1)
        if twice:
            raise _invalid(twice[0], "may be given once")

    def _one(self, names: tuple[str, ...], read: Callable[[str, Given], T]) -> T | None:
        """`read` (name, value) of the first of `names` given; None when none is; 400 when it is given twice."""
        for name in names:
            values = self.given.get(name)
            if values:
                if len(values) > 1:
                    raise _invalid(name, "may be given once")
                return read(name, values[0])
        return None

    def text(self, *names: str) -> str | None:
        """A code, URI or string, stripped; None when absent."""
        return self._one(names, _text)

    def texts(self, *names: str) -> list[str]:
        """Every value of a repeatable text parameter (e.g. `property`)."""
        return [_text(name, given) for name in names for given in self.given.get(name, [])]

    def boolean(self, *names: str) -> bool | None:
        """true or false; None when absent."""
        return self._one(names, _boolean)

    def integer(self, *names: str, minimum: int = 0) -> int | None:
        """A whole number of at least `minimum`; None when absent."""
        return self._one(names, partial(_integer, minimum=minimum))

    def coding(self, *names: str) -> Coding | None:
        """A Coding (valueCoding, or `system|code` text); None when absent."""
        return self._one(names, _as_coding)

    def codeable_concept(self, *names: str) -> list[Coding] | None:
        """The codings of a CodeableConcept (at least one); None when absent."""
        return self._one(names, _codings)


def asked_coding(given: OperationInput, code: tuple[str, ...] = ("code",), system: tuple[str, ...] = ("system",),
                 coding: tuple[str, ...] = ("coding",)) -> tuple[Coding | None, str]:
    """The code an operation is about, given as code + system (+ version, display) or as a Coding, and
    where its parts are named in issues ("" for the bare parameters, "Coding." for a Coding); None when
    neither is given. Both at once is a 400."""
    as_coding = given.coding(*coding)
    bare = given.text(*code)
    version = given.text("version")
    if as_coding is not None and bare is not None:
        raise _invalid(coding[0], f"cannot be given with '{code[0]}'")
    if as_coding is not None:
        return Coding(as_coding.system or given.text(*system), as_coding.code, as_coding.version or version,
                      as_coding.display), "Coding."
    if bare is None:
        return None, ""
    return Coding(given.text(*system), bare, version, given.text("display")), ""


def read_input() -> OperationInput:
    """The current request's operation input: query arguments, then (for a POST) the body's parameters."""
    entries: list[tuple[str, Given]] = [(name, ("text", value)) for name, value in request.args.items(multi=True)]
    if request.method == "POST":
        entries += _body_entries()
    return OperationInput(entries)
