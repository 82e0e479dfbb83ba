"""Settlement: the USEF example, hand-computed baselines per method, known-truth recovery,
findings, idempotency, versions, crash and concurrency against DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from settle_helpers import daily_meter, make_run, seal_run, write_meter

from market.errors import SettlementConfigError
from market.io.read import sha256_file
from settlement import settle
from settlement.baselines import METHODS
from settlement.config import SettleConfig, parse_config
from settlement.store import make_engine, read_table
from settlement.store_tables import findings_t, statements_t
from settlement.store_tables import runs as runs_t

START = dt.date(2025, 11, 3)  # a Monday; day k of the meter history is START + k


def k(day: str) -> int:
    return (dt.date.fromisoformat(day) - START).days


@pytest.mark.parametrize(("metered_mw", "net_eur"), [(7, 14), (8, 14), (9, -4), (10, -22), (11, -33)])
def test_usef_worked_example(tmp_path, metered_mw, net_eur):
    """Baseline 10 MW, 2 MW up bought at 7 EUR/MWh, penalty 11 EUR/MWh, one hour."""
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    event = pd.Timestamp("2026-01-15T17:00Z")
    meter = daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60)
    meter.loc[meter["interval_start"] == event, "consumption_kwh"] = metered_mw * 1000.0
    path = write_meter(meter, tmp_path / "meter.parquet")
    cfg = SettleConfig(penalty_eur_mwh=11.0, penalty_factor=None)
    r = settle(run, path, cfg, db=f"duckdb:///{tmp_path / 's.duckdb'}")
    line = r.lines.iloc[0]
    assert line["baseline_kwh"] == pytest.approx(10_000)
    assert line["net_eur"] == pytest.approx(net_eur)
    assert r.statements["net_eur"].iloc[0] == pytest.approx(net_eur)


@pytest.mark.parametrize(("metered_mw", "make_whole_eur"), [(8, 20.0), (9, 10.0), (10, 0.0)])
def test_make_whole_paid_in_proportion_to_delivery(tmp_path, metered_mw, make_whole_eur):
    """The USEF case with a clearing make-whole of 20 EUR on the award: paid in full for full
    delivery, half for half, none for none; net = payment + make-whole - penalty."""
    run = make_run(
        tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0, "make_whole": 20.0}], minutes=60
    )
    event = pd.Timestamp("2026-01-15T17:00Z")
    meter = daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60)
    meter.loc[meter["interval_start"] == event, "consumption_kwh"] = metered_mw * 1000.0
    cfg = SettleConfig(penalty_eur_mwh=11.0, penalty_factor=None)
    r = settle(run, write_meter(meter, tmp_path / "meter.parquet"), cfg, db=f"duckdb:///{tmp_path / 's.duckdb'}")
    line, st = r.lines.iloc[0], r.statements.iloc[0]
    assert line["make_whole_eur"] == pytest.approx(make_whole_eur)
    assert line["net_eur"] == pytest.approx(line["payment_eur"] + make_whole_eur - line["penalty_eur"])
    assert st["make_whole_eur"] == pytest.approx(make_whole_eur)
    assert st["net_eur"] == pytest.approx(line["net_eur"])


def test_store_from_before_make_whole_is_migrated(tmp_path, store_url):
    """A store whose tables lack the make-whole columns (as the earlier version made them)
    gets them added on first use; settling then works and a re-run writes nothing new."""
    import sqlalchemy as sa

    from settlement.store_tables import metadata

    added = {"make_whole_eur", "delta_make_whole_eur"}
    earlier = sa.MetaData()
    for t in metadata.sorted_tables:
        sa.Table(
            t.name,
            earlier,
            *[
                sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key)
                for c in t.columns
                if c.name not in added
            ],
        )
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        earlier.create_all(conn)
    engine.dispose()
    run, m, _ = _versioned_setup(tmp_path)
    meter = write_meter(m, tmp_path / "m1.parquet")
    assert sorted(settle(run, meter, SettleConfig(), db=store_url).new_versions["version"]) == [1, 1]
    assert len(settle(run, meter, SettleConfig(), db=store_url).new_versions) == 0
    engine = make_engine(store_url)
    assert "make_whole_eur" in read_table(engine, statements_t).columns
    engine.dispose()


def test_statement_hash_unchanged_where_there_is_no_make_whole():
    """Pinned: the digest the version before make-whole gave these lines, so re-settling an
    old store's period writes no spurious version."""
    from settlement.store import content_hashes

    lines = pd.DataFrame(
        {
            "bid_id": ["b2", "b1"],
            "der_id": ["D1", "D1"],
            "need_id": [None, "n1"],
            "service": ["tso_balancing"] * 2,
            "interval_start": pd.to_datetime(["2026-01-15T17:15Z", "2026-01-15T17:00Z"], utc=True),
            "direction": ["up", "down"],
            "quantity_mw": [2.0, 1.5],
            "price_eur_mwh": [7.0, 9.5],
            "method": ["caiso-10-in-10"] * 2,
            "baseline_kwh": [10000.0, None],
            "metered_kwh": [8000.0, None],
            "delivered_up_mwh": [0.5, None],
            "awarded_mwh": [0.5, 0.375],
            "allocated_mwh": [0.5, None],
            "shortfall_mwh": [0.0, None],
            "payment_eur": [3.5, None],
            "make_whole_eur": [0.0, None],
            "penalty_eur": [0.0, None],
            "net_eur": [3.5, None],
            "status": ["settled", "unverifiable"],
            "aggregator_id": ["A", "A"],
            "buyer_id": ["tso", "tso"],
        }
    )
    pinned = "442e19052be31c5fc5fbc2d70a8f50aafaa60cd5f2ec39987bad8458de2b0217"
    assert content_hashes(lines) == {("A", "tso"): pinned}
    paid = content_hashes(lines.assign(make_whole_eur=[1.0, None]))
    assert paid[("A", "tso")] != pinned


