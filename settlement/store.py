"""The persistent settlement store (SQLAlchemy): a DuckDB file by default, PostgreSQL by URL.

Tables: ``settlement_runs``, ``statements`` (one row per scenario, aggregator, buyer,
period and version), ``statement_lines`` (the lines of each version), ``statement_deltas``
(line changes of version n+1 against version n) and ``findings``.

Rules: a version is never edited. A statement covers every market session settled into
its scenario for its period: a run replaces its own session's lines and keeps the others'.
Versions follow the **latest** content: a run whose resulting lines for a statement equal
the latest version's (same content hash) changes nothing; any other result is a new version,
even one equal to an older version (inputs A, B, then A again give v1, v2 and v3 = v1's
figures). A run whose inputs equal those of the last run of its scenario and period is not
recorded again. A run is one transaction; two runs for the same period serialise on a lock
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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from market.errors import StoreConflictError, StoreUnavailableError
from settlement.bulk import bulk_insert as _bulk_insert
from settlement.content_hash import content_hashes
from settlement.migrate import add_missing_columns, migrate_to_exact_amounts
from settlement.money import AMOUNT_COLUMNS, MICRO, as_decimal, to_micro
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


def statement_id(scenario: str, aggregator: str, buyer: str, period: str, version: int) -> str:
    """``st-<32 hex>-v<version>``: the hex is SHA-256 of the JSON list [scenario, aggregator,
    buyer, period], so ids cannot collide whatever characters or lengths those hold."""
    digest = hashlib.sha256(json.dumps([scenario, aggregator, buyer, period]).encode()).hexdigest()[:32]
    return f"st-{digest}-v{version}"


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


@dataclass(frozen=True)
class Saved:
    """What one settlement run did to the store.

    ``new``: the versions it added (``new_versions``); ``current``: the latest version, after
    the run, of every statement the run's lines belong to (what the store shows for them);
    ``deltas``: the changed lines of every new version against the version before it;
    ``previous``: per new version that replaced one, the replaced version's id, version and
    net EUR (``previous_statement_id``, ``previous_version``, ``previous_net_eur``);
    ``recorded``: False when the run repeated the last run's inputs and nothing was written."""

    new: pd.DataFrame
    current: pd.DataFrame
    deltas: pd.DataFrame
    previous: pd.DataFrame
    recorded: bool


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
    before_commit: Callable[[Saved], None] | None = None,
    always_record: bool = False,
) -> Saved:
    """Store one run (``key`` = scenario, period) in one transaction and return what it did.
    ``statements`` are this run's own totals (for the caller); what is stored covers every
    session of the scenario and period. ``before_commit(saved)`` runs inside the transaction
    (the caller writes its output files there): if it raises, nothing is stored.
    ``always_record``: record the run even when it repeats the last run's inputs (a run of a
    type the caller chose: the calendar must see that its recalculation ran)."""
    try:
        with engine.begin() as conn:
            _lock(conn, key[1])
            hook = fail_hook or (lambda s: None)
            saved = _save(conn, run_id, key, inputs_sha, lines, findings, manifest, hook, always_record)
            if before_commit is not None:
                before_commit(saved)
    except OperationalError as exc:
        if "could not set lock" in str(exc).lower():
            raise StoreConflictError(f"another settlement run holds the store: {exc}") from exc
        raise
    return saved


def last_run_inputs(conn: sa.Connection, scenario: str, period: str) -> str | None:
    """The inputs hash of the newest run recorded for ``scenario`` and ``period``."""
    scen = sa.func.coalesce(runs.c.scenario, ACTUAL)
    row = conn.execute(
        sa.select(runs.c.inputs_sha256)
        .where(runs.c.period == period, scen == scenario)
        .order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row[0])


def has_run(conn: sa.Connection, scenario: str, period: str, run_type: str | None = None) -> bool:
    """Whether a run (of ``run_type``, if given) is recorded for ``scenario`` and ``period``."""
    scen = sa.func.coalesce(runs.c.scenario, ACTUAL)
    query = sa.select(runs.c.run_id).where(runs.c.period == period, scen == scenario)
    if run_type is not None:
        query = query.where(runs.c.run_type == run_type)
    return conn.execute(query.limit(1)).first() is not None


