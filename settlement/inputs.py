"""Input stages: the run's awards and the meter data of the awarded DER, read straight
from Parquet into DuckDB tables, with the meter checked against its contract first.

Tables made: ``awards_t``; ``meter``, ``day_info``, ``day_counts``, ``dupes``,
``complete_days``, ``event_days`` and ``event_meter`` (see each function).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from market.enums import Service
from market.errors import Finding, FindingCode, SettlementInputError
from market.io.schemas import MW_LIMIT, PRICE_LIMIT_EUR_MWH
from settlement.config import SettleConfig
from settlement.connection import parquet_columns, reading, scalar, sql_path

AWARD_COLUMNS = (
    "bid_id",
    "der_id",
    "aggregator_id",
    "buyer_id",
    "service",
    "interval_start",
    "direction",
    "quantity_mw",
    "price_eur_mwh",
)


def award_span(con: duckdb.DuckDBPyConnection, awards_path: Path) -> tuple[dt.datetime, dt.datetime] | None:
    """First and last awarded interval start (UTC), or None for a run without awards."""
    with reading(awards_path, "awards"):
        return _award_span(con, awards_path)


def _award_span(con: duckdb.DuckDBPyConnection, awards_path: Path) -> tuple[dt.datetime, dt.datetime] | None:
    columns = parquet_columns(con, awards_path, "awards")
    if "interval_start" not in columns:
        raise SettlementInputError(f"{awards_path}: awards have no interval_start column")
    row = con.execute(
        f"SELECT min(interval_start), max(interval_start) FROM read_parquet({sql_path(awards_path)})"
    ).fetchone()
    if not row or row[0] is None:
        return None
    return row[0], row[1]


def load_awards(con: duckdb.DuckDBPyConnection, awards_path: Path, cfg: SettleConfig, hours: float) -> None:
    """``awards_t``: the run's awards (quantity > 0) with local day and slot, awarded energy
    (MWh), nominated baseline energy (kWh), the baseline method of their (buyer, service)
    and the allocation rank of their service (``cfg.priority``), read straight from Parquet.
    Only the contract's columns are read (other columns of the file are ignored); the
    optional ``nominated_baseline_mw``, ``need_id`` and ``make_whole_eur`` default to none."""
    with reading(awards_path, "awards"):
        _load_awards(con, awards_path, cfg, hours)


def _load_awards(con: duckdb.DuckDBPyConnection, awards_path: Path, cfg: SettleConfig, hours: float) -> None:
    columns = set(parquet_columns(con, awards_path, "awards"))
    missing = set(AWARD_COLUMNS) - columns
    if missing:
        raise SettlementInputError(f"awards: missing column(s) {sorted(missing)}")
    validate_awards(con, awards_path)
    pairs = con.execute(
        f"SELECT DISTINCT buyer_id, service FROM read_parquet({sql_path(awards_path)}) ORDER BY ALL"
    ).df()
    pairs["method"] = [cfg.method_for(b, s) for b, s in pairs.itertuples(index=False)]
    ranks = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(cfg.priority))
    nominated = "a.nominated_baseline_mw" if "nominated_baseline_mw" in columns else "NULL"
    need_id = "a.need_id" if "need_id" in columns else "NULL"
    make_whole = "coalesce(a.make_whole_eur, 0)" if "make_whole_eur" in columns else "0"
    product = "coalesce(a.product, 'energy')" if "product" in columns else "'energy'"
    reservation = "a.reservation_id" if "reservation_id" in columns else "NULL"
    avail_price = "a.availability_price_eur_mw_h" if "availability_price_eur_mw_h" in columns else "NULL"
    max_usage = "a.max_usage_mw" if "max_usage_mw" in columns else "NULL"
    con.register("method_pairs", pairs)
    con.execute(f"""
        CREATE TABLE awards_t AS
        SELECT {", ".join(f"a.{c}" for c in AWARD_COLUMNS if c != "interval_start")},
               CAST(a.interval_start AS TIMESTAMPTZ) AS interval_start,
               CAST({nominated} AS DOUBLE) AS nominated_baseline_mw,
               CAST({need_id} AS VARCHAR) AS need_id,
               CAST({make_whole} AS DOUBLE) AS award_make_whole_eur,
               p.method, CASE a.service {ranks} ELSE NULL END AS service_rank,
               local_day(a.interval_start) AS lday, local_tod(a.interval_start) AS ltod,
               a.quantity_mw * {hours} AS awarded_mwh,
               CAST({nominated} AS DOUBLE) * 1000 * {hours} AS nominated_kwh,
               CASE a.direction WHEN 'up' THEN 1 ELSE -1 END AS s,
               CAST({product} AS VARCHAR) AS product, CAST({reservation} AS VARCHAR) AS reservation_id,
               CAST({avail_price} AS DOUBLE) AS availability_price_eur_mw_h,
               CAST({max_usage} AS DOUBLE) AS max_usage_mw
        FROM read_parquet({sql_path(awards_path)}) a
        JOIN method_pairs p ON p.buyer_id = a.buyer_id AND p.service = a.service
        WHERE a.quantity_mw > 0""")
    con.unregister("method_pairs")
    check_products(con, awards_path)
    # reserved capacity is paid apart (settlement.allocation.availability_lines); only energy
    # awards are events: they choose baseline days, are baselined and are allocated delivery
    con.execute("CREATE TABLE reservations_t AS SELECT * FROM awards_t WHERE product = 'availability'")
    con.execute("DELETE FROM awards_t WHERE product = 'availability'")


PRODUCTS = ("energy", "availability", "capped-power")


def check_products(con: duckdb.DuckDBPyConnection, awards_path: Path) -> None:
    """Refuse (naming the rows) an unknown product, an availability award without a finite,
    non-negative availability price or a reservation id, and an activation that calls a
    reservation the run does not hold."""
    bad = con.execute(f"""
        SELECT bid_id, interval_start, CASE
            WHEN product NOT IN {PRODUCTS} THEN 'product ' || product || ' is not energy, availability or capped-power'
            WHEN product = 'capped-power' AND (max_usage_mw IS NULL OR NOT isfinite(max_usage_mw) OR max_usage_mw < 0)
                THEN 'a capped-power award needs a finite max_usage_mw >= 0'
            WHEN product = 'availability' AND (availability_price_eur_mw_h IS NULL
                 OR NOT isfinite(availability_price_eur_mw_h) OR availability_price_eur_mw_h < 0)
                THEN 'an availability award needs a finite availability_price_eur_mw_h >= 0'
            WHEN product = 'availability' AND reservation_id IS NULL THEN 'an availability award needs a reservation_id'
            WHEN product = 'energy' AND reservation_id IS NOT NULL AND reservation_id NOT IN
                 (SELECT reservation_id FROM awards_t WHERE product = 'availability' AND reservation_id IS NOT NULL)
                THEN 'calls reservation ' || reservation_id || ', which the run does not hold'
            END AS reason
        FROM awards_t WHERE reason IS NOT NULL ORDER BY bid_id, interval_start LIMIT 20""").fetchall()
    if bad:
        rows = "; ".join(f"bid {b} at {t}: {r}" for b, t, r in bad)
        raise SettlementInputError(f"{awards_path}: {rows}")


# the id columns of the settlement store and their lengths (store_tables.LINE_COLS / statements)
ID_LIMITS = {"aggregator_id": 100, "buyer_id": 100, "der_id": 100, "bid_id": 200, "need_id": 200}


def validate_awards(con: duckdb.DuckDBPyConnection, awards_path: Path, max_listed: int = 50) -> None:
    """Re-check a run's awards against the run contract before paying anything: directions,
    services, finite and bounded prices and quantities, one row per bid and buyer (and
    product: a bid may hold an availability award and the energy award that calls it)."""
    src = f"read_parquet({sql_path(awards_path)}, file_row_number = true)"
    per_product = ", coalesce(product, 'energy')" if "product" in parquet_columns(con, awards_path, "awards") else ""
    services = ", ".join(f"'{s.value}'" for s in Service)
    rules = [
        ("direction", "direction IS NULL OR direction NOT IN ('up', 'down')", "must be up or down"),
        ("service", f"service IS NULL OR service NOT IN ({services})", "must be a known service"),
        (
            "price_eur_mwh",
            f"price_eur_mwh IS NULL OR NOT isfinite(price_eur_mwh) OR abs(price_eur_mwh) > {PRICE_LIMIT_EUR_MWH}",
            f"must be a finite price within ±{PRICE_LIMIT_EUR_MWH:g}",
        ),
        (
            "quantity_mw",
            f"quantity_mw IS NULL OR NOT isfinite(quantity_mw) OR quantity_mw < 0 OR quantity_mw > {MW_LIMIT}",
            f"must be a finite quantity in [0, {MW_LIMIT:g}]",
        ),
        (
            "bid_id",
            f"count(*) OVER (PARTITION BY bid_id, buyer_id{per_product}) > 1",
            "duplicate award: another row has the same bid_id and buyer_id" + (" and product" if per_product else ""),
        ),
        *[
            (
                col,
                f"{col} IS NOT NULL AND (length({col}) > {limit} OR regexp_matches({col}, '[[:cntrl:]]'))",
                f"the store keeps ids of at most {limit} characters without control characters",
            )
            for col, limit in ID_LIMITS.items()
        ],
    ]
    checks = " UNION ALL ".join(
        f"SELECT file_row_number AS row, '{col}' AS col, CAST({col} AS VARCHAR) AS value, '{reason}' AS reason "
        f"FROM (SELECT *, {cond} AS bad FROM {src}) WHERE bad"
        for col, cond, reason in rules
    )
    rows = con.execute(f"SELECT * FROM ({checks}) ORDER BY row, col LIMIT {max_listed}").fetchall()
    if rows:
        lines = "\n  ".join(f"awards row {r[0]} column {r[1]} = {r[2]!r}: {r[3]}" for r in rows)
        raise SettlementInputError(f"{awards_path}: the run's awards break the run contract:\n  {lines}")


def validate_meter(con: duckdb.DuckDBPyConnection, meter_path: Path, minutes: int, max_listed: int = 50) -> None:
    """Refuse meter data that cannot be read as the contract says, naming every bad row.

    Columns: ``der_id`` (text), ``interval_start`` (timezone-aware timestamp on the run's
    interval grid), ``consumption_kwh`` (finite number). Gaps and duplicates are not errors
    but findings (see :func:`settlement.findings.quality_findings`).
    """
    with reading(meter_path, "meter data"):
        _validate_meter(con, meter_path, minutes, max_listed)


def _validate_meter(con: duckdb.DuckDBPyConnection, meter_path: Path, minutes: int, max_listed: int = 50) -> None:
    desc = parquet_columns(con, meter_path, "meter data")
    problems = [
        Finding("meter", None, None, c, None, "missing required column", FindingCode.MISSING_COLUMN)
        for c in ("der_id", "interval_start", "consumption_kwh")
        if c not in desc
    ]
    if not problems:
        ts_type = desc["interval_start"]
        if not (ts_type.startswith("TIMESTAMPTZ") or ts_type == "TIMESTAMP WITH TIME ZONE"):
            problems.append(
                Finding(
                    "meter",
                    None,
                    None,
                    "interval_start",
                    desc["interval_start"],
                    "timestamps must be timezone-aware (UTC)",
                    FindingCode.NAIVE_TIMESTAMP,
                )
            )
        if desc["consumption_kwh"] not in ("DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "INTEGER") and not desc[
            "consumption_kwh"
        ].startswith("DECIMAL"):
            problems.append(
                Finding(
                    "meter",
                    None,
                    None,
                    "consumption_kwh",
                    desc["consumption_kwh"],
                    "must be a number column",
                    FindingCode.WRONG_TYPE,
                )
            )
    grid = f"epoch_ns(interval_start) % {60_000_000_000 * minutes} <> 0"
    bad = (
        f"der_id IS NULL OR interval_start IS NULL OR {grid} "
        "OR consumption_kwh IS NULL OR NOT isfinite(consumption_kwh)"
    )
    n_bad = 0
    if not problems:  # count first (one plain scan); name the rows only when there are any
        n_bad = scalar(con, f"SELECT count(*) FROM read_parquet({sql_path(meter_path)}) WHERE {bad}")
    if n_bad:
        rows = con.execute(f"""
            SELECT file_row_number, der_id, interval_start, consumption_kwh,
                   CASE WHEN der_id IS NULL THEN 'der_id'
                        WHEN interval_start IS NULL OR {grid} THEN 'interval_start'
                        ELSE 'consumption_kwh' END AS col,
                   CASE WHEN der_id IS NULL OR interval_start IS NULL THEN 'must not be empty'
                        WHEN {grid} THEN 'not on the {minutes}-minute grid'
                        ELSE 'must be a finite number' END AS reason,
                   CASE WHEN der_id IS NULL OR interval_start IS NULL THEN '{FindingCode.EMPTY_VALUE}'
                        WHEN {grid} THEN '{FindingCode.OFF_GRID}'
                        ELSE '{FindingCode.NOT_FINITE}' END AS code
            FROM read_parquet({sql_path(meter_path)}, file_row_number = true)
            WHERE {bad}
            ORDER BY file_row_number LIMIT {max_listed}""").fetchall()
        problems += [
            Finding(
                "meter",
                int(r[0]),
                f"der_id={r[1]}",
                r[4],
                repr(r[2] if r[4] == "interval_start" else r[3]),
                r[5],
                FindingCode(r[6]),
            )
            for r in rows
        ]
    if problems:
        lines = "\n  ".join(str(p) for p in problems[:max_listed])
        more = f" ({n_bad:,} bad rows, first {max_listed} listed)" if n_bad > max_listed else ""
        raise SettlementInputError(f"{meter_path}: meter data is invalid{more}:\n  {lines}")


def load_meter(
    con: duckdb.DuckDBPyConnection,
    meter_path: Path,
    cfg: SettleConfig,
    minutes: int,
    lookback_days: int,
    controls: bool = False,
) -> None:
    """Meter rows of awarded DER (``controls``: of every DER, the non-dispatched ones forming
    the control group) over the look-back window, duplicates collapsed or voided.

    Tables made: ``meter`` (the window), ``day_info`` (every local day of the window),
    ``day_counts`` (readings per DER-day), ``complete_days``, ``event_days`` and
    ``event_meter`` (the readings of awarded DER on their event days, which adjustments,
    lines and findings join instead of the whole window).
    """
    with reading(meter_path, "meter data"):
        _load_meter(con, meter_path, cfg, minutes, lookback_days, controls)


def _load_meter(
    con: duckdb.DuckDBPyConnection,
    meter_path: Path,
    cfg: SettleConfig,
    minutes: int,
    lookback_days: int,
    controls: bool = False,
) -> None:
    validate_meter(con, meter_path, minutes)
    first_day, last_day = con.execute(
        "SELECT min(lday), max(lday) FROM (SELECT lday FROM awards_t UNION ALL SELECT lday FROM reservations_t)"
    ).fetchone() or (None, None)
    window_start = f"DATE '{first_day}' - INTERVAL {lookback_days + 1} DAY"
    start = f"timezone('{cfg.timezone}', CAST({window_start} AS TIMESTAMP))"
    end = f"timezone('{cfg.timezone}', CAST(DATE '{last_day}' + INTERVAL 1 DAY AS TIMESTAMP))"
    con.execute(f"""
        CREATE TABLE meter AS
        SELECT der_id, CAST(interval_start AS TIMESTAMPTZ) AS ts, consumption_kwh AS kwh,
               local_day(interval_start) AS lday, local_tod(interval_start) AS ltod, 1.0 AS w
        FROM read_parquet({sql_path(meter_path)})
        WHERE ({controls} OR der_id IN (SELECT DISTINCT der_id FROM awards_t))
          AND interval_start >= {start} AND interval_start < {end}""")
    days = f"""SELECT CAST(unnest(generate_series(CAST({window_start} AS DATE),
                      DATE '{last_day}', INTERVAL 1 DAY)) AS DATE) AS lday"""
    create_day_info(con, cfg, days)
    count_days(con, minutes)
    resolve_duplicates(con)
    weigh_repeated_slots(con)
    con.execute("""
        CREATE TABLE complete_days AS
        SELECT der_id, lday FROM day_counts WHERE usable = slots""")
    con.execute("CREATE TABLE event_days AS SELECT DISTINCT der_id, lday FROM awards_t")
    con.execute("""
        CREATE TABLE event_meter AS
        SELECT m.* FROM meter m SEMI JOIN event_days e ON e.der_id = m.der_id AND e.lday = m.lday""")


def create_day_info(con: duckdb.DuckDBPyConnection, cfg: SettleConfig, days_sql: str) -> None:
    """``day_info(lday, holiday, day_type, slots)`` for the local days ``days_sql`` selects
    (one column ``lday``): ``day_type`` is ``weekend`` for Saturdays, Sundays and the
    configured holidays, else ``weekday``; ``slots`` the day's number of intervals."""
    holidays = ", ".join(f"DATE '{d.isoformat()}'" for d in cfg.holidays) or "NULL::DATE"
    con.execute(f"""
        CREATE TABLE day_info AS
        SELECT lday, coalesce(lday IN ({holidays}), FALSE) AS holiday,
               CASE WHEN isodow(lday) >= 6 OR coalesce(lday IN ({holidays}), FALSE) THEN 'weekend'
                    ELSE 'weekday' END AS day_type,
               day_slots(lday) AS slots
        FROM ({days_sql})""")


