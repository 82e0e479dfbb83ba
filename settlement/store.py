"""The persistent settlement store (SQLAlchemy): a DuckDB file by default, PostgreSQL by URL.

Tables: ``settlement_runs``, ``statements`` (one row per aggregator, buyer, period and
version), ``statement_lines`` (the lines of each version), ``statement_deltas`` (line
changes of version n+1 against version n) and ``findings``.

Rules: a version is never edited. A run whose lines for a statement equal the latest
version's (same content hash) changes nothing. A run is one transaction; two runs for the
same period serialise on a lock (PostgreSQL advisory lock; DuckDB's single-writer file
lock), and the unique key (aggregator, buyer, period, version) makes a doubled version
impossible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from market.errors import StoreConflictError, StoreUnavailableError
from settlement.store_tables import LINE_COLS, deltas_t, findings_t, lines_t, metadata, runs, statements_t

SCHEMA_LOCK = 0x464D5354  # advisory lock key serialising schema creation on PostgreSQL


def resolve_url(url: str) -> str:
    """A plain ``postgresql://`` URL means the psycopg 3 driver (installed with flexmarket)
    unless psycopg2 is installed; everything else is passed through."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername == "postgresql":
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def make_engine(url: str) -> sa.Engine:
    """An engine with the store's tables created or brought up to date (concurrent creators
    serialise)."""
    try:
        engine = sa.create_engine(resolve_url(url))
    except ImportError as exc:  # the dialect's driver is not installed
        raise StoreUnavailableError(f"no database driver for this store URL ({exc})") from exc
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})
        existing = set(sa.inspect(conn).get_table_names())
        metadata.create_all(conn)
        add_missing_columns(conn, [t for t in metadata.sorted_tables if t.name in existing])
    return engine


def add_missing_columns(conn: sa.Connection, tables: list[sa.Table]) -> None:
    """Additive migration of a store made by an earlier version: columns that version did
    not have are added (nullable; old rows keep NULL). Nothing is dropped or changed."""
    for table in tables:  # column names from an empty select (the DuckDB dialect cannot reflect)
        have = set(conn.execute(sa.text(f"SELECT * FROM {table.name} LIMIT 0")).keys())
        for col in table.columns:
            if col.name not in have:
                conn.execute(
                    sa.text(f"ALTER TABLE {table.name} ADD COLUMN {col.name} {col.type.compile(conn.dialect)}")
                )


STATEMENT_KEY = ["aggregator_id", "buyer_id"]
OPTIONAL_HASH_COLUMNS = {"make_whole_eur"}


def content_hashes(lines: pd.DataFrame) -> dict[tuple[str, str], str]:
    """SHA-256 of each statement's lines, independent of row order and library versions.

    Per (aggregator, buyer), lines ordered by interval and bid; each line column in turn:
    numbers rounded to 1e-6 as little-endian float64 bytes, timestamps as UTC nanoseconds,
    text joined with a unit separator (``\\x00`` for missing), then a record separator.
    ``make_whole_eur`` (added later) is left out of a statement where it is zero or missing on
    every line, so statements without make-whole keep the hash they had before it existed.
    The lines are ordered (one ``lexsort`` on integer codes) and converted once; each
    statement hashes slices of them.
    """
    cols = [n for n, _ in LINE_COLS]
    agg = pd.factorize(lines["aggregator_id"], sort=True)[0]
    buyer = pd.factorize(lines["buyer_id"], sort=True)[0]
    when = pd.to_datetime(lines["interval_start"], utc=True).astype("int64").to_numpy()
    order = np.lexsort((pd.factorize(lines["bid_id"], sort=True)[0], when, buyer, agg))  # stable
    encoded: list[np.ndarray | list[str]] = []
    for c in cols:
        v = lines[c]
        if pd.api.types.is_numeric_dtype(v):
            encoded.append(np.round(v.to_numpy(dtype="float64", na_value=np.nan)[order], 6).astype("<f8"))
        elif pd.api.types.is_datetime64_any_dtype(v):
            encoded.append(pd.to_datetime(v, utc=True).astype("int64").to_numpy()[order].astype("<i8"))
        else:
            text = v.to_numpy(dtype=object)[order]
            missing = pd.isna(text)
            text = text.astype(str).astype(object)  # (numpy's fixed-width text drops "\x00")
            text[missing] = "\x00"
            encoded.append(text.tolist())
    group = agg[order].astype(np.int64) * (int(buyer.max(initial=0)) + 1) + buyer[order]
    bounds = np.flatnonzero(np.diff(group)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(group)]
    agg_ids, buyer_ids = lines["aggregator_id"].to_numpy()[order], lines["buyer_id"].to_numpy()[order]
    out: dict[tuple[str, str], str] = {}
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        if lo == hi:
            continue
        h = hashlib.sha256()
        for c, e in zip(cols, encoded, strict=True):
            if c in OPTIONAL_HASH_COLUMNS and isinstance(e, np.ndarray) and not np.nan_to_num(e[lo:hi]).any():
                continue
            h.update(e[lo:hi].tobytes() if isinstance(e, np.ndarray) else "\x1f".join(e[lo:hi]).encode())
            h.update(b"\x1e")
        out[(agg_ids[lo], buyer_ids[lo])] = h.hexdigest()
    return out


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = df.astype(object).where(df.notna(), None).to_dict("records")
    for r in out:
        for k, v in r.items():
            if isinstance(v, pd.Timestamp):
                r[k] = v.to_pydatetime()
            elif isinstance(v, np.generic):
                r[k] = v.item()
    return out


