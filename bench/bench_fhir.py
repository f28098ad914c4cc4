"""Benchmark: the FHIR terminology operations against their targets, beside the same answer asked of the
SPARQL endpoint, in one table.

Run on demand (not a test):

    python -m bench.bench_fhir [--data data] [--repeat 200] [--virtuoso]

Each store is measured in a child process holding one app (`create_app`, the answer cache off so that
every request runs its queries), through the app's WSGI test client (no network): `repeat` requests
per operation after warm-ups, codes and offsets varying request to request: wall p50 / p99, and the
process's CPU p50 (query threads included), which load inflates far less. The peer of each row is the
same answer (the same codes and displays, or the same facts) asked as one SPARQL query of /sparql in the
same process; the ratio is the peer's p50 over ours. Targets (issue 15): $lookup p50 < 5 ms, $expand of
isa/G35 < 20 ms, a 100-code page of the whole ICD-10-CM expansion < 50 ms. `--virtuoso` also runs
everything in remote mode on a private Virtuoso (Debian virtuoso-opensource); `--engine URL` on an
engine that already serves the snapshot. In remote mode the first request writes the search index from
the engine's rows into a temporary cache (the warm-ups pay it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from helpers import free_port  # noqa: E402
from virtuoso import Virtuoso, available  # noqa: E402

from bench.ncci_synthetic import measure_in_child  # noqa: E402
from kg.contract import current_snapshot  # noqa: E402
from kg.publish import publish  # noqa: E402

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
LOOKUP_CODES = ("G35", "G89.3", "G35.A", "E11.9", "Z45.1", "S82.001A", "C18.9", "I69.351")
ICD_CODES = 98186  # the page offsets are drawn below this (the total is checked in the run)
PREFIXES = ("PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\nPREFIX mc: <https://w3id.org/medcode/ontology#>\n"
            "PREFIX icd10cm: <https://w3id.org/medcode/id/icd10cm/>\n")
#: the peers: what each operation answers, as one SPARQL query ({code} / {offset} filled per request)
PEER_LOOKUP = PREFIXES + """SELECT ?display ?billable ?parent ?child WHERE {{
  ?c skos:notation "{code}" ; skos:inScheme <https://w3id.org/medcode/id/icd10cm> ; skos:prefLabel ?display .
  OPTIONAL {{ ?c mc:billable ?billable }} OPTIONAL {{ ?c skos:broader/skos:notation ?parent }}
  OPTIONAL {{ ?c skos:narrower/skos:notation ?child }} }}"""
PEER_SUBTREE = PREFIXES + """SELECT ?code ?display ?billable WHERE {{
  {{ BIND(icd10cm:G35 AS ?c) }} UNION {{ ?c skos:broaderTransitive icd10cm:G35 }}
  ?c skos:notation ?code ; skos:prefLabel ?display . OPTIONAL {{ ?c mc:billable ?billable }} }} ORDER BY ?code"""
PEER_PAGE = PREFIXES + """SELECT ?code ?display WHERE {{
  ?c skos:inScheme <https://w3id.org/medcode/id/icd10cm> ; a mc:Code ; skos:notation ?code ; skos:prefLabel ?display
}} ORDER BY ?code LIMIT 100 OFFSET {offset}"""


def operations(rng: random.Random) -> list[tuple[str, str, object, str | None, object]]:
    """(row, target, request maker, peer query template or None, peer filler): each maker gives
    (method, url, JSON body or None)."""
    def page(_: int):
        offset = rng.randrange(ICD_CODES - 100)
        return "GET", f"/fhir/ValueSet/$expand?url={ICD}?fhir_vs&count=100&offset={offset}", None

    def lookup(i: int):
        return "GET", f"/fhir/CodeSystem/$lookup?system={ICD}&code={LOOKUP_CODES[i % len(LOOKUP_CODES)]}", None

    def translate(_: int):
        return "POST", "/fhir/ConceptMap/$translate", {"resourceType": "Parameters", "parameter": [
            {"name": "system", "valueUri": CPT}, {"name": "code", "valueCode": "62362"},
            {"name": "targetsystem", "valueUri": HCPCS}]}

    return [
        ("$lookup (ICD-10-CM, 8 codes in turn)", "p50 < 5 ms", lookup, PEER_LOOKUP,
         lambda i: {"code": LOOKUP_CODES[i % len(LOOKUP_CODES)]}),
        ("$expand isa/G35 (11 codes)", "p50 < 20 ms",
         lambda _: ("GET", f"/fhir/ValueSet/$expand?url={ICD}?fhir_vs=isa/G35", None), PEER_SUBTREE, lambda _: {}),
        ("$expand ICD-10-CM ?fhir_vs, 100 codes at a random offset", "p50 < 50 ms", page, PEER_PAGE,
         lambda _: {"offset": rng.randrange(ICD_CODES - 100)}),
        ("$expand isa/S82, 1,000-code page (3,346 codes)", "",
         lambda i: ("GET", f"/fhir/ValueSet/$expand?url={ICD}?fhir_vs=isa/S82&count=1000&offset={1000 * (i % 4)}",
                    None), None, None),
        ("$expand ICD-10-CM filter=sclerosis, count 20", "",
         lambda _: ("GET", f"/fhir/ValueSet/$expand?url={ICD}?fhir_vs&filter=sclerosis&count=20", None), None, None),
        ("ValueSet/$validate-code G35.B1 in isa/G35", "",
         lambda _: ("GET", f"/fhir/ValueSet/$validate-code?url={ICD}?fhir_vs=isa/G35&code=G35.B1", None), None, None),
        ("$translate 62362 -> HCPCS (POST Parameters)", "", translate, None, None),
    ]


def percentiles(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))]


def _timed(send, count: int, warm: int = 3) -> tuple[list[float], list[float]]:
    """(wall times, CPU times of the process) of `count` requests after `warm` ones: on a shared machine
    the CPU time is the figure that load does not inflate (much)."""
    wall, cpu = [], []
    for i in range(count + warm):
        started, used = time.perf_counter(), time.process_time()
        send(i)
        if i >= warm:
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
    return wall, cpu


def _measure(store_setting: str, data_dir: str, repeat: int, peer_repeat: int, out: mp.Queue) -> None:
    """In a child process: each operation `repeat` times, its peer `peer_repeat` times."""
    from server import create_app

    app = create_app({"MEDCODE_STORE": store_setting, "MEDCODE_DATA": data_dir, "ANSWER_CACHE_BYTES": 0,
                      "QUERY_TIMEOUT": 120})
    client = app.test_client()
    rng = random.Random(15)
    rows = []
    for name, target, make, peer, fill in operations(rng):
        def send(i: int, make=make) -> None:
            method, url, body = make(i)
            answer = client.open(url, method=method, data=json.dumps(body) if body else None,
                                 content_type="application/fhir+json" if body else None)
            assert answer.status_code == 200, (url, answer.get_data(as_text=True)[:300])

        wall, cpu = _timed(send, repeat)
        ours = (*percentiles(wall), statistics.median(cpu))
        theirs: tuple[float, float] | str | None = None
        if peer is not None:
            def ask(i: int, peer=peer, fill=fill) -> None:
                answer = client.post("/sparql", data={"query": peer.format(**fill(i))},
                                     headers={"Accept": "application/sparql-results+json"})
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code}: {answer.get_data(as_text=True)[:120]}")

            try:
                theirs = percentiles(_timed(ask, peer_repeat, warm=1)[0])
            except RuntimeError as exc:  # e.g. Virtuoso refuses a sorted OFFSET past 10,000 rows
                theirs = f"refused ({exc})"
        rows.append((name, target, ours, theirs))
    out.put(rows)


def measure(store_setting: str, data_dir: Path, repeat: int, peer_repeat: int) -> list:
    return measure_in_child(_measure, store_setting, data_dir, repeat, peer_repeat)


def print_table(results: list[tuple[str, list]]) -> None:
    print("\n| store | operation | target | ours p50 / p99 ms | CPU p50 ms | the same through /sparql p50 ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for store, rows in results:
        for name, target, (p50, p99, cpu), peer in rows:
            met = "" if not target else (" ✓" if p50 * 1000 < float(target.split("<")[1].split()[0]) else " ✗")
            peer_text = peer if isinstance(peer, str) else f"{peer[0] * 1000:.1f}" if peer else "-"
            ratio = f"{peer[0] / p50:.1f}x" if peer and not isinstance(peer, str) else "-"
            print(f"| {store} | {name} | {target}{met} | {p50 * 1000:.1f} / {p99 * 1000:.1f} | {cpu * 1000:.1f} | "
                  f"{peer_text} | {ratio} |")
    print(f"\n(in-process WSGI requests, answer cache off; CPU: the process's, query threads included; "
          f"load average at the start {STARTED_AT_LOAD}, at the end {_load()} on {os.cpu_count()} cores: the "
          "machine is shared, quote ratios)")


def _load() -> str:
    return " / ".join(f"{figure:.1f}" for figure in os.getloadavg())


STARTED_AT_LOAD = _load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="A built data directory.")
    parser.add_argument("--repeat", type=int, default=200, help="Requests per operation.")
    parser.add_argument("--peer-repeat", type=int, default=5, help="SPARQL peer queries per operation (slow ones).")
    parser.add_argument("--virtuoso", action="store_true", help="Also measure remote mode on a private Virtuoso.")
    parser.add_argument("--engine", default=None, help="Also measure remote mode on this SPARQL endpoint, which "
                                                       "already serves the snapshot (medcode publish).")
    args = parser.parse_args()
    snapshot = current_snapshot(args.data)
    if snapshot is None:
        sys.exit(f"no snapshot in {args.data}; run `medcode build` first")
    if args.virtuoso and not available():
        sys.exit("virtuoso-opensource is not installed (apt-get install virtuoso-opensource)")
    results = [("embedded", measure("embedded", args.data, args.repeat, args.peer_repeat))]
    print_table(results)  # now: the remote runs take minutes more
    if args.engine:
        work = Path(tempfile.mkdtemp(prefix="medcode-bench-fhir-"))  # the app's cache: the index it writes
        results.append(("remote", measure(f"sparql+{args.engine}", work, args.repeat, args.peer_repeat)))
    if args.virtuoso:
        work = Path(tempfile.mkdtemp(prefix="medcode-bench-fhir-"))
        engine = Virtuoso(work / "virtuoso", free_port(), free_port())
        with engine:
            publish(snapshot, engine.url, user=engine.user, password=engine.password, echo=lambda _line: None)
            print("published to virtuoso", flush=True)
            results.append(("virtuoso", measure(f"sparql+{engine.url}", work, args.repeat, args.peer_repeat)))
    if len(results) > 1:
        print_table(results)


if __name__ == "__main__":
    main()
