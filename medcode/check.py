"""`medcode check`: a claim checked from the command line, through the same rules and store as POST /check.

    medcode check 62369 95990 --date 2026-03-02 --units 96522=2 --modifier 95990=59 --diagnosis 62369=G89.3

Each CODE is a line. `--units`, `--modifier` and `--diagnosis` take KEY=VALUE, where KEY is a line's code
(every line with that code; a code no line has adds a line) or its number (0, 1, ...); `--diagnosis`
without a key points every line to the diagnosis. `--json FILE` (or `-`) reads a whole claim in POST
/check's shape instead.

Exit status: 0 the claim is clean, 1 a finding denies or warns, 2 the claim or an option is wrong,
3 the check could not run (no snapshot, an unreachable engine, the time limit).
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import IO, Any

import click

from kg.contract import default_data_dir

EXIT_NOT_CLEAN, EXIT_FAILED = 1, 3


class CheckFailed(click.ClickException):
    """The check could not run; exit status 3."""

    exit_code = EXIT_FAILED


def _pairs(values: tuple[str, ...], option: str, keyless: bool = False) -> list[tuple[str | None, str]]:
    pairs = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep and not keyless:
            raise click.UsageError(f"{option} '{item}' is not of the form CODE=VALUE (or LINE=VALUE)")
        pairs.append((key.strip(), value.strip()) if sep else (None, key.strip()))
    return pairs


def _line(code: str) -> dict[str, Any]:
    return {"code": code, "modifiers": [], "units": 1, "diagnoses": []}


def _targets(lines: list[dict[str, Any]], key: str | None, option: str) -> list[dict[str, Any]]:
    """The lines a KEY names: every line when there is none, a line number, or every line with that code (a
    code no line has yet is a new line)."""
    if key is None:
        return lines
    if key.isdigit() and len(key) < 4:
        if int(key) >= len(lines):
            raise click.UsageError(f"{option} {key}=...: the claim has lines 0 to {len(lines) - 1}")
        return [lines[int(key)]]
    chosen = [line for line in lines if line["code"].upper() == key.upper()]
    if not chosen:
        lines.append(_line(key))
        chosen = lines[-1:]
    return chosen


def claim_from_options(codes: tuple[str, ...], date: str | None, setting: str, units: tuple[str, ...],
                       modifiers: tuple[str, ...], diagnoses: tuple[str, ...]) -> dict[str, Any]:
    """The claim the options describe, in POST /check's JSON shape (parse_claim checks it)."""
    lines = [_line(code) for code in codes]
    for key, value in _pairs(units, "--units"):
        for line in _targets(lines, key, "--units"):
            line["units"] = int(value) if value.lstrip("+-").isdigit() else value
    for option, values, field, keyless in (("--modifier", modifiers, "modifiers", False),
                                           ("--diagnosis", diagnoses, "diagnoses", True)):
        for key, value in _pairs(values, option, keyless):
            for line in _targets(lines, key, option):
                line[field] += [v for v in value.replace(",", " ").split() if v]
    if not lines:
        raise click.UsageError("give the claim's codes (medcode check 62369 95990 ...) or --json FILE")
    return {"date_of_service": date or datetime.date.today().isoformat(), "setting": setting, "lines": lines}


def _echo_text(result: Any) -> None:
    counts = {s: sum(1 for f in result.findings if f.severity == s) for s in ("deny", "warn", "info")}
    claim = result.claim
    click.echo(f"Claim of {claim.date_of_service} ({claim.setting}), {len(claim.lines)} line(s): "
               f"{'clean' if result.clean else 'not clean'} - "
               + ", ".join(f"{n} {severity}" for severity, n in counts.items()))
    for f in result.findings:
        click.echo(f"\n{f.severity.upper():<5} {f.rule}  (line{'s' if len(f.lines) != 1 else ''} "
                   f"{', '.join(map(str, f.lines))})")
        click.echo(f"      {f.message}")
        for label, value in (("instead", f.instead), ("edit", f.edit), ("source", f.source)):
            if value:
                click.echo(f"      {label}: {value}")


@click.command("check")
@click.argument("codes", nargs=-1)
@click.option("--date", "date_of_service", default=None, metavar="YYYY-MM-DD",
              help="Date of service [default: today].")
@click.option("--setting", type=click.Choice(["practitioner", "outpatient-hospital"]), default="practitioner",
              show_default=True, help="Which NCCI tables apply.")
@click.option("--units", multiple=True, metavar="CODE=N", help="Units of the lines with CODE (or line number).")
@click.option("--modifier", "modifiers", multiple=True, metavar="CODE=MOD[,MOD]", help="Modifiers of a line.")
@click.option("--diagnosis", "diagnoses", multiple=True, metavar="[CODE=]DX[,DX]",
              help="Diagnoses a line points to (without CODE=: every line).")
@click.option("--json", "claim_file", type=click.File("r"), default=None,
              help="Read the claim as JSON (POST /check's shape) from a file, or - for stdin.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data directory for snapshots [default: $MEDCODE_DATA or ./data].")
@click.option("--store", default="embedded", show_default=True, envvar="MEDCODE_STORE",
              help="'embedded', or sparql+http://host:port/sparql for a remote engine [env: MEDCODE_STORE].")
def check(codes: tuple[str, ...], date_of_service: str | None, setting: str, units: tuple[str, ...],
          modifiers: tuple[str, ...], diagnoses: tuple[str, ...], claim_file: IO[str] | None, fmt: str,
          data_dir: Path | None, store: str) -> None:
    """Check a claim: may these lines be billed together on this date, and why not."""
    from server import create_app
    from server.check import ClaimError, parse_claim
    from server.check import check as check_claim
    from server.http.errors import HTTPError
    from server.store import SnapshotMissing

    try:
        data = json.load(claim_file) if claim_file else claim_from_options(
            codes, date_of_service, setting, units, modifiers, diagnoses)
        claim = parse_claim(data)
    except (ValueError, ClaimError) as exc:
        raise click.UsageError(f"the claim is not right: {exc}") from exc
    try:
        app = create_app({"MEDCODE_DATA": str((data_dir or default_data_dir()).resolve()), "MEDCODE_STORE": store})
        with app.test_request_context():  # findings link code pages, as the form does
            result = check_claim(claim)
    except (SnapshotMissing, HTTPError, OSError) as exc:
        raise CheckFailed(f"the check could not run: {exc}") from exc
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        _echo_text(result)
    if not result.clean:
        sys.exit(EXIT_NOT_CLEAN)
