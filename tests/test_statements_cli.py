"""`flexmarket statements list / show / export` read what settle stored, on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from settle_helpers import daily_meter, make_run, write_meter
from typer.testing import CliRunner

from market.cli import app
from settlement import settle


def test_list_show_export_what_settle_stored(tmp_path: Path, store_url: str) -> None:
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    stored = settle(run, meter, db=store_url)
    runner = CliRunner()
    listed = runner.invoke(app, ["statements", "list", "--db", store_url, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)  # --json: one JSON document, nothing else on stdout
    assert [r["statement_id"] for r in rows] == stored.new_versions["statement_id"].tolist()
    sid = rows[0]["statement_id"]
    shown = runner.invoke(app, ["statements", "show", sid, "--db", store_url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "0 delta line(s)" in shown.output
    assert runner.invoke(app, ["statements", "show", "nope", "--db", store_url]).exit_code == 2
    out = tmp_path / "export"
    exported = runner.invoke(app, ["statements", "export", "--db", store_url, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert len(pd.read_csv(out / "statement_lines.csv")) == len(stored.lines)
    again = runner.invoke(app, ["statements", "export", "--db", store_url, "--out", str(out)])
    assert again.exit_code == 2  # never overwrites an export
