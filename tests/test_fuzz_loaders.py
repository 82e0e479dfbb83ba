"""No traceback reaches a user, whatever they feed it: every loader the CLI uses, fed
random and mutated files, ends in a clean result (exit 0) or a named error (exit 1 or 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settle_helpers import daily_meter, make_run, write_meter
from typer.testing import CliRunner

from market.cli import app
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ROOT = Path(__file__).resolve().parents[1]


def _clean(*args: str) -> int:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), f"{args}: {res.exception!r}"
    assert res.exit_code in (0, 1, 2), (args, res.exit_code, res.output)
    return res.exit_code


def _batch(tmp: Path, fmt: str = "parquet") -> Path:
    folder = tmp / f"batch-{fmt}"
    if not folder.exists():
        write_batch(synth_batch(SynthSpec(bids=5, intervals=2, dsos=1, seed=5)), folder, fmt)
    return folder


def _mutate(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data[: max(0, min(cut, len(data)))] if cut >= 0 else data)
    for pos, value in flips:
        if out:
            out[pos % len(out)] = value
    return bytes(out)


@FUZZ
@given(cut=st.integers(-1, 4000), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_mutated_parquet_tables(tmp_path_factory, cut, flips):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("pq")
    folder = _batch(tmp)
    path = folder / "bids.parquet"
    path.write_bytes(_mutate(path.read_bytes(), cut, flips))
    _clean("validate", str(folder))


@FUZZ
@given(cell=st.text(max_size=30), row=st.integers(0, 9), col=st.integers(0, 13), raw=st.binary(max_size=64))
def test_random_csv_cells_and_bytes(tmp_path_factory, cell, row, col, raw):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("csv")
    folder = _batch(tmp, "csv")
    lines = (folder / "bids.csv").read_text().splitlines()
    cells = lines[1 + row % (len(lines) - 1)].split(",")
    cells[col % len(cells)] = cell.replace(",", ";").replace("\n", " ")
    lines[1 + row % (len(lines) - 1)] = ",".join(cells)
    (folder / "bids.csv").write_text("\n".join(lines) + "\n")
    _clean("validate", str(folder))
    (folder / "needs.csv").write_bytes(raw)
    _clean("validate", str(folder))


@FUZZ
@given(text=st.text(max_size=200))
def test_random_batch_toml(tmp_path_factory, text):  # type: ignore[no-untyped-def]
    folder = _batch(tmp_path_factory.mktemp("toml"))
    (folder / "batch.toml").write_text(text)
    _clean("validate", str(folder))


TOML_VALUES = st.one_of(
    st.booleans(), st.integers(), st.floats(), st.text(max_size=10), st.lists(st.text(max_size=5), max_size=3)
)


@FUZZ
@given(
    key=st.sampled_from(["name", "start", "end", "interval_minutes", "currency", "voll_eur_mwh", "hop_latency_s", "x"]),
    value=TOML_VALUES,
)
def test_wrong_typed_batch_toml_values(tmp_path_factory, key, value):  # type: ignore[no-untyped-def]
    import tomllib

    folder = _batch(tmp_path_factory.mktemp("typed"))
    raw = tomllib.loads((folder / "batch.toml").read_text())
    raw[key] = value
    (folder / "batch.toml").write_text(_toml(raw))
    _clean("validate", str(folder))


def _toml(raw: dict[str, object]) -> str:
    import json

    lines, tables = [], []
    for k, v in raw.items():
        if isinstance(v, dict):
            tables.append(f"[{k}]\n" + "".join(f"{a} = {json.dumps(b)}\n" for a, b in v.items()))
        elif isinstance(v, float) and v != v:
            lines.append(f"{k} = nan")
        elif isinstance(v, float) and abs(v) == float("inf"):
            lines.append(f"{k} = {'-' if v < 0 else ''}inf")
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n" + "\n".join(tables)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_design_files(tmp_path_factory, text):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("design") / "d.toml"
    path.write_text(text)
    _clean("designs", "show", str(path))


@FUZZ
@given(field=st.sampled_from(["per_dso", "prequalify", "buyers", "constraints", "signals", "dispatch", "name"]),
       value=TOML_VALUES)  # fmt: skip
def test_wrong_typed_design_steps(tmp_path_factory, field, value):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("design") / "d.toml"
    base = {"buyers": ["tso"], "name": "s"}
    base[field] = value
    path.write_text('name = "x"\n[[steps]]\n' + _toml(base))
    _clean("designs", "show", str(path))


def _run_and_meter(tmp: Path) -> tuple[Path, Path]:
    run = make_run(tmp / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp / "m.parquet")
    return run, meter


STORE_URLS = st.sampled_from(
    ["mysql://u@localhost/db", "sqlite:///s.db", "postgresql://nobody@127.0.0.1:1/none", "duckdb:///", "oracle://x"]
)


@FUZZ
@given(text=st.text(max_size=200), db=st.one_of(st.none(), st.text(max_size=40), STORE_URLS))
def test_random_settle_config_and_store_urls(tmp_path_factory, text, db):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("settle")
    run, meter = _run_and_meter(tmp)
    (tmp / "settle.toml").write_text(text)
    args = ["settle", "--run", str(run), "--meter", str(meter), "--config", str(tmp / "settle.toml")]
    _clean(*args, "--out", str(tmp / "out"), *(["--db", db] if db is not None else []))


@FUZZ
@given(cut=st.integers(-1, 3000), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       manifest=st.one_of(st.none(), st.text(max_size=80)))  # fmt: skip
def test_mutated_run_folders_and_meter_files(tmp_path_factory, cut, flips, manifest):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("run")
    run, meter = _run_and_meter(tmp)
    if manifest is not None:
        (run / "manifest.json").write_text(manifest)
    else:
        (run / "awards.parquet").write_bytes(_mutate((run / "awards.parquet").read_bytes(), cut, flips))
    _clean("settle", "--run", str(run), "--meter", str(meter), "--out", str(tmp / "o1"))
    shutil.copy(meter, tmp / "m2.parquet")
    (tmp / "m2.parquet").write_bytes(_mutate(meter.read_bytes(), cut, flips))
    _clean("validate", str(_batch(tmp)), "--meter", str(tmp / "m2.parquet"))
