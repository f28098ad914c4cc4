"""Benchmark: the full ICD-10-CM hierarchy export (~98.5k rows) in every format, over HTTP, cold and warm.

Run on demand:  python bench/bench_exports.py [--data DIR] [--repeat 3]

Each format is fetched through the Flask app (the same path as `GET /export/icd10cm-hierarchy.EXT`,
streamed, the query in a thread of this process under its time limit), consumed chunk by chunk, and
timed from request to last byte, in wall time and in this process's CPU time (the machine is shared:
CPU time is the steadier figure). Cold is a first request: the kept export answers are dropped before it,
so the query runs; warm is a second one, answered from them, so only the writer runs. Prints rows/s
for each, MB/s and the largest chunk (the export is never one big string), plus the query alone (SPARQL
CSV) and each writer alone (CPU time from the query's answer to the last chunk). Peak memory is the
benchmark process's.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NAME = "icd10cm-hierarchy"
T = TypeVar("T")
KEPT = "medcode.exports.answers"  # app.extensions key of the kept export answers (server.exports.run.ANSWERS)


def main() -> None:
    from kg.contract import default_data_dir
    from server import create_app
    from server.exports import CROSSWALKS, FORMATS, export_meta, export_text, row_count, run_crosswalk
    from server.store import get_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="data directory [default: $MEDCODE_DATA or ./data]")
    parser.add_argument("--repeat", type=int, default=3, help="runs per format; the best is reported")
    args = parser.parse_args()
    app = create_app({"MEDCODE_DATA": str(args.data or default_data_dir())})
    client = app.test_client()
    xw = CROSSWALKS[NAME]

    def cold() -> None:
        app.extensions.pop(KEPT, None)

    with app.test_request_context("/"):
        rows = row_count(xw)
        etag = get_store().etag
        query = _best(lambda: run_crosswalk(xw), cold, args.repeat)[:2]
        payload, meta = run_crosswalk(xw), export_meta()

        def write(ext: str, fhir: str) -> float:
            return _best(lambda: sum(map(len, export_text(xw, FORMATS[ext], payload, meta, fhir))), None,
                         args.repeat)[1]

        variants = [(ext, "r5") for ext in FORMATS] + [("fhir.json", "r4b")]
        writers = {(ext, fhir): write(ext, fhir) for ext, fhir in variants}
    print(f"{NAME}: {rows:,} rows; snapshot {etag}")
    print(f"{'query only (SPARQL CSV), cold':<30} {_rates(rows, *query)}")
    for ext, fhir in variants:
        url = f"/export/{NAME}.{ext}{'?fhir=r4b' if fhir == 'r4b' else ''}"
        label = f"{ext}{' (R4B)' if fhir == 'r4b' else ''}"
        for state, before in (("cold", cold), ("warm", None)):
            if before is None:
                _fetch(client, url)  # warm: the answer is kept first
            seconds, cpu, (size, largest, chunks) = _best(partial(_fetch, client, url), before, args.repeat)
            print(f"{label + ', ' + state:<30} {_rates(rows, seconds, cpu)}  {size / seconds / 1e6:6.1f} MB/s  "
                  f"{size / 1e6:5.1f} MB in {chunks:,} chunks (largest {largest / 1024:.0f} KiB)")
        print(f"{label + ', writer alone':<30} {'':>27}{rows / writers[(ext, fhir)]:>9,.0f} rows/s of CPU")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MiB")
    app.extensions["medcode.store"].close()


def _fetch(client, url: str) -> tuple[int, int, int]:
    """Bytes, largest chunk and chunks of one streamed download."""
    response = client.get(url, buffered=False)
    assert response.status_code == 200, response.status_code
    size = largest = chunks = 0
    for chunk in response.response:
        size += len(chunk)
        largest = max(largest, len(chunk))
        chunks += 1
    response.close()
    return size, largest, chunks


def _best(fn: Callable[[], T], before: Callable[[], None] | None, repeat: int) -> tuple[float, float, T]:
    """The least wall and CPU seconds of `fn` in `repeat` runs (`before` each, untimed) and its last result; CPU
    time is this process's, all threads (the query's thread included)."""
    walls, cpus = [], []
    for _ in range(repeat):
        if before:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return min(walls), min(cpus), result


def _rates(rows: int, seconds: float, cpu: float) -> str:
    return f"{seconds:6.2f} s {rows / seconds:>8,.0f} rows/s  CPU {cpu:5.2f} s {rows / cpu:>8,.0f} rows/s"


if __name__ == "__main__":
    main()
