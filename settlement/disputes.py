"""Disputes of statement versions, and each version's status.

A version's figures are never edited; its **status** is read from its disputes:
``issued`` (no dispute), ``disputed`` (an open dispute), ``resolved`` (every dispute
closed, by a later version of the same statement or by a decision with its reason). Each
dispute records who raised and who resolved it, why and when (``statement_disputes``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market.errors import SettlementInputError
from settlement.store import frame, make_engine
from settlement.store_tables import disputes_t, statements_t
from settlement.store_url import check_store_url


class Status(StrEnum):
    """A statement version's status."""

    ISSUED = "issued"
    DISPUTED = "disputed"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """How a dispute was closed."""

    NEW_VERSION = "new_version"  # a later version of the statement replaced the disputed one
    DECISION = "decision"  # the desk decided, with its reason, that the figures stand


def statuses(disputes: pd.DataFrame, statement_ids: pd.Series) -> pd.Series:
    """The status of each statement id, from the ``statement_disputes`` rows."""
    if not len(disputes):
        return pd.Series(Status.ISSUED.value, index=statement_ids.index)
    disputed = statement_ids.isin(disputes.loc[disputes["resolved_at"].isna(), "statement_id"])
    resolved = statement_ids.isin(disputes["statement_id"]) & ~disputed
    status = np.select([disputed, resolved], [Status.DISPUTED.value, Status.RESOLVED.value], Status.ISSUED.value)
    return pd.Series(status, index=statement_ids.index)


def _who(name: str, what: str) -> str:
    text = name.strip()
    if not text or len(text) > 200:
        raise SettlementInputError(f"{what} must be 1-200 characters")
    return text


def raise_dispute(url: str, statement_id: str, by: str, reason: str) -> dict[str, object]:
    """Record a dispute of ``statement_id`` by ``by`` for ``reason``; returns the dispute."""
    check_store_url(url)
    by, reason = _who(by, "--by"), _who(reason, "--reason")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _statement(conn, statement_id)
            now = dt.datetime.now(dt.UTC)
            dispute_id = hashlib.sha256(f"{statement_id}|{by}|{now.isoformat()}".encode()).hexdigest()[:32]
            row = {"dispute_id": dispute_id, "statement_id": statement_id, "raised_by": by, "raised_at": now}
            row["reason"] = reason
            conn.execute(disputes_t.insert(), [row])
    finally:
        engine.dispose()
    return row


def resolve_dispute(
    url: str, statement_id: str, by: str, reason: str, new_version: str | None = None
) -> list[dict[str, object]]:
    """Close every open dispute of ``statement_id``: by ``new_version`` (a later version of
    the same statement, which must exist) or, without it, by a decision for ``reason``."""
    check_store_url(url)
    by, reason = _who(by, "--by"), _who(reason, "--reason")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            disputed = _statement(conn, statement_id)
            if new_version is not None:
                later = _statement(conn, new_version)
                same = ("scenario", "aggregator_id", "buyer_id", "period")
                newer = int(str(later["version"])) > int(str(disputed["version"]))
                if any(later[k] != disputed[k] for k in same) or not newer:
                    raise SettlementInputError(f"{new_version} is not a later version of {statement_id}")
            open_rows = frame(
                conn, disputes_t, sa.and_(disputes_t.c.statement_id == statement_id, disputes_t.c.resolved_at.is_(None))
            )
            if not len(open_rows):
                raise SettlementInputError(f"{statement_id} has no open dispute")
            values = {
                "resolved_by": by,
                "resolved_at": dt.datetime.now(dt.UTC),
                "resolution": (Resolution.NEW_VERSION if new_version else Resolution.DECISION).value,
                "resolution_reason": reason,
                "resolved_by_statement_id": new_version,
            }
            conn.execute(
                disputes_t.update()
                .where(disputes_t.c.dispute_id.in_(open_rows["dispute_id"].tolist()))
                .values(**values)
            )
    finally:
        engine.dispose()
    return [{**r, **values} for r in open_rows.to_dict("records")]


def _statement(conn: sa.Connection, statement_id: str) -> dict[str, object]:
    head = frame(conn, statements_t, statements_t.c.statement_id == statement_id)
    if not len(head):
        raise SettlementInputError(f"no statement {statement_id!r} in the store")
    row: dict[str, object] = head.iloc[0].to_dict()
    return row
