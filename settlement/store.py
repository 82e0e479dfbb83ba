"""The persistent settlement store (SQLAlchemy): a DuckDB file by default, PostgreSQL by URL.

Tables: ``settlement_runs``, ``statements`` (one row per scenario, aggregator, buyer,
period and version), ``statement_lines`` (the lines of each version), ``statement_deltas``
(line changes of version n+1 against version n) and ``findings``.

Rules: a version is never edited. A statement covers every market session settled into
its scenario for its period: a run replaces its own session's lines and keeps the others'.
A run whose resulting lines for a statement equal the latest version's (same content hash)
changes nothing. A run is one transaction; two runs for the same period serialise on a lock
(PostgreSQL advisory lock; DuckDB's single-writer file lock), and the statement id (a hash
of scenario, aggregator, buyer and period, plus the version) is the primary key, so a
doubled version is impossible and no two statements share an id whatever their ids hold.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from market.errors import StoreConflictError, StoreUnavailableError
from settlement.migrate import add_missing_columns, migrate_to_exact_amounts
from settlement.money import AMOUNT_COLUMNS, MICRO, as_decimal, decimal_text, to_micro
from settlement.statements import STATEMENT_COLUMNS
from settlement.statements import statements as statement_totals
from settlement.store_tables import (
    ACTUAL,
    LINE_COLS,
    deltas_t,
    findings_t,
    lines_t,
    metadata,
    runs,
    statements_t,
)

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
        old = [t for t in metadata.sorted_tables if t.name in existing]
        add_missing_columns(conn, old)
        migrate_to_exact_amounts(conn, old)
    return engine


STATEMENT_KEY = ["aggregator_id", "buyer_id"]
OPTIONAL_HASH_COLUMNS = {"make_whole_eur", "session_id"}


def statement_id(scenario: str, aggregator: str, buyer: str, period: str, version: int) -> str:
    """``st-<32 hex>-v<version>``: the hex is SHA-256 of the JSON list [scenario, aggregator,
    buyer, period], so ids cannot collide whatever characters or lengths those hold."""
    digest = hashlib.sha256(json.dumps([scenario, aggregator, buyer, period]).encode()).hexdigest()[:32]
    return f"st-{digest}-v{version}"


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
        v = lines[c] if c in lines else pd.Series(None, index=lines.index, dtype=object)  # a later column
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
            if c in OPTIONAL_HASH_COLUMNS and _absent(e[lo:hi]):
                continue
            h.update(e[lo:hi].tobytes() if isinstance(e, np.ndarray) else "\x1f".join(e[lo:hi]).encode())
            h.update(b"\x1e")
        out[(agg_ids[lo], buyer_ids[lo])] = h.hexdigest()
    return out


def _absent(values: np.ndarray | list[str]) -> bool:
    """Zero or missing on every line (numbers), or missing on every line (text)."""
    if isinstance(values, np.ndarray):
        return not np.nan_to_num(values).any()
    return all(v == "\x00" for v in values)


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
    amounts = [c.name for c in table.columns if isinstance(c.type, sa.Numeric)]
    df = df[cols].assign(**{c: decimal_text(df[c].astype("float64")) for c in amounts})  # exact text
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "duckdb":
        raw.register("_fm_bulk", df)
        select = ", ".join(f"CAST({c} AS DECIMAL(18, 6))" if c in amounts else c for c in cols)
        try:
            raw.execute(f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {select} FROM _fm_bulk")
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
    records = _records(df)
    for r in records:
        for c in amounts:
            r[c] = None if r[c] is None else Decimal(r[c])
    conn.execute(table.insert(), records)


def _lock(conn: sa.Connection, period: str) -> None:
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(period.encode())
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def frame(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool] | None = None) -> pd.DataFrame:
    """Rows of ``table`` (where ``where`` holds) with every column, even when there are
    none; stored decimals as float64 (every 6-decimal amount of the store round-trips)."""
    query = sa.select(table) if where is None else sa.select(table).where(where)
    df = pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in table.columns])
    for c in table.columns:
        if isinstance(c.type, sa.Numeric):
            df[c.name] = df[c.name].astype("float64")
    return df


def latest_versions(conn: sa.Connection, scenario: str, period: str) -> pd.DataFrame:
    scen = sa.func.coalesce(statements_t.c.scenario, ACTUAL)
    df = frame(conn, statements_t, sa.and_(statements_t.c.period == period, scen == scenario))
    if not len(df):
        return df
    return df.sort_values("version").groupby(["aggregator_id", "buyer_id"]).tail(1)


def stored_lines(conn: sa.Connection, statement_ids: list[str]) -> pd.DataFrame:
    """The lines of the given statement versions."""
    df = frame(conn, lines_t, lines_t.c.statement_id.in_(statement_ids))
    df["interval_start"] = pd.to_datetime(df["interval_start"], utc=True)
    return df


def save_run(
    engine: sa.Engine,
    run_id: str,
    key: tuple[str, str],
    inputs_sha: str,
    lines: pd.DataFrame,
    statements: pd.DataFrame,
    findings: pd.DataFrame,
    manifest: dict[str, Any],
    fail_hook: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Store one run (``key`` = scenario, period) in one transaction; returns the statements
    written (new versions only). ``statements`` are this run's own totals (for the caller);
    what is stored covers every session of the scenario and period."""
    try:
        with engine.begin() as conn:
            _lock(conn, key[1])
            written = _save(conn, run_id, key, inputs_sha, lines, findings, manifest, fail_hook or (lambda s: None))
    except OperationalError as exc:
        if "could not set lock" in str(exc).lower():
            raise StoreConflictError(f"another settlement run holds the store: {exc}") from exc
        raise
    return written


