"""Hostile and careless inputs end in a named error (exit 2) and nothing written: strict
types and bounds in every configuration file, unknown keys with a suggestion, absurd
values in tables, and run folders edited after they were written."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from settle_helpers import daily_meter, make_run, seal_run, write_meter
from typer.testing import CliRunner

from market.cli import app
from market.design.spec import parse_design
from market.errors import DesignError, SettlementInputError
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch
from settlement import settle
from settlement.config import parse_config


@pytest.fixture()
def batch_dir(tmp_path: Path) -> Path:
    write_batch(synth_batch(SynthSpec(bids=10, intervals=2, dsos=2, seed=4)), tmp_path / "b")
    return tmp_path / "b"


def _toml_with(folder: Path, line: str) -> None:
    text = (folder / "batch.toml").read_text().replace("[hop_latency_s]", f"{line}\n\n[hop_latency_s]")
    (folder / "batch.toml").write_text(text)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("voll_eur_mwh_x = 5", "unknown key; did you mean 'voll_eur_mwh'"),
        ("interval_minute = 15", "did you mean 'interval_minutes'"),
    ],
)
def test_unknown_batch_keys_are_refused_with_a_suggestion(batch_dir: Path, line: str, message: str) -> None:
    _toml_with(batch_dir, line)
    res = CliRunner().invoke(app, ["validate", str(batch_dir)])
    assert res.exit_code == 2 and message in res.output


@pytest.mark.parametrize("value", ["true", "1e308", "inf", '"10000"'])
def test_voll_must_be_a_sane_number(batch_dir: Path, value: str) -> None:
    text = (batch_dir / "batch.toml").read_text()
    lines = [f"voll_eur_mwh = {value}" if ln.startswith("voll_eur_mwh") else ln for ln in text.splitlines()]
    (batch_dir / "batch.toml").write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(app, ["validate", str(batch_dir)])
    assert res.exit_code == 2 and "voll_eur_mwh" in res.output


def test_absurd_table_values_are_refused(batch_dir: Path) -> None:
    bids = pd.read_parquet(batch_dir / "bids.parquet")
    bids.loc[0, "price_eur_mwh"] = -1e300
    bids.loc[1, "quantity_mw"] = 1e300
    bids.to_parquet(batch_dir / "bids.parquet", index=False)
    res = CliRunner().invoke(app, ["validate", str(batch_dir)])
    assert res.exit_code == 2
    assert "row 0" in res.output and "row 1" in res.output and "within" in res.output


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('per_dso = "false"', "per_dso must be true or false"),
        ('prequalify = "no"', "prequalify must be true or false"),
        ("buyers = 1", "buyers must be a list"),
        ("constraint = 'all'", "did you mean 'constraints'"),
    ],
)
def test_design_values_are_typed_strictly(step: str, message: str) -> None:
    import tomllib

    raw = tomllib.loads(f'name = "x"\n[[steps]]\n{step}\n' + ('buyers = ["dso"]\n' if "buyers" not in step else ""))
    with pytest.raises(DesignError, match=message):
        parse_design(raw, "x.toml")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"penalty_factor": float("inf")}, "penalty_factor must be a finite number"),
        ({"penalty_factor": float("nan")}, "penalty_factor must be a finite number"),
        ({"penalty_eur_mwh": True}, "penalty_eur_mwh must be a finite number"),
        ({"penalty_factr": 1.0}, "did you mean 'penalty_factor'"),
    ],
)
def test_settle_config_is_typed_strictly(raw: dict[str, object], message: str) -> None:
    from market.errors import SettlementConfigError

    with pytest.raises(SettlementConfigError, match=message):
        parse_config(raw)


def test_an_edited_run_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    awards = pd.read_parquet(run / "awards.parquet")
    awards["price_eur_mwh"] *= 100
    awards.to_parquet(run / "awards.parquet", index=False)
    with pytest.raises(SettlementInputError, match="changed after the run was written"):
        settle(run, meter, db=f"duckdb:///{tmp_path / 's.duckdb'}")
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("direction", "sideways", "must be up or down"),
        ("service", "foo", "must be a known service"),
        ("price_eur_mwh", float("nan"), "must be a finite price"),
    ],
)
def test_awards_breaking_the_run_contract_are_refused(tmp_path: Path, column: str, value: object, reason: str) -> None:
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    awards = pd.read_parquet(run / "awards.parquet")
    awards[column] = awards[column].astype(object)
    awards.loc[0, column] = value
    awards.to_parquet(run / "awards.parquet", index=False)
    seal_run(run, 60)  # a consistent manifest: the contract check itself must catch it
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    with pytest.raises(SettlementInputError, match=reason):
        settle(run, meter, db=f"duckdb:///{tmp_path / 's.duckdb'}")


def test_duplicated_award_rows_are_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    awards = pd.read_parquet(run / "awards.parquet")
    pd.concat([awards, awards]).to_parquet(run / "awards.parquet", index=False)
    seal_run(run, 60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    with pytest.raises(SettlementInputError, match="duplicate award"):
        settle(run, meter, db=f"duckdb:///{tmp_path / 's.duckdb'}")


def test_a_killed_settles_temporary_folder_is_cleared_by_the_next(tmp_path: Path) -> None:
    """Only folders settle itself made (``.settle-<pid>-*``) of processes that are gone."""
    from settlement.api import remove_stale_temporaries

    out = tmp_path / "out"
    out.mkdir()
    dead = out / ".settle-999999999-abc"  # no such process
    dead.mkdir()
    (dead / "lines.parquet").write_bytes(b"half")
    live = out / f".settle-{os.getpid()}-xyz"  # this process: still running
    live.mkdir()
    mine = out / ".settle-notes"  # not a name settle makes
    mine.mkdir()
    assert remove_stale_temporaries(out) == [dead]
    assert not dead.exists() and live.exists() and mine.exists()


def test_settle_without_a_config_announces_its_defaults(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    res = CliRunner().invoke(app, ["settle", "--run", str(run), "--meter", str(meter), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "no settle.toml given: using timezone UTC, no holidays, baseline caiso-10-in-10" in res.output
