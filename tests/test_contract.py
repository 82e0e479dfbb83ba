"""The contract documents itself: every column of every schema (inputs, run, comparison,
settlement, store) is described in docs/contract.md, run and settlement tables match their
declared schemas, the worked example holds, and nothing in the repository points outside it."""

from __future__ import annotations

import re
import subprocess
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from settle_helpers import daily_meter, make_run, write_meter

from market import clear
from market.analysis.comparison import comparison_table
from market.design.spec import Step
from market.io.batch import BatchConfig
from market.io.outputs import COMPARISON, OPTIONAL_RUN_TABLES, RUN_TABLES
from market.io.schemas import BATCH_TABLES, METER, TableSpec, pandera_schema
from market.io.synth import SynthSpec, synth_batch
from market.testing import area, bid, dso_need, make_batch, tso_need
from settlement import settle
from settlement.config import KEYS
from settlement.schemas import FINDINGS, LINES, NEW_VERSIONS, SETTLEMENT_TABLES, STATEMENTS
from settlement.store_tables import metadata

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "contract.md").read_text()


def _section(heading: str) -> str:
    """The text under the markdown heading whose title is ``heading`` (to the next heading
    of the same or a higher level)."""
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", DOC, re.M)
    assert m, f"docs/contract.md has no heading {heading!r}"
    level = len(m.group(1))
    rest = DOC[m.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def _table_rows(text: str) -> set[str]:
    """Names in the first cell of every markdown table row (`` `name` ``)."""
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.M))


def _heading_of(spec: TableSpec) -> str:
    if spec in BATCH_TABLES:
        return f"Batch table `{spec.name}`"
    if spec is METER:
        return "Meter table `meter`"
    if spec in RUN_TABLES or spec in OPTIONAL_RUN_TABLES:
        return f"Run table `{spec.name}`"
    if spec is COMPARISON:
        return "Comparison table `comparison`"
    return f"Settlement table `{spec.name}`"


DOCUMENTED_SPECS = [*BATCH_TABLES, METER, *RUN_TABLES, *OPTIONAL_RUN_TABLES, COMPARISON, *SETTLEMENT_TABLES]


@pytest.mark.parametrize("spec", DOCUMENTED_SPECS, ids=lambda s: s.name)
def test_every_schema_column_is_documented(spec: TableSpec) -> None:
    documented = _table_rows(_section(_heading_of(spec)))
    inherited = {c.name for c in STATEMENTS.columns} if spec is NEW_VERSIONS else set()
    missing = [c.name for c in spec.columns if c.name not in documented | inherited]
    assert missing == []


def test_store_columns_are_documented() -> None:
    store = _section("The store") + _section("Settlement table `lines`") + _section("Settlement table `findings`")
    store += _section("Settlement table `statements`") + _section("Settlement table `new_versions`")
    named = set(re.findall(r"`([a-z_0-9]+)`", store))
    missing = {t.name: [c.name for c in t.columns if c.name not in named] for t in metadata.sorted_tables}
    assert {k: v for k, v in missing.items() if v} == {}
    assert {t.name for t in metadata.sorted_tables} <= named


def test_config_keys_and_design_fields_are_documented() -> None:
    batch_toml = set(re.findall(r"`\[?([a-z_]+)\]?`", _section("`batch.toml`")))
    assert {f.name for f in fields(BatchConfig)} <= batch_toml
    settle_toml = _table_rows(_section("`settle.toml`"))
    assert set(KEYS) <= settle_toml
    design = {r.split(".")[0] for r in _table_rows(_section("A design (input)"))}
    assert {f.name for f in fields(Step)} <= design


def _conforms(spec: TableSpec, df: pd.DataFrame) -> None:
    """``df`` has the spec's columns in order (an optional one where present) and its values."""
    assert list(df.columns) == [c.name for c in spec.columns if c.required or c.name in df], spec.name
    spec = replace(spec, columns=tuple(c for c in spec.columns if c.name in df))
    if "product" in df:  # a bid may hold an availability award and the activation that calls it
        spec = replace(spec, key=(*spec.key, "product"))
    if len(df):
        schema = pandera_schema(spec)
        schema = schema.update_columns({c.name: {"dtype": None} for c in spec.columns if c.kind in ("ts", "date")})
        try:
            schema.validate(df, lazy=True)
        except pa.errors.SchemaErrors as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{spec.name}: {exc.failure_cases}") from exc


@pytest.mark.parametrize("design", ["single", "dso-led", "tso-only"])
def test_run_tables_match_their_schemas(design: str) -> None:
    batch = synth_batch(SynthSpec(bids=40, intervals=4, dsos=2, seed=3, integer_share=0.1))
    result = clear(batch, design, "pay-as-clear")
    tables = result.tables()
    for spec in RUN_TABLES:
        _conforms(spec, tables[spec.name])
    metrics_doc = _section("`metrics.json`")
    assert [k for k in result.metrics if f"`{k}`" not in metrics_doc] == []
    _conforms(COMPARISON, comparison_table([result]))


def test_run_tables_of_a_reserving_design_match_their_schemas() -> None:
    """A design with reservation steps writes ``reservations`` and availability rows in its
    awards, each column as documented."""
    batch = synth_batch(SynthSpec(bids=40, intervals=4, dsos=2, seed=3, integer_share=0.1))
    priced = batch.bids.assign(availability_price_eur_mw_h=np.where(np.arange(len(batch.bids)) % 2 == 0, 3.0, np.nan))
    result = clear(batch.replace(bids=priced), "reserve-tso-first", "pay-as-clear")
    tables = result.tables()
    assert len(tables["reservations"]) and set(tables["awards"]["product"]) == {"energy", "availability"}
    for spec in (*RUN_TABLES, *OPTIONAL_RUN_TABLES):
        _conforms(spec, tables[spec.name])


def test_settlement_tables_match_their_schemas(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [{"t": "2026-01-15T17:00Z", "q": 2.0, "price": 7.0}], minutes=60)
    meter = write_meter(daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60), tmp_path / "m.parquet")
    r = settle(run, meter, db=f"duckdb:///{tmp_path / 's.duckdb'}")
    for spec, df in (
        (LINES, r.lines),
        (STATEMENTS, r.statements),
        (FINDINGS, r.findings),
        (NEW_VERSIONS, r.new_versions),
    ):
        _conforms(spec, df)


def test_worked_example() -> None:
    batch = make_batch(
        bids=[bid("b1", 50.0, 2.0, node="n1"), bid("b2", 60.0, 3.0, node="n2")],
        needs=[tso_need("t1", 3.0), dso_need("d1", "a1", 1.0)],
        areas=[area("a1", "n1"), area("a2", "n2")],
    )
    cols = ["bid_id", "buyer_id", "need_id", "quantity_mw", "clearing_price_eur_mwh", "price_eur_mwh", "cost_eur"]
    clear_aw = clear(batch, "single", "pay-as-clear").awards[cols]
    assert clear_aw.values.tolist() == [
        ["b1", "dso1", "d1", 1.0, 60.0, 60.0, 60.0],
        ["b1", "tso", "t1", 1.0, 60.0, 60.0, 60.0],
        ["b2", "tso", "t1", 1.0, 60.0, 60.0, 60.0],
    ]
    assert clear(batch, "single", "pay-as-bid").awards["cost_eur"].tolist() == [50.0, 50.0, 60.0]


def test_nothing_points_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    pattern = "../" + "shared"  # written apart so this file does not match itself
    offenders = [f for f in files if (ROOT / f).is_file() and pattern in (ROOT / f).read_text(errors="ignore")]
    assert offenders == []
