"""Portfolio-level M&V (``level = "portfolio"``): the summed meter data of a registered
resource is baselined and settled, as the programmes do; hand-computed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from settle_helpers import daily_meter, make_run, write_meter

from settlement import settle
from settlement.config import parse_config
from settlement.evaluate import evaluate_levels

EVENT = pd.Timestamp("2026-01-15T17:00Z")


def _meter(tmp_path: Path, d1_drop: float, d2_noise: float, resource: bool = False) -> Path:
    """D1 and D2 read 10 kWh flat for 60 days; at the event D1 reads ``d1_drop`` less and
    D2 ``d2_noise`` more."""
    frames = []
    for der, delta in (("D1", -d1_drop), ("D2", d2_noise)):
        m = daily_meter(der, "2025-11-16", 61, lambda k, s: 10.0)
        m.loc[m["interval_start"] == EVENT, "consumption_kwh"] += delta
        frames.append(m)
    df = pd.concat(frames, ignore_index=True)
    if resource:
        df["resource_id"] = "R1"
    return write_meter(df, tmp_path / "meter.parquet")


def _run(tmp_path: Path) -> Path:
    # D1 sells 0.02 MW up for the quarter-hour (5 kWh); D2, same aggregator and DSO, sells
    # nothing then but is awarded at another hour, so it belongs to the run's resource
    return make_run(
        tmp_path / "run",
        [
            {"bid_id": "b1", "der_id": "D1", "t": "2026-01-15T17:00Z", "q": 0.02, "price": 100.0},
            {"bid_id": "b2", "der_id": "D2", "t": "2026-01-15T19:00Z", "q": 0.02, "price": 100.0},
        ],
    )


@pytest.mark.parametrize("resource", [False, True])
def test_portfolio_settles_the_resources_summed_delivery(tmp_path, resource):
    meter = _meter(tmp_path, d1_drop=5.0, d2_noise=1.0, resource=resource)
    db = f"duckdb:///{tmp_path / 's.duckdb'}"
    cfg = {"baseline": "caiso-10-in-10"}
    per_der = settle(_run(tmp_path), meter, parse_config(cfg), db=db).lines.set_index("bid_id")
    portfolio = settle(_run(tmp_path), meter, parse_config({**cfg, "level": "portfolio"}), db=db)
    lines = portfolio.lines.set_index("bid_id")
    assert per_der.loc["b1", "allocated_mwh"] == pytest.approx(0.005)  # D1 alone: all 5 kWh
    # the resource: baseline 20, metered 20 - 5 + 1 = 16 -> 4 kWh delivered
    assert lines.loc["b1", "baseline_kwh"] == pytest.approx(20.0)
    assert lines.loc["b1", "metered_kwh"] == pytest.approx(16.0)
    assert lines.loc["b1", "allocated_mwh"] == pytest.approx(0.004)
    assert lines.loc["b1", "der_id"] == "D1" and lines.loc["b2", "der_id"] == "D2"  # named again


def test_baseline_accuracy_is_reported_per_der_and_per_resource(tmp_path):
    meter = _meter(tmp_path, d1_drop=0.0, d2_noise=0.0)
    scores, summary = evaluate_levels(meter, parse_config({}), _run(tmp_path), placebo_days=5)
    assert set(summary["level"]) == {"der", "portfolio"}
    assert set(scores.loc[scores["level"] == "portfolio", "der_id"]) == {"agg/dso1"}
    flat = summary[summary["method"] == "caiso-10-in-10"]
    assert (flat["median_rrmse"] == 0).all()  # flat readings: every baseline exact at both levels


def test_on_the_sample_portfolio_settlement_allocates_more_of_the_awarded_energy(tmp_path):
    """data/sample: aggregators offer each registered resource (aggregator x DSO) at one
    price, so resources are dispatched as a whole; settled per resource, members' baseline
    errors net out and a larger share of the awarded energy is allocated than per DER
    (docs/guide.md, "Level")."""
    from typer.testing import CliRunner

    from market.cli.app import app

    root = Path(__file__).resolve().parents[1]
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["clear", str(root / "data" / "sample"), "--design", "single", "--out", str(run)])
    assert res.exit_code == 0, res.output
    raw = {
        "priority": ["dso_congestion", "tso_balancing"],
        "holidays": ["2016-10-03", "2016-10-31", "2016-11-01"],
        "timezone": "Europe/Berlin",
        "baseline": {"default": "caiso-10-in-10", "dso_congestion": "meter-before-meter-after"},
    }
    shares = {}
    for level in ("der", "portfolio"):
        db = f"duckdb:///{tmp_path / f'{level}.duckdb'}"
        lines = settle(run, root / "data" / "meter.parquet", parse_config({**raw, "level": level}), db=db).lines
        assert lines["awarded_mwh"].sum() == pytest.approx(31.684, abs=1e-3)
        shares[level] = lines["allocated_mwh"].sum() / lines["awarded_mwh"].sum()
    assert shares["portfolio"] > shares["der"]
