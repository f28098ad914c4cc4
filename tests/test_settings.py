"""The README's Configuration table is a contract: every row is a setting the app reads and honours."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server import create_app
from server.settings import SETTINGS

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_rows() -> list[tuple[str, str, str]]:
    """(description, environment variable, default) of each row of the README's Configuration table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (env := re.search(r"`(MEDCODE_[A-Z_]+)`", cells[1])):
            rows.append((cells[0], env.group(1), cells[2].strip("`")))
    return rows


ROWS = readme_rows()
BY_ENV = {s.env: s for s in SETTINGS if s.env}


def test_the_table_lists_every_environment_setting():
    assert ROWS, "no Configuration table in the README"
    assert {env for _, env, _ in ROWS} == set(BY_ENV)


@pytest.mark.parametrize("description,env,default", ROWS, ids=[env for _, env, _ in ROWS])
def test_each_row_is_read_with_its_documented_default(description, env, default, monkeypatch, data_dir):
    setting = BY_ENV[env]
    if setting.default is None:
        assert default == "./data"
    elif isinstance(setting.default, str):
        assert default == setting.default
    else:
        assert float(default) == float(setting.default), description
    monkeypatch.delenv(env, raising=False)
    if env in ("MEDCODE_DATA", "MEDCODE_STORE"):
        return  # which data the app opens: exercised by every other test
    value = "https://example.org/kg/" if setting.cast is str else "7"
    monkeypatch.setenv(env, value)
    app = create_app({"MEDCODE_DATA": str(data_dir), "MEDCODE_STORE": "embedded"})
    assert app.config[setting.key] == setting.cast(value)


def test_the_limits_are_honoured(monkeypatch, data_dir):
    monkeypatch.setenv("MEDCODE_MAX_BODY", "200")
    monkeypatch.setenv("MEDCODE_MAX_RESULTS", "1")
    monkeypatch.setenv("MEDCODE_EXPORT_MAX_ROWS", "1")
    client = create_app({"MEDCODE_DATA": str(data_dir), "MEDCODE_STORE": "embedded"}).test_client()
    big = client.post("/sparql", data={"query": "ASK {}", "pad": "x" * 300})
    assert big.status_code == 413
    many = client.get("/sparql", query_string={"query": "SELECT ?s WHERE { ?s a mc:CPTCode }"})
    assert many.status_code == 400 and "limit" in many.get_data(as_text=True)
    export = client.get("/export/device-crosswalk.csv")
    assert export.status_code == 400, export.get_data(as_text=True)[:200]