LINE_NAMES = [n for n, _ in LINE_COLS]


def combined_lines(conn: sa.Connection, latest: pd.DataFrame, lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The lines each statement holds after this run: the latest versions' lines of other
    sessions (a line stored before sessions existed counts as another session) and this
    run's lines. Also returns the latest versions' lines (for the deltas)."""
    cols = [*LINE_NAMES, *STATEMENT_KEY]
    if not len(latest):
        return lines[cols].reset_index(drop=True), pd.DataFrame(columns=[*cols, "statement_id"])
    old = stored_lines(conn, latest["statement_id"].tolist())
    old = old.merge(latest[["statement_id", *STATEMENT_KEY]], on="statement_id")
    sessions = set(lines["session_id"].dropna())
    other = old[~old["session_id"].isin(sessions)]
    if not len(other):
        return lines[cols].reset_index(drop=True), old
    both = pd.concat([other[cols], lines[cols]], ignore_index=True)
    for c in AMOUNT_COLUMNS:  # one dtype whichever side a line came from (the content hash reads it)
        if c in both:
            both[c] = both[c].astype("float64")
    both["interval_start"] = pd.to_datetime(both["interval_start"], utc=True).astype(lines["interval_start"].dtype)
    return both, old


def _save(
    conn: sa.Connection,
    run_id: str,
    key: tuple[str, str],
    inputs_sha: str,
    lines: pd.DataFrame,
    findings: pd.DataFrame,
    manifest: dict[str, Any],
    fail_hook: Callable[[str], None],
) -> pd.DataFrame:
    scenario, period = key
    same = conn.execute(sa.select(runs.c.run_id).where(runs.c.inputs_sha256 == inputs_sha).limit(1)).first()
    if same is not None:  # the same inputs and config were settled before: nothing new, nothing written
        return pd.DataFrame(columns=[*STATEMENT_COLUMNS, "statement_id", "version", "run_id", "content_sha256"])
    latest = latest_versions(conn, scenario, period)
    prev = {(r["aggregator_id"], r["buyer_id"]): r for r in latest.to_dict("records")} if len(latest) else {}
    combined, old_lines = combined_lines(conn, latest, lines)
    totals = statement_totals(combined, period) if len(combined) else pd.DataFrame(columns=STATEMENT_COLUMNS)
    gone = [k for k in prev if not ((totals["aggregator_id"] == k[0]) & (totals["buyer_id"] == k[1])).any()]
    if gone:  # a statement whose every line this run's session took back: a version with none
        empty = pd.DataFrame(
            [
                {**dict.fromkeys(STATEMENT_COLUMNS, 0), "aggregator_id": a, "buyer_id": b, "period": period}
                for a, b in gone
            ]
        )
        totals = pd.concat([totals, empty], ignore_index=True)
    new_rows, all_lines, all_deltas = [], [], []
    run_wide = int(findings["der_id"].isna().sum()) if len(findings) else 0
    digests = content_hashes(combined)
    rows_of = combined.groupby(STATEMENT_KEY, sort=False).indices
    old_of = old_lines.groupby("statement_id", sort=False).indices if len(old_lines) else {}
    for st in totals.to_dict("records"):
        k = (st["aggregator_id"], st["buyer_id"])
        mine = combined.iloc[rows_of[k]] if k in rows_of else combined.iloc[:0]
        digest = digests.get(k, hashlib.sha256(b"").hexdigest())
        old = prev.get(k)
        if old is not None and old["content_sha256"] == digest:
            continue
        version = 1 if old is None else int(old["version"]) + 1
        sid = statement_id(scenario, k[0], k[1], period, version)
        new_rows.append(
            {
                **{c: as_decimal(st[c]) if c.endswith(("_mwh", "_eur")) else st[c] for c in STATEMENT_COLUMNS},
                "statement_id": sid,
                "scenario": scenario,
                "sessions": int(mine["session_id"].fillna("").nunique()),
                "version": version,
                "run_id": run_id,
                "content_sha256": digest,
                "findings": run_wide + (int(findings["der_id"].isin(mine["der_id"]).sum()) if len(findings) else 0),
            }
        )
        all_lines.append(mine[LINE_NAMES].assign(statement_id=sid))
        if old is not None:
            before = old_lines.iloc[old_of.get(old["statement_id"], [])]
            all_deltas.append(_deltas(old["statement_id"], sid, mine, before))
    conn.execute(
        runs.insert(),
        [
            {
                "run_id": run_id,
                "period": period,
                "scenario": scenario,
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
        deltas = [d for d in all_deltas if len(d)]
        if deltas:
            _bulk_insert(conn, deltas_t, pd.concat(deltas, ignore_index=True))
    if len(findings):
        _bulk_insert(conn, findings_t, findings.assign(run_id=run_id))
    fail_hook("findings")
    out = pd.DataFrame(new_rows)
    for c in out.columns:
        if c.endswith(("_mwh", "_eur")):
            out[c] = out[c].astype("float64")
    return out


DELTA_COLUMNS = ["allocated_mwh", "shortfall_mwh", "payment_eur", "make_whole_eur", "penalty_eur", "net_eur"]


def _deltas(old_id: str, new_id: str, new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Per line (session, bid, interval) that changed: new minus old, exactly (micro-units)."""
    key = ["session_id", "bid_id", "interval_start"]
    new = new[key + DELTA_COLUMNS].assign(interval_start=pd.to_datetime(new["interval_start"], utc=True))
    old = old[key + DELTA_COLUMNS] if len(old) else pd.DataFrame(columns=key + DELTA_COLUMNS)
    both = new.merge(old, on=key, how="outer", suffixes=("", "_old"))
    out = pd.DataFrame(
        {
            "statement_id": new_id,
            "previous_statement_id": old_id,
            "bid_id": both["bid_id"],
            "interval_start": both["interval_start"],
        }
    )
    changed = np.zeros(len(both), bool)
    for c in DELTA_COLUMNS:
        d = to_micro(both[c], c) - to_micro(both[f"{c}_old"], c)
        out[f"delta_{c}"] = d / MICRO
        changed |= d != 0
    return out[changed].reset_index(drop=True)


def read_table(engine: sa.Engine, table: sa.Table) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.select(table)).mappings().all())
