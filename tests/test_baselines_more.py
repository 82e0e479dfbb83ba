"""The methods added for the desk, each against numbers worked by hand: NODES' 5-of-5, the UK
DFS 10-day baseline with its in-day adjustment, and the control-group baseline
(difference in differences with non-dispatched meters).

Every case: 15-minute readings in UTC (settlement time zone UTC), one award of 0.01 MW at
Thursday 2026-01-15 17:00 (2.5 kWh in the interval), days counted from Monday 2025-11-17."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from settle_helpers import make_run, write_meter

from settlement import settle
from settlement.config import parse_config

AT = "2026-01-15T17:00Z"
EVENT = pd.Timestamp(AT)


def _readings(der: str, value) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    ts = pd.date_range("2025-11-17", "2026-01-16", freq="15min", inclusive="left", tz="UTC")
    return pd.DataFrame({"der_id": der, "interval_start": ts, "consumption_kwh": [float(value(t)) for t in ts]})


def _line(tmp_path: Path, frames: list[pd.DataFrame], method: str):  # type: ignore[no-untyped-def]
    meter = write_meter(pd.concat(frames, ignore_index=True), tmp_path / "m.parquet")
    run = make_run(tmp_path / "run", [{"t": AT, "q": 0.01, "price": 10.0}])
    r = settle(run, meter, parse_config({"baseline": method}), db=f"duckdb:///{tmp_path / 's.duckdb'}")
    return r.lines.iloc[0], r.findings


def _weekday_rank(t: pd.Timestamp) -> int:
    """0 for the event day, 1 for the weekday before it, ... (weekends are not counted)."""
    days = pd.bdate_range(t.normalize().tz_localize(None), EVENT.normalize().tz_localize(None))
    return len(days) - 1


def test_nodes_5_of_5_is_the_mean_of_the_five_preceding_working_days(tmp_path: Path) -> None:
    """Weekday k before the event reads 10 + k at every slot (weekends 99): the 5 preceding
    working days give (11 + 12 + 13 + 14 + 15) / 5 = 13; no adjustment."""

    def value(t: pd.Timestamp) -> float:
        if t == EVENT:
            return 13.0 - 2.5
        return 99.0 if t.dayofweek >= 5 else 10.0 + _weekday_rank(t)

    line, _ = _line(tmp_path, [_readings("D1", value)], "nodes-5-of-5")
    assert line["baseline_kwh"] == pytest.approx(13.0)
    assert line["delivered_up_mwh"] == pytest.approx(0.0025)


def test_eso_dfs_is_the_ten_day_mean_plus_the_in_day_adjustment(tmp_path: Path) -> None:
    """Weekday k reads 10 + k (k = 1..10 give a mean of 15.5); on the event day the 3 hours
    before 17:00 read 2 kWh above that day's usual 10 (so 12, against a baseline of 15.5 there:
    mean(actual - baseline) = 12 - 15.5 = -3.5); baseline at 17:00 = 15.5 - 3.5 = 12."""

    def value(t: pd.Timestamp) -> float:
        if t == EVENT:
            return 12.0 - 2.5
        if t.normalize() == EVENT.normalize() and EVENT - pd.Timedelta(hours=3) <= t < EVENT:
            return 12.0
        return 99.0 if t.dayofweek >= 5 else 10.0 + _weekday_rank(t)

    line, _ = _line(tmp_path, [_readings("D1", value)], "eso-dfs")
    assert line["baseline_kwh"] == pytest.approx(12.0)
    assert line["delivered_up_mwh"] == pytest.approx(0.0025)


def test_control_group_adds_the_change_of_the_non_dispatched_meters(tmp_path: Path) -> None:
    """D1 reads 10 on every day (its own 10-day baseline is 10). Two control meters read 5
    and 7 on ordinary days and 8 and 10 on the event day (a cold day: +3 each); the control
    group changed by (8 + 10) / 2 - (5 + 7) / 2 = +3, so D1's baseline is 10 + 3 = 13."""
    hot = EVENT.normalize()

    def treated(t: pd.Timestamp) -> float:
        return 13.0 - 2.5 if t == EVENT else 10.0

    frames = [
        _readings("D1", treated),
        _readings("C1", lambda t: 8.0 if t.normalize() == hot else 5.0),
        _readings("C2", lambda t: 10.0 if t.normalize() == hot else 7.0),
    ]
    line, findings = _line(tmp_path, frames, "control-group")
    assert line["baseline_kwh"] == pytest.approx(13.0)
    assert line["delivered_up_mwh"] == pytest.approx(0.0025)
    assert "no_control_group" not in set(findings["kind"])


def test_control_group_without_control_meters_says_so(tmp_path: Path) -> None:
    line, findings = _line(tmp_path, [_readings("D1", lambda t: 10.0)], "control-group")
    assert line["baseline_kwh"] == pytest.approx(10.0)
    assert "no_control_group" in set(findings["kind"])


def test_recommendation_takes_the_lowest_cv_rmse_without_a_bias_in_the_sellers_favour() -> None:
    """Up flexibility: method "high" has the lowest CV(RMSE) but over-estimates by 5 % (it
    would over-pay up delivery): "fair" (CV 0.20, bias -1 %) is recommended. Down: a baseline
    too high under-pays, so "high" qualifies and wins."""
    from settlement.evaluate import recommend

    scores = pd.DataFrame(
        {
            "level": "der",
            "method": ["high", "high", "fair", "fair", "poor", "poor"],
            "der_id": ["D1", "D2"] * 3,
            "cv_rmse": [0.10, 0.12, 0.20, 0.22, 0.50, 0.40],
            "bias": [0.05, 0.05, -0.01, -0.01, 0.0, 0.0],
        }
    )
    advice = recommend(scores, None, None).set_index("direction")
    assert advice.loc["up", "method"] == "fair" and advice.loc["up", "median_cv_rmse"] == pytest.approx(0.21)
    assert advice.loc["down", "method"] == "high" and bool(advice.loc["down", "meets_ashrae14"])
    types = pd.Series({"D1": "pv", "D2": "load"})
    by_type = recommend(scores, types, pd.DataFrame({"der_id": ["D1"], "direction": ["up"]}))
    assert by_type[["der_type", "direction", "method", "der"]].values.tolist() == [["pv", "up", "fair", 1]]


def test_hourly_cv_rmse_against_a_hand_computed_placebo(tmp_path: Path) -> None:
    """One DER reads 10 kWh per quarter hour on every day but the last weekday, which reads 12
    in the placebo window 17:00-19:00 (two hours): nodes-5-of-5's baseline there is 10 per
    quarter hour, 40 per hour against 48 metered: CV(RMSE) = 8 / 48."""
    from settlement.config import SettleConfig
    from settlement.evaluate import evaluate

    last = pd.Timestamp("2026-01-15", tz="UTC")

    def value(t: pd.Timestamp) -> float:
        return 12.0 if t.normalize() == last and 17 <= t.hour < 19 else 10.0

    meter = write_meter(_readings("D1", value), tmp_path / "m.parquet")
    scores, summary = evaluate(meter, SettleConfig(), window=("17:00", "19:00"), placebo_days=1)
    row = scores.set_index("method").loc["nodes-5-of-5"]
    assert row["cv_rmse"] == pytest.approx(8 / 48, abs=1e-6)
    assert "within_ashrae14" in summary
