"""Every bad-input case is refused with its table, row and column named; nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from market.cli.app import app
from market.errors import BatchValidationError
from market.io.read import load_batch
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch

runner = CliRunner()


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good") / "batch"
    write_batch(synth_batch(SynthSpec(bids=12, intervals=4, dsos=2, seed=3)), folder, "csv")
    return folder


def corrupt(good: Path, tmp_path: Path, table: str, edit) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "bad"
    shutil.copytree(good, folder)
    path = folder / f"{table}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = edit(df)
    df.to_csv(path, index=False)
    return folder


def refused(folder: Path) -> BatchValidationError:
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(BatchValidationError) as info:
        load_batch(folder)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
    return info.value


def set_cell(table_row: int, column: str, value: str):  # type: ignore[no-untyped-def]
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[table_row, column] = value
        return df

    return edit


def assert_names(err: BatchValidationError, table: str, row: int | None, column: str | None, reason_part: str) -> None:
    hits = [
        f for f in err.findings if f.table == table and f.row == row and f.column == column and reason_part in f.reason
    ]
    assert hits, f"no finding {table}/{row}/{column}/{reason_part!r} in:\n{err}"
    text = str(err)
    assert table in text and (column or "") in text


CASES = [
    ("bids", 2, "node_id", "zzz", "unknown node_id"),
    ("needs", 0, "area_id", "nowhere", "tso_balancing needs use area"),
    ("bids", 1, "dso_id", "dso-x", "unknown DSO"),
    ("bids", 3, "quantity_mw", "0", "must be > 0"),
    ("bids", 4, "quantity_mw", "-1.5", "must be > 0"),
    ("bids", 5, "min_quantity_mw", "99", "min_quantity_mw exceeds quantity_mw"),
    ("bids", 6, "price_eur_mwh", "nan", "must be a finite number"),
    ("bids", 7, "price_eur_mwh", "inf", "must be a finite number"),
    ("bids", 8, "interval_start", "2026-03-02T00:00:00", "naive"),
    ("bids", 9, "interval_start", "2026-03-02T00:07:00+00:00", "not on the 15-minute grid"),
    ("bids", 10, "interval_start", "2026-03-05T00:00:00+00:00", "outside the batch horizon"),
    ("bids", 11, "direction", "sideways", "must be one of up, down"),
    ("signals", 0, "state", "purple", "must be one of green, amber, red"),
    ("needs", 1, "service", "voltage", "must be one of"),
    ("bids", 2, "services", "tso_balancing;frequency", "must be ';'-separated"),
    ("bids", 3, "quantity_mw", "lots", "not a number"),
    ("bids", 4, "interval_start", "yesterday", "not a timestamp"),
    ("constraints", 0, "min_flow_mw", "1000", "min_flow_mw exceeds max_flow_mw"),
    ("sensitivities", 0, "node_id", "ghost", "unknown node_id"),
    ("needs", 2, "area_id", "", "must not be empty"),
    ("bids", 5, "bid_id", "", "must not be empty"),
]


@pytest.mark.parametrize(
    ("table", "row", "column", "value", "reason"), CASES, ids=[f"{c[0]}-{c[2]}-{c[4][:20]}" for c in CASES]
)
def test_bad_cell_is_named(good, tmp_path, table, row, column, value, reason):
    err = refused(corrupt(good, tmp_path, table, set_cell(row, column, value)))
    assert_names(err, table, row, column, reason)


def test_duplicate_bid_id(good, tmp_path):
    def edit(df):
        df.loc[1, "bid_id"] = df.loc[0, "bid_id"]
        return df

    err = refused(corrupt(good, tmp_path, "bids", edit))
    assert_names(err, "bids", 0, "bid_id", "duplicate")
    assert_names(err, "bids", 1, "bid_id", "duplicate")


def test_unknown_area_in_dso_need(good, tmp_path):
    def edit(df):
        df.loc[0, ["buyer_id", "service", "area_id"]] = ["dso0", "dso_congestion", "nowhere"]
        return df

    err = refused(corrupt(good, tmp_path, "needs", edit))
    assert_names(err, "needs", 0, "area_id", "unknown area")


def test_dso_need_in_other_dsos_area(good, tmp_path):
    na = pd.read_csv(good / "node_areas.csv", dtype=str)
    other_area = na.loc[na["dso_id"] == "dso1", "area_id"].iloc[0]

    def edit(df):
        df.loc[0, ["buyer_id", "service", "area_id"]] = ["dso0", "dso_congestion", other_area]
        return df

    err = refused(corrupt(good, tmp_path, "needs", edit))
    assert_names(err, "needs", 0, "buyer_id", "DSO owning the area")


def test_unknown_dso_in_signal(good, tmp_path):
    err = refused(corrupt(good, tmp_path, "signals", set_cell(2, "dso_id", "dso9")))
    assert_names(err, "signals", 2, "area_id", "unknown dso_id/area_id")


def test_block_spanning_dsos(good, tmp_path):
    bids = pd.read_csv(good / "bids.csv", dtype=str, keep_default_na=False)
    a = bids.index[bids["dso_id"] == "dso0"][0]
    b = bids.index[bids["dso_id"] == "dso1"][0]

    def edit(df):
        df.loc[[a, b], "block_id"] = "BLK"
        return df

    err = refused(corrupt(good, tmp_path, "bids", edit))
    assert_names(err, "bids", int(a), "block_id", "block spans more than one DSO")
    assert_names(err, "bids", int(b), "block_id", "block spans more than one DSO")


def test_missing_required_column(good, tmp_path):
    err = refused(corrupt(good, tmp_path, "bids", lambda df: df.drop(columns=["price_eur_mwh"])))
    assert_names(err, "bids", None, "price_eur_mwh", "missing required column")


def test_empty_bids_table(good, tmp_path):
    err = refused(corrupt(good, tmp_path, "bids", lambda df: df.iloc[:0]))
    assert_names(err, "bids", None, None, "bids table is empty")


def test_wrong_column_type_in_parquet(good, tmp_path):
    folder = tmp_path / "pq"
    batch = load_batch(good)
    write_batch(batch, folder, "parquet")
    bids = pd.read_parquet(folder / "bids.parquet")
    bids["quantity_mw"] = bids["quantity_mw"].astype(str)  # a string column in Parquet
    bids.loc[2, "quantity_mw"] = "two"
    bids["interval_start"] = bids["interval_start"].dt.tz_localize(None)  # naive datetime type
    bids.to_parquet(folder / "bids.parquet")
    err = refused(folder)
    assert_names(err, "bids", 2, "quantity_mw", "not a number")
    assert_names(err, "bids", 0, "interval_start", "naive")


def test_every_bad_row_reported_at_once(good, tmp_path):
    def edit(df):
        df.loc[0, "quantity_mw"] = "-1"
        df.loc[1, "price_eur_mwh"] = "abc"
        df.loc[2, "node_id"] = "ghost"
        return df

    err = refused(corrupt(good, tmp_path, "bids", edit))
    assert {(f.row, f.column) for f in err.findings} >= {(0, "quantity_mw"), (1, "price_eur_mwh"), (2, "node_id")}


def test_amber_without_headroom(good, tmp_path):
    def edit(df):
        df.loc[0, ["state", "headroom_up_mw"]] = ["amber", ""]
        return df

    err = refused(corrupt(good, tmp_path, "signals", edit))
    assert_names(err, "signals", 0, "headroom_up_mw", "amber signal needs headroom_up_mw")


def test_valid_batch_prints_summary(good):
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    for word in ("horizon", "dso0", "up MW", "needs per buyer", "valid"):
        assert word in result.output


def test_clear_refuses_bad_batch_and_writes_nothing(good, tmp_path):
    folder = corrupt(good, tmp_path, "bids", set_cell(0, "quantity_mw", "-3"))
    out = tmp_path / "run"
    result = runner.invoke(app, ["clear", str(folder), "--out", str(out)])
    assert result.exit_code == 2
    assert not out.exists()


def test_csv_and_parquet_give_equal_batches(good, tmp_path):
    a = load_batch(good)
    write_batch(a, tmp_path / "pq", "parquet")
    b = load_batch(tmp_path / "pq")
    for name in ("bids", "needs", "node_areas", "constraints", "sensitivities", "signals"):
        pd.testing.assert_frame_equal(a.table(name), b.table(name), check_dtype=False)
    assert a.config == b.config


def test_loader_keeps_timestamps_utc(good):
    b = load_batch(good)
    assert str(b.bids["interval_start"].dt.tz) == "UTC"
    assert np.all(b.bids["quantity_mw"] > 0)


def test_validate_meter_applies_exactly_the_checks_of_settle(good, tmp_path):
    """validate --meter and settle share one check (settlement's DuckDB meter validation)."""
    from settle_helpers import make_run

    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}])
    start = pd.Timestamp("2016-10-03T00:00:00+00:00")
    ts = [start + pd.Timedelta(minutes=m) for m in (0, 20, 30, 45)]

    def one(when: pd.Timestamp, kwh: object) -> pd.DataFrame:
        return pd.DataFrame({"der_id": ["d1"], "interval_start": [when], "consumption_kwh": [kwh]})

    cases = {
        "csv": ("meter.csv", one(start, 1.0), "cannot be read as Parquet"),
        "naive": ("naive.parquet", one(start.tz_localize(None), 1.0), "timezone-aware"),
        "text": ("text.parquet", one(start, "lots"), "must be a number column"),
        "rows": ("rows.parquet",
                 pd.DataFrame({"der_id": ["d1", "d1", None, "d2"], "interval_start": ts,
                               "consumption_kwh": [1.5, 2.0, 3.0, float("nan")]}),
                 "meter row 1"),
    }  # fmt: skip
    for name, (file, frame, expected) in cases.items():
        path = tmp_path / file
        frame.to_csv(path, index=False) if file.endswith(".csv") else frame.to_parquet(path, index=False)
        checked = runner.invoke(app, ["validate", str(good), "--meter", str(path)])
        settled = runner.invoke(app, ["settle", "--run", str(run), "--meter", str(path), "--out", str(tmp_path / name)])
        assert checked.exit_code == settled.exit_code == 2, (name, checked.output, settled.output)
        assert expected in checked.output and expected in settled.output, name
    rows = runner.invoke(app, ["validate", str(good), "--meter", str(tmp_path / "rows.parquet")]).output
    for part in ("meter row 1", "not on the 15-minute grid", "meter row 2", "der_id", "meter row 3", "finite"):
        assert part in rows, part
    ok = runner.invoke(
        app, ["validate", str(good), "--meter", str(Path(__file__).resolve().parents[1] / "data" / "meter.parquet")]
    )
    assert ok.exit_code == 0, ok.output
    assert "68 DER" in ok.output