HOLIDAYS = ("2025-12-25", "2026-01-01")
# The 10 most recent eligible weekdays before Thu 2026-01-08, skipping the event day
# 2026-01-07 and the holidays 2025-12-25 and 2026-01-01:
TEN = [
    "2026-01-06",
    "2026-01-05",
    "2026-01-02",
    "2025-12-31",
    "2025-12-30",
    "2025-12-29",
    "2025-12-26",
    "2025-12-24",
    "2025-12-23",
    "2025-12-22",
]
TARGET = "2026-01-08"


def weekday_value(d: int, s: int) -> float:
    day = START + dt.timedelta(days=int(d))
    if day == dt.date.fromisoformat(TARGET):
        return 2.0 * (100 + d)  # the event day runs at twice its usual level
    return (500.0 if day.weekday() >= 5 else 100.0) + d


def settle_method(tmp_path: Path, method: str, value=weekday_value, awards=None):  # type: ignore[no-untyped-def]
    awards = awards or [
        {"bid_id": "b0", "t": "2026-01-07T18:00Z", "q": 0.01, "price": 50.0},
        {"bid_id": "b1", "t": f"{TARGET}T18:00Z", "q": 0.01, "price": 50.0, "nominated": 0.5},
    ]
    run = make_run(tmp_path / "run", awards)
    meter = write_meter(daily_meter("D1", START.isoformat(), 70, value), tmp_path / "m.parquet")
    cfg = parse_config({"baseline": method, "holidays": list(HOLIDAYS)})
    r = settle(run, meter, cfg, db=f"duckdb:///{tmp_path / 's.duckdb'}")
    return r, r.lines.set_index("bid_id")


def test_caiso_ten_in_ten_with_capped_adjustment(tmp_path):
    r, lines = settle_method(tmp_path, "caiso-10-in-10")
    raw = np.mean([100 + k(d) for d in TEN])
    assert lines.loc["b1", "baseline_kwh"] == pytest.approx(1.2 * raw)  # 2x actual, capped 1.2
    assert lines.loc["b1", "metered_kwh"] == pytest.approx(2 * (100 + k(TARGET)))


def test_caiso_weekend_four_in_four(tmp_path):
    awards = [{"bid_id": "w", "t": "2026-01-10T18:00Z", "q": 0.01, "price": 50.0}]
    r, lines = settle_method(tmp_path, "caiso-10-in-10", awards=awards)
    four = ["2026-01-04", "2026-01-03", "2025-12-28", "2025-12-27"]
    raw = np.mean([500 + k(d) for d in four])
    actual = 500 + k("2026-01-10")
    factor = min(max(actual / raw, 0.8), 1.2)
    assert lines.loc["w", "baseline_kwh"] == pytest.approx(raw * factor)


