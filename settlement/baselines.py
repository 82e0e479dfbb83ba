"""Measurement-and-verification baselines, computed in DuckDB SQL (no per-DER loop).

Every method is described once, in :data:`METHODS`, with its rules and source. Day
matching works on calendar days in the settlement time zone. For a target DER-day ``D``
(an event day, or a placebo day when scoring accuracy):

* eligible days are earlier days within the look-back, of the same type (weekday, or
  weekend/holiday), that are not holidays, not event days of that DER, and fully metered;
* the *pool* is the most recent ``pool`` eligible days; a method then keeps all of them,
  the ``keep`` highest by event-window energy, or the middle ones (highest and lowest
  dropped); NYISO first drops pool days under 25 % of the pool's mean window energy;
* the baseline of each time-of-day slot is the mean of the kept days at that slot;
* each candidate day contributes one value per local time-of-day slot: on the autumn DST
  day the repeated hour's two readings are averaged (the meter's weight ``w`` is 1/2 there),
  so that day weighs as one day in the slot means and the window energies;
* weekend events use like days: NYISO and PJM Saturdays for a Saturday and Sundays for a
  Sunday or a holiday; CAISO and mid-8-of-10 weekend days (holidays are never baseline days);
* adjustments use the metered data before the first award, crossing midnight into the
  previous day when the window does: CAISO multiplies by actual/baseline over
  ``[first - 4 h, first - 1 h)`` capped to [0.8, 1.2] (factor 1 where the window's baseline
  is not positive); PJM adds mean(actual - baseline) over the same three hours.

Sums and means are rounded to 1e-6 kWh where they are formed, so the parallel aggregation
order of DuckDB cannot change a result's last bits (meter data have 1e-3 kWh resolution):
the same inputs give identical baselines, lines and statement hashes.

Tables the SQL expects (made by :mod:`settlement.inputs` and :func:`event_targets`): ``meter(der_id, ts, kwh, lday,
ltod)``, ``event_meter`` (the same columns, target days only), ``day_info(lday, day_type,
holiday)``, ``complete_days(der_id, lday)``, ``event_days(der_id, lday)``,
``targets(der_id, lday, day_type, first_ts, win_lo, win_hi)``.
"""

from __future__ import annotations

import duckdb

from settlement.methods import METHODS, Adjustment, BaselineKind, DayKeep, Method

__all__ = ["METHODS", "Adjustment", "BaselineKind", "DayKeep", "Method", "baseline_sql", "compute_baselines"]


def _keep_clause(keep: DayKeep, n: int) -> str:
    if keep is DayKeep.HIGH:
        return f"hi_rank <= {n}"
    if keep is DayKeep.MID:
        return "hi_rank > 1 AND lo_rank > 1"
    return "TRUE"


def _ranks_days(m: Method) -> bool:
    """Whether the method ranks or filters pool days by event-window energy."""
    return m.low_filter > 0 or m.weekday_keep is not DayKeep.ALL or m.weekend_keep is not DayKeep.ALL


def _ranking_sql(m: Method) -> str:
    """CTEs from ``pool`` to ``kept(der_id, target_day, cand_day)``."""
    if not _ranks_days(m):  # every pool day is kept: no window energies needed
        return "), kept AS (\n    SELECT der_id, target_day, cand_day FROM pool\n"
    return f"""), energy AS (
    SELECT p.der_id, p.target_day, p.day_type, p.cand_day, round(sum(x.kwh * x.w), 6) AS window_kwh
    FROM pool p
    JOIN targets t ON t.der_id = p.der_id AND t.lday = p.target_day
    JOIN meter x ON x.der_id = p.der_id AND x.lday = p.cand_day
                AND x.ltod BETWEEN t.win_lo AND t.win_hi
    GROUP BY ALL
), filtered AS (
    SELECT * FROM (
        SELECT *, round(avg(window_kwh) OVER (PARTITION BY der_id, target_day), 6) AS pool_mean
        FROM energy)
    WHERE window_kwh >= {m.low_filter} * pool_mean OR {m.low_filter} = 0 OR pool_mean <= 0
), ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY der_id, target_day
                           ORDER BY window_kwh DESC, cand_day DESC) AS hi_rank,
        row_number() OVER (PARTITION BY der_id, target_day
                           ORDER BY window_kwh ASC, cand_day DESC) AS lo_rank
    FROM filtered
), kept AS (
    SELECT der_id, target_day, cand_day FROM ranked
    WHERE (day_type = 'weekday' AND {_keep_clause(m.weekday_keep, m.weekday_keep_n)})
       OR (day_type <> 'weekday' AND {_keep_clause(m.weekend_keep, m.weekend_keep_n)})
"""


