"""Statements: totals per aggregator and buyer for the period, from the lines, exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from settlement.money import MICRO, to_micro

TOTALS = {  # statement column -> line column (settled lines only, except awarded)
    "awarded_mwh": "awarded_mwh",
    "allocated_mwh": "allocated_mwh",
    "shortfall_mwh": "shortfall_mwh",
    "payment_eur": "payment_eur",
    "make_whole_eur": "make_whole_eur",
    "penalty_eur": "penalty_eur",
}


STATEMENT_COLUMNS = ["aggregator_id", "buyer_id", "period", "lines", "unverifiable_lines", *TOTALS, "net_eur"]
# the output table ``statements`` of a settle run: the store's latest version of each statement
OUTPUT_STATEMENT_COLUMNS = [*STATEMENT_COLUMNS, "statement_id", "version"]


def statements(lines: pd.DataFrame, period: str) -> pd.DataFrame:
    """Totals per aggregator and buyer for the period (unverifiable lines counted apart):
    integer sums of the lines' micro-units, so a statement is the exact sum of its lines."""
    settled = (lines["status"] == "settled").to_numpy()
    parts = {"lines": np.ones(len(lines), np.int64), "unverifiable_lines": (~settled).astype(np.int64)}
    for total, col in TOTALS.items():
        m = to_micro(lines[col], col, lines)
        parts[total] = m if total == "awarded_mwh" else np.where(settled, m, 0)
    g = (
        pd.DataFrame(parts)
        .assign(aggregator_id=lines["aggregator_id"].to_numpy(), buyer_id=lines["buyer_id"].to_numpy())
        .groupby(["aggregator_id", "buyer_id"], as_index=False)
        .sum()
    )
    g["net_eur"] = g["payment_eur"] + g["make_whole_eur"] - g["penalty_eur"]
    for c in [*TOTALS, "net_eur"]:
        g[c] = g[c] / MICRO
    g.insert(2, "period", period)
    return g[STATEMENT_COLUMNS]
