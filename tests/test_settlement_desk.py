"""What a settlement desk relies on: versions follow the latest content (A, B, A gives v3 =
v1's figures), the store and the output folder show the same figures, ``settle --json``
says exactly what changed, readers never write, and the store URL keeps what it is given.
Each runs on DuckDB and on the local PostgreSQL server (``store_url``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from settle_helpers import daily_meter, make_run, write_meter
from typer.testing import CliRunner

from market.cli.app import app
from settlement import SettleConfig, settle
from settlement.query import list_statements


def _desk(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A run with two aggregators (A: 2 MW up at 7 EUR/MWh on D1, B: 1 MW at 9 on D2), meter
    file A (both deliver in full) and a corrected file B (D1 delivers 1 MW of its 2)."""
    run = make_run(
        tmp_path / "run",
        [
            {"bid_id": "x", "aggregator_id": "A", "t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0},
            {"bid_id": "y", "aggregator_id": "B", "t": "2026-01-15T17:00Z", "der_id": "D2", "q": 1.0, "price": 9.0},
        ],
        minutes=60,
    )
    m = pd.concat(
        [
            daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60),
            daily_meter("D2", "2025-11-03", 80, lambda d, s: 5_000.0, minutes=60),
        ]
    )
    at = m["interval_start"] == pd.Timestamp("2026-01-15T17:00Z")
    m.loc[at & (m["der_id"] == "D1"), "consumption_kwh"] = 8_000.0
    m.loc[at & (m["der_id"] == "D2"), "consumption_kwh"] = 4_000.0
    a = write_meter(m, tmp_path / "meter_a.parquet")
    m.loc[at & (m["der_id"] == "D1"), "consumption_kwh"] = 9_000.0
    b = write_meter(m, tmp_path / "meter_b.parquet")
    return run, a, b


def _net(url: str, aggregator: str) -> dict[int, float]:
    st = list_statements(url, all_versions=True)
    mine = st[st["aggregator_id"] == aggregator]
    return dict(zip(mine["version"].astype(int), mine["net_eur"].astype(float), strict=True))


def test_a_b_then_a_again_gives_a_third_version_with_the_first_figures(tmp_path: Path, store_url: str) -> None:
    run, a, b = _desk(tmp_path)
    out = tmp_path / "out"
    r1 = settle(run, a, SettleConfig(), db=store_url, out=out)
    r2 = settle(run, b, SettleConfig(), db=store_url, out=out)
    r3 = settle(run, a, SettleConfig(), db=store_url, out=out)
    assert sorted(r1.new_versions["version"]) == [1, 1]
    assert r2.new_versions[["aggregator_id", "version"]].values.tolist() == [["A", 2]]
    assert r3.new_versions[["aggregator_id", "version"]].values.tolist() == [["A", 3]]
    nets = _net(store_url, "A")
    assert nets[1] == pytest.approx(14.0) and nets[3] == pytest.approx(nets[1])
    assert nets[2] == pytest.approx(7.0 - 1.0 * 7.0)  # 1 MWh paid, 1 MWh short at the award's price
    # the store's latest versions and the output folder show the same figures
    shown = pd.read_parquet(out / "statements.parquet").sort_values("aggregator_id")
    latest = list_statements(store_url).sort_values("aggregator_id")
    assert shown["statement_id"].tolist() == latest["statement_id"].tolist()
    assert shown["net_eur"].tolist() == pytest.approx(latest["net_eur"].tolist())
    assert r3.statements["version"].tolist() == [3, 1]
    # the last run again adds nothing and still shows the store's figures
    r4 = settle(run, a, SettleConfig(), db=store_url, out=out)
    assert len(r4.new_versions) == 0 and r4.statements["version"].tolist() == [3, 1]


