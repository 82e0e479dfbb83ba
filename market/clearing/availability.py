"""Availability metrics of a run with reservations (two-part products, section 3a).

``availability_cost_eur``        what the buyers pay to hold capacity (availability price x
                                 MW x hours), whatever is activated
``reserved_mwh``                 capacity held, MW x hours
``reserved_unused_mwh``          held but never activated by its holder
``unmet_reserved_by_other_mwh``  unmet need (MWh) that capacity reserved by the *other*
                                 buyer could have served: same interval and direction,
                                 offered for the need's service and, for a DSO need, inside
                                 its area (whether the holder then used it or left it idle);
                                 per need at most its unmet MWh (an upper bound: the network
                                 may have stopped some of it)

All are measured from the reservations and the needs left unmet; a design that reserves
nothing has zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from market.clearing.prepare import offered_services
from market.clearing.results import ClearingResult
from market.enums import TSO_ID, Service
from market.io.batch import Batch

ZERO = {
    "availability_cost_eur": 0.0,
    "reserved_mwh": 0.0,
    "reserved_unused_mwh": 0.0,
    "unmet_reserved_by_other_mwh": 0.0,
}


def availability_metrics(batch: Batch, result: ClearingResult) -> dict[str, Any]:
    """The metrics of the module docstring (zeros without reservations)."""
    res = result.reservations
    if res is None or not len(res):
        return dict(ZERO)
    h = batch.config.interval_hours
    idle = (res["reserved_mw"] - res["activated_mw"]).clip(lower=0.0)
    return {
        "availability_cost_eur": float(res["availability_cost_eur"].sum()),
        "reserved_mwh": float(res["reserved_mw"].sum() * h),
        "reserved_unused_mwh": float(idle.sum() * h),
        "unmet_reserved_by_other_mwh": _unmet_held_by_other(batch, result, res) * h,
    }


def _unmet_held_by_other(batch: Batch, result: ClearingResult, res: pd.DataFrame) -> float:
    needs = result.needs
    short = needs[needs["unmet_mw"] > 1e-9]
    held = res[res["reserved_mw"] > 1e-9]
    if not len(short) or not len(held):
        return 0.0
    _, tso_ok, dso_ok = offered_services(batch.bids)
    at = pd.Index(batch.bids["bid_id"]).get_indexer(held["bid_id"])
    held = held.assign(tso_ok=tso_ok[at], dso_ok=dso_ok[at])
    pairs = short[["need_id", "buyer_id", "service", "area_id", "interval_start", "direction", "unmet_mw"]].merge(
        held[["bid_id", "node_id", "buyer_id", "interval_start", "direction", "reserved_mw", "tso_ok", "dso_ok"]],
        on=["interval_start", "direction"],
        suffixes=("", "_holder"),
    )
    other = pairs["buyer_id"] != pairs["buyer_id_holder"]
    offered = np.where(pairs["service"] == Service.TSO_BALANCING, pairs["tso_ok"], pairs["dso_ok"]).astype(bool)
    inside = (pairs["buyer_id"] == TSO_ID) | _in_area(pairs, batch.node_areas)
    usable = pairs[other & offered & inside]
    if not len(usable):
        return 0.0
    per_need = usable.groupby("need_id").agg(unmet=("unmet_mw", "first"), held=("reserved_mw", "sum"))
    return float(np.minimum(per_need["unmet"], per_need["held"]).sum())


def _in_area(pairs: pd.DataFrame, node_areas: pd.DataFrame) -> pd.Series:
    """Whether each pair's bid node lies in the need's area."""
    member = pd.MultiIndex.from_frame(node_areas[["area_id", "node_id"]].astype(object))
    key = pd.MultiIndex.from_arrays([pairs["area_id"].astype(object), pairs["node_id"].astype(object)])
    return pd.Series(key.isin(member), index=pairs.index)