def test_parquet_written_with_a_pandas_index_reads_as_its_rows(good, tmp_path):
    """pandas keeps a non-default index as a column of the Parquet file (a filtered or
    re-ordered frame): the rows are still read in file order, numbered from 0, and a bad
    cell is named at its row in the file."""
    folder = tmp_path / "indexed"
    shutil.copytree(good, folder)
    bids = pd.read_csv(folder / "bids.csv", dtype=str, keep_default_na=False)
    for col in ("quantity_mw", "min_quantity_mw", "price_eur_mwh"):
        bids[col] = bids[col].astype(float)
    bids["interval_start"] = pd.to_datetime(bids["interval_start"], utc=True)
    (folder / "bids.csv").unlink()
    reordered = bids.iloc[::-1]  # index 47, 46, ...: stored in the file
    reordered.to_parquet(folder / "bids.parquet")
    assert load_batch(folder).bids.equals(load_batch(good).bids)
    reordered = reordered.copy()
    reordered.iloc[3, reordered.columns.get_loc("direction")] = "sideways"
    reordered.to_parquet(folder / "bids.parquet")
    assert_names(refused(folder), "bids", 3, "direction", "must be one of")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_missing_value_in_a_required_column_is_named(good, tmp_path, kind):  # type: ignore[no-untyped-def]
    """Blank, whitespace-only and null cells of required columns (text and numbers) are each
    named by row and column, from CSV and from Parquet (the loader skips pandera's not-null
    scan only for columns it read without a missing value)."""
    folder = tmp_path / "blanks"
    shutil.copytree(good, folder)
    bids = pd.read_csv(folder / "bids.csv", dtype=str, keep_default_na=False)
    bids.loc[2, "der_id"] = "   "
    bids.loc[5, "node_id"] = None
    bids.loc[7, "quantity_mw"] = None
    (folder / "bids.csv").unlink()
    if kind == "csv":
        bids.to_csv(folder / "bids.csv", index=False)
    else:
        bids["quantity_mw"] = pd.to_numeric(bids["quantity_mw"])
        bids.to_parquet(folder / "bids.parquet")
    err = refused(folder)
    for row, column in ((2, "der_id"), (5, "node_id"), (7, "quantity_mw")):
        assert any(f.table == "bids" and f.row == row and f.column == column for f in err.findings), (row, column)