def test_settle_json_lists_exactly_the_changed_statements_and_lines(tmp_path: Path, store_url: str) -> None:
    run, a, b = _desk(tmp_path)
    runner = CliRunner()
    base = ["settle", "--run", str(run), "--out", str(tmp_path / "out"), "--db", store_url, "--json"]
    first = runner.invoke(app, [*base, "--meter", str(a)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, [*base, "--meter", str(b)])
    doc = json.loads(second.stdout)
    assert [(c["aggregator_id"], c["version"], c["previous_version"]) for c in doc["changed"]] == [("A", 2, 1)]
    change = doc["changed"][0]
    assert change["net_eur_before"] == pytest.approx(14.0) and change["net_eur_after"] == pytest.approx(0.0)
    assert change["delta_lines"] == 1
    assert [(d["bid_id"], d["delta_net_eur"]) for d in doc["deltas"]] == [("x", pytest.approx(-14.0))]
    assert doc["findings_by_severity"]["error"] == 0
    shown = runner.invoke(app, ["statements", "show", change["statement_id"], "--db", store_url])
    assert shown.exit_code == 0 and "1 delta line(s)" in shown.output and "-14.00" in shown.output
    diff = runner.invoke(
        app,
        ["statements", "diff", change["previous_statement_id"], change["statement_id"]]
        + [
            "--db",
            store_url,
            "--json",
        ],
    )
    d = json.loads(diff.stdout)
    assert [line["bid_id"] for line in d["lines"]] == ["x"]
    assert {t["total"]: t["change"] for t in d["totals"]}["net_eur"] == pytest.approx(-14.0)


def test_fail_on_error_gives_a_distinct_exit_code_after_storing(tmp_path: Path) -> None:
    run, a, _ = _desk(tmp_path)
    m = pd.read_parquet(a)
    only_d2 = write_meter(m[m["der_id"] == "D2"], tmp_path / "d2.parquet")  # D1 has no meter data: an error
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["settle", "--run", str(run), "--meter", str(only_d2), "--out", str(out), "--fail-on", "error", "--json"]
    )
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    assert doc["findings_by_severity"]["error"] >= 1
    assert (out / "statements.parquet").is_file()  # stored and written; the exit code tells cron


@pytest.mark.parametrize(
    ("make_db", "says"),
    [
        (lambda p: f"duckdb:///{p / 'typo.duckdb'}", "does not exist"),
        (lambda p: "sqlite:///" + str(p / "s.db"), "not sqlite"),
        (lambda p: "duckdb:///:memory:", "in-memory"),
        (lambda p: "duckdb:///:memory:x", "in-memory"),
        (lambda p: f"duckdb:///{p / 'meter_a.parquet'}", "not a DuckDB database"),
        (lambda p: str(p / "plain.duckdb"), "not a SQLAlchemy URL"),
    ],
)
@pytest.mark.parametrize("command", ["list", "export"])
def test_readers_refuse_stores_they_would_have_to_create(tmp_path: Path, make_db, says, command) -> None:  # type: ignore[no-untyped-def]
    _desk(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    db = make_db(tmp_path)
    args = ["statements", command, "--db", db] + (["--out", str(tmp_path / "export")] if command == "export" else [])
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert says in " ".join(res.output.split()) and "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created


def test_a_reader_does_not_migrate_an_old_store(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE statements (statement_id VARCHAR, net_eur DOUBLE)")
    con.close()
    before = path.read_bytes()
    res = CliRunner().invoke(app, ["statements", "list", "--db", f"duckdb:///{path}"])
    assert res.exit_code == 2 and "flexmarket statements migrate" in " ".join(res.output.split())
    assert path.read_bytes() == before
    assert CliRunner().invoke(app, ["statements", "migrate", "--db", f"duckdb:///{path}"]).exit_code == 0
    assert CliRunner().invoke(app, ["statements", "list", "--db", f"duckdb:///{path}"]).exit_code == 0


@pytest.mark.parametrize(
    "make_db",
    [
        lambda p: "duckdb:///:memory:x",
        lambda p: f"duckdb:///{p / 'meter_a.parquet'}",
        lambda p: "sqlite:///" + str(p / "s.db"),
        lambda p: str(p / "plain.duckdb"),
    ],
)
def test_settle_refuses_a_store_that_would_keep_nothing(tmp_path: Path, make_db) -> None:  # type: ignore[no-untyped-def]
    run, a, _ = _desk(tmp_path)
    meter_bytes = a.read_bytes()
    res = CliRunner().invoke(
        app, ["settle", "--run", str(run), "--meter", str(a), "--out", str(tmp_path / "out"), "--db", make_db(tmp_path)]
    )
    assert res.exit_code == 2, res.output
    assert "new statement version" not in res.output and not (tmp_path / "out").exists()
    assert a.read_bytes() == meter_bytes
