"""Coordination metrics of a run (docs/contract.md, `metrics.json`), computed from its tables.

Nothing here is asserted per design: each number follows from the awards, the
design's dispatch paths and the flows of the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from market.clearing.formulation import IMBALANCE_PREMIUM_EUR_MWH, VIOLATION_FACTOR
from market.clearing.results import ClearingResult
from market.enums import TSO_ID, Buyer, Direction, Tier
from market.io.batch import Batch


def _path_properties(batch: Batch, result: ClearingResult) -> pd.DataFrame:
    """Per award row: its instruction path's properties, looked up once per (step, buyer
    kind) of the design and joined to the awards (no per-award Python)."""
    hop = batch.config.hop_latency_s
    rows = [
        {
            "step": s.name,
            "kind": k.value,
            "passes_dso": Tier.DSO in s.path_for(k),
            "tiers": len(s.path_for(k)),
            "next_tier": s.path_for(k)[1].value,
            "latency_s": sum(hop.get(t, 0.0) for t in s.path_for(k)[:-1]),
        }
        for s in result.design.steps
        for k in Buyer
    ]
    table = pd.DataFrame(rows)
    aw = result.awards
    keys = pd.DataFrame(
        {"step": aw["step"].to_numpy(), "kind": np.where(aw["buyer_id"] == TSO_ID, Buyer.TSO.value, Buyer.DSO.value)}
    )
    return keys.merge(table, on=["step", "kind"], how="left", validate="many_to_one")


def compute_metrics(batch: Batch, result: ClearingResult) -> dict[str, Any]:
    aw = result.awards
    h = batch.config.interval_hours
    paths = _path_properties(batch, result)
    tso = (aw["buyer_id"] == TSO_ID).to_numpy()
    bypass = tso & ~paths["passes_dso"].to_numpy(dtype=bool)
    metrics: dict[str, Any] = {
        "tier_bypassing_mw": float(aw.loc[bypass, "quantity_mw"].sum()),
        "tier_bypassing_count": int(bypass.sum()),
    }
    metrics.update(_hidden_coupling(aw))
    flows = result.flows
    dist = flows["owner_id"] != TSO_ID
    metrics["distribution_violation_mwh"] = float(flows.loc[dist, "violation_mwh"].sum())
    metrics["transmission_violation_mwh"] = float(flows.loc[~dist, "violation_mwh"].sum())
    metrics["distribution_violation_count"] = int((flows.loc[dist, "violation_mw"] > 0).sum())
    metrics["observability_by_dso"] = _observability(result, aw)
    obs = list(metrics["observability_by_dso"].values())
    metrics["observability_min"] = float(min(obs)) if obs else 1.0
    latency = paths["latency_s"]
    tiers = paths["tiers"]
    metrics["latency_path_tiers_max"] = int(tiers.max()) if len(tiers) else 0
    metrics["latency_path_tiers_mean"] = float(tiers.mean()) if len(tiers) else 0.0
    metrics["latency_s_max"] = float(latency.max()) if len(latency) else 0.0
    metrics["latency_s_mean_mw_weighted"] = float(np.average(latency, weights=aw["quantity_mw"])) if len(aw) else 0.0
    largest = max(result.stats, key=lambda s: (s.n_variables, s.n_constraints), default=None)
    metrics["scalability_largest_variables"] = largest.n_variables if largest else 0
    metrics["scalability_largest_constraints"] = largest.n_constraints if largest else 0
    metrics["scalability_largest_integer"] = largest.n_integer if largest else 0
    metrics["scalability_max_solve_s"] = max((s.solve_seconds for s in result.stats), default=0.0)
    metrics["scalability_models"] = len(result.stats)
    metrics["cyber_exposure_parties"] = _cyber(batch, result, aw, paths)
    paid = aw.assign(paid_eur=aw["cost_eur"] + aw["make_whole_eur"])
    cost = paid.groupby("buyer_id")["paid_eur"].sum()
    metrics["cost_by_buyer_eur"] = {k: float(v) for k, v in cost.items()}
    metrics["total_cost_eur"] = float(cost.sum())  # energy payments + make-whole
    metrics["make_whole_eur"] = float(aw["make_whole_eur"].sum())
    metrics["make_whole_bids_count"] = int(aw.loc[aw["make_whole_eur"] > 0, "bid_id"].nunique())
    needs = result.needs
    unmet = needs.groupby("buyer_id")["unmet_mw"].sum() * h
    metrics["unmet_by_buyer_mwh"] = {k: float(v) for k, v in unmet.items()}
    metrics["unmet_mwh"] = float(unmet.sum())
    metrics["imbalance_mwh"] = float(np.abs(result.imbalance["imbalance_mw"]).sum() * h)
    elastic = needs["max_price_eur_mwh"].notna()
    value = float((needs.loc[elastic, "served_mw"] * needs.loc[elastic, "max_price_eur_mwh"]).sum() * h)
    bid_cost = float((aw["quantity_mw"] * aw["bid_price_eur_mwh"]).sum() * h)
    voll = batch.config.voll_eur_mwh
    metrics["bid_cost_eur"] = bid_cost
    metrics["welfare_eur"] = value - bid_cost - voll * metrics["unmet_mwh"]
    metrics["system_cost_eur"] = (
        bid_cost
        - value
        + voll * metrics["unmet_mwh"]
        + (voll + IMBALANCE_PREMIUM_EUR_MWH) * metrics["imbalance_mwh"]
        + VIOLATION_FACTOR * voll * (metrics["distribution_violation_mwh"] + metrics["transmission_violation_mwh"])
    )
    liq = result.liquidity.groupby("buyer_id")["offered_mw"].sum()
    metrics["liquidity_by_buyer_mw"] = {k: float(v) for k, v in liq.items()}
    metrics["activated_mwh"] = float(aw["energy_mwh"].sum())
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}


def _hidden_coupling(aw: pd.DataFrame) -> dict[str, Any]:
    """DER-intervals activated by two or more buyers; MW in opposite directions among them."""
    if not len(aw):
        return {
            "hidden_coupling_der_intervals": 0,
            "hidden_coupling_opposite_mw": 0.0,
            "hidden_coupling_opposite_der_intervals": 0,
        }
    g = aw.groupby(["der_id", "interval_start"])
    buyers = g["buyer_id"].nunique()
    coupled = buyers[buyers > 1].index
    sub = aw.set_index(["der_id", "interval_start"]).loc[coupled].reset_index() if len(coupled) else aw.iloc[:0]
    signed = sub.assign(
        up=np.where(sub["direction"] == Direction.UP, sub["quantity_mw"], 0.0),
        down=np.where(sub["direction"] == Direction.DOWN, sub["quantity_mw"], 0.0),
    )
    per = signed.groupby(["der_id", "interval_start"])[["up", "down"]].sum()
    opposite = np.minimum(per["up"], per["down"])
    return {
        "hidden_coupling_der_intervals": int(len(coupled)),
        "hidden_coupling_opposite_mw": float(opposite.sum()),
        "hidden_coupling_opposite_der_intervals": int((opposite > 0).sum()),
    }


def _observability(result: ClearingResult, aw: pd.DataFrame) -> dict[str, float]:
    """Per DSO: share of MW activated in its areas that it saw before dispatch."""
    seen_step = {s.name: s.observed_by_dso for s in result.design.steps}
    seen = aw["step"].map(seen_step).astype(bool) | (aw["buyer_id"] == aw["dso_id"])
    total = aw.groupby("dso_id")["quantity_mw"].sum()
    visible = aw[seen].groupby("dso_id")["quantity_mw"].sum().reindex(total.index, fill_value=0)
    return {k: float(visible[k] / total[k]) if total[k] > 0 else 1.0 for k in total.index}


def _cyber(batch: Batch, result: ClearingResult, aw: pd.DataFrame, paths: pd.DataFrame) -> int:
    """Distinct parties with a direct dispatch or data link into the TSO."""
    column = {"dso": "dso_id", "aggregator": "aggregator_id", "der": "der_id", "idso": "dso_id"}
    tso = (aw["buyer_id"] == TSO_ID).to_numpy()
    parties: set[str] = set()
    nxt = paths.loc[tso, "next_tier"]
    for tier in nxt.unique():  # one pass per tier kind, not per award
        col = column.get(tier)
        values = aw.loc[tso, col][(nxt == tier).to_numpy()].unique() if col else [None]
        parties.update(f"{tier}:{v}" if col else tier for v in values)
    for tier in result.design.data_links:
        col = column.get(tier)
        values = batch.bids[col].unique() if col else [None]
        parties.update(f"{tier}:{v}" if col else tier for v in values)
    return len(parties)
