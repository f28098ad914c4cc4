"""`medcode`: one command line for building, querying and serving the graph."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pyoxigraph as ox

from kg.contract import (
    INFERENCE_GRAPHS,
    LOCAL_GRAPHS,
    PREFIXES,
    current_snapshot,
    default_data_dir,
    open_store,
    read_meta,
)
from kg.records import SourceError

from .check import check
from .diff import diff

data_option = click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
                           default=None, help="Data directory for snapshots [default: $MEDCODE_DATA or ./data].")


as_of_option = click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD",
                             help="The graph's state on that date (the ICD-10-CM release in force then), as ?as_of=.")


def _dated(snapshot: Path, as_of: str | None, inference: str = "all") -> tuple[list[str], list[str] | None, str]:
    """The default and named graphs of the state on `as_of` and its release ('' without a date), with the
    HTTP surfaces' meaning and errors (a malformed date, one before the first release held)."""
    from server.http.errors import HTTPError
    from server.store.dated import parse_as_of, state_on

    try:
        when = parse_as_of([as_of] if as_of is not None else [])
        if when is None:
            return list(INFERENCE_GRAPHS[inference]), None, ""
        state = state_on(read_meta(snapshot), when, inference)
    except HTTPError as exc:
        raise click.UsageError(str(exc).replace("as_of", "--as-of", 1)) from exc
    return list(state.graphs), list(state.named_graphs) if state.named_graphs else None, state.release


def _data(data_dir: Path | None) -> Path:
    return (data_dir or default_data_dir()).resolve()


def _build(data_dir: Path, reasoner: str, ncci: Path | None, releases: Path | None = None,
           history: bool = True, compact: bool = False) -> None:
    """Build; the earlier ICD-10-CM releases from `releases` as they are, else fetched into the cache."""
    from kg import build
    from kg.release_files import default_cache
    from kg.snapshot import SnapshotError
    from kg.validation import ValidationError

    source = (releases or default_cache()) if history else None
    try:
        build(data_dir, engine=reasoner, ncci=ncci, echo=lambda line: click.echo(line, err=True), releases=source,
              fetch_releases=history and releases is None, compact=compact)
    except SnapshotError as exc:
        raise click.ClickException(str(exc)) from exc
    except SourceError as exc:
        raise click.ClickException(f"bad source record: {exc} (the previous snapshot is unchanged)") from exc
    except ValidationError as exc:
        raise click.ClickException(f"validation failed (the previous snapshot is unchanged):\n{exc}") from exc


@click.group()
@click.version_option(package_name="medcode-kg")
def main() -> None:
    """medcode-kg: a reasoned knowledge graph of billing codes for drug-delivery pumps."""


main.add_command(check)
main.add_command(diff)


@main.command()
@data_option
@click.option("--reasoner", type=click.Choice(["reasonable", "owlrl"]), default="reasonable", show_default=True,
              help="OWL 2 RL engine (owlrl is the slow pure-Python reference).")
