"""The DuckDB connection every settlement stage runs on, with the calendar macros.

Macros (all times UTC ``TIMESTAMPTZ`` in, local calendar of ``SettleConfig.timezone``
out): ``local_day(t)`` the local date, ``local_tod(t)`` the local time-of-day slot
(0-based, ``interval_minutes`` long), ``day_slots(d)`` the number of slots of local day
``d`` (92/96/100 on clock-change days at 15 minutes), ``interval_len()``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from market.errors import OutOfMemoryError, SettlementInputError
from settlement.config import SettleConfig


def sql_path(path: Path) -> str:
    """A file path as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _offset_s(t: dt.datetime, zone: zoneinfo.ZoneInfo) -> int:
    """UTC offset of ``zone`` at instant ``t``, in seconds."""
    offset = t.astimezone(zone).utcoffset()
    assert offset is not None  # an aware datetime in a ZoneInfo always has one
    return int(offset.total_seconds())


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The single value a query returns."""
    row = con.execute(sql).fetchone()
    assert row is not None  # an aggregate query always returns one row
    return row[0]


@contextlib.contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """DuckDB failing while it reads ``path`` (a truncated or corrupt Parquet file, whose
    footer may read well and a data page not) as a :class:`SettlementInputError` naming it."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise OutOfMemoryError(f"{path}: ran out of memory while reading the {what} ({exc})") from exc
    except duckdb.Error as exc:
        raise SettlementInputError(f"{path}: the {what} cannot be read as Parquet ({exc})") from exc


def parquet_columns(con: duckdb.DuckDBPyConnection, path: Path, what: str) -> dict[str, str]:
    """Column name -> DuckDB type of a Parquet file, or a named error if it cannot be read."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_path(path)})").fetchall()
    except duckdb.OutOfMemoryException as exc:
        raise OutOfMemoryError(f"{path}: ran out of memory while reading the {what} ({exc})") from exc
    except duckdb.Error as exc:
        raise SettlementInputError(f"{path}: the {what} cannot be read as Parquet ({exc})") from exc
    return {str(r[0]): str(r[1]) for r in rows}


def utc_offset_sql(tz: str, start: dt.datetime, end: dt.datetime, column: str = "t") -> str:
    """Seconds to add to a UTC instant for local clock time, as a CASE over the (at most a
    few) offset changes of ``tz`` between ``start`` and ``end`` (cheaper per row than a
    named-zone conversion, and exact)."""
    zone = zoneinfo.ZoneInfo(tz)
    t = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    end = end.astimezone(dt.UTC)
    offset = _offset_s(t, zone)
    cases: list[tuple[dt.datetime, int]] = []
    while t <= end:  # 15-minute steps: offsets change on a quarter hour in every zone
        nxt = t + dt.timedelta(minutes=15)
        o = _offset_s(nxt, zone)
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
