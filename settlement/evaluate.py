"""Baseline accuracy on placebo (non-event) days, per DER and method, in DuckDB.

Each placebo DER-day is treated as if an event ran over a fixed window (default
17:00-20:00 local): the method's baseline is computed exactly as on an event day and
compared with what the meter saw. Per DER and method over all placebo windows:

* ``bias = sum(b - a) / sum(a)`` (signed; > 0 = baseline too high, over-pays up delivery)
* ``nmae = sum(|b - a|) / sum(|a|)``
* ``rrmse = sqrt(mean((b - a)^2)) / mean(|a|)``

* ``cv_rmse`` = RMSE of the **hourly** energies over the window / their mean: the
  coefficient of variation of the RMSE that ASHRAE Guideline 14 sets at most 30 % for an
  hourly model (``within_ashrae14`` is the share of DER that meet it)

``within_20pct`` is the share of DER whose RRMSE is at most 0.2. :func:`recommend` picks
a method per DER type and direction (see there).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from market.errors import SettlementInputError
from settlement.baselines import METHODS, BaselineKind, baseline_sql
from settlement.config import SettleConfig
from settlement.connection import connect, parquet_columns, reading, sql_path
from settlement.inputs import create_day_info, validate_meter, weigh_repeated_slots
from settlement.portfolio import aggregate_meter, create_resource_map

EVALUATED = [m for m, spec in METHODS.items() if spec.kind is not BaselineKind.NOMINATED]


def evaluate(
    meter: str | Path,
    cfg: SettleConfig | None = None,
    interval_minutes: int = 15,
    window: tuple[str, str] = ("17:00", "20:00"),
    placebo_days: int = 20,
    event_days: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (per DER and method scores, per method summary)."""
    cfg = cfg or SettleConfig()
    con = connect(cfg, interval_minutes)
    con.execute(f"""
        CREATE TABLE meter AS
        SELECT der_id, interval_start AS ts,
               CASE WHEN min(consumption_kwh) = max(consumption_kwh)
                    THEN min(consumption_kwh) END AS kwh,
               local_day(interval_start) AS lday, local_tod(interval_start) AS ltod, 1.0 AS w
        FROM read_parquet({sql_path(Path(meter))}) GROUP BY der_id, interval_start""")
    create_day_info(con, cfg, "SELECT DISTINCT lday FROM meter")
    weigh_repeated_slots(con)
    con.execute("""CREATE TABLE complete_days AS
        SELECT m.der_id, m.lday FROM meter m JOIN day_info d USING (lday)
        GROUP BY m.der_id, m.lday, d.slots HAVING count(m.kwh) = d.slots""")
    ev = (
        event_days
        if event_days is not None
        else pd.DataFrame({"der_id": pd.Series(dtype=str), "lday": pd.Series(dtype="datetime64[ns]")})
    )
    con.register("ev_in", ev)
    con.execute("CREATE TABLE event_days AS SELECT der_id, CAST(lday AS DATE) AS lday FROM ev_in")
    lo, hi = (_slot(t, interval_minutes) for t in window)
    con.execute(f"""
        CREATE TABLE targets AS
        WITH cand AS (
            SELECT c.der_id, c.lday, d.day_type,
                   row_number() OVER (PARTITION BY c.der_id ORDER BY c.lday DESC) AS k
            FROM complete_days c JOIN day_info d USING (lday)
            WHERE d.day_type = 'weekday' AND NOT d.holiday
              AND c.lday >= (SELECT min(lday) FROM day_info) + INTERVAL 45 DAY
              AND NOT EXISTS (SELECT 1 FROM event_days e
                              WHERE e.der_id = c.der_id AND e.lday = c.lday))
        SELECT c.der_id, c.lday, c.day_type, min(m.ts) AS first_ts,
               {lo} AS win_lo, {hi - 1} AS win_hi
        FROM cand c JOIN meter m ON m.der_id = c.der_id AND m.lday = c.lday AND m.ltod = {lo}
        WHERE c.k <= {placebo_days} GROUP BY ALL""")
    con.execute("""CREATE TABLE event_meter AS SELECT m.* FROM meter m
        SEMI JOIN targets t ON t.der_id = m.der_id AND t.lday = m.lday""")
    parts = [f"SELECT '{n}' AS method, * FROM ({baseline_sql(METHODS[n])})" for n in EVALUATED]
    con.execute("CREATE TABLE baselines AS " + " UNION ALL ".join(parts))
    per_hour = 60 // interval_minutes if 60 % interval_minutes == 0 else 1
    scores = con.execute(f"""
        WITH pairs AS (
            SELECT b.method, b.der_id, b.lday, b.ltod, b.base_kwh AS b, m.kwh AS a
            FROM baselines b
            JOIN targets t ON t.der_id = b.der_id AND t.lday = b.lday
            JOIN meter m ON m.der_id = b.der_id AND m.lday = b.lday AND m.ltod = b.ltod
            WHERE b.ltod BETWEEN t.win_lo AND t.win_hi
        ), hourly AS (
            SELECT method, der_id, lday, ltod // {per_hour} AS hour, sum(b) AS b, sum(a) AS a
            FROM pairs GROUP BY ALL
        ), cv AS (
            SELECT method, der_id, sqrt(avg(power(b - a, 2))) / nullif(abs(avg(a)), 0) AS cv_rmse
            FROM hourly GROUP BY ALL
        )
        SELECT p.method, p.der_id, count(*) AS intervals, count(DISTINCT p.lday) AS days,
               sum(p.b - p.a) / nullif(sum(p.a), 0) AS bias,
               sum(abs(p.b - p.a)) / nullif(sum(abs(p.a)), 0) AS nmae,
               sqrt(avg(power(p.b - p.a, 2))) / nullif(avg(abs(p.a)), 0) AS rrmse,
               any_value(cv.cv_rmse) AS cv_rmse
        FROM pairs p JOIN cv USING (method, der_id)
        GROUP BY p.method, p.der_id ORDER BY method, der_id""").df()
    summary = scores.groupby("method", as_index=False).agg(
        der=("der_id", "size"),
        median_bias=("bias", "median"),
        median_nmae=("nmae", "median"),
        median_rrmse=("rrmse", "median"),
        within_20pct=("rrmse", lambda s: float((s <= 0.2).mean())),
        median_cv_rmse=("cv_rmse", "median"),
        within_ashrae14=("cv_rmse", lambda s: float((s.abs() <= ASHRAE14_CV_RMSE).mean())),
    )
    return scores.round(6), summary.round(6)


