"""Reading the settlement store back: statement versions, their lines and deltas."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from market.errors import SettlementInputError
from settlement.store import frame as _frame
from settlement.store import make_engine
from settlement.store_tables import ACTUAL, deltas_t, lines_t, statements_t


def list_statements(
    url: str, *, period: str | None = None, all_versions: bool = False, scenario: str | None = None
) -> pd.DataFrame:
    """Stored statements (the latest version of each scenario, aggregator, buyer and period
    unless ``all_versions``), sorted by scenario, period, aggregator, buyer and version."""
    engine = make_engine(url)
    conditions = []
    if period is not None:
        conditions.append(statements_t.c.period == period)
    if scenario is not None:
        conditions.append(sa.func.coalesce(statements_t.c.scenario, ACTUAL) == scenario)
    try:
        with engine.connect() as conn:
            df = _frame(conn, statements_t, sa.and_(sa.true(), *conditions))
    finally:
        engine.dispose()
    key = ["scenario", "period", "aggregator_id", "buyer_id"]
    df = df.sort_values([*key, "version"]).reset_index(drop=True)
    return df if all_versions else df.groupby(key).tail(1).reset_index(drop=True)


def statement_detail(url: str, statement_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One statement version, its lines, and the deltas that made it (empty for version 1)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            head = _frame(conn, statements_t, statements_t.c.statement_id == statement_id)
            if not len(head):
                raise SettlementInputError(f"no statement {statement_id!r} in the store")
            lines = _frame(conn, lines_t, lines_t.c.statement_id == statement_id)
            deltas = _frame(conn, deltas_t, deltas_t.c.statement_id == statement_id)
    finally:
        engine.dispose()
    return head, lines.sort_values(["interval_start", "bid_id"]).reset_index(drop=True), deltas


def export_store(url: str) -> dict[str, pd.DataFrame]:
    """Every statement version, line and delta of the store, for a file export."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: _frame(conn, t) for t in (statements_t, lines_t, deltas_t)}
    finally:
        engine.dispose()
