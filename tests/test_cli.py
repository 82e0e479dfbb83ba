"""The CLI behaves in a scheduled job: a version, quiet and JSON output, no solver banner,
usage errors exit 2, one pricing default, and the demo finds its sample from anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import market
from market.cli import app
from market.cli.demo import find_sample
from market.design.spec import FLAGS, load_design, preset_names
from market.enums import DEFAULT_PRICING, Pricing
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch")
    write_batch(synth_batch(SynthSpec(bids=20, intervals=2, dsos=2, seed=1)), folder)
    return folder


def _flexmarket(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process: C-level output (the solver's) is seen too."""
    code = "from market.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300
    )


def test_version() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"flexmarket {market.__version__}"


def test_a_plain_clear_prints_no_solver_banner_and_verbose_does(small_batch: Path, tmp_path: Path) -> None:
    plain = _flexmarket("clear", str(small_batch), "--out", str(tmp_path / "a"))
    assert plain.returncode == 0, plain.stderr
    assert "HiGHS" not in plain.stdout + plain.stderr
    assert "clearing single [1/1]" in plain.stderr  # a plain log line off a terminal, with a count
    verbose = _flexmarket("--verbose", "clear", str(small_batch), "--out", str(tmp_path / "b"))
    assert verbose.returncode == 0 and "HiGHS" in verbose.stdout


def test_quiet_and_json(small_batch: Path, tmp_path: Path) -> None:
    res = _flexmarket("--quiet", "clear", str(small_batch), "--out", str(tmp_path / "r"), "--json")
    assert res.returncode == 0 and res.stderr == ""
    summary = json.loads(res.stdout)
    assert summary["pricing"] == DEFAULT_PRICING.value and "system_cost_eur" in summary["metrics"]
    quiet = _flexmarket("-q", "validate", str(small_batch))
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_the_console_script_leaves_with_the_commands_code_and_all_its_output(small_batch: Path, tmp_path: Path) -> None:
    """``main`` exits without the interpreter's teardown (``hard_exit``): the exit code is
    the command's and nothing it printed or logged is lost."""
    done = _flexmarket("clear", str(small_batch), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"run written to {tmp_path / 'run'}")
    assert f"INFO run written to {tmp_path / 'run'}" in done.stderr
    as_json = _flexmarket("clear", str(small_batch), "--out", str(tmp_path / "run"), "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["design"] == "single"
    bad = _flexmarket("clear", str(tmp_path / "missing"), "--out", str(tmp_path / "other"))
    assert bad.returncode == 2 and "not a folder" in bad.stderr and not (tmp_path / "other").exists()
    usage = _flexmarket("clear", str(small_batch), "--pricing", "nonsense")
    assert usage.returncode == 2 and "pricing" in usage.stderr
    assert _flexmarket("--version").stdout.strip() == f"flexmarket {market.__version__}"


def test_the_run_manifest_names_the_backend_that_solved(small_batch: Path, tmp_path: Path) -> None:
    for backend in ("highspy", "cvxpy"):
        res = CliRunner().invoke(
            app, ["clear", str(small_batch), "--backend", backend, "--out", str(tmp_path / backend)]
        )
        assert res.exit_code == 0, res.output
        manifest = json.loads((tmp_path / backend / "manifest.json").read_text())
        assert manifest["solver"] == f"HiGHS via {backend}" and manifest["options"]["backend"] == backend


def test_a_mistyped_pricing_is_a_usage_error(small_batch: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["clear", str(small_batch), "--pricing", "pay-as-clr", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("option", "value"), [("--mip-gap", "nan"), ("--mip-gap", "1"), ("--time-limit", "0")])
def test_mip_limits_out_of_range_are_usage_errors(small_batch: Path, tmp_path: Path, option: str, value: str) -> None:
    res = CliRunner().invoke(app, ["clear", str(small_batch), option, value, "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and option in res.output
    assert not any(tmp_path.iterdir())


def test_mip_limits_are_passed_to_highs_and_recorded_in_the_manifest(tmp_path: Path) -> None:
    from market.io.synth import SynthSpec, write_synth

    batch = tmp_path / "b"
    write_synth(SynthSpec(bids=60, intervals=4, dsos=1, seed=1, integer_share=0.5), batch)
    res = CliRunner().invoke(
        app, ["clear", str(batch), "--mip-gap", "0.01", "--time-limit", "30", "--out", str(tmp_path / "run")]
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["options"]["mip_gap"] == 0.01 and manifest["options"]["time_limit_s"] == 30.0
    assert manifest["models"][0]["n_integer"] > 0


def test_one_pricing_default_everywhere() -> None:
    import inspect

    from market.analysis.compare import compare
    from market.analysis.sweep import run_sweep
    from market.clearing.run import clear

    assert DEFAULT_PRICING is Pricing.PAY_AS_CLEAR
    for fn in (clear, compare, run_sweep):
        assert inspect.signature(fn).parameters["pricing"].default is DEFAULT_PRICING
    for command in ("clear", "compare", "sweep"):
        res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "pay-as-clear" in res.output


def test_sweep_help_keeps_the_grid_text() -> None:
    res = CliRunner().invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"})
    assert "[grid]" in res.output


def test_demo_finds_the_sample_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no data/ here: the checkout's data/ beside the package is found
    assert find_sample(None) == ROOT / "data"
    res = CliRunner().invoke(app, ["demo", "--data", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no sample data" in res.output


@pytest.mark.parametrize("name", preset_names())
def test_designs_show_prints_every_setting_of_every_preset(name: str) -> None:
    """Every step's settings, a flag only one step sets (``reserve``, ``blind_to_earlier``)
    included, with no traceback."""
    res = CliRunner().invoke(app, ["designs", "show", name])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    set_somewhere = {f for s in load_design(name).steps for f in FLAGS if getattr(s, f)}
    assert [f for f in set_somewhere if f not in res.output] == []
