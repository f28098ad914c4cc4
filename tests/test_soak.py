"""The load part of the fault and load suite: a short soak of the real server (bench/soak.py is the long one).

16 clients mix SPARQL lookups, pages, searches, API calls and exports against `medcode serve` (2 gunicorn
workers, a 3 s time limit) for 17 s while a runaway query arrives every 5 s and retires its worker; the
requests queued meanwhile must still be answered. The run's table is in every failure message.

Latency (p99 under 250 ms) and memory growth (under 10 %) are speed and memory targets: they are
asserted by the benchmark (`python -m bench.soak` exits 1 when one is missed), never by a timed test
that a busy CI machine would fail for reasons of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.soak import Run, Settings, soak, table  # noqa: E402

pytestmark = [pytest.mark.embedded_only,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and process groups")]


@pytest.fixture(scope="module")
def run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One 17 s soak (2 s of it warm-up) shared by the checks below."""
    return soak(data_dir, tmp_path_factory.mktemp("soak"), Settings(duration=15, warmup=2))


def test_healthy_requests_all_succeed_while_runaways_retire_workers(run):
    assert run.samples, table(run)
    assert run.errors == [], table(run)
    assert len(run.workers) > 2, "no worker was replaced: " + table(run)



def test_every_runaway_query_is_answered_503_within_the_limit_plus_a_second_beyond_queueing(run):
    """A runaway waits for a thread like any request before its limit starts: on a loaded machine (CI runs
    other tests beside this one) that wait can pass a second, so it is allowed for, as the slowest healthy
    request sent at the same time measured it; the benchmark holds the plain limit + 1 s."""
    assert len(run.trips) >= 3, table(run)
    assert run.late_beyond_queueing == [], table(run)