def count_days(con: duckdb.DuckDBPyConnection, minutes: int) -> None:
    """``day_counts(der_id, lday, n_rows, seen, usable, slots)`` in one pass over ``meter``.

    ``seen`` counts the distinct local time-of-day slots of a DER-day, as the bits of a
    128-bit mask (far cheaper than grouping by DER and interval). A repeated reading always
    makes ``n_rows > seen``; so does the repeated clock hour of an autumn clock change,
    which the exact check of :func:`resolve_duplicates` then clears. ``usable`` (non-void
    readings) is corrected for days with repeated readings there.
    """
    slots_per_day = 24 * 60 // minutes  # local time-of-day slots 0..n-1
    seen = "bit_count(bit_or(CAST(1 AS HUGEINT) << m.ltod))" if slots_per_day <= 127 else "count(DISTINCT m.ts)"
    con.execute(f"""
        CREATE TABLE day_counts AS
        SELECT c.*, d.slots
        FROM (SELECT m.der_id, m.lday, count(*) AS n_rows, {seen} AS seen, count(m.kwh) AS usable
              FROM meter m GROUP BY m.der_id, m.lday) c
        JOIN day_info d USING (lday)""")


def weigh_repeated_slots(con: duckdb.DuckDBPyConnection) -> None:
    """On a day with more intervals than local slots (the autumn clock change), each of the
    readings sharing a slot weighs 1/n (``meter.w``), so that the day weighs as one day in
    the baselines' slot means and window energies."""
    con.execute("""
        UPDATE meter SET w = 1.0 / c.n
        FROM (SELECT der_id, lday, ltod, count(*) AS n FROM meter
              WHERE lday IN (SELECT lday FROM day_info
                             WHERE slots > 1440 // (extract(epoch FROM interval_len()) / 60))
              GROUP BY ALL HAVING count(*) > 1) c
        WHERE meter.der_id = c.der_id AND meter.lday = c.lday AND meter.ltod = c.ltod""")


