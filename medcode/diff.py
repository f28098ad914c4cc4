"""`medcode diff`: what changed between two releases of a code system, as `/diff` answers it (CSV or JSON).

    medcode diff --system icd10cm --from 2025-04 --to 2026-04 --format json

The same functions as the HTTP surface over the same store, so the two agree row for row.
"""

from __future__ import annotations

from pathlib import Path

import click

from kg.contract import default_data_dir


@click.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data directory for snapshots [default: $MEDCODE_DATA or ./data].")
@click.option("--system", default="icd10cm", show_default=True, help="The code system.")
@click.option("--from", "earlier", default=None, metavar="RELEASE",
              help="A release (YYYY-MM) or a date (YYYY-MM-DD) [default: the last but one release].")
@click.option("--to", "later", default=None, metavar="RELEASE", help="A release or a date [default: the last one].")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--store", default="embedded", show_default=True, envvar="MEDCODE_STORE",
              help="'embedded', or sparql+http://host:port/sparql [env: MEDCODE_STORE].")
def diff(data_dir: Path | None, system: str, earlier: str | None, later: str | None, fmt: str, store: str) -> None:
    """Codes added, deleted and revised between two releases (`medcode diff --from 2025-04 --to 2026-04`)."""
    from server import create_app
    from server.diff import diff_csv, diff_json, resolve
    from server.diff.history import diff as compare
    from server.http.errors import HTTPError
    from server.store import SnapshotMissing

    try:
        app = create_app({"MEDCODE_DATA": str((data_dir or default_data_dir()).resolve()), "MEDCODE_STORE": store})
        with app.test_request_context():
            first, second = resolve(system, earlier, later)
            changes = compare(system, first, second)
            text = diff_json(system, first, second, changes) + "\n" if fmt == "json" else diff_csv(changes)
    except (HTTPError, SnapshotMissing) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(text, nl=False)
