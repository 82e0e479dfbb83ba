"""Gate closures per product (``[gate_closures]`` of batch.toml) and the bids they refuse.

A market closes each product's order book at a gate before delivery (NODES' ShortFlex
2 h before delivery; an availability tender the day before; a nominated baseline by its
deadline). Keys (each a gate of :mod:`market.io.gates`, relative to the bid's interval):

``energy``              the utilisation part of every bid (not capped-power bids)
``availability``        bids with an ``availability_price_eur_mw_h`` (two-part offers)
``capped_power``        bids with a ``max_usage_mw`` (MaxUsage)
``nominated_baseline``  bids carrying a ``nominated_baseline_mw`` (the baseline is nominated
                        with the bid, at its ``submitted_at``)

A bid submitted after the closure of a product it offers is refused (finding code
``gate_closed``), a nominated baseline after its deadline likewise (``nomination_late``);
with any closure set, every bid needs a ``submitted_at``. Without ``[gate_closures]`` no
time is checked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from market.errors import DesignError, Finding, FindingCode
from market.io.findings import row_findings
from market.io.gates import parse_gate
from market.io.schemas import TABLES

CLOSURE_KEYS = ("energy", "availability", "capped_power", "nominated_baseline")


def gate_closure_settings(given: Any, findings: list[Finding]) -> dict[str, str]:
    """``[gate_closures]`` of batch.toml: product -> gate text, each gate parsed."""
    where = "gate_closures"
    if not isinstance(given, dict):
        findings.append(Finding("batch.toml", None, None, where, None, "must be a table", FindingCode.WRONG_TYPE))
        return {}
    out = {}
    for key, value in given.items():
        if key not in CLOSURE_KEYS:
            reason = f"unknown product; choose {', '.join(CLOSURE_KEYS)}"
            findings.append(Finding("batch.toml", None, None, f"{where}.{key}", None, reason, FindingCode.UNKNOWN_KEY))
            continue
        try:
            out[key] = parse_gate(value, f"{where}.{key}").text
        except DesignError as exc:
            findings.append(
                Finding("batch.toml", None, None, f"{where}.{key}", repr(value), str(exc), FindingCode.INVALID_VALUE)
            )
    return out


def offers(bids: pd.DataFrame, key: str) -> np.ndarray:
    """Per bid: whether it offers the product of closure ``key``."""

    def has(column: str) -> np.ndarray:
        return np.asarray(bids[column].notna()) if column in bids.columns else np.zeros(len(bids), bool)

    if key == "energy":
        return ~has("max_usage_mw")
    if key == "availability":
        return has("availability_price_eur_mw_h")
    if key == "capped_power":
        return has("max_usage_mw")
    return has("nominated_baseline_mw")


def closure_ns(bids: pd.DataFrame, gate: str) -> np.ndarray:
    """Per bid: the closure instant (ns, UTC) of ``gate`` for the bid's interval."""
    starts = pd.DatetimeIndex(bids["interval_start"])
    return parse_gate(gate, "gate_closures").decision_times(starts).astype(np.int64)


def gate_findings(bids: pd.DataFrame | None, closures: dict[str, str]) -> list[Finding]:
    """Every bid submitted after the closure of a product it offers (or without a
    ``submitted_at`` while closures are set), one finding per bid and product."""
    if bids is None or not closures or not len(bids):
        return []
    spec = TABLES["bids"]
    if "submitted_at" not in bids.columns or bids["submitted_at"].isna().all():
        reason = "[gate_closures] are set in batch.toml: every bid needs a submitted_at (UTC)"
        return [Finding("bids", None, None, "submitted_at", None, reason, FindingCode.MISSING_COLUMN)]
    sub = bids["submitted_at"]
    out = row_findings(spec, bids, sub.isna(), "submitted_at", "empty while [gate_closures] are set",
                       FindingCode.EMPTY_VALUE)  # fmt: skip
    sub_ns = np.asarray(sub.dt.as_unit("ns").array.asi8)
    for key, gate in closures.items():
        close = closure_ns(bids, gate)
        late = offers(bids, key) & sub.notna().to_numpy() & (sub_ns > close)
        code = FindingCode.NOMINATION_LATE if key == "nominated_baseline" else FindingCode.GATE_CLOSED
        what = "nominated baseline" if key == "nominated_baseline" else f"{key} bid"

        def late_by(i: int, gate: str = gate, close: np.ndarray = close, what: str = what) -> str:
            shut = pd.Timestamp(int(close[i]), tz="UTC").isoformat()
            return f"{what} submitted after its gate closure {gate} ({shut}) for its interval"

        out += row_findings(spec, bids, late, "submitted_at", late_by, code)
    return out
