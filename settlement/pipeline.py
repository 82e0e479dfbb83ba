"""The settlement stages in order, each naming the DuckDB tables it reads and makes.

::

    awards     awards.parquet                      -> awards_t, reservations_t
    meter      meter file, awards_t                -> meter, day_info, day_counts, dupes,
                                                      complete_days, event_days, event_meter
    targets    awards_t, day_info                  -> targets
    baselines  targets, meter, event_meter, day_info,
               complete_days, event_days, awards_t -> baselines
    lines      awards_t, reservations_t, baselines,
               event_meter                         -> (lines frame)
    findings   awards_t, day_counts, dupes, day_info,
               targets, baselines, event_meter     -> (findings frame)

:func:`run_stages` runs them on one connection; ``tests/test_architecture.py`` checks
that every table a stage reads was made by an earlier stage.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from settlement.allocation import LINE_COLUMNS, availability_lines, capped_power_lines, settlement_lines
from settlement.baselines import METHODS, BaselineKind, compute_baselines, event_targets
from settlement.config import SettleConfig
from settlement.connection import connect, open_duckdb, reading
from settlement.findings import FINDING_COLUMNS, quality_findings
from settlement.inputs import award_span, load_awards, load_meter, validate_meter
from settlement.portfolio import name_ders, portfolio_inputs

# The calendar span computed with fast offset arithmetic must cover every method's look-back.
LOOKBACK_MARGIN_DAYS = max(m.lookback_days for m in METHODS.values()) + 15
EMPTY_PERIOD = "empty"


@dataclass
class SettlementContext:
    """What the stages share: the connection, the inputs and what earlier stages found."""

    con: duckdb.DuckDBPyConnection
    awards_path: Path
    meter_path: Path
    cfg: SettleConfig
    interval_minutes: int
    methods: list[str] = field(default_factory=list)
    lines: pd.DataFrame | None = None
    findings: pd.DataFrame | None = None


@dataclass(frozen=True)
class Stage:
    """One stage: its name, the tables it reads and makes, and what runs it."""

    name: str
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    run: Callable[[SettlementContext], None]


def _awards(ctx: SettlementContext) -> None:
    load_awards(ctx.con, ctx.awards_path, ctx.cfg, ctx.interval_minutes / 60.0)
    rows = ctx.con.execute("SELECT DISTINCT method FROM awards_t ORDER BY method").fetchall()
    ctx.methods = [r[0] for r in rows]


def _meter(ctx: SettlementContext) -> None:
    lookback = max(METHODS[m].lookback_days for m in ctx.methods) if ctx.methods else 45
    controls = any(METHODS[m].kind is BaselineKind.CONTROL_GROUP for m in ctx.methods)
    load_meter(ctx.con, ctx.meter_path, ctx.cfg, ctx.interval_minutes, lookback, controls)


def _lines(ctx: SettlementContext) -> None:
    hours = ctx.interval_minutes / 60.0
    energy = settlement_lines(ctx.con, ctx.cfg)
    parts = [energy, availability_lines(ctx.con, energy, hours), capped_power_lines(ctx.con, ctx.cfg, hours)]
    ctx.lines = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts[1:]) else energy


def _findings(ctx: SettlementContext) -> None:
    ctx.findings = quality_findings(ctx.con)


METER_TABLES = ("meter", "day_info", "day_counts", "dupes", "complete_days", "event_days", "event_meter")

STAGES: tuple[Stage, ...] = (
    Stage("awards", ("awards.parquet",), ("awards_t", "reservations_t"), _awards),
    Stage("meter", ("meter file", "awards_t"), METER_TABLES, _meter),
    Stage("targets", ("awards_t", "day_info"), ("targets",), lambda ctx: event_targets(ctx.con)),
    Stage(
        "baselines",
        ("targets", "meter", "event_meter", "day_info", "complete_days", "event_days", "awards_t"),
        ("baselines",),
        lambda ctx: compute_baselines(ctx.con, ctx.methods),
    ),
    Stage("lines", ("awards_t", "reservations_t", "baselines", "event_meter"), (), _lines),
    Stage(
        "findings",
        ("awards_t", "day_counts", "dupes", "day_info", "targets", "baselines", "event_meter"),
        (),
        _findings,
    ),
)


def empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def run_stages(
    awards_path: Path, meter_path: Path, cfg: SettleConfig, interval_minutes: int, memory_limit: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Lines, findings and the period label (``first..last`` local day), on one connection.

    A run without awards settles nothing, but its meter data are still validated.
    """
    con = open_duckdb(memory_limit=memory_limit)
    try:
        awarded = award_span(con, awards_path)
        if awarded is None:
            validate_meter(con, meter_path, interval_minutes)
            return empty_frame(LINE_COLUMNS), empty_frame(FINDING_COLUMNS), EMPTY_PERIOD
        span = (awarded[0] - dt.timedelta(days=LOOKBACK_MARGIN_DAYS), awarded[1] + dt.timedelta(days=2))
        connect(cfg, interval_minutes, span=span, con=con)
        with tempfile.TemporaryDirectory(prefix="flexmarket-portfolio-") as folder:
            der_of = None
            if cfg.level == "portfolio":  # the stages see each resource in place of its DER
                with reading(meter_path, "meter data (or the awards)"):
                    awards_path, meter_path, der_of = portfolio_inputs(
                        con, awards_path, meter_path, interval_minutes, Path(folder)
                    )
            ctx = SettlementContext(con, awards_path, meter_path, cfg, interval_minutes)
            for stage in STAGES:
                stage.run(ctx)
            days = con.execute(
                "SELECT min(lday), max(lday) FROM (SELECT lday FROM awards_t UNION ALL SELECT lday FROM reservations_t)"
            ).fetchone()
    finally:
        con.close()
    assert ctx.lines is not None and ctx.findings is not None
    lines = ctx.lines if der_of is None else name_ders(ctx.lines, der_of)
    period = f"{days[0]}..{days[1]}" if days and days[0] else EMPTY_PERIOD
    return lines, ctx.findings, period