def day_matching_sql(m: Method) -> str:
    """SQL giving ``(der_id, lday, ltod, base_kwh, n_days)`` for every target DER-day."""
    return f"""
WITH cand AS (
    SELECT t.der_id, t.lday AS target_day, t.day_type, c.lday AS cand_day,
           row_number() OVER (PARTITION BY t.der_id, t.lday ORDER BY c.lday DESC) AS recency
    FROM targets t
    JOIN complete_days c ON c.der_id = t.der_id
    JOIN day_info d ON d.lday = c.lday
    WHERE c.lday < t.lday AND c.lday >= t.lday - INTERVAL {m.lookback_days} DAY
      AND NOT d.holiday AND d.day_type = t.day_type
      AND ({not m.weekend_same_weekday} OR t.day_type = 'weekday'
           OR isodow(c.lday) = CASE WHEN isodow(t.lday) = 6 THEN 6 ELSE 7 END)
      AND NOT EXISTS (SELECT 1 FROM event_days e WHERE e.der_id = t.der_id AND e.lday = c.lday)
), pool AS (
    SELECT * FROM cand
    WHERE recency <= {m.pool_size_sql()}
{_ranking_sql(m)})
, slot_means AS (
    SELECT k.der_id, k.target_day, x.ltod, round(sum(x.kwh * x.w) / sum(x.w), 6) AS base_kwh
    FROM kept k JOIN meter x ON x.der_id = k.der_id AND x.lday = k.cand_day
    GROUP BY ALL
), day_numbers AS (  -- counted apart: a DISTINCT count per slot costs as much as the means
    SELECT der_id, target_day, count(*) AS n_days FROM kept GROUP BY ALL
)
SELECT s.der_id, s.target_day AS lday, s.ltod, s.base_kwh, n.n_days, {_exporter_sql(m)} AS exporter
FROM slot_means s JOIN day_numbers n USING (der_id, target_day)
"""


def _exporter_sql(m: Method) -> str:
    """Whether the low-usage filter was skipped because the pool is a net exporter."""
    if m.low_filter <= 0:
        return "FALSE"
    return """coalesce((SELECT any_value(f.pool_mean) <= 0 FROM filtered f
                       WHERE f.der_id = s.der_id AND f.target_day = s.target_day), FALSE)"""


def adjusted_sql(m: Method, raw: str) -> str:
    """Apply the method's same-day adjustment to the raw baseline relation ``raw``.

    The window is ``[first - 4 h, first - 1 h)`` before the DER's first award of the day,
    read from the meter whatever day it falls on (an award at 01:00 looks back to 21:00 of
    the previous day); each reading is compared with the target day's baseline at the same
    local time of day. Missing readings shorten the window only with a finding
    (``adj_readings``); a non-positive window baseline gives factor 1, with a finding
    (``adj_base_kwh``)."""
    if m.adjustment is None:
        return f"""SELECT *, 1.0 AS adj_factor, 0.0 AS adj_add_kwh, NULL::BIGINT AS adj_readings,
                   NULL::DOUBLE AS adj_base_kwh FROM ({raw})"""
    lo, hi = m.cap if m.cap else (None, None)
    factor = (
        f"CASE WHEN w.base_sum > 0 THEN least(greatest(w.act_sum / w.base_sum, {lo}), {hi}) ELSE 1.0 END"
        if m.adjustment is Adjustment.MULTIPLICATIVE
        else "1.0"
    )
    add = "coalesce(w.diff_mean, 0.0)" if m.adjustment is Adjustment.ADDITIVE else "0.0"
    back, gap = m.adjustment_window
    return f"""
WITH raw AS MATERIALIZED ({raw}),  -- read twice: window sums and the result
before AS (  -- the readings in the adjustment window, on the target day or the day before
    SELECT t.der_id, t.lday, x.ltod, x.kwh
    FROM targets t JOIN meter x ON x.der_id = t.der_id AND x.lday BETWEEN t.lday - 1 AND t.lday
    WHERE x.ts >= t.first_ts - INTERVAL {back} AND x.ts < t.first_ts - INTERVAL {gap}
),
win AS (
    SELECT r.der_id, r.lday, round(sum(x.kwh), 6) AS act_sum,
           round(sum(r.base_kwh), 6) AS base_sum,
           round(sum(x.kwh - r.base_kwh), 6) / count(*) AS diff_mean, count(x.kwh) AS readings
    FROM before x JOIN raw r ON r.der_id = x.der_id AND r.lday = x.lday AND r.ltod = x.ltod
    GROUP BY ALL
)
SELECT r.der_id, r.lday, r.ltod,
       r.base_kwh * {factor} + {add} AS base_kwh, r.n_days, r.exporter,
       {factor} AS adj_factor, {add} AS adj_add_kwh,
       coalesce(w.readings, 0) AS adj_readings, w.base_sum AS adj_base_kwh
FROM raw r LEFT JOIN win w ON w.der_id = r.der_id AND w.lday = r.lday
"""


