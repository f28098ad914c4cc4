"""Benchmark: the claim check (POST /check's rules) on a 10-line claim, embedded and on Virtuoso, at the
real size and with the 2-million-pair synthetic NCCI table (bench/ncci_synthetic.py), in one table.

Run on demand (not a test; Virtuoso needs the Debian package virtuoso-opensource):

    python -m bench.bench_check [--data data] [--pairs 2000000] [--codes 15000] [--repeat 50] [--work DIR]

Each store is measured in a child process holding one app (`create_app`, the answer cache off so that
every run evaluates the rules): `server.check.check` on the claim, `repeat` runs after 3 warm-ups, the
p50 and p99 of the whole check (and the p50 of the CPU time it takes in the app's process) and of each rule's
queries run alone (load times: bench/bench_stores.py).
The real graph's claim is ten pump-family lines with units, modifiers and diagnoses; on the synthetic
table it is the five codes with the most edits (the Zipf skew's head), five ordinary ones, and the same
diagnoses.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import shutil
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

from bench.ncci_synthetic import add_scale_options, measure_in_child, notation, synthetic_data  # noqa: E402
from kg.contract import current_snapshot, read_meta  # noqa: E402
from kg.publish import PublishError, publish  # noqa: E402

DATE = "2026-03-02"
#: (code, units, modifiers, diagnoses) of the real graph's ten lines
REAL_LINES = [("62369", 1, (), ("G89.3",)), ("95990", 1, ("59",), ("Z45.1",)), ("95991", 1, (), ()),
              ("62367", 1, ("XU",), ("G35",)), ("62368", 1, (), ()), ("62370", 1, (), ()),
              ("62362", 1, (), ("G89.29",)), ("62350", 1, (), ()), ("96522", 2, (), ("C18.9",)), ("96521", 1, (), ())]
SYNTHETIC_CODES = (0, 1, 2, 3, 4, 100, 1000, 5000, 9000, 14000)


def claim(synthetic: bool):
    from server.check.claim import Claim, Line

    lines = [Line(notation(i) if synthetic else code, modifiers, units, diagnoses)
             for i, (code, units, modifiers, diagnoses) in zip(SYNTHETIC_CODES, REAL_LINES, strict=True)]
    return Claim(datetime.date.fromisoformat(DATE), "practitioner", tuple(lines))


def percentiles(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))]


def _measure(store_setting: str, data_dir: str, synthetic: bool, repeat: int, out: mp.Queue) -> None:
    """In a child process: the whole check and each rule's query, `repeat` times after warm-ups."""
    from server import create_app
    from server.check import check
    from server.check.dated import judge_diagnoses
    from server.check.rules import current_rules
    from server.check.tables import bound_queries
    from server.store import run_query

    app = create_app({"MEDCODE_STORE": store_setting, "MEDCODE_DATA": data_dir, "ANSWER_CACHE_BYTES": 0,
                      "QUERY_TIMEOUT": 120})
    the_claim = claim(synthetic)
    with app.test_request_context():
        whole, cpu, per_rule, findings = [], [], {}, 0
        for i in range(repeat + 3):
            started, used = time.perf_counter(), time.process_time()
            findings = len(check(the_claim).findings)
            if i >= 3:
                whole.append(time.perf_counter() - started)
                cpu.append(time.process_time() - used)
        def queries(texts: list[str]) -> list[bytes]:
            return [run_query(text, fmt="json", named=None) for text in texts]

        parts = [(r.query.name, queries, bound_queries(r.query, r.table, the_claim, r.together))
                 for r in current_rules()]
        for name, work, given in [*parts, ("(dated diagnoses)", judge_diagnoses, the_claim)]:
            for i in range(max(repeat // 2, 5) + 2):
                started, used = time.perf_counter(), time.process_time()
                work(given)
                if i >= 2:
                    per_rule.setdefault(name, ([], []))[0].append(time.perf_counter() - started)
                    per_rule[name][1].append(time.process_time() - used)
    out.put((percentiles(whole), percentiles(cpu), {name: (percentiles(t), percentiles(c)[0])
                                                    for name, (t, c) in per_rule.items()}, findings))


def measure(store_setting: str, data_dir: Path, synthetic: bool, repeat: int) -> tuple:
    return measure_in_child(_measure, store_setting, data_dir, synthetic, repeat)


def _datasets(args: argparse.Namespace, real: Path, work: Path) -> list[tuple[str, Path, bool]]:
    datasets = [] if args.skip_real else [("real graph", args.data, False)]
    if args.pairs:
        datasets.append((f"+{args.pairs / 1e6:g}M NCCI pairs", synthetic_data(real, work, args.pairs, args.codes),
                         True))
    return datasets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scale_options(parser, repeat=50)
    parser.add_argument("--work", type=Path, default=None, help="Where to write (or find) the synthetic snapshot.")
    parser.add_argument("--embedded-only", action="store_true", help="Do not start Virtuoso.")
    args = parser.parse_args()
    real = current_snapshot(args.data)
    if real is None:
        sys.exit(f"no snapshot in {args.data}; run `medcode build` first")
    use_virtuoso = not args.embedded_only
    if use_virtuoso and not available():
        sys.exit("virtuoso-opensource is not installed (apt-get install virtuoso-opensource), or pass --embedded-only")
    work = args.work or Path(tempfile.mkdtemp(prefix="medcode-bench-check-"))
    rows = []
    for label, data_dir, synthetic in _datasets(args, real, work):
        snapshot = current_snapshot(data_dir)
        triples = sum(read_meta(snapshot)["triples"].values())
        rows.append((label, triples, "embedded", *measure("embedded", data_dir, synthetic, args.repeat)))
        print(f"{label}: embedded done", flush=True)
        if not use_virtuoso:
            continue
        engine_dir = work / f"virtuoso-{len(rows)}"
        shutil.rmtree(engine_dir, ignore_errors=True)  # a reused --work holds the last run's database, which replays
        engine = Virtuoso(engine_dir, free_port(), free_port(), memory_mb=args.virtuoso_memory_mb)
        with engine:
            started = time.perf_counter()
            try:
                publish(snapshot, engine.url, user=engine.user, password=engine.password, echo=lambda _line: None)
            except PublishError as exc:
                print(f"{label}: virtuoso publish failed after {time.perf_counter() - started:.0f} s: {exc}")
                continue
            print(f"{label}: published to virtuoso in {time.perf_counter() - started:.0f} s", flush=True)
            rows.append((label, triples, "virtuoso",
                         *measure(f"sparql+{engine.url}", data_dir, synthetic, args.repeat)))
        print(f"{label}: virtuoso done", flush=True)
    print_table(rows)


def print_table(rows: list[tuple]) -> None:
    load = Path("/proc/loadavg")
    print(f"\nload average: {' '.join(load.read_text().split()[:3]) if load.exists() else 'not known'}")
    print("\n| data | triples | store | 10-line claim p50 / p99 ms | CPU p50 ms | findings | slowest rule p50 / p99 ms "
          "| rules' p50 summed ms |")
    print("|---|---|---|---|---|---|---|---|")
    for label, triples, store, (p50, p99), (c50, _), per_rule, findings in rows:
        name, ((r50, r99), _) = max(per_rule.items(), key=lambda item: item[1][0][0])
        total = sum(p for (p, _), _ in per_rule.values())
        print(f"| {label} | {triples:,} | {store} | {p50 * 1000:.1f} / {p99 * 1000:.1f} | {c50 * 1000:.1f} "
              f"| {findings} | {name}: {r50 * 1000:.1f} / {r99 * 1000:.1f} | {total * 1000:.1f} |")
    for label, _, store, *_, per_rule, _ in rows:
        print(f"\n{label}, {store}: each rule alone, p50 ms (CPU p50 ms): " + ", ".join(
            f"{name} {r50 * 1000:.1f} ({c50 * 1000:.1f})" for name, ((r50, _), c50) in per_rule.items()))
    print("\n(the whole check: every rule's queries through the app's store, side by side, the answer cache off; "
          f"{len(rows[0][5]) - 1 if rows else 0} rules and the diagnoses' dated judgement, each also timed alone; "
          "CPU: the app process's, all its threads, which on a shared machine says more than the wall clock; "
          "a remote engine's is not in it)")


if __name__ == "__main__":
    main()
