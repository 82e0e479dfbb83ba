"""How sure a comparison is: every design over many days, medians and ranges, the share of
days each design is best, the VoLL sensitivity, and the first screen (`flexmarket season`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from market.cli.app import app
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch
from market.testing import feeder_case


@pytest.fixture
def days(tmp_path: Path) -> Path:
    """Three days: twice the feeder case (a TSO blind to a feeder overloads it: the joint
    market is best on violations), once a synthetic day."""
    folder = tmp_path / "days"
    write_batch(feeder_case(), folder / "2026-01-05")
    write_batch(feeder_case(), folder / "2026-01-06")
    write_batch(synth_batch(SynthSpec(bids=8, intervals=2, dsos=2, seed=7)), folder / "2026-01-07")
    return folder


def test_a_season_gives_ranges_shares_and_a_voll_sensitivity(days: Path, tmp_path: Path) -> None:
    out = tmp_path / "season"
    res = CliRunner().invoke(
        app,
        ["season", str(days), "--designs", "single,tso-only,dso-led", "--out", str(out), "--voll-factors", "0.5,1"]
        + ["--json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["days"] == 3
    import pandas as pd

    summary = pd.read_parquet(out / "summary.parquet")
    one = summary[(summary["voll_factor"] == 1.0) & (summary["metric"] == "distribution_violation_mwh")]
    assert set(one["days"]) == {3}
    tso = one.set_index("design").loc["tso-only"]
    assert tso["max"] == pytest.approx(2.0) and tso["min"] <= tso["median"] <= tso["max"]
    rankings = pd.read_parquet(out / "rankings.parquet")
    violations = rankings[(rankings["risk"] == "violations") & (rankings["voll_factor"] == 1.0)].set_index("design")
    assert violations.loc["single", "share_best"] == pytest.approx(1.0)
    assert violations.loc["tso-only", "share_best"] <= 1 / 3 + 1e-9  # overloads the feeder on two days of three
    assert set(rankings["voll_factor"]) == {0.5, 1.0}
    assert ((rankings["share_best"] >= 0) & (rankings["share_best"] <= 1)).all()
    assert set(rankings.loc[rankings["risk"] == "tier_bypassing", "kind"]) == {"structural"}
    page = (out / "report.html").read_text()
    assert "3 days" in page and "not findings" in page and "Sensitivity to VoLL" in page
    assert json.loads((out / "manifest.json").read_text())["kind"] == "season"


@pytest.mark.parametrize("bad", [["--voll-factors", "2"], ["--voll-factors", "x"], ["--voll-factors", "-1,1"]])
def test_bad_voll_factors_are_refused_before_anything_runs(days: Path, tmp_path: Path, bad: list[str]) -> None:
    res = CliRunner().invoke(app, ["season", str(days), "--out", str(tmp_path / "s"), *bad])
    assert res.exit_code == 2 and not (tmp_path / "s").exists()


def test_a_season_never_writes_inside_its_days(days: Path) -> None:
    res = CliRunner().invoke(app, ["season", str(days), "--designs", "single", "--out", str(days / "season")])
    assert res.exit_code == 2 and not (days / "season").exists()


def test_a_season_fans_out_on_a_real_dask_cluster(days: Path, dask_scheduler: str) -> None:
    """The same season on a real scheduler and worker (loopback) as locally."""
    from market.analysis.season import run_season

    here = run_season(days, ["single", "tso-only"])
    there = run_season(days, ["single", "tso-only"], scheduler=dask_scheduler)
    for a, b in zip(here, there, strict=True):
        pd.testing.assert_frame_equal(a, b)
