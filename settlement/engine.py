"""Settlement computation in DuckDB: data-quality findings, baselines, lines, statements.

Everything is set-based SQL over the Parquet inputs; filters on DER and dates are pushed
into the Parquet scans so only the days a baseline needs are read.

Sign convention: ``delivered_up_mwh = (baseline - metered)``, positive for up (less
consumption / more export). A down award is delivered by a negative value.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import zoneinfo
from pathlib import Path

import duckdb
import pandas as pd

from settlement.baselines import METHODS, baseline_sql
from settlement.config import SettleConfig
from settlement.errors import SettlementInputError

LINE_COLUMNS = [
    "bid_id",
    "der_id",
    "aggregator_id",
    "buyer_id",
    "service",
    "need_id",
    "interval_start",
    "direction",
    "quantity_mw",
    "price_eur_mwh",
    "method",
    "baseline_kwh",
    "metered_kwh",
    "delivered_up_mwh",
    "awarded_mwh",
    "allocated_mwh",
    "shortfall_mwh",
    "payment_eur",
    "make_whole_eur",
    "penalty_eur",
    "net_eur",
    "status",
]
FINDING_COLUMNS = ["kind", "severity", "der_id", "day", "interval_start", "detail"]


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def utc_offset_sql(tz: str, start: dt.datetime, end: dt.datetime, column: str = "t") -> str:
    """Seconds to add to a UTC instant for local clock time, as a CASE over the (at most a
    few) offset changes of ``tz`` between ``start`` and ``end`` (cheaper per row than a
    named-zone conversion, and exact)."""
    zone = zoneinfo.ZoneInfo(tz)
    t = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    end = end.astimezone(dt.UTC)
    offset = int(t.astimezone(zone).utcoffset().total_seconds())  # type: ignore[union-attr]
    cases: list[tuple[dt.datetime, int]] = []
    while t <= end:  # 15-minute steps: offsets change on a quarter hour in every zone
        nxt = t + dt.timedelta(minutes=15)
        o = int(nxt.astimezone(zone).utcoffset().total_seconds())  # type: ignore[union-attr]
        if o != offset:
            cases.append((nxt, offset))
            offset = o
        t = nxt
    if not cases:
        return f"{offset}"
    whens = " ".join(f"WHEN {column} < TIMESTAMPTZ '{c.isoformat()}' THEN {o}" for c, o in cases)
    return f"(CASE {whens} ELSE {offset} END)"


def open_duckdb(threads: int = 2, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC, spilling to the temp directory past the limit."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {threads}")
    con.execute("SET enable_progress_bar = false")  # batch jobs: no terminal noise
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/flexmarket-duckdb'")
    return con


def connect(
    cfg: SettleConfig,
    interval_minutes: int,
    threads: int = 2,
    span: tuple[dt.datetime, dt.datetime] | None = None,
    memory_limit: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (``con``, or a new one) with the calendar macros of ``cfg.timezone``.

    ``span``: the UTC range the data cover; within it local days and slots are computed
    with integer arithmetic on epoch seconds instead of a named-zone conversion per row.
    """
    con = con or open_duckdb(threads, memory_limit)
    con.execute(f"CREATE MACRO interval_len() AS INTERVAL '{interval_minutes} minutes'")
    if span is not None:
        off = utc_offset_sql(cfg.timezone, *span)
        con.execute(f"CREATE MACRO local_epoch(t) AS epoch_ns(t) // 1000000000 + {off}")
        con.execute(
            "CREATE MACRO local_day(t) AS CAST(DATE '1970-01-01' + CAST(local_epoch(t) // 86400 AS INTEGER) AS DATE)"
        )
        con.execute(
            f"CREATE MACRO local_tod(t) AS CAST((local_epoch(t) % 86400) // {60 * interval_minutes} AS INTEGER)"
        )
    else:
        con.execute(f"CREATE MACRO local_day(t) AS CAST(timezone('{cfg.timezone}', t) AS DATE)")
        con.execute(
            f"CREATE MACRO local_tod(t) AS (hour(timezone('{cfg.timezone}', t)) * 60 + "
            f"minute(timezone('{cfg.timezone}', t))) // {interval_minutes}"
        )
    con.execute(
        f"CREATE MACRO day_slots(d) AS CAST((epoch(timezone('{cfg.timezone}', "
        f"CAST(d + INTERVAL 1 DAY AS TIMESTAMP))) - epoch(timezone('{cfg.timezone}', "
        f"CAST(d AS TIMESTAMP)))) / 60 / {interval_minutes} AS INTEGER)"
    )
    return con


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
    row = con.execute(
        f"SELECT min(interval_start), max(interval_start) FROM read_parquet({_q(awards_path)})"
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
    columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_q(awards_path)})").fetchall()}
    missing = set(AWARD_COLUMNS) - columns
    if missing:
        raise SettlementInputError(f"awards: missing column(s) {sorted(missing)}")
    pairs = con.execute(f"SELECT DISTINCT buyer_id, service FROM read_parquet({_q(awards_path)}) ORDER BY ALL").df()
    pairs["method"] = [cfg.method_for(b, s) for b, s in pairs.itertuples(index=False)]
    ranks = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(cfg.priority))
    nominated = "a.nominated_baseline_mw" if "nominated_baseline_mw" in columns else "NULL"
    need_id = "a.need_id" if "need_id" in columns else "NULL"
    make_whole = "coalesce(a.make_whole_eur, 0)" if "make_whole_eur" in columns else "0"
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
               CASE a.direction WHEN 'up' THEN 1 ELSE -1 END AS s
        FROM read_parquet({_q(awards_path)}) a
        JOIN method_pairs p ON p.buyer_id = a.buyer_id AND p.service = a.service
        WHERE a.quantity_mw > 0""")
    con.unregister("method_pairs")


def load_meter(
    con: duckdb.DuckDBPyConnection, meter_path: Path, cfg: SettleConfig, minutes: int, lookback_days: int
) -> None:
    """Meter rows of awarded DER over the look-back window, duplicates collapsed or voided.

    Tables made: ``meter`` (the window), ``day_info`` (every local day of the window),
    ``day_counts`` (readings per DER-day), ``complete_days``, ``event_days`` and
    ``event_meter`` (the readings of awarded DER on their event days, which adjustments,
    lines and findings join instead of the whole window).
    """
    validate_meter(con, meter_path, minutes)
    holidays = ", ".join(f"DATE '{d.isoformat()}'" for d in cfg.holidays) or "NULL::DATE"
    first_day, last_day = con.execute("SELECT min(lday), max(lday) FROM awards_t").fetchone() or (None, None)
    window_start = f"DATE '{first_day}' - INTERVAL {lookback_days + 1} DAY"
    start = f"timezone('{cfg.timezone}', CAST({window_start} AS TIMESTAMP))"
    end = f"timezone('{cfg.timezone}', CAST(DATE '{last_day}' + INTERVAL 1 DAY AS TIMESTAMP))"
    con.execute(f"""
        CREATE TABLE meter AS
        SELECT der_id, CAST(interval_start AS TIMESTAMPTZ) AS ts, consumption_kwh AS kwh,
               local_day(interval_start) AS lday, local_tod(interval_start) AS ltod
        FROM read_parquet({_q(meter_path)})
        WHERE der_id IN (SELECT DISTINCT der_id FROM awards_t)
          AND interval_start >= {start} AND interval_start < {end}""")
    con.execute(f"""
        CREATE TABLE day_info AS
        SELECT lday, coalesce(lday IN ({holidays}), FALSE) AS holiday,
               CASE WHEN isodow(lday) >= 6 OR coalesce(lday IN ({holidays}), FALSE) THEN 'weekend'
                    ELSE 'weekday' END AS day_type,
               day_slots(lday) AS slots
        FROM (SELECT CAST(unnest(generate_series(CAST({window_start} AS DATE),
                                                 DATE '{last_day}', INTERVAL 1 DAY)) AS DATE)
                     AS lday)""")
    count_days(con, minutes)
    resolve_duplicates(con)
    con.execute("""
        CREATE TABLE complete_days AS
        SELECT der_id, lday FROM day_counts WHERE usable = slots""")
    con.execute("CREATE TABLE event_days AS SELECT DISTINCT der_id, lday FROM awards_t")
    con.execute("""
        CREATE TABLE event_meter AS
        SELECT m.* FROM meter m SEMI JOIN event_days e ON e.der_id = m.der_id AND e.lday = m.lday""")


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
    if con.execute("SELECT count(*) FROM dupes").fetchone()[0]:  # type: ignore[index]
        con.execute("DELETE FROM meter USING dupes d WHERE meter.der_id = d.der_id AND meter.ts = d.ts")
        con.execute("""
            INSERT INTO meter
            SELECT der_id, ts, CASE WHEN kwh_min = kwh_max THEN kwh_min END, lday, local_tod(ts)
            FROM dupes""")
        con.execute("""
            UPDATE day_counts SET usable = r.usable
            FROM (SELECT m.der_id, m.lday, count(m.kwh) AS usable
                  FROM meter m SEMI JOIN (SELECT DISTINCT der_id, lday FROM dupes) f
                       ON f.der_id = m.der_id AND f.lday = m.lday
                  GROUP BY ALL) r
            WHERE day_counts.der_id = r.der_id AND day_counts.lday = r.lday""")


def validate_meter(con: duckdb.DuckDBPyConnection, meter_path: Path, minutes: int, max_listed: int = 50) -> None:
    """Refuse meter data that cannot be read as the contract says, naming every bad row.

    Columns: ``der_id`` (text), ``interval_start`` (timezone-aware timestamp on the run's
    interval grid), ``consumption_kwh`` (finite number). Gaps and duplicates are not errors
    but findings (see :func:`quality_findings`).
    """
    from market.errors import Finding

    desc = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_q(meter_path)})").fetchall()}
    problems = [
        Finding("meter", None, None, c, None, "missing required column")
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
                )
            )
        if desc["consumption_kwh"] not in ("DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "INTEGER") and not desc[
            "consumption_kwh"
        ].startswith("DECIMAL"):
            problems.append(
                Finding("meter", None, None, "consumption_kwh", desc["consumption_kwh"], "must be a number column")
            )
    grid = f"epoch_ns(interval_start) % {60_000_000_000 * minutes} <> 0"
    bad = (
        f"der_id IS NULL OR interval_start IS NULL OR {grid} "
        "OR consumption_kwh IS NULL OR NOT isfinite(consumption_kwh)"
    )
    n_bad = 0
    if not problems:  # count first (one plain scan); name the rows only when there are any
        n_bad = con.execute(f"SELECT count(*) FROM read_parquet({_q(meter_path)}) WHERE {bad}").fetchone()[0]  # type: ignore[index]
    if n_bad:
        rows = con.execute(f"""
            SELECT file_row_number, der_id, interval_start, consumption_kwh,
                   CASE WHEN der_id IS NULL THEN 'der_id'
                        WHEN interval_start IS NULL OR {grid} THEN 'interval_start'
                        ELSE 'consumption_kwh' END AS col,
                   CASE WHEN der_id IS NULL OR interval_start IS NULL THEN 'must not be empty'
                        WHEN {grid} THEN 'not on the {minutes}-minute grid'
                        ELSE 'must be a finite number' END AS reason
            FROM read_parquet({_q(meter_path)}, file_row_number = true)
            WHERE {bad}
            ORDER BY file_row_number LIMIT {max_listed}""").fetchall()
        problems += [
            Finding("meter", int(r[0]), f"der_id={r[1]}", r[4], repr(r[2] if r[4] == "interval_start" else r[3]), r[5])
            for r in rows
        ]
    if problems:
        lines = "\n  ".join(str(p) for p in problems[:max_listed])
        more = f" ({n_bad:,} bad rows, first {max_listed} listed)" if n_bad > max_listed else ""
        raise SettlementInputError(f"{meter_path}: meter data is invalid{more}:\n  {lines}")


def event_targets(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE OR REPLACE TABLE targets AS
        SELECT a.der_id, a.lday, d.day_type, min(a.interval_start) AS first_ts,
               min(a.ltod) AS win_lo, max(a.ltod) AS win_hi
        FROM awards_t a JOIN day_info d USING (lday)
        GROUP BY a.der_id, a.lday, d.day_type""")


