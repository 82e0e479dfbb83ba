"""Reading the settlement store back: statement versions, their lines and deltas.

Readers never write: the store is opened read-only (DuckDB ``read_only``, a PostgreSQL
read-only transaction), and refused (:class:`~market.errors.SettlementInputError`, exit 2)
when it does not exist, is not a flexmarket store, needs migrating (``flexmarket statements
migrate`` does that), or its URL could keep nothing (in-memory DuckDB, SQLite, a file that
is not a DuckDB database).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa

from market.errors import SettlementInputError, StoreUnavailableError
from settlement.disputes import statuses
from settlement.store import frame as _frame
from settlement.store import resolve_url
from settlement.store_tables import ACTUAL, deltas_t, disputes_t, lines_t, metadata, statements_t
from settlement.store_url import check_store_url, is_duckdb_file, store_file


@contextlib.contextmanager
def read_only(url: str) -> Iterator[sa.Connection]:
    """A read-only connection to an existing, current flexmarket store (see the module)."""
    parsed = check_store_url(url)
    shown = parsed.render_as_string(hide_password=True)
    path = store_file(url)
    if path is not None:
        if not path.exists():
            raise SettlementInputError(f"store {path} does not exist (settle creates it; check the path)")
        if not is_duckdb_file(path):
            raise SettlementInputError(f"store {path} is not a DuckDB database file")
        engine = sa.create_engine(resolve_url(url), connect_args={"read_only": True})
    else:
        engine = sa.create_engine(resolve_url(url), execution_options={"postgresql_readonly": True})
    try:
        try:
            conn = engine.connect()
        except sa.exc.OperationalError as exc:
            raise StoreUnavailableError(f"store {shown} cannot be reached: {getattr(exc, 'orig', exc)}") from exc
        with conn:
            problems = schema_problems(conn)
            if problems:
                raise SettlementInputError(
                    f"store {shown}: {problems[0]}"
                    + (
                        ""
                        if problems[0].startswith("no flexmarket")
                        else "; run: flexmarket statements migrate --db URL"
                    )
                )
            yield conn
    finally:
        engine.dispose()


def schema_problems(conn: sa.Connection) -> list[str]:
    """Why the store cannot be read as it is (empty when it is a current flexmarket store)."""
    from settlement.migrate import needs_migration

    existing = set(sa.inspect(conn).get_table_names())
    if statements_t.name not in existing:
        return ["no flexmarket store here (no statements table)"]
    missing = [t.name for t in metadata.sorted_tables if t.name not in existing]
    if missing:
        return [f"made by an older flexmarket (no table {missing[0]}): it needs migrating"]
    reason = needs_migration(conn, list(metadata.sorted_tables))
    return [f"made by an older flexmarket ({reason}): it needs migrating"] if reason else []


def list_statements(
    url: str, *, period: str | None = None, all_versions: bool = False, scenario: str | None = None
) -> pd.DataFrame:
    """Stored statements (the latest version of each scenario, aggregator, buyer and period
    unless ``all_versions``), sorted by scenario, period, aggregator, buyer and version."""
    conditions = []
    if period is not None:
        conditions.append(statements_t.c.period == period)
    if scenario is not None:
        conditions.append(sa.func.coalesce(statements_t.c.scenario, ACTUAL) == scenario)
    with read_only(url) as conn:
        df = _frame(conn, statements_t, sa.and_(sa.true(), *conditions))
        disputes = _frame(conn, disputes_t)
    df["status"] = statuses(disputes, df["statement_id"])
    key = ["scenario", "period", "aggregator_id", "buyer_id"]
    df = df.sort_values([*key, "version"]).reset_index(drop=True)
    return df if all_versions else df.groupby(key).tail(1).reset_index(drop=True)


def statement_detail(url: str, statement_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One statement version, its lines, and the deltas that made it (empty for version 1)."""
    with read_only(url) as conn:
        head = _frame(conn, statements_t, statements_t.c.statement_id == statement_id)
        if not len(head):
            raise SettlementInputError(f"no statement {statement_id!r} in the store")
        lines = _frame(conn, lines_t, lines_t.c.statement_id == statement_id)
        deltas = _frame(conn, deltas_t, deltas_t.c.statement_id == statement_id)
        disputes = _frame(conn, disputes_t, disputes_t.c.statement_id == statement_id)
    head["status"] = statuses(disputes, head["statement_id"])
    return head, lines.sort_values(["interval_start", "bid_id"]).reset_index(drop=True), deltas


def export_store(url: str) -> dict[str, pd.DataFrame]:
    """Every statement version, line and delta of the store, for a file export."""
    with read_only(url) as conn:
        tables = {t.name: _frame(conn, t) for t in (statements_t, lines_t, deltas_t, disputes_t)}
    tables["statements"]["status"] = statuses(tables["statement_disputes"], tables["statements"]["statement_id"])
    return tables


def diff_versions(url: str, old_id: str, new_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Totals (old, new, new - old) and changed lines (new - old, exact to 1e-6) between two
    versions of one statement."""
    from settlement.money import MICRO, to_micro
    from settlement.store import DELTA_COLUMNS

    with read_only(url) as conn:
        heads = _frame(conn, statements_t, statements_t.c.statement_id.in_([old_id, new_id]))
        found = set(heads["statement_id"])
        for sid in (old_id, new_id):
            if sid not in found:
                raise SettlementInputError(f"no statement {sid!r} in the store")
        old_lines = _frame(conn, lines_t, lines_t.c.statement_id == old_id)
        new_lines = _frame(conn, lines_t, lines_t.c.statement_id == new_id)
    key = ["scenario", "aggregator_id", "buyer_id", "period"]
    o, n = (heads.set_index("statement_id").loc[sid] for sid in (old_id, new_id))
    if [o[k] for k in key] != [n[k] for k in key]:
        raise SettlementInputError(f"{old_id} and {new_id} are not versions of one statement")
    money = ["awarded_mwh", "allocated_mwh", "shortfall_mwh", "payment_eur", "make_whole_eur", "penalty_eur", "net_eur"]
    totals = pd.DataFrame(
        [{"total": c, "old": float(o[c]), "new": float(n[c]), "change": float(n[c]) - float(o[c])} for c in money]
    )
    line_key = ["session_id", "bid_id", "interval_start"]
    both = new_lines[line_key + DELTA_COLUMNS].merge(
        old_lines[line_key + DELTA_COLUMNS], on=line_key, how="outer", suffixes=("", "_old")
    )
    out = both[["bid_id", "interval_start"]].copy()
    changed = pd.Series(False, index=both.index)
    for c in DELTA_COLUMNS:
        d = to_micro(both[c], c) - to_micro(both[f"{c}_old"], c)
        out[f"delta_{c}"] = d / MICRO
        changed |= d != 0
    return totals, out[changed.to_numpy()].sort_values(["interval_start", "bid_id"]).reset_index(drop=True)


def migrate_store(url: str) -> None:
    """Bring an existing store made by an earlier flexmarket up to date (additively)."""
    from settlement.store import make_engine

    parsed = check_store_url(url)
    path = store_file(url)
    if path is not None and not is_duckdb_file(path):
        raise SettlementInputError(f"store {path} does not exist or is not a DuckDB database file")
    try:
        make_engine(url).dispose()
    except sa.exc.OperationalError as exc:
        shown = parsed.render_as_string(hide_password=True)
        raise StoreUnavailableError(f"store {shown} cannot be reached: {getattr(exc, 'orig', exc)}") from exc