def baseline_sql(m: Method) -> str:
    """``(der_id, lday, ltod, base_kwh, n_days, exporter, adj_factor, adj_add_kwh, adj_readings,
    adj_base_kwh)`` per target."""
    if m.kind is BaselineKind.METER_BEFORE:
        return """
SELECT t.der_id, t.lday, x2.ltod, x.kwh AS base_kwh, 1 AS n_days, FALSE AS exporter,
       1.0 AS adj_factor, 0.0 AS adj_add_kwh, NULL::BIGINT AS adj_readings, NULL::DOUBLE AS adj_base_kwh
FROM targets t
JOIN meter x ON x.der_id = t.der_id AND x.ts = t.first_ts - interval_len()
JOIN event_meter x2 ON x2.der_id = t.der_id AND x2.lday = t.lday
"""
    if m.kind is BaselineKind.NOMINATED:
        return """
SELECT a.der_id, a.lday, a.ltod, a.nominated_kwh AS base_kwh, 1 AS n_days, FALSE AS exporter,
       1.0 AS adj_factor, 0.0 AS adj_add_kwh, NULL::BIGINT AS adj_readings, NULL::DOUBLE AS adj_base_kwh
FROM awards_t a WHERE a.nominated_kwh IS NOT NULL
GROUP BY ALL
"""
    if m.kind is BaselineKind.CONTROL_GROUP:
        return control_group_sql(m)
    return adjusted_sql(m, day_matching_sql(m))


def control_group_sql(m: Method) -> str:
    """The DER's day-matching baseline plus the control group's change (difference in
    differences): ``adj_add_kwh`` = mean control reading on the event day minus the mean over
    the DER's kept days, per slot (NULL, and left out, without a control meter). Control
    meters: every DER of ``meter`` with no event day (``event_days``) other than the target."""
    raw = day_matching_sql(m)
    split = raw.index("SELECT s.der_id")
    ctes, own = raw[:split], raw[split:]  # the day-matching CTEs (``kept`` among them) and its result
    return f"""
{ctes.rstrip()}
, control AS (
    SELECT der_id, lday, ltod, kwh FROM meter
    WHERE der_id NOT IN (SELECT der_id FROM event_days) AND kwh IS NOT NULL
), control_event AS (
    SELECT t.der_id, t.lday, c.ltod, avg(c.kwh) AS kwh
    FROM targets t JOIN control c ON c.lday = t.lday AND c.der_id <> t.der_id
    GROUP BY ALL
), control_before AS (
    SELECT k.der_id, k.target_day AS lday, c.ltod, avg(c.kwh) AS kwh
    FROM kept k JOIN control c ON c.lday = k.cand_day AND c.der_id <> k.der_id
    GROUP BY ALL
), raw AS (
{own}
)
SELECT r.der_id, r.lday, r.ltod,
       r.base_kwh + coalesce(round(e.kwh - b.kwh, 6), 0.0) AS base_kwh, r.n_days, r.exporter,
       1.0 AS adj_factor, round(e.kwh - b.kwh, 6) AS adj_add_kwh,
       NULL::BIGINT AS adj_readings, NULL::DOUBLE AS adj_base_kwh
FROM raw r
LEFT JOIN control_event e ON e.der_id = r.der_id AND e.lday = r.lday AND e.ltod = r.ltod
LEFT JOIN control_before b ON b.der_id = r.der_id AND b.lday = r.lday AND b.ltod = r.ltod
"""


def event_targets(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE OR REPLACE TABLE targets AS
        SELECT a.der_id, a.lday, d.day_type, min(a.interval_start) AS first_ts,
               min(a.ltod) AS win_lo, max(a.ltod) AS win_hi
        FROM awards_t a JOIN day_info d USING (lday)
        GROUP BY a.der_id, a.lday, d.day_type""")


def compute_baselines(con: duckdb.DuckDBPyConnection, methods: list[str]) -> None:
    if not methods:  # no energy award (only reserved capacity, never called): nothing to baseline
        con.execute("""CREATE OR REPLACE TABLE baselines (method VARCHAR, der_id VARCHAR, lday DATE, ltod INTEGER,
            base_kwh DOUBLE, n_days BIGINT, exporter BOOLEAN, adj_factor DOUBLE, adj_add_kwh DOUBLE,
            adj_readings BIGINT, adj_base_kwh DOUBLE)""")
        return
    parts = [f"SELECT '{name}' AS method, * FROM ({baseline_sql(METHODS[name])})" for name in methods]
    con.execute("CREATE OR REPLACE TABLE baselines AS " + " UNION ALL ".join(parts))
