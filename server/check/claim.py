"""A claim as the check reads it: parsed once from JSON (POST /check, `medcode check`) or the HTML form.

Every problem with the input is a 400 naming the field path (`lines[2].units`), so a client can point
at the field; a claim of more than MAX_LINES lines is a 413 saying the limit. A well-formed code the
graph does not know is not an input error: the check reports it as a finding with near matches.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from kg.namespaces import code_iri

from ..codes import control_character, normalise_code
from ..http.errors import HTTPError

MAX_LINES = 200  # lines in one claim (413 above)
MAX_MODIFIERS = 4  # modifiers on one line (the claim forms' four modifier fields)
MAX_DIAGNOSES = 12  # different diagnoses of one claim (the claim forms' twelve diagnosis fields)
MAX_UNITS = 99_999
SETTINGS = ("practitioner", "outpatient-hospital")  # the NCCI tables: practitioner and outpatient hospital
#: the shape of a code on a claim line: CPT (four digits and a digit or letter) or HCPCS Level II
PROCEDURE_CODE = re.compile(r"^(?:[0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$")
MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")  # without its dot (normalise_code form)
CLAIM_FIELDS = ("date_of_service", "setting", "lines")
LINE_FIELDS = ("code", "modifiers", "units", "diagnoses")


class ClaimError(HTTPError):
    """The claim cannot be read: a 400 (413 over the line limit) whose message starts with the field path."""

    def __init__(self, path: str, message: str, status: int = 400) -> None:
        super().__init__(status, f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class Line:
    """One claim line: a procedure code, its modifiers, units and the diagnoses it points to."""

    code: str
    modifiers: tuple[str, ...] = ()
    units: int = 1
    diagnoses: tuple[str, ...] = ()

    @property
    def node(self) -> str:
        """The IRI of the line's code: a CPT code starts with a digit, a HCPCS Level II code with a letter."""
        return str(code_iri("cpt" if self.code[:1].isdigit() else "hcpcs", self.code))


def modifier_iri(modifier: str) -> str:
    return str(code_iri("modifier", modifier))


def diagnosis_iri(diagnosis: str) -> str:
    return str(code_iri("icd10cm", diagnosis))


@dataclass(frozen=True)
class Claim:
    """What the check needs: the date of service, the setting (which NCCI tables apply) and the lines."""

    date_of_service: datetime.date
    setting: str = "practitioner"
    lines: tuple[Line, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The claim in the JSON shape POST /check reads."""
        return {"date_of_service": self.date_of_service.isoformat(), "setting": self.setting,
                "lines": [{"code": ln.code, "modifiers": list(ln.modifiers), "units": ln.units,
                           "diagnoses": list(ln.diagnoses)} for ln in self.lines]}


def parse_claim(data: Any) -> Claim:
    """The claim in `data` (decoded JSON); a ClaimError naming the first field that is wrong."""
    if not isinstance(data, dict):
        raise ClaimError("$", "a claim is a JSON object with date_of_service, setting and lines")
    _known_fields("", data, CLAIM_FIELDS)
    if "date_of_service" not in data:
        raise ClaimError("date_of_service", "is required (YYYY-MM-DD)")
    setting = data.get("setting", "practitioner")
    if setting not in SETTINGS:
        raise ClaimError("setting", f"{_shown(setting)} is not one of {', '.join(SETTINGS)}")
    lines = data.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ClaimError("lines", "is required: a list of one or more lines")
    if len(lines) > MAX_LINES:
        raise ClaimError("lines", f"a claim has at most {MAX_LINES} lines; this one has {len(lines)}", 413)
    parsed = tuple(_line(f"lines[{i}]", line) for i, line in enumerate(lines))
    _few_diagnoses(parsed)
    return Claim(_date(data["date_of_service"]), setting, parsed)


def _few_diagnoses(lines: tuple[Line, ...]) -> None:
    seen: set[str] = set()
    for i, line in enumerate(lines):
        seen.update(line.diagnoses)
        if len(seen) > MAX_DIAGNOSES:
            raise ClaimError(f"lines[{i}].diagnoses", f"a claim points to at most {MAX_DIAGNOSES} different diagnoses")


def _known_fields(path: str, data: dict[str, Any], known: tuple[str, ...]) -> None:
    for name in data:
        if name not in known:
            raise ClaimError(f"{path}.{name}" if path else name, f"unknown field (expected {', '.join(known)})")


def _shown(value: Any) -> str:
    """A value as the message quotes it (cut short: it may be anything a client sent)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _date(value: Any) -> datetime.date:
    try:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ClaimError("date_of_service", f"{_shown(value)} is not a date (YYYY-MM-DD)") from None


def _line(path: str, data: Any) -> Line:
    if not isinstance(data, dict):
        raise ClaimError(path, "a line is an object with code, modifiers, units and diagnoses")
    _known_fields(path, data, LINE_FIELDS)
    if "code" not in data:
        raise ClaimError(f"{path}.code", "is required")
    code = _code(f"{path}.code", data["code"], PROCEDURE_CODE, "a CPT or HCPCS Level II code (e.g. 62369, J7799)")
    modifiers = _codes(f"{path}.modifiers", data.get("modifiers", []), MAX_MODIFIERS, MODIFIER,
                       "a modifier (two letters or digits, e.g. 59, XU)")
    diagnoses = _codes(f"{path}.diagnoses", data.get("diagnoses", []), MAX_DIAGNOSES, ICD10CM,
                       "an ICD-10-CM code (e.g. G89.3)")
    return Line(code, modifiers, _units(f"{path}.units", data.get("units", 1)),
                tuple(_dotted(d) for d in diagnoses))


def _code(path: str, value: Any, shape: re.Pattern[str], kind: str) -> str:
    if isinstance(value, str) and control_character(value):
        raise ClaimError(path, f"holds a control character ({control_character(value)}): {_shown(value)} cannot be "
                               f"{kind}")
    key = normalise_code(value) if isinstance(value, str) else ""
    if not shape.match(key):
        raise ClaimError(path, f"{_shown(value)} cannot be {kind}")
    return key


def _codes(path: str, values: Any, most: int, shape: re.Pattern[str], kind: str) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise ClaimError(path, f"a list of codes, each {kind}")
    if len(values) > most:
        raise ClaimError(path, f"at most {most} on one line")
    return tuple(dict.fromkeys(_code(f"{path}[{i}]", v, shape, kind) for i, v in enumerate(values)))


def _units(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UNITS:
        raise ClaimError(path, f"{_shown(value)} is not a whole number of units from 1 to {MAX_UNITS}")
    return value


def _dotted(key: str) -> str:
    """An ICD-10-CM code with its dot (G893 -> G89.3), as the graph's notations write it."""
    return key if len(key) == 3 else f"{key[:3]}.{key[3:]}"
