"""Benchmark: the full ICD-10-CM hierarchy export (~98.5k rows) in every format, over HTTP.

Run on demand:  python bench/bench_exports.py [--data DIR] [--repeat 3]

Each format is fetched through the Flask app (the same path as `GET /export/icd10cm-hierarchy.EXT`,
streamed, with the query in a worker process), consumed chunk by chunk, and timed from request to
last byte. Prints rows/s, MB/s and the largest chunk (the export is never one big string), plus the
query alone (worker + SPARQL CSV) and each writer alone (CPU time from the query's answer to the last
chunk) for comparison: the export's rate is bounded by the slower of the two. Peak memory is the benchmark process's.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NAME = "icd10cm-hierarchy"


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
    with app.test_request_context("/"):
        rows = row_count(xw)
        etag = get_store().etag
        best = min(_timed(lambda: run_crosswalk(xw)) for _ in range(args.repeat))
        payload, meta = run_crosswalk(xw), export_meta()

        def write(ext: str, fhir: str) -> float:
            return min(_cpu(lambda: sum(map(len, export_text(xw, FORMATS[ext], payload, meta, fhir))))
                       for _ in range(args.repeat))

        variants = [(ext, "r5") for ext in FORMATS] + [("fhir.json", "r4b")]
        writers = {(ext, fhir): write(ext, fhir) for ext, fhir in variants}
    print(f"{NAME}: {rows:,} rows; snapshot {etag}")
    print(f"{'query only (worker, SPARQL CSV)':<34} {best:6.2f} s  {rows / best:>9,.0f} rows/s")
    variants = [(ext, "") for ext in FORMATS] + [("fhir.json", "?fhir=r4b")]
    for ext, query in variants:
        results = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            response = client.get(f"/export/{NAME}.{ext}{query}", buffered=False)
            assert response.status_code == 200, response.status_code
            size = largest = chunks = 0
            for chunk in response.response:
                size += len(chunk)
                largest = max(largest, len(chunk))
                chunks += 1
            response.close()
            results.append((time.perf_counter() - start, size, largest, chunks))
        seconds, size, largest, chunks = min(results)
        label = f"{ext}{' (R4B)' if query else ''}"
        writer = writers[(ext, "r4b" if query else "r5")]
        print(f"{label:<34} {seconds:6.2f} s  {rows / seconds:>9,.0f} rows/s  {size / seconds / 1e6:6.1f} MB/s  "
              f"{size / 1e6:6.1f} MB in {chunks:,} chunks (largest {largest / 1024:.0f} KiB); "
              f"writer alone {rows / writer:,.0f} rows/s of CPU")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MiB")
    app.extensions["medcode.store"].close()


def _cpu(fn) -> float:
    """CPU seconds of `fn` in this process (the writers run in the request's thread)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