def session_runs(conn: sa.Connection, scenario: str, session: str) -> dict[str, int]:
    """How many runs of each type are recorded for a market session in ``scenario``."""
    scen = sa.func.coalesce(runs.c.scenario, ACTUAL)
    rows = conn.execute(
        sa.select(runs.c.run_type, sa.func.count())
        .where(runs.c.session_id == session, scen == scenario)
        .group_by(runs.c.run_type)
    )
    return {str(kind): int(n) for kind, n in rows}


def current_versions(conn: sa.Connection, scenario: str, period: str, keys: pd.DataFrame) -> pd.DataFrame:
    """The latest version of each statement of ``keys`` (aggregator, buyer), sorted."""
    latest = latest_versions(conn, scenario, period)
    if not len(latest):
        return latest
    mine = latest.merge(keys[STATEMENT_KEY].drop_duplicates(), on=STATEMENT_KEY)
    return mine.sort_values(STATEMENT_KEY).reset_index(drop=True)


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
    always_record: bool = False,
) -> Saved:
    scenario, period = key
    if not always_record and last_run_inputs(conn, scenario, period) == inputs_sha:
        # the last run again: nothing new, nothing written
        current = current_versions(conn, scenario, period, lines)
        return Saved(_empty_new(), current, pd.DataFrame(columns=DELTA_TABLE), _empty_previous(), recorded=False)
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
    new_rows, all_lines, all_deltas, previous = [], [], [], []
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
            previous.append(
                {
                    "statement_id": sid,
                    "previous_statement_id": old["statement_id"],
                    "previous_version": int(old["version"]),
                    "previous_net_eur": float(old["net_eur"]),
                }
            )
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
                "run_type": manifest.get("run_type"),
                "session_id": manifest.get("session_id"),
                "reason": manifest.get("reason"),
            }
        ],
    )
    fail_hook("run")
    deltas = [d for d in all_deltas if len(d)]
    delta_table = pd.concat(deltas, ignore_index=True) if deltas else pd.DataFrame(columns=DELTA_TABLE)
    if new_rows:
        conn.execute(statements_t.insert(), new_rows)
        fail_hook("statements")
        _bulk_insert(conn, lines_t, pd.concat(all_lines, ignore_index=True))
        fail_hook("lines")
        if deltas:
            _bulk_insert(conn, deltas_t, delta_table)
    if len(findings):
        _bulk_insert(conn, findings_t, findings.assign(run_id=run_id))
    fail_hook("findings")
    out = pd.DataFrame(new_rows) if new_rows else _empty_new()
    for c in out.columns:
        if c.endswith(("_mwh", "_eur")):
            out[c] = out[c].astype("float64")
    keys = pd.concat([lines[STATEMENT_KEY], totals[STATEMENT_KEY]], ignore_index=True)
    current = current_versions(conn, scenario, period, keys)
    prev = pd.DataFrame(previous) if previous else _empty_previous()
    return Saved(out, current, delta_table.reset_index(drop=True), prev, recorded=True)


NEW_COLUMNS = [*STATEMENT_COLUMNS, "statement_id", "scenario", "sessions", "version", "run_id", "content_sha256"]
NEW_COLUMNS += ["findings"]
PREVIOUS_COLUMNS = ["statement_id", "previous_statement_id", "previous_version", "previous_net_eur"]


def _empty_new() -> pd.DataFrame:
    return pd.DataFrame(columns=NEW_COLUMNS)


def _empty_previous() -> pd.DataFrame:
    return pd.DataFrame(columns=PREVIOUS_COLUMNS)


DELTA_COLUMNS = ["allocated_mwh", "shortfall_mwh", "payment_eur", "make_whole_eur", "penalty_eur", "net_eur"]
DELTA_TABLE = [
    "statement_id",
    "previous_statement_id",
    "bid_id",
    "interval_start",
    *(f"delta_{c}" for c in DELTA_COLUMNS),
]


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