def test_pjm_high_four_of_five_with_additive_adjustment(tmp_path):
    r, lines = settle_method(tmp_path, "pjm-high-4-of-5")
    raw = np.mean([100 + k(d) for d in TEN[:4]])  # the oldest of five is the lowest
    actual = 2 * (100 + k(TARGET))
    assert lines.loc["b1", "baseline_kwh"] == pytest.approx(raw + (actual - raw))


def test_nyiso_drops_low_days_then_keeps_five_highest(tmp_path):
    low = k("2026-01-05")

    def value(d: int, s: int) -> float:
        return 1.0 if d == low else weekday_value(d, s)

    r, lines = settle_method(tmp_path, "nyiso-high-5-of-10", value)
    kept = [d for d in TEN if d != "2026-01-05"][:5]  # the five most recent are the highest
    assert lines.loc["b1", "baseline_kwh"] == pytest.approx(np.mean([100 + k(d) for d in kept]))


def test_mid_eight_of_ten(tmp_path):
    r, lines = settle_method(tmp_path, "mid-8-of-10")
    mid = TEN[1:-1]
    assert lines.loc["b1", "baseline_kwh"] == pytest.approx(np.mean([100 + k(d) for d in mid]))


def test_meter_before_meter_after(tmp_path):
    r, lines = settle_method(tmp_path, "meter-before-meter-after")
    assert lines.loc["b1", "baseline_kwh"] == pytest.approx(2 * (100 + k(TARGET)))


def test_nominated(tmp_path):
    r, lines = settle_method(tmp_path, "nominated")
    assert lines.loc["b1", "baseline_kwh"] == pytest.approx(0.5 * 1000 * 0.25)


def test_known_delivery_recovered_on_real_profile(tmp_path):
    """A real DER's weekday shape from the sample; a known delivery taken out on the event
    day; every day-matching method recovers it (their assumption: like days look alike)."""
    sample = pd.read_parquet(Path(__file__).resolve().parents[1] / "data" / "meter.parquet")
    der = sample[sample["der_id"] == sample["der_id"].iloc[0]].copy()
    der["slot"] = der["interval_start"].dt.hour * 4 + der["interval_start"].dt.minute // 15
    shape = der.groupby("slot")["consumption_kwh"].mean().to_numpy()

    def value(d: int, s: int) -> float:
        return float(shape[s]) * (1.0 + 0.002 * ((d * 7) % 5 - 2))  # like days, +-0.4 %

    event_slots = range(17 * 4, 19 * 4)
    awards = [
        {
            "bid_id": f"e{s}",
            "t": (pd.Timestamp(f"{TARGET}T00:00Z") + pd.Timedelta(minutes=15 * s)).isoformat(),
            "q": 0.2 * shape[s] / 250.0,
            "price": 80.0,
        }
        for s in event_slots
    ]
    meter = daily_meter("D1", START.isoformat(), 70, value)
    cut = meter["interval_start"].isin([pd.Timestamp(a["t"]) for a in awards])
    delivered_kwh = 0.2 * meter.loc[cut, "consumption_kwh"].to_numpy()
    meter.loc[cut, "consumption_kwh"] -= delivered_kwh
    meter_path = write_meter(meter, tmp_path / "m.parquet")
    run = make_run(tmp_path / "run", awards)
    for method in ("caiso-10-in-10", "nyiso-high-5-of-10", "pjm-high-4-of-5", "mid-8-of-10"):
        cfg = parse_config({"baseline": method, "holidays": list(HOLIDAYS)})
        r = settle(run, meter_path, cfg, db=f"duckdb:///{tmp_path / 'store.duckdb'}")
        got = r.lines["delivered_up_mwh"].sum() * 1000
        tolerance = METHODS[method].recovery_tolerance  # documented with the method
        assert tolerance <= 0.05
        assert got == pytest.approx(delivered_kwh.sum(), rel=tolerance), method


