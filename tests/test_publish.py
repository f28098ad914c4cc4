"""`medcode publish` against the session's Virtuoso: idempotent, and a failed publish leaves the old data
serving (remote mode only: MEDCODE_TEST_STORE=virtuoso)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests
from helpers import medcode_command

from kg.contract import current_snapshot, read_meta
from kg.namespaces import GRAPH_ASSERTED, GRAPH_INFERRED, GRAPH_META
from kg.publish import STAGING, PublishError, publish
from server import create_app

pytestmark = pytest.mark.remote_only


def graph_counts(url: str) -> dict[str, int]:
    query = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } FILTER(STRSTARTS(STR(?g), " \
            '"https://w3id.org/medcode/graph/")) } GROUP BY ?g'
    response = requests.post(url, data={"query": query}, headers={"Accept": "application/sparql-results+json"},
                             timeout=120)
    response.raise_for_status()
    return {row["g"]["value"]: int(row["n"]["value"]) for row in response.json()["results"]["bindings"]}


def expected_counts(data_dir: Path) -> dict[str, int]:
    return {**read_meta(current_snapshot(data_dir))["triples"], str(GRAPH_META): 2}


def served_snapshot(url: str) -> str:
    return create_app({"MEDCODE_STORE": f"sparql+{url}"}).extensions["medcode.store"].etag


def test_published_graphs_hold_exactly_the_snapshot(remote_engine, data_dir):
    assert graph_counts(remote_engine) == expected_counts(data_dir)  # no staging graph is left behind
    assert served_snapshot(remote_engine) == read_meta(current_snapshot(data_dir))["snapshot"]


def test_publish_twice_gives_the_same_graphs_and_counts(remote_engine, data_dir, virtuoso):
    before = graph_counts(remote_engine)
    live = publish(current_snapshot(data_dir), remote_engine, user=virtuoso.user, password=virtuoso.password,
                   echo=lambda _line: None)
    assert live == expected_counts(data_dir)
    assert graph_counts(remote_engine) == before


def _broken_snapshot(tmp_path: Path, data_dir: Path) -> Path:
    """A tiny snapshot whose metadata promises more triples than its dump holds."""
    snapshot = tmp_path / "snapshots" / "broken"
    snapshot.mkdir(parents=True)
    real = read_meta(current_snapshot(data_dir))
    lines = [f'<https://w3id.org/medcode/id/cpt/00000> <http://www.w3.org/2004/02/skos/core#notation> "0" <{g}> .'
             for g in (GRAPH_ASSERTED, GRAPH_INFERRED)]
    (snapshot / "medcode.nq").write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = {**real, "snapshot": "broken", "triples": {str(GRAPH_ASSERTED): 5, str(GRAPH_INFERRED): 1}}
    (snapshot / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return snapshot


def test_a_failed_count_check_leaves_the_old_data_serving(remote_engine, data_dir, virtuoso, tmp_path):
    before, snapshot_id = graph_counts(remote_engine), served_snapshot(remote_engine)
    with pytest.raises(PublishError, match="count check failed"):
        publish(_broken_snapshot(tmp_path, data_dir), remote_engine, user=virtuoso.user,
                password=virtuoso.password, echo=lambda _line: None)
    after = graph_counts(remote_engine)
    assert after == before
    assert not any(g.startswith(STAGING) for g in after)
    assert served_snapshot(remote_engine) == snapshot_id


def test_publish_to_the_authenticated_endpoint_derives_the_other_urls(remote_engine, data_dir, virtuoso, tmp_path):
    """`--to .../sparql-auth`: queries need Digest there too, and the update and Graph Store URLs sit beside it
    (they were derived as /sparql-auth/sparql-auth, and the 401 ended in an UnboundLocalError)."""
    before = graph_counts(remote_engine)
    with pytest.raises(PublishError, match="count check failed"):  # it got as far as loading and counting
        publish(_broken_snapshot(tmp_path, data_dir), remote_engine.replace("/sparql", "/sparql-auth/"),
                user=virtuoso.user, password=virtuoso.password, echo=lambda _line: None)
    assert graph_counts(remote_engine) == before


def test_a_publish_that_cannot_load_leaves_the_old_data_serving(remote_engine, data_dir, virtuoso):
    before = graph_counts(remote_engine)
    with pytest.raises(PublishError, match="failed"):
        publish(current_snapshot(data_dir), remote_engine, user=virtuoso.user, password=virtuoso.password,
                graph_store_url=remote_engine.replace("/sparql", "/no-such-graph-store"), echo=lambda _line: None)
    assert graph_counts(remote_engine) == before


def test_cli_with_a_wrong_password_fails_clearly_and_changes_nothing(remote_engine, data_dir, virtuoso):
    before = graph_counts(remote_engine)
    done = subprocess.run([medcode_command(), "publish", "--data", str(data_dir), "--to", remote_engine,
                           "--user", virtuoso.user, "--password", "wrong"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode != 0
    assert "publish failed (the engine still serves its previous data)" in done.stderr
    assert "401" in done.stderr
    assert graph_counts(remote_engine) == before
