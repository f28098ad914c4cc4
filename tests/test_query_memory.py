"""The per-query memory limit: a query that makes its process grow past it is stopped like a runaway."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from server import create_app
from server.store.timelimit import TimeLimitExceeded, resident_bytes, run_with_limit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
MIB = 1 << 20
# ~1 M distinct strings: some 150 MiB more resident memory within two seconds on the full graph
GROWING = ("PREFIX skos: <http://www.w3.org/2004/02/skos/core#> SELECT (COUNT(DISTINCT CONCAT(?n, STR(?k))) AS ?x) "
           "WHERE { VALUES ?k { 1 2 3 4 5 6 7 8 9 10 } ?c skos:notation ?n }")


def allocating(total: int, step: int = 8 * MIB) -> list[bytearray]:
    """Work that allocates `total` bytes in steps (touching every page, so they are resident)."""
    held = []
    while len(held) * step < total:
        held.append(bytearray(b"\x01" * step))
        time.sleep(0.005)
    return held


def test_resident_memory_is_read() -> None:
    assert resident_bytes() > MIB


def test_growth_past_the_limit_stops_the_query_long_before_its_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match="more than 32 MiB of memory"):
        run_with_limit(lambda: allocating(256 * MIB), 60, supervised=False, memory=32 * MIB)
    assert time.monotonic() - started < 30  # the time limit (60 s) did not decide it


def test_unwatched_or_within_the_limit_the_answer_comes_back() -> None:
    assert len(run_with_limit(lambda: allocating(64 * MIB), 60, supervised=False)) == 8
    assert len(run_with_limit(lambda: allocating(16 * MIB), 60, supervised=False, memory=512 * MIB)) == 2


def test_a_query_given_up_at_its_limit_runs_on_at_the_lowest_cpu_priority() -> None:
    runner: list[int] = []

    def runaway() -> None:
        runner.append(threading.get_native_id())
        time.sleep(1.5)

    with pytest.raises(TimeLimitExceeded, match="0.2 s time limit"):
        run_with_limit(runaway, 0.2, supervised=False)
    assert os.getpriority(os.PRIO_PROCESS, runner[0]) == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # the request's thread is untouched
    assert len(run_with_limit(lambda: allocating(8 * MIB), 60, supervised=False)) == 1  # a fresh runner serves


def test_the_endpoint_answers_503_naming_the_memory_limit(data_dir) -> None:
    app = create_app({"MEDCODE_DATA": str(data_dir), "MEDCODE_STORE": "embedded", "QUERY_MEMORY": 16 * MIB,
                      "ANSWER_CACHE_BYTES": 0})
    response = app.test_client().get("/sparql", query_string={"query": GROWING},
                                     headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert "16 MiB of memory" in response.get_data(as_text=True)
    time.sleep(3)  # the unsupervised query thread ends on its own; let it free its memory
