"""Exact amounts: every EUR, MWh, MW, kWh and EUR/MWh value of a line is a decimal with six
places, held as integer micro-units while it is added up.

A line's amounts are rounded once to 1e-6 (half away from zero, as the store's
``NUMERIC(18, 6)``), its ``net_eur`` is ``payment + make_whole - penalty`` of those rounded
amounts, and a statement's totals are integer sums of its lines' micro-units: a statement
equals the sum of its lines to the last 1e-6 EUR, in memory, in Parquet and in either store.
Values beyond ``AMOUNT_LIMIT`` (or not finite) are refused as bad input before anything is
written. In float64 every such 6-decimal value round-trips exactly (|x| < 9e9).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from market.errors import SettlementInputError

MICRO = 1_000_000
AMOUNT_LIMIT = 1e9  # |amount| of a line or statement (EUR, MWh, kWh); beyond it is refused
AMOUNT_COLUMNS = (
    "quantity_mw",
    "price_eur_mwh",
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
)


def to_micro(values: pd.Series, name: str, rows: pd.DataFrame | None = None) -> np.ndarray:
    """Integer micro-units of ``values`` (missing -> 0); refuses non-finite or absurd values,
    naming the column and the first bad rows (by ``bid_id``/``der_id`` where known)."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(v) & ~pd.isna(values).to_numpy()
    bad |= np.abs(np.nan_to_num(v)) > AMOUNT_LIMIT
    if bad.any():
        where = ""
        if rows is not None and {"bid_id", "der_id"} <= set(rows.columns):
            first = rows.loc[bad, ["bid_id", "der_id"]].head(5).to_dict("records")
            where = f" at {first}"
        shown = ", ".join(repr(x) for x in v[bad][:5])
        raise SettlementInputError(
            f"settlement line column {name} has {int(bad.sum())} value(s) that are not finite or beyond "
            f"±{AMOUNT_LIMIT:g} ({shown}){where}: check the meter data and the run's awards"
        )
    v = np.nan_to_num(v)
    return (np.sign(v) * np.floor(np.abs(v) * MICRO + 0.5)).astype(np.int64)


def exact_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Every amount rounded to 1e-6, and ``net_eur`` exact from the rounded amounts."""
    out = lines.copy()
    micro = {c: to_micro(out[c], c, out) for c in AMOUNT_COLUMNS if c in out}
    for c, m in micro.items():
        if c != "net_eur":
            out[c] = np.where(out[c].isna(), np.nan, m / MICRO)
    if {"payment_eur", "penalty_eur", "net_eur"} <= set(micro):
        whole = micro.get("make_whole_eur", np.zeros(len(out), np.int64))
        out["net_eur"] = (micro["payment_eur"] + whole - micro["penalty_eur"]) / MICRO
    return out


def decimal_text(values: pd.Series) -> pd.Series:
    """Exact decimal text (``-7516.251093``) of 6-decimal values; missing stays missing."""
    m = to_micro(values, str(values.name))
    a = pd.Series(np.abs(m), index=values.index)
    sign = pd.Series(np.where(m < 0, "-", ""), index=values.index)
    text = sign + (a // MICRO).astype(str) + "." + (a % MICRO).astype(str).str.zfill(6)
    return text.where(values.notna(), None)


def as_decimal(value: float | None) -> Decimal | None:
    """One 6-decimal value as an exact :class:`~decimal.Decimal` (for single-row inserts)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if not np.isfinite(value) or abs(value) > AMOUNT_LIMIT:
        raise SettlementInputError(f"amount {value!r} is not finite or beyond ±{AMOUNT_LIMIT:g}")
    return Decimal(f"{value:.6f}")  # the 6-decimal value, exactly (|x| < 9e9 round-trips)