def test_findings_gaps_duplicates_dst_and_missing(tmp_path):
    run = make_run(
        tmp_path / "run",
        [
            {"bid_id": "a", "der_id": "D1", "t": "2026-01-08T18:00Z", "q": 0.01, "price": 50.0},
            {"bid_id": "b", "der_id": "NOMETER", "t": "2026-01-08T18:00Z", "q": 0.01, "price": 50.0},
            {"bid_id": "c", "der_id": "D1", "t": "2026-01-08T18:15Z", "q": 0.01, "price": 50.0},
        ],
    )
    meter = daily_meter("D1", START.isoformat(), 70, weekday_value)
    gap = meter["interval_start"].between(pd.Timestamp("2025-12-10T05:00Z"), pd.Timestamp("2025-12-10T06:00Z"))
    meter = meter[~gap]
    dup = meter[meter["interval_start"] == pd.Timestamp("2026-01-08T18:15Z")].assign(
        consumption_kwh=1.0
    )  # a conflicting second reading of an awarded interval
    meter = pd.concat([meter, dup])
    path = write_meter(meter, tmp_path / "m.parquet")
    cfg = parse_config({"timezone": "Europe/Berlin"})
    r = settle(run, path, cfg, db=f"duckdb:///{tmp_path / 'store.duckdb'}", out=tmp_path / "out")
    kinds = set(r.findings["kind"])
    assert {"no_meter_data", "meter_gap", "duplicate_reading", "missing_event_reading"} <= kinds
    lines = r.lines.set_index("bid_id")
    assert lines.loc["b", "status"] == "unverifiable" and pd.isna(lines.loc["b", "payment_eur"])
    assert lines.loc["c", "status"] == "unverifiable"  # conflicting readings: not zero
    assert lines.loc["a", "status"] == "settled"
    assert (tmp_path / "out" / "findings.parquet").is_file()


def test_dst_day_is_a_finding(tmp_path):
    run = make_run(tmp_path / "run", [{"t": "2025-11-06T18:00Z", "q": 0.01, "price": 50.0}])
    meter = write_meter(
        daily_meter("D1", "2025-09-15", 60, lambda d, s: 10.0), tmp_path / "m.parquet"
    )  # spans the clock change of 2025-10-26
    r = settle(run, meter, parse_config({"timezone": "Europe/Berlin"}), db=f"duckdb:///{tmp_path / 'store.duckdb'}")
    dst = r.findings[r.findings["kind"] == "dst_day"]
    assert "100 intervals" in dst["detail"].iloc[0]
    # the repeated clock hour is neither a duplicate nor a gap: the day is complete
    assert not r.findings["kind"].isin(["duplicate_reading", "meter_gap"]).any()
    assert str(r.findings["interval_start"].dtype) == "datetime64[us, UTC]"  # nanosecond input


def test_repeated_reading_inside_the_repeated_clock_hour_is_found(tmp_path):
    run = make_run(tmp_path / "run", [{"t": "2025-11-06T18:00Z", "q": 0.01, "price": 50.0}])
    meter = daily_meter("D1", "2025-09-15", 60, lambda d, s: 10.0)
    again = meter[meter["interval_start"] == pd.Timestamp("2025-10-26T01:15Z")]  # 02:15 CET
    path = write_meter(pd.concat([meter, again]), tmp_path / "m.parquet")
    r = settle(run, path, parse_config({"timezone": "Europe/Berlin"}), db=f"duckdb:///{tmp_path / 'store.duckdb'}")
    dup = r.findings[r.findings["kind"] == "duplicate_reading"]
    assert len(dup) == 1 and dup["severity"].iloc[0] == "info"
    assert dup["interval_start"].iloc[0] == pd.Timestamp("2025-10-26T01:15Z")
    assert not (r.findings["kind"] == "meter_gap").any()  # identical readings collapse to one


def test_too_little_history_is_a_finding_not_zero(tmp_path):
    run = make_run(tmp_path / "run", [{"t": "2026-01-08T18:00Z", "q": 0.01, "price": 50.0}])
    meter = write_meter(daily_meter("D1", "2026-01-05", 4, lambda d, s: 10.0), tmp_path / "m.parquet")
    r = settle(run, meter, SettleConfig(), db=f"duckdb:///{tmp_path / 'store.duckdb'}")
    f = r.findings[r.findings["kind"] == "insufficient_history"]
    assert len(f) == 1 and "3 eligible day(s), 10 wanted" in f["detail"].iloc[0]


def test_bad_config_is_named():
    with pytest.raises(SettlementConfigError, match="baseline"):
        parse_config({"baseline": "guess"})
    with pytest.raises(SettlementConfigError, match="not both"):
        parse_config({"penalty_eur_mwh": 1, "penalty_factor": 1})
    with pytest.raises(SettlementConfigError, match="priority"):
        parse_config({"priority": ["tso_balancing"]})


