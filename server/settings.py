"""The app's settings: one table for the defaults, the environment variables and the README.

`tests/test_settings.py` reads the README's Configuration table and checks every row against this
one and against what the app does, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kg.contract import QUERIES_DIR


@dataclass(frozen=True)
class Setting:
    key: str        # app.config key
    env: str        # environment variable ("" when there is none)
    cast: type
    default: Any


SETTINGS = (
    Setting("MEDCODE_DATA", "MEDCODE_DATA", str, None),           # data directory (None: $MEDCODE_DATA or ./data)
    Setting("MEDCODE_STORE", "MEDCODE_STORE", str, "embedded"),   # or sparql+http://host:port/sparql
    Setting("QUERY_TIMEOUT", "MEDCODE_QUERY_TIMEOUT", float, 10.0),     # seconds a query may run (503 past it)
    Setting("QUERY_MEMORY", "MEDCODE_QUERY_MEMORY", int, 1 << 30),     # bytes a query may add to its process (503)
    Setting("MAX_RESULTS", "MEDCODE_MAX_RESULTS", int, 100_000),        # rows/triples in one answer (400 above)
    Setting("MAX_CONTENT_LENGTH", "MEDCODE_MAX_BODY", int, 1 << 20),    # request-body bytes (413 above)
    Setting("BODY_TIMEOUT", "MEDCODE_BODY_TIMEOUT", float, 10.0),      # seconds a request body may take (408)
    Setting("HEAD_TIMEOUT", "MEDCODE_HEAD_TIMEOUT", float, 5.0),      # seconds a request's head may take (408)
    Setting("PUBLIC_BASE", "MEDCODE_PUBLIC_BASE", str, "https://w3id.org/medcode/"),  # base of minted IRIs
    Setting("EXPORT_TIMEOUT", "MEDCODE_EXPORT_TIMEOUT", float, 60.0),   # seconds an export's query may run
    Setting("EXPORT_MAX_ROWS", "MEDCODE_EXPORT_MAX_ROWS", int, 1_000_000),  # rows in one export
    Setting("ANSWER_CACHE_BYTES", "MEDCODE_ANSWER_CACHE", int, 64 << 20),  # answers kept per process (0: none)
    Setting("EXPORT_CACHE_BYTES", "MEDCODE_EXPORT_CACHE", int, 64 << 20),  # export answers kept per process
    Setting("MEDCODE_SNAPSHOT", "", str, None),  # the snapshot to serve (set by `medcode serve` for its workers)
    Setting("QUERIES_DIR", "", str, QUERIES_DIR),  # named queries (.rq files with a '#+ ' header)
)
DEFAULTS: dict[str, Any] = {s.key: s.default for s in SETTINGS}


def from_environment() -> dict[str, Any]:
    """The settings given as MEDCODE_* environment variables, cast to their types."""
    found = {}
    for setting in SETTINGS:
        if setting.env and setting.env in os.environ:
            try:
                found[setting.key] = setting.cast(os.environ[setting.env])
            except ValueError as exc:
                raise ValueError(f"{setting.env}={os.environ[setting.env]!r} is not a {setting.cast.__name__}") from exc
    return found
