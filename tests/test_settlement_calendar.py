"""The desk's calendar: run types and reasons, statement statuses and disputes, the days a
run falls due (worked by hand), and the week of the sample run by docs/cron_week.sh."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_settlement_desk import _desk
from typer.testing import CliRunner

from market.cli.app import app
from market.errors import SettlementConfigError
from settlement import SettleConfig, settle
from settlement.calendar import Calendar, business_day, due_runs, parse_calendar
from settlement.query import list_statements
from settlement.store import make_engine
from settlement.store_tables import runs as runs_t

ROOT = Path(__file__).resolve().parents[1]
THU = dt.date(2016, 12, 1)


@pytest.mark.parametrize(
    ("start", "offset", "holidays", "expected"),
    [
        (THU, 1, (), dt.date(2016, 12, 2)),  # Friday
        (THU, 2, (), dt.date(2016, 12, 5)),  # over the weekend: Monday
        (dt.date(2016, 12, 3), 1, (), dt.date(2016, 12, 5)),  # T+1 of a Saturday is the Monday
        (THU, 1, (dt.date(2016, 12, 2),), dt.date(2016, 12, 5)),  # a holiday Friday is skipped
        (THU, 0, (), THU),
    ],
)
def test_business_days_by_hand(start: dt.date, offset: int, holidays: tuple[dt.date, ...], expected: dt.date) -> None:
    assert business_day(start, offset, holidays) == expected


def test_due_runs_follow_the_calendar_and_catch_up_a_missed_day() -> None:
    cal = Calendar(initial_after=1, recalculations_after=(3, 5))
    assert due_runs(cal, THU, THU, {}) == []
    (initial,) = due_runs(cal, THU, dt.date(2016, 12, 2), {})
    assert (initial.run_type, initial.due_on) == ("initial", dt.date(2016, 12, 2))
    assert due_runs(cal, THU, dt.date(2016, 12, 4), {}) != []  # missed Friday: caught up on Sunday
    assert due_runs(cal, THU, dt.date(2016, 12, 5), {"initial": 1}) == []
    (first,) = due_runs(cal, THU, dt.date(2016, 12, 6), {"initial": 1})
    assert (first.run_type, first.number, first.due_on) == ("recalculation", 1, dt.date(2016, 12, 6))
    assert due_runs(cal, THU, dt.date(2016, 12, 7), {"initial": 1, "recalculation": 1}) == []
    (second,) = due_runs(cal, THU, dt.date(2016, 12, 9), {"initial": 1, "recalculation": 1})
    assert (second.number, second.due_on) == (2, dt.date(2016, 12, 8))
    assert due_runs(cal, THU, dt.date(2017, 1, 9), {"initial": 1, "recalculation": 2}) == []


@pytest.mark.parametrize(
    "raw",
    [
        {"initial_after_business_days": -1},
        {"initial_after_business_days": 5, "recalculations_after_business_days": [3]},
        {"recalculations_after_business_days": [30, 20]},
        {"inital_after_business_days": 1},
        {"initial_after_business_days": True},
    ],
)
def test_a_bad_calendar_is_refused_by_name(raw: dict[str, object]) -> None:
    with pytest.raises(SettlementConfigError, match="calendar"):
        parse_calendar(raw, "settle.toml")


def _runs(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(runs_t.c.run_type, runs_t.c.reason).order_by(runs_t.c.created_at)).all()
    finally:
        engine.dispose()
    return [(str(t), str(r)) for t, r in rows]


def test_every_run_records_its_type_and_reason(tmp_path: Path, store_url: str) -> None:
    run, a, b = _desk(tmp_path)
    settle(run, a, SettleConfig(), db=store_url)
    settle(run, b, SettleConfig(), db=store_url)
    settle(run, a, SettleConfig(), db=store_url, run_type="correction", reason="meter file A restored")
    settle(run, a, SettleConfig(), db=store_url, run_type="recalculation", reason="T+20")  # same inputs: recorded
    assert _runs(store_url) == [
        ("initial", "initial settlement"),
        ("recalculation", "recalculation settlement"),
        ("correction", "meter file A restored"),
        ("recalculation", "T+20"),
    ]


def test_dispute_and_resolution_set_the_status_and_record_who_why_when(tmp_path: Path, store_url: str) -> None:
    run, a, b = _desk(tmp_path)
    settle(run, a, SettleConfig(), db=store_url)
    v1 = list_statements(store_url).set_index("aggregator_id").loc["A", "statement_id"]
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["statements", *args, "--db", store_url])
        return res.exit_code, " ".join(res.output.split())

    assert cli("dispute", v1, "--reason", "delivery was higher", "--by", "agg A")[0] == 0
    assert list_statements(store_url).set_index("statement_id").loc[v1, "status"] == "disputed"
    settle(run, b, SettleConfig(), db=store_url, run_type="correction", reason="dispute of A")
    v2 = list_statements(store_url).set_index("aggregator_id").loc["A", "statement_id"]
    assert cli("resolve", v1, "--reason", "re-metered", "--version", "st-nope-v9")[0] == 2
    assert cli("resolve", v1, "--reason", "re-metered", "--version", v2, "--by", "desk")[0] == 0
    every = list_statements(store_url, all_versions=True).set_index("statement_id")
    assert every.loc[v1, "status"] == "resolved" and every.loc[v2, "status"] == "issued"
    code, text = cli("resolve", v1, "--reason", "again")
    assert code == 2 and "no open dispute" in text
    assert cli("dispute", "st-unknown-v1", "--reason", "x")[0] == 2
    exported = runner.invoke(app, ["statements", "export", "--db", store_url, "--out", str(tmp_path / "x")])
    assert exported.exit_code == 0, exported.output
    disputes = (tmp_path / "x" / "statement_disputes.csv").read_text()
    assert "agg A" in disputes and "desk" in disputes and "new_version" in disputes


def test_the_cron_week_of_the_sample_says_what_changed_each_day(tmp_path: Path) -> None:
    env_bin = str(Path(sys.executable).parent)
    res = subprocess.run(
        ["bash", str(ROOT / "docs" / "cron_week.sh"), str(ROOT / "data"), str(tmp_path / "week")],
        capture_output=True,
        text=True,
        env={"PATH": f"{env_bin}:/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    days = out.split("== ")
    assert len(days) == 10  # eight days, the statements, and what comes before the first
    assert "nothing due" in days[1]  # delivery day
    assert "initial: calendar: initial statements at T+1: 8 new version(s)" in days[2]
    assert "correction: 1 new version(s)" in days[3]
    assert "dispute raised on st-" in days[5]
    assert "recalculation 1 at T+3: 0 new version(s)" in days[6]
    assert "recalculation 2 at T+5" in days[8] and "resolved by decision" in days[8]
    assert "resolved" in days[9]


def test_settle_due_never_writes_inside_its_runs(tmp_path: Path) -> None:
    run, a, _ = _desk(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    run.rename(runs / "run")
    import json as _json

    manifest = _json.loads((runs / "run" / "manifest.json").read_text())
    manifest["batch"].update(start="2026-01-15T00:00:00+00:00", end="2026-01-16T00:00:00+00:00")
    (runs / "run" / "manifest.json").write_text(_json.dumps(manifest))
    cfg = tmp_path / "settle.toml"
    cfg.write_text("[calendar]\ninitial_after_business_days = 0\n")
    before = sorted(str(p) for p in runs.rglob("*"))
    res = CliRunner().invoke(
        app,
        ["settle-due", "--runs", str(runs), "--meter", str(a), "--config", str(cfg), "--out", str(runs / "settled")]
        + ["--date", "2026-01-20"],
    )
    assert res.exit_code == 2 and "never touches" in " ".join(res.output.split())
    assert sorted(str(p) for p in runs.rglob("*")) == before
    ok = CliRunner().invoke(
        app,
        ["settle-due", "--runs", str(runs), "--meter", str(a), "--config", str(cfg), "--out", str(tmp_path / "o")]
        + ["--date", "2026-01-20", "--json"],
    )
    assert ok.exit_code == 0, ok.output
    import json

    (done,) = json.loads(ok.stdout)["settled"]
    assert done["run_type"] == "initial" and len(done["changed"]) == 2
