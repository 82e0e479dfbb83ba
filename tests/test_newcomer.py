"""A newcomer's path: the README is short and its tutorial runs as written; a command that
needs a missing extra names it; global options work anywhere on the line; every --json is
one JSON document, on failure too."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import market.extras as extras
from market.cli.app import app
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_is_for_users_and_short() -> None:
    assert len(README.splitlines()) <= 250
    assert "## Two commands" in README and "## Ten-minute tutorial" in README


def _tutorial() -> str:
    section = README[README.index("## Ten-minute tutorial") : README.index("## Commands")]
    return "\n".join(re.findall(r"```bash\n(.*?)```", section, re.S))


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _tutorial()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    out = res.stdout
    assert "valid" in out
    assert "dso-1" in out and "tso-1" in out  # the awards and prices printed
    assert "2 new statement version(s)" in out and "issued" in out
    awards = __import__("pandas").read_parquet(tmp_path / "runs/tutorial/single/awards.parquet")
    got = sorted(zip(awards["bid_id"], awards["buyer_id"], awards["quantity_mw"], strict=True))
    assert got == [("b1", "dso1", 1.0), ("b3", "tso", 2.0)]  # as the README says


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "b"
    write_batch(synth_batch(SynthSpec(bids=6, intervals=2, dsos=2, seed=3)), folder)
    return folder


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = extras.importlib.util.find_spec

    def without_grids(name: str, *args: object):  # type: ignore[no-untyped-def]
        return None if name == "pandapower" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(extras.importlib.util, "find_spec", without_grids)
    res = CliRunner().invoke(app, ["network", "import", "pandapower:case9", "--out", str(tmp_path / "net")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "'grids' extra" in text and "pip install 'flexmarket[grids]'" in text
    assert not (tmp_path / "net").exists()


def test_quiet_and_verbose_work_anywhere_on_the_line(batch: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["clear", str(batch), "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.stdout == ""
    res = CliRunner().invoke(app, ["designs", "list", "-q"])
    assert res.exit_code == 0 and res.stdout == ""


def test_every_json_is_one_document_on_success_and_on_failure(batch: Path, tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["validate", str(batch), "--json"])
    assert json.loads(ok.stdout)["valid"] is True
    (batch / "bids.parquet").write_bytes(b"not parquet")
    bad = CliRunner().invoke(app, ["validate", str(batch), "--json"])
    doc = json.loads(bad.stdout)
    assert bad.exit_code == 2 and doc["ok"] is False and doc["exit_code"] == 2 and "bids" in doc["error"]
    usage = CliRunner().invoke(app, ["clear", str(batch), "--nope", "--json"])
    assert usage.exit_code == 2 and json.loads(usage.stdout)["kind"] == "NoSuchOption"


def test_an_invalid_batch_gives_every_finding_as_json(tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "b"
    write_batch(synth_batch(SynthSpec(bids=6, intervals=2, dsos=2, seed=3)), folder)
    bids = pd.read_parquet(folder / "bids.parquet")
    bids.loc[0, "quantity_mw"] = -1.0
    bids.to_parquet(folder / "bids.parquet", index=False)
    res = CliRunner().invoke(app, ["validate", str(folder), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 2
    assert {(f["table"], f["column"], f["code"]) for f in doc["findings"]} >= {("bids", "quantity_mw", "invalid_value")}