@click.option("--ncci", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A directory of CMS NCCI files to add: PTP edits (ccipra-*.txt, ccioph-*.txt), MUE tables (*.csv).")
@click.option("--releases", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              envvar="MEDCODE_RELEASES", help="Read the earlier ICD-10-CM releases from this directory of wheels or "
              "release folders, fetching nothing [default: fetched with pip into $XDG_CACHE_HOME/medcode/releases].")
@click.option("--no-releases", is_flag=True, help="Only the installed ICD-10-CM release: no code history.")
@click.option("--compact", is_flag=True, envvar="MEDCODE_COMPACT", help="Compact the store before it is closed: "
              "look-ups about a third faster (the claim check's p50 20 -> 15 ms), the build 1 s longer (6 s with "
              "the earlier releases).")
def build(data_dir: Path | None, reasoner: str, ncci: Path | None, releases: Path | None, no_releases: bool,
          compact: bool) -> None:
    """Load sources, reason (OWL 2 RL), validate (SHACL) and publish a new snapshot."""
    _build(_data(data_dir), reasoner, ncci, releases, not no_releases, compact)


def _snapshot_or_fail(data_dir: Path) -> Path:
    snapshot = current_snapshot(data_dir)
    if snapshot is None:
        raise click.ClickException(f"no snapshot in {data_dir}; run `medcode build` first")
    return snapshot


@main.command()
@data_option
def stats(data_dir: Path | None) -> None:
    """Print the live snapshot's triple counts and instances per class."""
    from kg.pipeline import CLASS_SUMMARY_QUERY

    snapshot = _snapshot_or_fail(_data(data_dir))
    meta = read_meta(snapshot)
    click.echo(f"snapshot {meta['snapshot']} (built {meta['built_at']}, reasoner {meta['reasoner']})")
    for graph, count in meta["triples"].items():
        click.echo(f"  {count:>10,}  triples in <{graph}>")
    store = open_store(snapshot)
    local = [ox.NamedNode(g) for g in LOCAL_GRAPHS]  # not the dated states' graphs (as_of)
    for row in store.query(CLASS_SUMMARY_QUERY, default_graph=local, named_graphs=local):
        click.echo(f"  {int(row['n'].value):>10,}  {row['class'].value}")


@main.command()
@click.argument("query")
@data_option
@click.option("--format", "fmt", type=click.Choice(["json", "xml", "csv", "tsv", "turtle", "ntriples", "jsonld"]),
              default=None, help="Output format [default: tsv for SELECT/ASK, turtle for graphs].")
@click.option("--inference", type=click.Choice(["all", "asserted", "inferred"]), default="all", show_default=True)
@as_of_option
def sparql(query: str, data_dir: Path | None, fmt: str | None, inference: str, as_of: str | None) -> None:
    """Run a SPARQL query (a string, a file path, or - for stdin) against the snapshot (with --as-of, over its
    state on that date)."""
    from server.http.guard import Refused, inspect
    from server.store.query_worker import run

    if query == "-":
        query = sys.stdin.read()
    elif Path(query).is_file():
        query = Path(query).read_text(encoding="utf-8")
    snapshot = _snapshot_or_fail(_data(data_dir))
    try:
        inspected = inspect(query, set(INFERENCE_GRAPHS["all"]), PREFIXES)
    except Refused as exc:
        raise click.ClickException(str(exc)) from exc
    if as_of and (inspected.from_graphs or inspected.from_named_graphs):
        raise click.UsageError("--as-of selects the dataset (the graphs of that date's state); it cannot be "
                               "combined with FROM / FROM NAMED.")
    graphs, named, release = _dated(snapshot, as_of, inference)
    if release:
        click.echo(f"ICD-10-CM release in force: {release}", err=True)
    fmt = fmt or ("tsv" if inspected.form in ("SELECT", "ASK") else "turtle")
    store = open_store(snapshot)
    status, out = run(store, {"query": query, "format": fmt, "limit": sys.maxsize, "prefixes": PREFIXES,
                              "default_graph": graphs, "named_graphs": named})
    if status == "syntax":
        raise click.ClickException(f"SPARQL syntax error: {out}")
    if status != "ok":
        raise click.ClickException(str(out))
    click.echo(out.decode("utf-8"), nl=False)


@main.command()
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A parameter of the named query.")
@data_option
@click.option("--format", "fmt", type=click.Choice(["json", "xml", "csv", "tsv"]), default="tsv", show_default=True)
def query(name: str, params: tuple[str, ...], data_dir: Path | None, fmt: str) -> None:
    """Run a named query from queries/ (`medcode query not-reported-with --param code=95990`)."""
    from server.http.errors import HTTPError
    from server.named_queries import load_named_queries, run_local

    queries = load_named_queries()
    if name not in queries:
        raise click.ClickException(f"no named query '{name}'; available: {', '.join(sorted(queries))}")
    given = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.ClickException(f"--param '{item}' is not of the form key=value")
        given[key] = value
    try:
        payload = run_local(open_store(_snapshot_or_fail(_data(data_dir))), queries[name], given, fmt=fmt)
    except HTTPError as exc:  # a parameter that does not fit its type, or the query failing
        raise click.ClickException(str(exc)) from exc
    click.echo(payload.decode("utf-8"), nl=False)


def _install_query_editor_once() -> None:
    """First run: fetch the query editor from npm when Node.js is here; the plain form works without."""
    import shutil

    from server.assets import AssetError, install, installed

    if installed():
        return
    if not shutil.which("npm"):
        click.echo("Node.js/npm not found: /sparql serves the plain query form (see README to add the editor).",
                   err=True)
        return
    click.echo("Installing the query editor (npm ci, once) ...", err=True)
    try:
        install(npm=True)
    except AssetError as exc:
        click.echo(f"Query editor not installed ({exc}); /sparql serves the plain query form.", err=True)


@main.command()
@click.option("--no-npm", is_flag=True, help="Copy from an existing node_modules/ only.")
def assets(no_npm: bool) -> None:
    """Install the query editor (YASGUI, pinned in server/editor/package.json) into server/static/vendor/."""
    from server.assets import AssetError, install

    try:
        for path in install(npm=not no_npm):
            click.echo(f"installed {path}")
    except AssetError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@data_option
@click.option("--to", "endpoint", required=True, metavar="URL",
              help="The engine's SPARQL query endpoint, e.g. http://127.0.0.1:8890/sparql (Virtuoso).")
@click.option("--user", default=None, help="User allowed to update (Virtuoso: a user with SPARQL_UPDATE).")
@click.option("--password", default=None, envvar="MEDCODE_PUBLISH_PASSWORD",
              help="Password [default: $MEDCODE_PUBLISH_PASSWORD].")
@click.option("--update-url", default=None, help="SPARQL Update URL [default: Virtuoso's /sparql-auth].")
@click.option("--graph-store-url", default=None,
              help="Graph Store Protocol URL [default: Virtuoso's /sparql-graph-crud-auth].")
def publish(data_dir: Path | None, endpoint: str, user: str | None, password: str | None,
            update_url: str | None, graph_store_url: str | None) -> None:
    """Load the live snapshot into a remote SPARQL engine, replacing its medcode graphs in one step."""
    from kg.publish import PublishError
    from kg.publish import publish as publish_snapshot

    snapshot = _snapshot_or_fail(_data(data_dir))
    try:
        publish_snapshot(snapshot, endpoint, user=user, password=password, update_url=update_url,
                         graph_store_url=graph_store_url, echo=lambda line: click.echo(line, err=True))
    except PublishError as exc:
        intact = " (the engine still serves its previous data)" if exc.live_intact else ""
        raise click.ClickException(f"publish failed{intact}: {exc}") from exc


@main.command()
@data_option
@click.option("--store", default="embedded", show_default=True, envvar="MEDCODE_STORE",
              help="'embedded', or sparql+http://host:port/sparql to serve from a remote engine [env: MEDCODE_STORE].")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
@click.option("--dev", is_flag=True, help="One worker that restarts when the code changes.")
@click.option("--access-log", is_flag=True, help="Log every request to standard output.")
def serve(data_dir: Path | None, store: str, host: str, port: int, workers: int, dev: bool,
          access_log: bool) -> None:
    """Serve the SPARQL endpoint and pages (building the graph first if there is no snapshot).

    The server keeps serving the snapshot it started with; after a new build, `kill -HUP` its pid
    (written to <data>/serve-<port>.pid) switches every worker to it.
    """
    data = _data(data_dir)
    os.environ["MEDCODE_STORE"] = store  # read by every (gunicorn worker's) app
    if store == "embedded":
        _serveable_snapshot(data)
    _install_query_editor_once()
    from server.wsgi import run_gunicorn

    run_gunicorn(data, host, port, 1 if dev else workers, access_log=access_log, reload=dev)


def _serveable_snapshot(data: Path) -> None:
    """Build the first snapshot if there is none; refuse to serve a damaged one.

    Both run in child processes: a store opened here, before gunicorn forks its workers, would be
    inherited half-alive by them (RocksDB's threads do not survive a fork; the workers crash on exit).
    """
    if current_snapshot(data) is None:
        click.echo(f"No snapshot in {data}: building it first (once).", err=True)
        if subprocess.run([sys.executable, "-m", "medcode", "build", "--data", str(data)]).returncode != 0:
            raise click.ClickException("the first build failed (see above); nothing to serve")
    snapshot = _snapshot_or_fail(data)
    problems = _verify_in_child(snapshot)
    if problems:
        raise click.ClickException(f"the live snapshot {snapshot} is damaged; rebuild it with `medcode build`:\n  "
                                   + "\n  ".join(problems))


def _verify_in_child(snapshot: Path) -> list[str]:
    """`verify_snapshot` in a short-lived interpreter of its own (it opens the store)."""
    script = ("import json, sys; from pathlib import Path; from kg.contract import verify_snapshot; "
              "print(json.dumps(verify_snapshot(Path(sys.argv[1]))))")
    result = subprocess.run([sys.executable, "-c", script, str(snapshot)], capture_output=True, text=True)
    if result.returncode != 0:
        return [f"{snapshot}: the check itself failed ({result.stderr.strip().splitlines()[-1:]})"]
    return json.loads(result.stdout)


@main.command()
@click.argument("name", required=False)
@data_option
@click.option("--format", "fmt", default="csv", show_default=True, metavar="FORMAT",
              help="csv, json, sssom.tsv (or sssom), fhir.json (or fhir), ttl or jsonld.")
@click.option("--fhir", "fhir_version", type=click.Choice(["r5", "r4b"]), default="r5", show_default=True,
              help="FHIR version of a ConceptMap.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@as_of_option
def export(name: str | None, data_dir: Path | None, fmt: str, fhir_version: str, output: Path | None,
           as_of: str | None) -> None:
    """Write a crosswalk (`medcode export device-crosswalk --format sssom -o devices.sssom.tsv`).

    Without NAME, list the crosswalks and the formats each comes in.
    """
    from server.exports import CROSSWALKS
    from server.exports.writers import ExportMeta, export_text, resolve_format
    from server.http.errors import HTTPError
    from server.named_queries import run_local
    from server.settings import DEFAULTS, from_environment

    if name is None:
        for xw in CROSSWALKS.values():
            click.echo(f"{xw.name:<25} {xw.title} [{', '.join(xw.formats)}]")
        return
    xw = CROSSWALKS.get(name)
    if xw is None:
        raise click.ClickException(f"no crosswalk '{name}'; available: {', '.join(CROSSWALKS)}")
    try:
        form = resolve_format(fmt)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    if form.ext not in xw.formats:
        raise click.ClickException(f"{name} is not available as {form.label}; formats: {', '.join(xw.formats)}")
    snapshot = _snapshot_or_fail(_data(data_dir))
    graphs, named, release = _dated(snapshot, as_of, xw.graphs)
    try:
        payload = run_local(open_store(snapshot), xw.named_query(), {}, fmt="csv", dataset=(graphs, named))
    except HTTPError as exc:
        raise click.ClickException(str(exc)) from exc
    base = from_environment().get("PUBLIC_BASE", DEFAULTS["PUBLIC_BASE"])
    meta = ExportMeta.from_snapshot(read_meta(snapshot), base)
    if release:  # the edition names the date and the release, as /export/...?as_of= does
        meta = dataclasses.replace(meta, version=f"{meta.version} as of {as_of} (ICD-10-CM {release})")
    chunks = export_text(xw, form, payload, meta, fhir_version)
    if output is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
        return
    with output.open("w", encoding="utf-8", newline="") as out:
        for chunk in chunks:
            out.write(chunk)
    click.echo(f"wrote {output}", err=True)