def test_priority_dso_first_never_paid_twice(tmp_path):
    awards = [
        {
            "bid_id": "t",
            "buyer_id": "tso",
            "service": "tso_balancing",
            "t": "2026-01-15T17:00Z",
            "q": 2.0,
            "price": 10.0,
        },
        {
            "bid_id": "d",
            "buyer_id": "dso1",
            "service": "dso_congestion",
            "t": "2026-01-15T17:00Z",
            "q": 2.0,
            "price": 30.0,
        },
    ]
    run = make_run(tmp_path / "run", awards, minutes=60)
    meter = daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60)
    meter.loc[meter["interval_start"] == pd.Timestamp("2026-01-15T17:00Z"), "consumption_kwh"] = (
        7_000.0  # 3 MWh delivered of 4 awarded
    )
    path = write_meter(meter, tmp_path / "m.parquet")
    r = settle(run, path, SettleConfig(), db=f"duckdb:///{tmp_path / 'store.duckdb'}")
    lines = r.lines.set_index("bid_id")
    assert lines.loc["d", "allocated_mwh"] == pytest.approx(2.0)
    assert lines.loc["t", "allocated_mwh"] == pytest.approx(1.0)
    assert lines["allocated_mwh"].sum() == pytest.approx(3.0)
    assert lines.loc["t", "shortfall_mwh"] == pytest.approx(1.0)


def _versioned_setup(tmp_path: Path):  # type: ignore[no-untyped-def]
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
    m.loc[at & (m["der_id"] == "D1"), "consumption_kwh"] = 9_000.0
    m.loc[at & (m["der_id"] == "D2"), "consumption_kwh"] = 4_000.0
    return run, m, at


def test_rerun_idempotent_and_corrections_make_new_versions(tmp_path, store_url):
    run, m, at = _versioned_setup(tmp_path)
    first = write_meter(m, tmp_path / "m1.parquet")
    r1 = settle(run, first, SettleConfig(), db=store_url)
    assert sorted(r1.new_versions["version"]) == [1, 1]

    def counts() -> tuple[int, int]:
        engine = make_engine(store_url)
        try:
            return len(read_table(engine, runs_t)), len(read_table(engine, findings_t))
        finally:
            engine.dispose()

    before = counts()
    r2 = settle(run, first, SettleConfig(), db=store_url)
    assert len(r2.new_versions) == 0  # same inputs: nothing changes, not even a run or finding row
    assert counts() == before
    corrected = m.copy()
    corrected.loc[at & (corrected["der_id"] == "D1"), "consumption_kwh"] = 8_000.0
    r3 = settle(run, write_meter(corrected, tmp_path / "m2.parquet"), SettleConfig(), db=store_url)
    assert r3.new_versions[["aggregator_id", "version"]].values.tolist() == [["A", 2]]
    engine = make_engine(store_url)
    st = read_table(engine, statements_t).sort_values(["aggregator_id", "version"])
    a = st[st["aggregator_id"] == "A"].set_index("version")
    assert a.loc[1, "net_eur"] == pytest.approx(1.0 * 7 - 1.0 * 7)  # v1 kept as it was
    assert a.loc[2, "net_eur"] == pytest.approx(2.0 * 7)
    import sqlalchemy as sa

    from settlement.store_tables import deltas_t

    with engine.connect() as conn:
        d = pd.DataFrame(conn.execute(sa.select(deltas_t)).mappings().all())
    engine.dispose()
    assert len(d) == 1 and d["delta_net_eur"].iloc[0] == pytest.approx(14.0 - 0.0)


@pytest.mark.parametrize("stage", ["run", "statements", "lines", "findings"])
def test_crash_mid_run_leaves_previous_state(tmp_path, store_url, stage):
    run, m, at = _versioned_setup(tmp_path)
    settle(run, write_meter(m, tmp_path / "m1.parquet"), SettleConfig(), db=store_url)
    engine = make_engine(store_url)
    before = read_table(engine, statements_t)
    corrected = m.copy()
    corrected.loc[at, "consumption_kwh"] = 1.0

    def boom(s: str) -> None:
        if s == stage:
            raise RuntimeError(f"injected failure at {s}")

    with pytest.raises(RuntimeError, match="injected"):
        settle(run, write_meter(corrected, tmp_path / "m2.parquet"), SettleConfig(), db=store_url, fail_hook=boom)
    after = read_table(engine, statements_t)
    engine.dispose()
    pd.testing.assert_frame_equal(
        before.sort_values("statement_id").reset_index(drop=True),
        after.sort_values("statement_id").reset_index(drop=True),
    )