def resolve_duplicates(con: duckdb.DuckDBPyConnection) -> None:
    """Find repeated readings of one DER and interval; keep one row, voided if they disagree.

    Only DER-days flagged by :func:`count_days` are grouped by interval. ``dupes`` keeps
    what the findings report; ``day_counts.usable`` is recounted for those days.
    """
    con.execute("""
        CREATE TABLE dupes AS
        SELECT m.der_id, m.ts, any_value(m.lday) AS lday, count(*) AS n_readings,
               min(m.kwh) AS kwh_min, max(m.kwh) AS kwh_max
        FROM meter m SEMI JOIN (SELECT der_id, lday FROM day_counts WHERE n_rows > seen) f
             ON f.der_id = m.der_id AND f.lday = m.lday
        GROUP BY m.der_id, m.ts HAVING count(*) > 1""")
    if scalar(con, "SELECT count(*) FROM dupes"):
        con.execute("DELETE FROM meter USING dupes d WHERE meter.der_id = d.der_id AND meter.ts = d.ts")
        con.execute("""
            INSERT INTO meter
            SELECT der_id, ts, CASE WHEN kwh_min = kwh_max THEN kwh_min END, lday, local_tod(ts), 1.0
            FROM dupes""")
        con.execute("""
            UPDATE day_counts SET usable = r.usable
            FROM (SELECT m.der_id, m.lday, count(m.kwh) AS usable
                  FROM meter m SEMI JOIN (SELECT DISTINCT der_id, lday FROM dupes) f
                       ON f.der_id = m.der_id AND f.lday = m.lday
                  GROUP BY ALL) r
            WHERE day_counts.der_id = r.der_id AND day_counts.lday = r.lday""")