def _bulk_insert(conn: sa.Connection, table: sa.Table, df: pd.DataFrame) -> None:
    """Insert a frame inside the current transaction without a round trip per row: DuckDB
    reads it as a relation, PostgreSQL (psycopg 3) takes it through ``COPY ... FROM STDIN``;
    other databases get one executemany."""
    cols = [c.name for c in table.columns]
    df = df[cols]
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "duckdb":
        raw.register("_fm_bulk", df)
        try:
            raw.execute(f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _fm_bulk")
        finally:
            raw.unregister("_fm_bulk")
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        # CSV written by pandas in C: floats in shortest round-trip form, timestamps with
        # their UTC offset, missing values as unquoted empty fields (NULL in CSV COPY)
        text = df.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f%z")
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(text)
        return
    conn.execute(table.insert(), _records(df))


def _lock(conn: sa.Connection, period: str) -> None:
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(period.encode())
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def latest_versions(conn: sa.Connection, period: str) -> pd.DataFrame:
    q = sa.select(statements_t).where(statements_t.c.period == period)
    df = pd.DataFrame(conn.execute(q).mappings().all())
    if not len(df):
        return df
    return df.sort_values("version").groupby(["aggregator_id", "buyer_id"]).tail(1)


def save_run(
    engine: sa.Engine,
    run_id: str,
    period: str,
    inputs_sha: str,
    lines: pd.DataFrame,
    statements: pd.DataFrame,
    findings: pd.DataFrame,
    manifest: dict[str, Any],
    fail_hook: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Store one run in one transaction; returns the statements written (new versions only)."""
    try:
        with engine.begin() as conn:
            _lock(conn, period)
            written = _save(
                conn,
                run_id,
                period,
                inputs_sha,
                lines,
                statements,
                findings,
                manifest,
                fail_hook or (lambda stage: None),
            )
    except OperationalError as exc:
        if "could not set lock" in str(exc).lower():
            raise StoreConflictError(f"another settlement run holds the store: {exc}") from exc
        raise
    return written


def _save(
    conn: sa.Connection,
    run_id: str,
    period: str,
    inputs_sha: str,
    lines: pd.DataFrame,
    statements: pd.DataFrame,
    findings: pd.DataFrame,
    manifest: dict[str, Any],
    fail_hook: Callable[[str], None],
) -> pd.DataFrame:
    same = conn.execute(sa.select(runs.c.run_id).where(runs.c.inputs_sha256 == inputs_sha).limit(1)).first()
    if same is not None:  # the same inputs and config were settled before: nothing new, nothing written
        return pd.DataFrame(
            columns=[*statements.columns, "statement_id", "version", "run_id", "content_sha256", "findings"]
        )
    latest = latest_versions(conn, period)
    prev = {(r["aggregator_id"], r["buyer_id"]): r for r in latest.to_dict("records")} if len(latest) else {}
    new_rows, all_lines, all_deltas = [], [], []
    run_wide = int(findings["der_id"].isna().sum()) if len(findings) else 0
    digests = content_hashes(lines)
    rows_of = lines.groupby(STATEMENT_KEY, sort=False).indices
    for st in statements.to_dict("records"):
        key = (st["aggregator_id"], st["buyer_id"])
        mine = lines.iloc[rows_of[key]]
        digest = digests[key]
        old = prev.get(key)
        if old is not None and old["content_sha256"] == digest:
            continue
        version = 1 if old is None else int(old["version"]) + 1
        sid = f"{key[0]}|{key[1]}|{period}|v{version}"
        new_rows.append(
            {
                **{
                    k: st[k]
                    for k in (
                        "aggregator_id",
                        "buyer_id",
                        "period",
                        "lines",
                        "unverifiable_lines",
                        "awarded_mwh",
                        "allocated_mwh",
                        "shortfall_mwh",
                        "payment_eur",
                        "make_whole_eur",
                        "penalty_eur",
                        "net_eur",
                    )
                },
                "statement_id": sid,
                "version": version,
                "run_id": run_id,
                "content_sha256": digest,
                "findings": run_wide + (int(findings["der_id"].isin(mine["der_id"]).sum()) if len(findings) else 0),
            }
        )
        all_lines.append(mine[[n for n, _ in LINE_COLS]].assign(statement_id=sid))
        if old is not None:
            all_deltas.append(_deltas(conn, old["statement_id"], sid, mine))
    conn.execute(
        runs.insert(),
        [
            {
                "run_id": run_id,
                "period": period,
                "inputs_sha256": inputs_sha,
                "created_at": dt.datetime.now(dt.UTC),
                "new_versions": len(new_rows),
                "manifest": json.dumps(manifest, sort_keys=True, default=str),
            }
        ],
    )
    fail_hook("run")
    if new_rows:
        conn.execute(statements_t.insert(), new_rows)
        fail_hook("statements")
        _bulk_insert(conn, lines_t, pd.concat(all_lines, ignore_index=True))
        fail_hook("lines")
        if all_deltas:
            d = pd.concat(all_deltas, ignore_index=True)
            if len(d):
                conn.execute(deltas_t.insert(), _records(d))
    if len(findings):
        _bulk_insert(conn, findings_t, findings.assign(run_id=run_id))
    fail_hook("findings")
    return pd.DataFrame(new_rows)


def _deltas(conn: sa.Connection, old_id: str, new_id: str, new: pd.DataFrame) -> pd.DataFrame:
    old = pd.DataFrame(conn.execute(sa.select(lines_t).where(lines_t.c.statement_id == old_id)).mappings().all())
    cols = ["allocated_mwh", "shortfall_mwh", "payment_eur", "make_whole_eur", "penalty_eur", "net_eur"]
    key = ["bid_id", "interval_start"]
    new = new.copy()
    new["interval_start"] = pd.to_datetime(new["interval_start"], utc=True)
    if len(old):
        old["interval_start"] = pd.to_datetime(old["interval_start"], utc=True)
    else:
        old = pd.DataFrame(columns=key + cols)
    both = new[key + cols].merge(old[key + cols], on=key, how="outer", suffixes=("", "_old"), indicator=True)
    out = pd.DataFrame(
        {
            "statement_id": new_id,
            "previous_statement_id": old_id,
            "bid_id": both["bid_id"],
            "interval_start": both["interval_start"],
        }
    )
    for c in cols:
        out[f"delta_{c}"] = both[c].astype(float).fillna(0.0) - both[f"{c}_old"].astype(float).fillna(0.0)
    changed = (out[[f"delta_{c}" for c in cols]].abs() > 1e-9).any(axis=1)
    return out[changed].reset_index(drop=True)


def read_table(engine: sa.Engine, table: sa.Table) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.select(table)).mappings().all())