def test_blank_text_strips_exactly_the_whitespace_python_strips():
    """The Arrow blank check (empty or whitespace only, no string copied) agrees with
    ``str.strip() == ""`` on every Unicode code point, alone and repeated around text."""
    from market.io.strict import blank_text

    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    cells = pd.Series(points + [p * 2 for p in points] + [f"{p}x{p}" for p in points] + ["", None], dtype=object)
    expected = np.array([v is None or v.strip() == "" for v in cells])
    assert np.array_equal(blank_text(cells), expected)


def test_a_null_in_a_checked_text_column_is_one_finding_and_microsecond_times_are_on_the_grid(good, tmp_path):
    """From Parquet: a null ``direction`` is named once, as empty (the value check passes a
    missing value); a null ``services`` is allowed; timestamps stored in microseconds are
    checked against the grid like nanoseconds, and an off-grid one is named."""
    folder = tmp_path / "nulls"
    shutil.copytree(good, folder)
    bids = pd.read_csv(folder / "bids.csv", dtype=str, keep_default_na=False)
    for col in ("quantity_mw", "min_quantity_mw", "price_eur_mwh"):
        bids[col] = bids[col].astype(float)
    bids["interval_start"] = pd.to_datetime(bids["interval_start"], utc=True).dt.as_unit("us")
    bids["services"] = None
    (folder / "bids.csv").unlink()
    bids.to_parquet(folder / "bids.parquet")
    assert load_batch(folder).bids.equals(load_batch(good).bids.assign(services="tso_balancing;dso_congestion"))
    bids.loc[4, "direction"] = None
    bids.loc[6, "interval_start"] += pd.Timedelta(minutes=7)
    bids.to_parquet(folder / "bids.parquet")
    err = refused(folder)
    assert [(f.row, f.column, f.code.value) for f in err.findings if f.table == "bids"] == [
        (4, "direction", "empty_value"),
        (6, "interval_start", "off_grid"),
    ]


