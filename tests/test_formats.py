"""Content negotiation answers with the caller's own Format objects, whatever was negotiated before."""

from __future__ import annotations

from server.http.formats import Format, negotiate


def test_equal_formats_of_two_surfaces_stay_apart() -> None:
    # two surfaces define equal Formats of their own and compare the answer by identity ("fmt is JSON");
    # the negotiation cache must never hand one surface the other's object (the export index once
    # answered HTML to Accept: application/json after the API had negotiated the same header).
    first = (Format("html", "text/html"), Format("json", "application/json"))
    second = (Format("html", "text/html"), Format("json", "application/json"))
    assert negotiate(first, "application/json", None) is first[1]
    assert negotiate(second, "application/json", None) is second[1]
    assert negotiate(second, "text/html;q=0.5, application/json", None) is second[1]
    assert negotiate(first, None, None) is first[0]
