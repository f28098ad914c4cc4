"""The HTML form's fields as a claim: one row of fields per line, read into the JSON shape POST /check takes.

A row is `code-N`, `modifiers-N` and `diagnoses-N` (separated by spaces or commas) and `units-N`; rows
without a code are left out. The claim then goes through the same `parse_claim` as JSON, so the form
and the API refuse the same input with the same messages.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.datastructures import MultiDict

from .claim import MAX_LINES, ClaimError

FORM_ROWS = 10  # rows the empty form shows
SPARE_ROWS = 5  # empty rows shown below the filled ones
ROW_FIELDS = ("code", "modifiers", "units", "diagnoses")
ROW = re.compile(r"^code-(\d{1,3})$")


def _filled(form: MultiDict[str, str]) -> list[int]:
    """The numbers of the rows with a code, in order."""
    numbers = sorted(int(m.group(1)) for key in form if (m := ROW.match(key)))
    return [n for n in numbers if form.get(f"code-{n}", "").strip()]


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text) if part]


def _units(text: str) -> Any:
    text = text.strip()
    return 1 if not text else int(text) if re.fullmatch(r"[+-]?\d{1,9}", text) else text


def claim_data(form: MultiDict[str, str]) -> dict[str, Any]:
    """The claim the form describes, in the JSON shape (`parse_claim` checks it); a field given twice is a 400
    naming it (which value was meant cannot be told)."""
    for key in form:
        if len(form.getlist(key)) > 1:
            raise ClaimError(key, "the field is given more than once.")
    data: dict[str, Any] = {"date_of_service": form.get("date_of_service", "").strip(),
                            "lines": [{"code": form[f"code-{n}"].strip(),
                                       "modifiers": _split(form.get(f"modifiers-{n}", "")),
                                       "units": _units(form.get(f"units-{n}", "")),
                                       "diagnoses": _split(form.get(f"diagnoses-{n}", ""))}
                                      for n in _filled(form)]}
    if form.get("setting"):
        data["setting"] = form["setting"]
    return data


def form_rows(form: MultiDict[str, str] | None) -> list[dict[str, str]]:
    """The rows the page shows: the filled ones as they were typed, then empty ones."""
    filled = [{key: form.get(f"{key}-{n}", "") for key in ROW_FIELDS} for n in _filled(form)] if form else []
    empty = max(FORM_ROWS - len(filled), SPARE_ROWS)
    return (filled + [dict.fromkeys(ROW_FIELDS, "") for _ in range(empty)])[:MAX_LINES]
