"""Outputs never touch inputs, no write follows a symbolic link, and every output is moved
into place whole: the examples of the reliability issue, each through the CLI as a user
types it. Each fails on the code before the fix."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest
from settle_helpers import daily_meter, make_run, write_meter
from test_uftp import _base, _messages
from typer.testing import CliRunner

from market.cli.app import app
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch


def _run(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, " ".join(res.output.split())


def _tree(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with its SHA-256 (links as their target text)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "mycopy"
    write_batch(synth_batch(SynthSpec(bids=8, intervals=2, dsos=2, seed=5)), folder)
    return folder


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_clear_never_writes_over_into_or_around_its_batch(batch: Path, where: str) -> None:
    before = _tree(batch.parent)
    out = {"same": batch, "inside": batch / "run", "containing": batch.parent}[where]
    code, text = _run("clear", batch, "--out", out, "--force")
    assert code == 2 and "never touches what the command reads" in text and "--force" in text
    assert _tree(batch.parent) == before


def test_compare_and_sweep_refuse_an_output_inside_the_batch(batch: Path, tmp_path: Path) -> None:
    before = _tree(tmp_path)
    assert _run("compare", batch, "--out", batch / "cmp", "--force")[0] == 2
    grid = tmp_path / "sweep.toml"
    grid.write_text("[grid]\nvoll_eur_mwh = [1000, 2000]\n")
    before = _tree(tmp_path)
    assert _run("sweep", batch, "--grid", grid, "--out", batch, "--force")[0] == 2
    assert _tree(tmp_path) == before


@pytest.fixture
def settled_inputs(tmp_path: Path) -> tuple[Path, Path]:
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    return run, meter


def test_settle_out_never_replaces_the_run_it_settles(settled_inputs: tuple[Path, Path], tmp_path: Path) -> None:
    run, meter = settled_inputs
    before = _tree(tmp_path)
    code, text = _run("settle", "--run", run, "--meter", meter, "--out", run)
    assert code == 2 and "never touches" in text
    assert _tree(tmp_path) == before
    # and the run can still be settled
    assert _run("settle", "--run", run, "--meter", meter, "--out", tmp_path / "s")[0] == 0


def test_settle_out_never_writes_into_the_current_folder_or_a_users_folder(
    settled_inputs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, meter = settled_inputs
    work = tmp_path / "work"
    work.mkdir()
    (work / "manifest.json").write_text('{"mine": true}')
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    assert _run("settle", "--run", run, "--meter", meter, "--out", ".")[0] == 2
    assert _run("settle", "--run", run, "--meter", meter, "--out", work)[0] == 2
    assert _tree(tmp_path) == before


def test_settle_out_inside_the_meter_files_folder_is_fine_but_not_over_the_meter(
    settled_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    run, meter = settled_inputs
    assert _run("settle", "--run", run, "--meter", meter, "--out", meter)[0] == 2
    assert pd.read_parquet(meter).shape[0] > 0


def test_synth_never_overwrites_an_existing_batch(batch: Path, tmp_path: Path) -> None:
    before = _tree(tmp_path)
    code, text = _run("synth", "--out", batch, "--bids", 3, "--intervals", 1)
    assert code == 2 and "nothing written" in text and "--force" not in text
    assert _tree(tmp_path) == before
    assert _run("synth", "--out", tmp_path / "fresh", "--bids", 3, "--intervals", 1)[0] == 0


@pytest.mark.parametrize("bad", [["--bids", "-1"], ["--intervals", "0"], ["--dsos", "0"], ["--integer-share", "2"]])
def test_synth_refuses_sizes_that_make_no_batch(tmp_path: Path, bad: list[str]) -> None:
    code, text = _run("synth", "--out", tmp_path / "b", *bad)
    assert code == 2 and "Traceback" not in text and not (tmp_path / "b").exists()


@pytest.fixture
def uftp_run(tmp_path: Path) -> tuple[Path, Path]:
    base, msgs = _base(tmp_path / "base"), _messages(tmp_path / "msgs")
    imported = tmp_path / "b2"
    assert _run("uftp", "import", msgs, "--base", base, "--out", imported)[0] == 0
    run = tmp_path / "run"
    assert _run("clear", imported, "--out", run)[0] == 0
    return imported, run


def test_uftp_import_refuses_an_output_inside_its_inputs(tmp_path: Path) -> None:
    base, msgs = _base(tmp_path / "base"), _messages(tmp_path / "msgs")
    before = _tree(tmp_path)
    assert _run("uftp", "import", msgs, "--base", base, "--out", msgs / "b2")[0] == 2
    assert _run("uftp", "import", msgs, "--base", base, "--out", base / "b2")[0] == 2
    assert _tree(tmp_path) == before


def test_uftp_import_that_fails_half_way_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import market.io.write as write_module

    base, msgs = _base(tmp_path / "base"), _messages(tmp_path / "msgs")

    def half(batch, folder, fmt="parquet"):  # type: ignore[no-untyped-def]
        (Path(folder) / "bids.parquet").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(write_module, "write_batch", half)
    with pytest.raises(OSError):
        CliRunner().invoke(app, ["uftp", "import", str(msgs), "--base", str(base), "--out", str(tmp_path / "b2")],
                           catch_exceptions=False)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "msgs"]


def test_uftp_export_never_writes_through_a_link(uftp_run: tuple[Path, Path], tmp_path: Path) -> None:
    imported, run = uftp_run
    victim = tmp_path / "victim"
    victim.mkdir()
    link = tmp_path / "orders"
    link.symlink_to(victim)
    code, text = _run("uftp", "export", run, "--batch", imported, "--out", link)
    assert code == 2 and "symbolic link" in text and list(victim.iterdir()) == []
    # a link planted where an order file would be written
    out = tmp_path / "o"
    assert _run("uftp", "export", run, "--batch", imported, "--out", out)[0] == 0
    (name,) = [p.name for p in out.iterdir()]
    planted = tmp_path / "o2"
    planted.mkdir()
    (planted / name).symlink_to(victim / "secret.txt")
    code, text = _run("uftp", "export", run, "--batch", imported, "--out", planted)
    assert code == 2 and "exists" in text and not (victim / "secret.txt").exists()
    assert _run("uftp", "export", run, "--batch", imported, "--out", imported / "orders")[0] == 2


def test_a_second_import_keeps_the_first_offers_and_every_base_table(tmp_path: Path) -> None:
    import uuid

    base, msgs = _base(tmp_path / "base"), _messages(tmp_path / "msgs")
    pd.DataFrame({"aggregator_id": ["agg"], "route": ["via-dso"]}).to_parquet(base / "aggregators.parquet")
    first = tmp_path / "b2"
    assert _run("uftp", "import", msgs, "--base", base, "--out", first)[0] == 0
    assert pd.read_parquet(first / "aggregators.parquet")["route"].tolist() == ["via-dso"]
    more = tmp_path / "more"
    more.mkdir()
    text = (msgs / "offer.xml").read_text().replace(str(uuid.UUID(int=1)), str(uuid.UUID(int=9)))
    (more / "offer2.xml").write_text(text)
    second = tmp_path / "b3"
    code, out = _run("uftp", "import", more, "--base", first, "--out", second)
    assert code == 0, out
    assert sorted(p.name for p in (second / "uftp").iterdir()) == ["offer.xml", "offer2.xml"]
    assert pd.read_parquet(second / "aggregators.parquet")["route"].tolist() == ["via-dso"]
    run = tmp_path / "run"
    assert _run("clear", second, "--out", run)[0] == 0
    awarded = pd.read_parquet(run / "awards.parquet")["bid_id"].str.split("/").str[0].unique()
    assert _run("uftp", "export", run, "--batch", second, "--out", tmp_path / "orders")[0] == 0
    assert len(list((tmp_path / "orders").iterdir())) == len(awarded)


def test_network_import_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    out = tmp_path / "net"
    out.mkdir()
    victim = tmp_path / "victim.parquet"
    (out / "constraints.parquet").symlink_to(victim)
    code, text = _run("network", "import", "pandapower:case9", "--out", out)
    assert code == 2 and "exists" in text and not victim.exists()
    assert sorted(p.name for p in out.iterdir()) == ["constraints.parquet"]


def test_network_import_adds_its_three_tables_all_or_none(tmp_path: Path) -> None:
    out = tmp_path / "net"
    out.mkdir()
    (out / "bids.parquet").write_text("the user's")
    assert _run("network", "import", "pandapower:case9", "--out", out)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "bids.parquet",
        "constraints.parquet",
        "node_areas.parquet",
        "sensitivities.parquet",
    ]
    assert (out / "bids.parquet").read_text() == "the user's"


def test_statements_export_never_writes_through_a_link_or_over_its_store(
    settled_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    run, meter = settled_inputs
    assert _run("settle", "--run", run, "--meter", meter, "--out", tmp_path / "s")[0] == 0
    db = f"duckdb:///{tmp_path / 's' / 'store.duckdb'}"
    victim = tmp_path / "victim.csv"
    out = tmp_path / "export"
    out.mkdir()
    (out / "statement_lines.csv").symlink_to(victim)
    assert _run("statements", "export", "--db", db, "--out", out)[0] == 2
    assert not victim.exists() and sorted(p.name for p in out.iterdir()) == ["statement_lines.csv"]
    before = _tree(tmp_path / "s")
    assert _run("statements", "export", "--db", db, "--out", tmp_path / "s")[0] == 2  # contains the store
    assert _tree(tmp_path / "s") == before


def test_uftp_settlement_never_writes_through_a_planted_link(uftp_run: tuple[Path, Path], tmp_path: Path) -> None:
    imported, run = uftp_run
    settled = tmp_path / "settled"
    der = "agr.example.com@ean.871685900012636543"
    ts = pd.date_range("2025-12-20T00:00:00+00:00", "2026-01-05T02:00:00+00:00", freq="15min", inclusive="left")
    pd.DataFrame({"der_id": der, "interval_start": ts, "consumption_kwh": 125.0}).to_parquet(tmp_path / "m.parquet")
    (tmp_path / "s.toml").write_text('baseline = "meter-before-meter-after"\ntimezone = "Europe/Amsterdam"\n')
    code, text = _run("settle", "--run", run, "--meter", tmp_path / "m.parquet", "--config", tmp_path / "s.toml",
                      "--out", settled)  # fmt: skip
    assert code == 0, text
    out = tmp_path / "s1"
    assert _run("uftp", "settlement", settled, "--run", run, "--batch", imported, "--out", out)[0] == 0
    (name,) = [p.name for p in out.iterdir()]
    victim = tmp_path / "victim.xml"
    planted = tmp_path / "s2"
    planted.mkdir()
    (planted / name).symlink_to(victim)
    code, text = _run("uftp", "settlement", settled, "--run", run, "--batch", imported, "--out", planted)
    assert code == 2 and "exists" in text and not victim.exists()


def test_running_out_of_memory_is_said_as_such(tmp_path: Path) -> None:
    import duckdb

    from market.errors import OutOfMemoryError
    from settlement.connection import reading

    with pytest.raises(OutOfMemoryError, match="ran out of memory"), reading(tmp_path / "m.parquet", "meter data"):
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