def _settle_in_process(args):  # type: ignore[no-untyped-def]
    run, meter, url = args
    from market.errors import StoreConflictError

    try:
        r = settle(run, meter, SettleConfig(), db=url)
        return ("ok", len(r.new_versions))
    except StoreConflictError as exc:
        return ("conflict", str(exc)[:80])


def test_two_runs_at_once_nothing_lost_or_doubled(tmp_path, store_url):
    run, m, at = _versioned_setup(tmp_path)
    meter = write_meter(m, tmp_path / "m1.parquet")
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        outcomes = pool.map(_settle_in_process, [(run, meter, store_url)] * 2)
    kinds = sorted(o[0] for o in outcomes)
    assert kinds in (["ok", "ok"], ["conflict", "ok"])
    assert sum(o[1] for o in outcomes if o[0] == "ok") == 2  # two statements, written once
    engine = make_engine(store_url)
    st = read_table(engine, statements_t)
    engine.dispose()
    assert sorted(st["version"]) == [1, 1]


def test_settle_and_evaluate_cli_on_the_sample(tmp_path):
    from typer.testing import CliRunner

    from market.cli.app import app

    root = Path(__file__).resolve().parents[1]
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["clear", str(root / "data" / "sample"), "--design", "single", "--pricing", "pay-as-clear", "--out", str(run)],
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "settle"
    args = [
        "settle",
        "--run",
        str(run),
        "--meter",
        str(root / "data" / "meter.parquet"),
        "--config",
        str(root / "data" / "settle.toml"),
        "--out",
        str(out),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "8 new statement version(s)" in first.output
    again = runner.invoke(app, args)
    assert "0 new statement version(s)" in again.output
    for name in ("lines", "statements", "findings", "new_versions"):
        assert (out / f"{name}.parquet").is_file()
    lines = pd.read_parquet(out / "lines.parquet")
    assert (lines["status"] == "settled").all()
    ev = runner.invoke(
        app,
        [
            "baselines",
            "evaluate",
            "--meter",
            str(root / "data" / "meter.parquet"),
            "--config",
            str(root / "data" / "settle.toml"),
            "--out",
            str(tmp_path / "bl"),
        ],
    )
    assert ev.exit_code == 0, ev.output
    summary = pd.read_parquet(tmp_path / "bl" / "baseline_summary.parquet")
    manifest = json.loads((tmp_path / "bl" / "manifest.json").read_text())
    assert manifest["input_sha256"] == {
        "meter": sha256_file(root / "data" / "meter.parquet"),
        "config": sha256_file(root / "data" / "settle.toml"),
    }
    assert {
        "caiso-10-in-10",
        "pjm-high-4-of-5",
        "mid-8-of-10",
        "nyiso-high-5-of-10",
        "meter-before-meter-after",
    } <= set(summary["method"])
    assert summary["within_20pct"].between(0, 1).all()
    assert (tmp_path / "bl" / "baseline_accuracy.html").is_file()
    meter_args = ["baselines", "evaluate", "--meter", str(root / "data" / "meter.parquet")]
    again = runner.invoke(app, [*meter_args, "--days", "5", "--out", str(tmp_path / "bl")])  # an earlier one: replaced
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "bl" / "manifest.json").read_text())["options"]["placebo_days"] == 5
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.json").write_text("my own")
    refused = runner.invoke(app, [*meter_args, "--out", str(mine)])
    assert refused.exit_code == 2 and "not a flexmarket output" in refused.output
    assert [p.name for p in mine.iterdir()] == ["manifest.json"] and (mine / "manifest.json").read_text() == "my own"
    bad_window = runner.invoke(app, [*meter_args, "--window", "1700", "--out", str(tmp_path / "w")])
    assert bad_window.exit_code == 2 and "HH:MM-HH:MM" in bad_window.output and not (tmp_path / "w").exists()


