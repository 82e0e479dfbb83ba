"""Nothing a user types can destroy their files: outputs are built beside the target and
moved into place, replace only earlier outputs of the same kind, never the current folder
or a parent; design names are identifiers and presets resolve inside the package."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import market.analysis.compare as compare_module
from market.cli import app
from market.design.spec import load_design
from market.errors import DesignError, OutputError
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch")
    write_batch(synth_batch(SynthSpec(bids=10, intervals=2, dsos=2, seed=2)), folder)
    return folder


def _clear(batch: Path, out: Path | str, *extra: str) -> int:
    return CliRunner().invoke(app, ["clear", str(batch), "--out", str(out), *extra]).exit_code


def test_out_never_replaces_the_current_folder_or_a_parent(
    batch_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("mine")
    monkeypatch.chdir(work)
    assert _clear(batch_dir, ".") == 2
    assert _clear(batch_dir, "..", "--force") == 2
    assert (work / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no temporary folder left


def test_out_replaces_an_earlier_run_but_not_a_users_folder(batch_dir: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert _clear(batch_dir, mine) == 2
    assert (mine / "notes.txt").read_text() == "mine"
    run = tmp_path / "run"
    assert _clear(batch_dir, run) == 0 and _clear(batch_dir, run) == 0  # an earlier run is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "run"]


def test_run_folders_follow_the_umask(batch_dir: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert _clear(batch_dir, tmp_path / "run") == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755


def test_design_names_are_identifiers_and_presets_stay_inside_the_package(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    design = tmp_path / "evil.toml"
    design.write_text('name = "../../victim"\n[[steps]]\nbuyers = ["tso"]\n')
    with pytest.raises(DesignError, match="identifier"):
        load_design(design)
    with pytest.raises(DesignError, match="unknown design"):
        load_design("../../pyproject")
    assert victim.is_dir()


def test_an_interrupted_compare_leaves_the_earlier_folder(
    batch_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cmp"
    runner = CliRunner()
    assert runner.invoke(app, ["compare", str(batch_dir), "--designs", "single", "--out", str(out)]).exit_code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def broken(*args: object, **kwargs: object) -> str:
        raise OutputError("the report could not be written")

    monkeypatch.setattr(compare_module, "render_report", broken)
    res = runner.invoke(app, ["compare", str(batch_dir), "--designs", "single,tso-only", "--out", str(out)])
    assert res.exit_code != 0
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the earlier state, not a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]