ASHRAE14_CV_RMSE = 0.30  # ASHRAE Guideline 14: CV(RMSE) of an hourly baseline model at most 30 %
FAVOURABLE_BIAS = 0.02  # a bias in the seller's favour beyond 2 % disqualifies a method


def recommendation_inputs(meter: str | Path, run: str | Path | None) -> tuple[pd.Series | None, pd.DataFrame | None]:
    """DER types (the meter data's optional ``der_type`` column) and the directions each DER
    was awarded in ``run`` (its ``awards.parquet``), for :func:`recommend`."""
    con = duckdb.connect()
    try:
        types = None
        if "der_type" in parquet_columns(con, Path(meter), "meter data"):
            with reading(Path(meter), "meter data"):
                t = con.execute(
                    f"SELECT der_id, any_value(der_type) AS der_type FROM read_parquet({sql_path(Path(meter))}) "
                    "GROUP BY der_id"
                ).df()
            types = t.set_index("der_id")["der_type"].astype(str)
        directions = None
        if run is not None:
            awards = Path(run) / "awards.parquet"
            with reading(awards, "run's awards"):
                directions = con.execute(
                    f"SELECT DISTINCT der_id, direction FROM read_parquet({sql_path(awards)})"
                ).df()
    finally:
        con.close()
    return types, directions