def compute_baselines(con: duckdb.DuckDBPyConnection, methods: list[str]) -> None:
    parts = [f"SELECT '{name}' AS method, * FROM ({baseline_sql(METHODS[name])})" for name in methods]
    con.execute("CREATE OR REPLACE TABLE baselines AS " + " UNION ALL ".join(parts))


def quality_findings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Data-quality findings as rows: kind, severity, der_id, day, interval, detail."""
    mins = " ".join(f"WHEN '{n}' THEN {m.pool_size_sql('t.day_type')}" for n, m in METHODS.items())
    return con.execute(f"""
        SELECT 'no_meter_data' AS kind, 'error' AS severity, der_id, NULL::DATE AS day,
               NULL::TIMESTAMPTZ AS interval_start,
               'awarded DER has no meter data in the settlement window' AS detail
        FROM (SELECT DISTINCT der_id FROM awards_t)
        WHERE der_id NOT IN (SELECT der_id FROM day_counts)
        UNION ALL
        SELECT 'duplicate_reading', CASE WHEN kwh_min <> kwh_max THEN 'error' ELSE 'info' END,
               der_id, lday, ts,
               CASE WHEN kwh_min <> kwh_max THEN printf('%d conflicting readings (%.3f..%.3f kWh); '
                    || 'interval not usable', n_readings, kwh_min, kwh_max)
                    ELSE printf('%d identical readings collapsed', n_readings) END
        FROM dupes
        UNION ALL
        SELECT 'meter_gap', 'warning', der_id, lday, NULL,
               printf('%d of %d intervals metered', usable, slots)
        FROM day_counts WHERE usable < slots
        UNION ALL
        SELECT 'dst_day', 'info', NULL, lday, NULL,
               printf('day has %d intervals (clock change); slots matched by local clock time',
                      slots)
        FROM day_info WHERE slots <> 1440 // (extract(epoch FROM interval_len()) / 60)
        UNION ALL
        SELECT 'insufficient_history',
               CASE WHEN b.n_days IS NULL THEN 'error' ELSE 'warning' END, t.der_id, t.lday, NULL,
               printf('%s: %d eligible day(s), %d wanted', m.method, coalesce(b.n_days, 0),
                      CASE m.method {mins} ELSE 0 END)
        FROM targets t
        JOIN (SELECT DISTINCT der_id, lday, method FROM awards_t) m USING (der_id, lday)
        LEFT JOIN (SELECT der_id, lday, method, max(n_days) AS n_days FROM baselines
                   GROUP BY ALL) b USING (der_id, lday, method)
        WHERE coalesce(b.n_days, 0) < CASE m.method {mins} ELSE 0 END
        UNION ALL
        SELECT 'missing_event_reading', 'error', a.der_id, a.lday, a.interval_start,
               'no usable meter reading for an awarded interval'
        FROM (SELECT DISTINCT der_id, lday, interval_start FROM awards_t) a
        LEFT JOIN event_meter m ON m.der_id = a.der_id AND m.ts = a.interval_start
        WHERE m.kwh IS NULL AND a.der_id IN (SELECT der_id FROM day_counts)
        ORDER BY kind, der_id, day, interval_start, detail""").df()


def settlement_lines(con: duckdb.DuckDBPyConnection, cfg: SettleConfig) -> pd.DataFrame:
    """One line per award: baseline, metered, delivered, allocation by priority, money.

    Delivered energy of a DER-interval (with the method of its highest-priority award) goes
    to its awards of the delivered direction in priority order (service, buyer, bid_id),
    never more than awarded. Delivery in the wrong direction adds to the shortfall of the
    awards of the other direction, pro rata to their awarded energy. The award's make-whole
    payment from clearing (paradoxically accepted integer bids) is paid in proportion to
    allocated / awarded energy. ``net = payment + make_whole - penalty`` (EUR).
    """
    rate = f"{cfg.penalty_eur_mwh}" if cfg.penalty_eur_mwh is not None else f"{cfg.penalty_factor} * abs(price_eur_mwh)"
    return (
        con.execute(f"""
        WITH ranked AS (
            SELECT a.*, row_number() OVER (PARTITION BY der_id, interval_start
                   ORDER BY service_rank, buyer_id, bid_id) AS prio
            FROM awards_t a
        ), lead_method AS (
            SELECT der_id, interval_start, method AS der_method FROM ranked WHERE prio = 1
        ), measured AS (
            SELECT r.*, l.der_method, b.base_kwh AS baseline_kwh, m.kwh AS metered_kwh,
                   (b.base_kwh - m.kwh) / 1000.0 AS delivered_up_mwh
            FROM ranked r
            JOIN lead_method l USING (der_id, interval_start)
            LEFT JOIN baselines b ON b.der_id = r.der_id AND b.lday = r.lday
                 AND b.ltod = r.ltod AND b.method = l.der_method
            LEFT JOIN event_meter m ON m.der_id = r.der_id AND m.ts = r.interval_start
        ), alloc AS (
            SELECT *,
                greatest(s * delivered_up_mwh, 0) AS available_mwh,
                greatest(-s * delivered_up_mwh, 0) AS wrong_mwh,
                coalesce(sum(awarded_mwh) OVER (PARTITION BY der_id, interval_start, s
                    ORDER BY prio ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                    AS before_mwh,
                sum(awarded_mwh) OVER (PARTITION BY der_id, interval_start, s) AS side_mwh
            FROM measured
        ), money AS (
            SELECT *,
                least(awarded_mwh, greatest(available_mwh - before_mwh, 0)) AS allocated_mwh
            FROM alloc
        )
        SELECT bid_id, der_id, aggregator_id, buyer_id, service, need_id, interval_start,
               direction, quantity_mw, price_eur_mwh, der_method AS method, baseline_kwh,
               metered_kwh, delivered_up_mwh, awarded_mwh,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL ELSE allocated_mwh END
                   AS allocated_mwh,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE awarded_mwh - allocated_mwh + wrong_mwh * awarded_mwh / side_mwh
                    END AS shortfall_mwh,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE allocated_mwh * price_eur_mwh END AS payment_eur,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE award_make_whole_eur * allocated_mwh / awarded_mwh END AS make_whole_eur,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE (awarded_mwh - allocated_mwh + wrong_mwh * awarded_mwh / side_mwh)
                         * {rate} END AS penalty_eur,
               CASE WHEN delivered_up_mwh IS NULL THEN 'unverifiable' ELSE 'settled' END
                   AS status
        FROM money
        ORDER BY interval_start, der_id, prio""")
        .df()
        .assign(net_eur=lambda d: d["payment_eur"] + d["make_whole_eur"] - d["penalty_eur"])[LINE_COLUMNS]
    )


def statements(lines: pd.DataFrame, period: str) -> pd.DataFrame:
    """Totals per aggregator and buyer for the period (unverifiable lines counted apart)."""
    settled = lines["status"] == "settled"
    g = (
        lines.assign(
            settled=settled,
            allocated=lines["allocated_mwh"].where(settled, 0.0),
            shortfall=lines["shortfall_mwh"].where(settled, 0.0),
            pay=lines["payment_eur"].where(settled, 0.0),
            whole=lines["make_whole_eur"].where(settled, 0.0),
            pen=lines["penalty_eur"].where(settled, 0.0),
        )
        .groupby(["aggregator_id", "buyer_id"], as_index=False)
        .agg(
            lines=("bid_id", "size"),
            unverifiable_lines=("settled", lambda s: int((~s).sum())),
            awarded_mwh=("awarded_mwh", "sum"),
            allocated_mwh=("allocated", "sum"),
            shortfall_mwh=("shortfall", "sum"),
            payment_eur=("pay", "sum"),
            make_whole_eur=("whole", "sum"),
            penalty_eur=("pen", "sum"),
        )
    )
    g["net_eur"] = g["payment_eur"] + g["make_whole_eur"] - g["penalty_eur"]
    g.insert(2, "period", period)
    return g.round(6)