def test_bad_meter_rows_are_refused_and_named(tmp_path):
    from market.errors import SettlementInputError

    run = make_run(tmp_path / "run", [{"t": "2026-01-08T18:00Z", "q": 0.01, "price": 50.0}])
    meter = daily_meter("D1", START.isoformat(), 70, weekday_value)
    meter.loc[5, "consumption_kwh"] = float("nan")
    meter.loc[9, "interval_start"] = meter.loc[9, "interval_start"] + pd.Timedelta(minutes=7)
    path = write_meter(meter, tmp_path / "m.parquet")
    out = tmp_path / "out"
    with pytest.raises(SettlementInputError) as info:
        settle(run, path, SettleConfig(), db=f"duckdb:///{tmp_path / 'store.duckdb'}", out=out)
    text = str(info.value)
    assert "meter row 5 (der_id=D1) column consumption_kwh" in text and "finite" in text
    assert "meter row 9 (der_id=D1) column interval_start" in text and "grid" in text
    assert not out.exists()  # nothing written
    many = meter.assign(consumption_kwh=meter["consumption_kwh"].where(meter.index >= 60))
    with pytest.raises(SettlementInputError, match=r"60 bad rows, first 50 listed") as info:
        settle(
            run,
            write_meter(many, tmp_path / "many.parquet"),
            SettleConfig(),
            db=f"duckdb:///{tmp_path / 'store.duckdb'}",
        )
    assert str(info.value).count("\n  meter row ") == 50
    naive = meter.assign(interval_start=meter["interval_start"].dt.tz_localize(None))
    with pytest.raises(SettlementInputError, match="timezone-aware"):
        settle(
            run, write_meter(naive, tmp_path / "n.parquet"), SettleConfig(), db=f"duckdb:///{tmp_path / 'store.duckdb'}"
        )


def test_run_without_awards_settles_to_empty_outputs(tmp_path):
    from market.errors import SettlementInputError

    run = make_run(tmp_path / "run", [{"t": "2026-01-08T18:00Z", "q": 0.01, "price": 50.0}])
    awards = pd.read_parquet(run / "awards.parquet")
    awards.iloc[:0].to_parquet(run / "awards.parquet", index=False)
    seal_run(run)  # a run with no awards, as clear writes it
    meter = daily_meter("D1", START.isoformat(), 10, weekday_value)
    r = settle(
        run,
        write_meter(meter, tmp_path / "m.parquet"),
        SettleConfig(),
        db=f"duckdb:///{tmp_path / 's.duckdb'}",
        out=tmp_path / "out",
    )
    assert r.period == "empty" and len(r.lines) == len(r.statements) == len(r.new_versions) == 0
    assert (tmp_path / "out" / "lines.parquet").is_file()
    bad = meter.assign(consumption_kwh=float("nan"))
    with pytest.raises(SettlementInputError, match="finite"):  # the meter is still checked
        settle(
            run, write_meter(bad, tmp_path / "bad.parquet"), SettleConfig(), db=f"duckdb:///{tmp_path / 'store.duckdb'}"
        )


def test_extra_award_columns_are_ignored(tmp_path):
    """Columns outside the contract, even with the names of internal ones, change nothing."""
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60)
    meter.loc[meter["interval_start"] == pd.Timestamp("2026-01-15T17:00Z"), "consumption_kwh"] = 8_000.0
    path = write_meter(meter, tmp_path / "meter.parquet")
    plain = settle(run, path, SettleConfig(), db=f"duckdb:///{tmp_path / 'store.duckdb'}")
    awards = pd.read_parquet(run / "awards.parquet")
    awards.assign(method="x", s=5, lday="oops", awarded_mwh=-1.0).to_parquet(run / "awards.parquet", index=False)
    seal_run(run, 60)
    extra = settle(run, path, SettleConfig(), db=f"duckdb:///{tmp_path / 'store.duckdb'}")
    pd.testing.assert_frame_equal(plain.lines, extra.lines)


