"""The comparison report in a real headless browser, and Dask sweeps (local and a real
scheduler and worker started on loopback)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from market.analysis.sweep import GridPoint, apply_point, run_sweep
from market.analysis.verdict import RISKS
from market.cli.app import app
from market.design.spec import preset_names
from market.io.read import load_batch, sha256_file
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("compare")
    res = CliRunner().invoke(app, ["compare", str(ROOT / "data" / "sample"), "--designs", "all", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_comparison_table_has_every_design_metric_and_unit(compared):
    table = pd.read_parquet(compared / "comparison.parquet")
    assert set(table["design"]) == set(preset_names())
    for metric, unit in [
        ("tier_bypassing_mw", "MW"),
        ("distribution_violation_mwh", "MWh"),
        ("total_cost_eur", "EUR"),
        ("latency_s_max", "s"),
        ("latency_s_mean_weighted", "s"),
        ("hidden_coupling_undone_mwh", "MWh"),
        ("cyber_exposure_endpoints", "count"),
    ]:
        assert set(table.loc[table["metric"] == metric, "unit"]) == {unit}, metric
    for name in preset_names():
        assert (compared / "runs" / name / "awards.parquet").is_file()
    manifest = json.loads((compared / "manifest.json").read_text())
    assert manifest["kind"] == "comparison" and "duckdb" in manifest["versions"]
    assert manifest["input_sha256"]["batch/bids.parquet"] == sha256_file(ROOT / "data" / "sample" / "bids.parquet")


@pytest.mark.browser
def test_report_renders_in_headless_chromium(compared):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        if os.geteuid() == 0:  # tests/run.sh installs it as root: its absence is a failure
            pytest.fail("chromium is not installed although tests/run.sh runs as root and installs it")
        pytest.skip("chromium is not installed and this is not root (sudo apt-get install chromium)")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.route(
            "**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_()
        )  # prove it needs no network
        page.goto((compared / "report.html").as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
        rendered = page.evaluate(
            "Array.from(document.querySelectorAll('.plotly-graph-div'))"
            ".map(d => [d.id, d.querySelectorAll('.main-svg').length])"
        )
        text = page.inner_text("body")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert len(rendered) >= 5 + len(preset_names())  # plots + one skeleton per design
    assert all(n > 0 for _, n in rendered), rendered
    for name in preset_names():
        assert name in text
    # the report answers the regulator: a sentence per risk against today's model, the
    # report's predictions beside the measurement, identical dispatch said in words
    assert "What the comparison says (against tso-only" in text
    for risk in RISKS:
        assert f"{risk.label}: " in text, risk.key
    assert "Identical dispatch:" in text and "predictions that agree with the measurement" in text
    assert "structural" in text  # properties of the wiring are labelled as such
    assert "interval start (UTC)" in text


def test_sweep_local_cluster(tmp_path):
    batch = synth_batch(SynthSpec(bids=12, intervals=3, dsos=2, seed=4))
    grid = [GridPoint(bid_volume_scale=s) for s in (0.5, 1.0)]
    res = run_sweep(batch, ["single", "tso-only"], grid)
    assert set(res["design"]) == {"single", "tso-only"}
    assert res["point"].nunique() == 2
    cost = res[res["metric"] == "system_cost_eur"].set_index(["point", "design"])["value"]
    # more flexibility offered never makes the single market dearer
    assert cost[(grid[1].label(), "single")] <= cost[(grid[0].label(), "single")] + 1e-6


def test_apply_point_leaves_input_untouched():
    batch = synth_batch(SynthSpec(bids=6, intervals=2, seed=1))
    before = batch.bids.copy()
    scaled = apply_point(batch, GridPoint(bid_volume_scale=2.0, voll_eur_mwh=500.0))
    pd.testing.assert_frame_equal(batch.bids, before)
    assert (scaled.bids["quantity_mw"] == 2 * before["quantity_mw"]).all()
    assert scaled.config.voll_eur_mwh == 500.0


def test_sweep_on_real_scheduler_and_worker(tmp_path, dask_scheduler):
    address = dask_scheduler
    batch = synth_batch(SynthSpec(bids=10, intervals=2, dsos=2, seed=7))
    folder = write_batch(batch, tmp_path / "b")
    grid = tmp_path / "sweep.toml"
    grid.write_text("[grid]\nneed_scale = [1.0, 2.0]\n")
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(folder),
            "--grid",
            str(grid),
            "--designs",
            "single,dso-led",
            "--out",
            str(tmp_path / "out"),
            "--scheduler",
            address,
        ],
    )
    assert res.exit_code == 0, res.output
    remote = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    local = run_sweep(load_batch(folder), ["single", "dso-led"], [GridPoint(need_scale=1.0), GridPoint(need_scale=2.0)])
    keep = ~remote["metric"].str.startswith("scalability_max_solve")
    pd.testing.assert_frame_equal(
        remote[keep].reset_index(drop=True),
        local[~local["metric"].str.startswith("scalability_max_solve")].reset_index(drop=True),
        check_dtype=False,
    )
    assert (tmp_path / "out" / "report.html").is_file()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["kind"] == "sweep" and manifest["input_sha256"]["grid"] == sha256_file(grid)
    assert manifest["input_sha256"]["batch/bids.parquet"] == sha256_file(folder / "bids.parquet")
    again = CliRunner().invoke(  # an earlier sweep is replaced whole
        app, ["sweep", str(folder), "--grid", str(grid), "--designs", "single", "--out", str(tmp_path / "out"),
              "--scheduler", address],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert set(pd.read_parquet(tmp_path / "out" / "sweep.parquet")["design"]) == {"single"}


def test_a_sweep_never_writes_into_a_folder_it_did_not_make(tmp_path):
    """The sweep's folder is built beside OUT and moved into place whole; a folder that is
    not an earlier sweep is refused before anything runs, and left as it was."""
    folder = write_batch(synth_batch(SynthSpec(bids=6, intervals=2, dsos=2, seed=1)), tmp_path / "b")
    grid = tmp_path / "sweep.toml"
    grid.write_text("[grid]\nneed_scale = [1.0]\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("my notes")
    res = CliRunner().invoke(app, ["sweep", str(folder), "--grid", str(grid), "--out", str(mine)])
    assert res.exit_code == 2 and "not a flexmarket output" in res.output
    assert [p.name for p in mine.iterdir()] == ["report.html"] and (mine / "report.html").read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "mine", "sweep.toml"]  # no temporary folder left