def recommend(scores: pd.DataFrame, der_types: pd.Series | None, directions: pd.DataFrame | None) -> pd.DataFrame:
    """The recommended method per DER type and direction (``der_type``, ``direction``,
    ``method``, ``median_cv_rmse``, ``median_bias``, ``meets_ashrae14``, ``why``).

    Among the methods whose median bias does not favour the seller by more than 2 % (for
    ``up`` flexibility a baseline too high over-pays, so bias <= +2 %; for ``down`` bias >=
    -2 %), the one with the lowest median hourly CV(RMSE); if none qualifies, the lowest
    CV(RMSE) outright, and ``why`` says so. ``der_types``: der_id -> type (default ``all``);
    ``directions``: (der_id, direction) rows of the DER's awards (default: both, every DER)."""
    s = scores[scores["level"] == "der"] if "level" in scores else scores
    ders = pd.Series(s["der_id"].unique())
    kinds = der_types.reindex(ders).fillna("all") if der_types is not None else pd.Series("all", index=ders)
    kinds.index = ders
    if directions is None:
        directions = pd.DataFrame({"der_id": list(ders) * 2, "direction": ["up"] * len(ders) + ["down"] * len(ders)})
    rows = []
    pairs = directions.drop_duplicates().assign(der_type=lambda d: d["der_id"].map(kinds).fillna("all"))
    for (kind, direction), group in pairs.groupby(["der_type", "direction"], sort=True):
        mine = s[s["der_id"].isin(group["der_id"])]
        table = mine.groupby("method").agg(median_cv_rmse=("cv_rmse", "median"), median_bias=("bias", "median"))
        table = table.dropna(subset=["median_cv_rmse"]).sort_values(["median_cv_rmse"], kind="stable")
        if not len(table):
            continue
        fair = table[table["median_bias"] <= FAVOURABLE_BIAS] if direction == "up" else table[
            table["median_bias"] >= -FAVOURABLE_BIAS
        ]  # fmt: skip
        pick, why = (fair, "lowest CV(RMSE) without a bias in the seller's favour") if len(fair) else (
            table, "every method's bias favours the seller by more than 2 %: lowest CV(RMSE)"
        )  # fmt: skip
        best = pick.index[0]
        rows.append(
            {
                "der_type": kind,
                "direction": direction,
                "der": int(group["der_id"].nunique()),
                "method": best,
                "median_cv_rmse": float(pick.loc[best, "median_cv_rmse"]),
                "median_bias": float(pick.loc[best, "median_bias"]),
                "meets_ashrae14": bool(abs(pick.loc[best, "median_cv_rmse"]) <= ASHRAE14_CV_RMSE),
                "why": why,
            }
        )
    return pd.DataFrame(rows)


def evaluate_levels(
    meter: str | Path,
    cfg: SettleConfig | None = None,
    run: str | Path | None = None,
    **options: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`evaluate` per DER (``level = "der"``) and, where resources are known (a
    ``resource_id`` column in the meter data, or a clearing ``run`` whose awards give each
    DER's aggregator and DSO), per resource (``level = "portfolio"``: ``der_id`` then names
    the resource), side by side."""
    meter = Path(meter)
    if not meter.is_file():
        raise SettlementInputError(f"{meter}: meter file not found")
    con = duckdb.connect()
    try:
        validate_meter(con, meter, options.get("interval_minutes", 15))  # settle's checks
        with reading(meter, "meter data"):
            scores, summary = evaluate(meter, cfg, **options)
        frames = [(scores.assign(level="der"), summary.assign(level="der"))]
        has_resource = "resource_id" in parquet_columns(con, meter, "meter data")
        if run is not None or has_resource:
            awards = Path(run) / "awards.parquet" if run is not None else None
            with reading(meter, "meter data (or the run's awards)"):
                create_resource_map(con, meter, awards)
                with tempfile.TemporaryDirectory(prefix="flexmarket-portfolio-") as folder:
                    summed = aggregate_meter(con, meter, Path(folder) / "meter.parquet")
                    p_scores, p_summary = evaluate(summed, cfg, **options)
            frames.append((p_scores.assign(level="portfolio"), p_summary.assign(level="portfolio")))
    finally:
        con.close()
    all_scores = pd.concat([f[0] for f in frames], ignore_index=True)
    all_summary = pd.concat([f[1] for f in frames], ignore_index=True)
    return all_scores[["level", *scores.columns]], all_summary[["level", *summary.columns]]


def _slot(hhmm: str, minutes: int) -> int:
    h, m = (int(x) for x in hhmm.split(":"))
    return (h * 60 + m) // minutes


def accuracy_figure(scores: pd.DataFrame) -> go.Figure:
    """RRMSE per DER as one box per method, with the 20 % line."""

    fig = go.Figure()
    levels = scores["level"] if "level" in scores else pd.Series("der", index=scores.index)
    for (level, method), g in scores.assign(level=levels).groupby(["level", "method"]):
        fig.add_box(y=g["rrmse"], name=f"{method} ({level})", boxpoints="all", jitter=0.4)
    fig.add_hline(y=0.2, line_dash="dot", annotation_text="20 % RRMSE")
    fig.update_layout(
        title="Baseline accuracy on placebo days: RRMSE per DER", yaxis_title="RRMSE", template="plotly_white"
    )
    return fig