def test_a_parquet_timestamp_beyond_nanoseconds_is_named_not_a_crash(good, tmp_path):
    """Parquet holds microseconds; the year 3000 does not fit the engine's nanoseconds and
    is named at its row (not an overflow, not a silent NaT)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "far"
    shutil.copytree(good, folder)
    bids = pd.read_csv(folder / "bids.csv", dtype=str, keep_default_na=False)
    for col in ("quantity_mw", "min_quantity_mw", "price_eur_mwh"):
        bids[col] = bids[col].astype(float)
    micros = pd.to_datetime(bids.pop("interval_start"), utc=True).dt.as_unit("us").array.asi8.copy()
    micros[3] = 32503680000000000  # 3000-01-01
    table = pa.Table.from_pandas(bids, preserve_index=False).append_column(
        "interval_start", pa.array(micros, pa.timestamp("us", tz="UTC"))
    )
    (folder / "bids.csv").unlink()
    pq.write_table(table, folder / "bids.parquet")
    err = refused(folder)
    assert [(f.row, f.column, f.code.value) for f in err.findings if f.table == "bids"] == [
        (3, "interval_start", "not_a_timestamp")
    ]
    assert "1677 to 2262" in str(err)


def test_services_left_empty_share_one_canonical_string(good):
    """Every bid without ``services`` gets both services as one shared string object (a
    string per row would cost 10^7 objects on a national book, and pickling each)."""
    services = load_batch(good).bids["services"].to_numpy()
    assert services[0] == "tso_balancing;dso_congestion"
    assert all(v is services[0] for v in services)


def test_a_constraint_with_every_interval_and_per_interval_rows_is_named_and_a_row_without_id_is_not(good, tmp_path):
    """Row 1 of ``head-d0-f0000`` made an every-interval row: the constraint's other
    (per-interval) rows are named. Row 5 without a ``constraint_id`` is named by the
    not-null check only: it belongs to no constraint, so not to a mixed one."""

    def edit(df):
        df.loc[1, "interval_start"] = ""
        df.loc[5, "constraint_id"] = ""
        return df

    err = refused(corrupt(good, tmp_path, "constraints", edit))
    mixed = "constraint has both an every-interval row and per-interval rows"
    assert sorted(f.row for f in err.findings if mixed in f.reason) == [0, 2, 3]
    assert [f.column for f in err.findings if f.row == 5] == ["constraint_id"]
