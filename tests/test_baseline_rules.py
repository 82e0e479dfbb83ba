"""Every baseline rule of docs/contract.md ("Baselines") on hand-computed DER-days: the
adjustment window across midnight, the autumn clock change weighing as one day, like
days for weekend events, and factor 1 with a finding where the window's baseline is not
positive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from settle_helpers import make_run, write_meter

from settlement import settle
from settlement.config import parse_config


def _meter(tmp_path: Path, start: str, end: str, value, name: str = "m") -> Path:  # type: ignore[no-untyped-def]
    """15-minute readings of DER D1 from ``start`` to ``end`` (UTC), ``value(ts)`` kWh each."""
    ts = pd.date_range(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), freq="15min", inclusive="left")
    df = pd.DataFrame({"der_id": "D1", "interval_start": ts, "consumption_kwh": [float(value(t)) for t in ts]})
    return write_meter(df, tmp_path / f"{name}.parquet")


def _settle(tmp_path: Path, at: str, meter: Path, **config):  # type: ignore[no-untyped-def]
    run = make_run(tmp_path / "run", [{"t": at, "q": 0.01, "price": 10.0}])
    return settle(run, meter, parse_config(config), db=f"duckdb:///{tmp_path / 's.duckdb'}")


def test_caiso_adjustment_window_crosses_midnight(tmp_path):
    """Award Thu 2026-01-15 01:00 UTC. History flat 10 kWh; the evening before (Wed 21:00-24:00)
    reads 12. Baseline at those slots = (9 x 10 + 12) / 10 = 10.2; the window [21:00, 00:00)
    holds 12 readings of 12 -> factor 12 / 10.2; baseline at 01:00 = 10 x 12 / 10.2."""
    evening = (pd.Timestamp("2026-01-14T21:00Z"), pd.Timestamp("2026-01-15T00:00Z"))

    def value(t: pd.Timestamp) -> float:
        if t == pd.Timestamp("2026-01-15T01:00Z"):
            return 10.0 - 2.5  # the DER delivered its 0.01 MW x 15 min
        return 12.0 if evening[0] <= t < evening[1] else 10.0

    meter = _meter(tmp_path, "2025-11-20", "2026-01-16", value)
    line = _settle(tmp_path, "2026-01-15T01:00Z", meter, baseline="caiso-10-in-10").lines.iloc[0]
    assert line["baseline_kwh"] == pytest.approx(10.0 * 12.0 / 10.2, abs=1e-6)


def test_a_missing_reading_in_the_window_is_a_finding_not_a_silent_cut(tmp_path):
    def value(t: pd.Timestamp) -> float:
        return 10.0

    ts = pd.date_range("2025-11-20", "2026-01-16", freq="15min", inclusive="left", tz="UTC")
    df = pd.DataFrame({"der_id": "D1", "interval_start": ts, "consumption_kwh": 10.0})
    df = df[df["interval_start"] != pd.Timestamp("2026-01-14T23:45Z")]
    meter = write_meter(df, tmp_path / "gap.parquet")
    r = _settle(tmp_path, "2026-01-15T01:00Z", meter, baseline="caiso-10-in-10")
    found = r.findings[r.findings["kind"] == "adjustment_window_incomplete"]
    assert len(found) == 1 and "11 of 12" in found["detail"].iloc[0]


def test_autumn_clock_change_day_weighs_as_one_day_and_sundays_match_sundays(tmp_path):
    """NYISO, Sunday event 2025-11-02 02:00 CET (01:00 UTC), Europe/Berlin. Flat 10 kWh;
    Saturdays read 30 (not like days of a Sunday); on Sunday 2025-10-26 (clock change) the
    repeated hour 02:00-03:00 reads 10 the first time and 20 the second: that slot is 15.
    Pool: the 3 latest Sundays (Oct 26, 19, 12), keep the 2 highest by window energy:
    Oct 26 (15) and Oct 19 (10) -> baseline 12.5 (averaging readings would give 13.33)."""

    def value(t: pd.Timestamp) -> float:
        local = t.tz_convert("Europe/Berlin")
        if t == pd.Timestamp("2025-11-02T01:00Z"):
            return 10.0 - 2.5
        if local.dayofweek == 5:
            return 30.0
        if pd.Timestamp("2025-10-26T01:00Z") <= t < pd.Timestamp("2025-10-26T02:00Z"):
            return 20.0  # the second 02:00-03:00 (CET)
        return 10.0

    meter = _meter(tmp_path, "2025-09-10", "2025-11-03", value)
    r = _settle(tmp_path, "2025-11-02T01:00Z", meter, baseline="nyiso-high-5-of-10", timezone="Europe/Berlin")
    assert r.lines.iloc[0]["baseline_kwh"] == pytest.approx(12.5, abs=1e-6)


def test_non_positive_window_baseline_gives_factor_one_with_a_finding(tmp_path):
    """A net exporter (-10 kWh every interval), CAISO: the window's baseline is -120 kWh, so
    the factor is 1 and a finding says so; baseline at the award = -10."""

    def value(t: pd.Timestamp) -> float:
        return -10.0 - (2.5 if t == pd.Timestamp("2026-01-15T17:00Z") else 0.0)

    meter = _meter(tmp_path, "2025-11-20", "2026-01-16", value)
    r = _settle(tmp_path, "2026-01-15T17:00Z", meter, baseline="caiso-10-in-10")
    assert r.lines.iloc[0]["baseline_kwh"] == pytest.approx(-10.0)
    assert "adjustment_not_positive" in set(r.findings["kind"])


def test_nyiso_low_usage_filter_for_a_net_exporter_is_skipped_with_a_finding(tmp_path):
    rng = np.random.default_rng(3)
    noise = {d: rng.uniform(-2, 2) for d in pd.date_range("2025-11-20", "2026-01-16", tz="UTC")}

    def value(t: pd.Timestamp) -> float:
        return -10.0 + noise[t.normalize()]

    meter = _meter(tmp_path, "2025-11-20", "2026-01-16", value)
    r = _settle(tmp_path, "2026-01-15T17:00Z", meter, baseline="nyiso-high-5-of-10")
    assert "low_usage_filter_skipped" in set(r.findings["kind"])
