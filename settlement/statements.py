"""Statements: totals per aggregator and buyer for the period, from the lines."""

from __future__ import annotations

import pandas as pd


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