def test_store_round_trips_text_numbers_and_times_exactly(store_url):
    """Bulk inserts (DuckDB relation, PostgreSQL COPY) keep commas, quotes, new lines,
    NULLs, dates and microsecond UTC instants."""
    from settlement.store import make_engine, read_table, save_run
    from settlement.store_tables import LINE_COLS, findings_t

    findings = pd.DataFrame(
        {
            "kind": ["meter_gap", "dst_day"],
            "severity": ["warning", "info"],
            "der_id": ['D,1 "quoted"', None],
            "day": [dt.date(2026, 3, 29), dt.date(2026, 10, 25)],
            "interval_start": pd.to_datetime(["2026-03-29T01:15:00.000001Z", None], utc=True),
            "detail": ["a, b; c\nnext line", "0.1 + 0.2 = 0.30000000000000004"],
        }
    )
    engine = make_engine(store_url)
    no_lines = pd.DataFrame(columns=[n for n, _ in LINE_COLS] + ["aggregator_id", "buyer_id"])
    no_lines["interval_start"] = pd.to_datetime(no_lines["interval_start"], utc=True)
    save_run(engine, "r1", ("actual", "p"), "sha", no_lines, pd.DataFrame(), findings, {})
    back = read_table(engine, findings_t).drop(columns="run_id")
    engine.dispose()
    assert back["der_id"].tolist() == ['D,1 "quoted"', None]
    assert back["detail"].tolist() == findings["detail"].tolist()
    assert pd.to_datetime(back["interval_start"], utc=True).iloc[0] == findings["interval_start"].iloc[0]
    assert pd.isna(back["interval_start"].iloc[1])
    assert [pd.Timestamp(d).date() for d in back["day"]] == findings["day"].tolist()


def test_plain_postgresql_url_uses_the_installed_driver(tmp_path, store_url):
    """``postgresql://`` (SQLAlchemy's default driver psycopg2 is not a dependency) works."""
    from settlement.store import resolve_url

    if not store_url.startswith("postgresql"):
        assert resolve_url(store_url) == store_url
        return
    plain = store_url.replace("postgresql+psycopg://", "postgresql://")
    run, m, _ = _versioned_setup(tmp_path)
    r = settle(run, write_meter(m, tmp_path / "m.parquet"), SettleConfig(), db=plain)
    assert sorted(r.new_versions["version"]) == [1, 1]


@pytest.mark.parametrize(
    ("db", "says", "code"),
    [
        ("postgresql://someone:secret@127.0.0.1:1/none", "cannot be reached", 1),
        ("nosuchdb://x", "a DuckDB file or a PostgreSQL database, not nosuchdb", 2),
        ("not a url", "is not a SQLAlchemy URL", 2),
    ],
)
def test_unusable_store_is_a_clean_error_and_writes_nothing(tmp_path, db, says, code):
    from typer.testing import CliRunner

    from market.cli.app import app

    run = make_run(tmp_path / "run", [{"t": "2026-01-08T18:00Z", "q": 0.01, "price": 50.0}])
    meter = write_meter(daily_meter("D1", START.isoformat(), 70, weekday_value), tmp_path / "m.parquet")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["settle", "--run", str(run), "--meter", str(meter), "--out", str(out), "--db", db])
    assert res.exit_code == code  # a URL that names no store is bad input; an unreachable one a failed job
    text = " ".join(res.output.split())
    assert says in text and "secret" not in text and "Traceback" not in text
    assert not out.exists()


@pytest.mark.parametrize("damaged", ["awards", "meter"])
def test_a_parquet_file_with_a_corrupt_page_is_a_named_input_error(tmp_path, damaged):
    """A file whose footer reads well but whose first page does not (byte 4 zeroed, found
    by the fuzz test): settle, validate --meter and baselines evaluate name the file and
    exit 2, no traceback."""
    from typer.testing import CliRunner

    from market.cli import app
    from market.io.synth import SynthSpec, synth_batch
    from market.io.write import write_batch

    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    path = run / "awards.parquet" if damaged == "awards" else meter
    data = bytearray(path.read_bytes())
    data[4] = 0
    path.write_bytes(bytes(data))
    runner = CliRunner()
    res = runner.invoke(app, ["settle", "--run", str(run), "--meter", str(meter), "--out", str(tmp_path / "o")])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output  # no traceback
    assert (
        res.exit_code == 2 and str(path) in res.output.replace("\n", "") and "cannot be read as Parquet" in res.output
    )
    assert not (tmp_path / "o").exists()
    if damaged == "meter":
        batch = write_batch(synth_batch(SynthSpec(bids=5, intervals=2, dsos=1, seed=5)), tmp_path / "b")
        checked = runner.invoke(app, ["validate", str(batch), "--meter", str(meter)])
        assert checked.exit_code == 2 and "cannot be read as Parquet" in checked.output
        scored = runner.invoke(app, ["baselines", "evaluate", "--meter", str(meter), "--out", str(tmp_path / "e")])
        assert scored.exit_code == 2 and "cannot be read as Parquet" in scored.output
        assert not (tmp_path / "e").exists()
