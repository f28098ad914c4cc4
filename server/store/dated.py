"""`as_of=YYYY-MM-DD`: the dataset of the graph's state on a date, a list of graphs (kg.contract.dated_state).

The state on a date is that of the latest ICD-10-CM release the graph holds that took effect on or
before it; its default graph is that release's graphs, so no query is rewritten. A date from the
current release on is the current state itself: the asserted and inferred graphs, as without `as_of`.
"""

from __future__ import annotations

import re
from datetime import date

from kg.contract import DatedState, dated_state, first_dated

from ..http.errors import HTTPError

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_as_of(values: list[str]) -> date | None:
    """The `as_of` of a request (all the values it gave), None when absent; 400 naming it when malformed or
    repeated."""
    if len(values) > 1:
        raise HTTPError(400, "The parameter 'as_of' was given more than once.")
    if not values or values[0] == "":
        return None
    value = values[0]
    try:
        if not ISO_DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPError(400, f"as_of: '{value[:40]}' is not a date (YYYY-MM-DD).") from None


def state_on(meta: dict, when: date, inference: str = "all") -> DatedState:
    """The state on `when` (its release and graphs); 400 naming as_of before the first release the graph holds."""
    state = dated_state(meta, when, inference)
    if state is None:
        first = first_dated(meta)
        if first is None:
            raise HTTPError(400, "as_of: this snapshot holds no dated states (it was built before they existed); "
                                 "rebuild it with `medcode build`.")
        raise HTTPError(400, f"as_of: {when.isoformat()} is before the first ICD-10-CM release the graph holds"
                             f" ({first[0]}, in force from {first[1]}).")
    return state
