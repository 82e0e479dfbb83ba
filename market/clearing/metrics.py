"""Coordination metrics of a run (docs/contract.md, ``metrics.json``): the report's Table 1
principles, measured.

Every number comes from the physics after the last step (:mod:`market.clearing.expost`)
or from the information flow of the run (which operator decided each activation, along
which path, after how many sequential clearing stages); none is read from a design's
labels. The only inputs echoed are prices, quantities, VoLL and the per-hop latencies of
``batch.toml``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from market.clearing.availability import availability_metrics
from market.clearing.exposure import COORDINATOR, ENDPOINT, registered_endpoints
from market.clearing.formulation import IMBALANCE_PREMIUM_EUR_MWH, VIOLATION_FACTOR
from market.clearing.prepare import effective_routes, own_routes
from market.clearing.results import ClearingResult, ModelStats
from market.design.spec import Design
from market.enums import TSO_ID, Operator, RoutePolicy, Service, Tier
from market.io.batch import Batch

STAGE_KEY = "clearing_stage"  # hop_latency_s key: seconds one sequential clearing stage takes
NON_UTILITY = (Tier.AGGREGATOR.value, Tier.DER.value, Tier.COORDINATOR.value)


def compute_metrics(batch: Batch, result: ClearingResult) -> dict[str, Any]:
    """Every metric of the run, rounded to 1e-6."""
    h = batch.config.interval_hours
    aw = result.awards
    metrics: dict[str, Any] = {}
    metrics.update(_bypassing(aw, result.design))
    metrics.update(_coupling(result, h))
    metrics.update(_violations(result, h))
    metrics.update(_observability(result))
    metrics.update(_latency(batch, result))
    metrics.update(_scalability(result))
    metrics.update(_cyber(batch, result))
    metrics.update(_fragmentation(result))
    metrics.update(_routes(batch, result.design))
    metrics.update(availability_metrics(batch, result))
    metrics.update(_money(batch, result, metrics))
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}


def _per_path(aw: pd.DataFrame, fn: Callable[[list[str]], Any]) -> pd.Series:
    """``fn`` of each award's instruction path (as a list of tiers), evaluated once per
    distinct path (a design has a handful), never per award."""
    code, paths = pd.factorize(aw["path"], use_na_sentinel=False)
    values = np.array([fn(str(p).split(">")) for p in paths])
    return pd.Series(values[code] if len(values) else np.zeros(0), index=aw.index)


def _bypassing(aw: pd.DataFrame, design: Design) -> dict[str, Any]:
    """TSO-instructed activations of distribution-connected DER whose path skips the DSO
    (none where one operator runs transmission and distribution: it cannot skip itself)."""
    bypasses = _per_path(aw, lambda p: p[0] == Tier.TSO.value and not {Tier.DSO.value, Tier.IDSO.value} & set(p))
    bypass = (bypasses.astype(bool) & aw["dso_id"].notna()).to_numpy() & (not design.tso_dso_combined)
    return {
        "tier_bypassing_information_links": _information_links(aw, design),
        "tier_bypassing_mwh": float(aw.loc[bypass, "energy_mwh"].sum()),
        "tier_bypassing_mw": float(aw.loc[bypass, "quantity_mw"].sum()),  # deprecated: MW summed over intervals
        "tier_bypassing_count": int(bypass.sum()),
    }


def _information_links(aw: pd.DataFrame, design: Design) -> int:
    """Data links that skip the DSO (the EU DSO Committee's data access concepts 1 and 3,
    NYISO's DER link): distinct DSO-connected aggregators and DER activated with a design
    data link into the TSO. Information only: no instruction flows back along them, so they
    are counted apart from the instruction paths' bypassing."""
    linked = aw[aw["dso_id"].notna().to_numpy()]
    if design.data_links_direct_only:
        linked = linked[linked["direct"].astype(bool).to_numpy()]
    return sum(int(linked[ENDPOINT[t]].nunique()) for t in design.data_links if t in (Tier.AGGREGATOR, Tier.DER))


def _coupling(result: ClearingResult, h: float) -> dict[str, Any]:
    """Hidden coupling (separate operators with partial views) and, apart, the visible
    sharing of one DER by two buyers inside one joint optimisation."""
    conflicts = result.conflicts
    undone = result.dso_delivery["undone_mw"].sum() if len(result.dso_delivery) else 0.0
    blind = result.blind_violations["blind_mw"].sum() if len(result.blind_violations) else 0.0
    aw = result.awards
    per_model = aw.groupby(["der_id", "interval_start", "step", "operator_id"])["buyer_id"].nunique()
    return {
        "hidden_coupling_conflict_mw": float(conflicts["conflict_mw"].sum()) if len(conflicts) else 0.0,
        "hidden_coupling_conflict_count": int(len(conflicts)),
        "hidden_coupling_undone_mwh": float(undone * h),
        "hidden_coupling_blind_violation_mwh": float(blind * h),
        "shared_der_intervals": int((per_model > 1).sum()),
        "hidden_coupling_sold_twice_mwh": float(result.sold_twice_mwh),
    }


def _violations(result: ClearingResult, h: float) -> dict[str, Any]:
    flows = result.flows
    dist = flows["owner_id"] != TSO_ID
    breaches = result.signal_breaches
    return {
        "distribution_violation_mwh": float(flows.loc[dist, "violation_mwh"].sum()),
        "distribution_violation_count": int((flows.loc[dist, "violation_mw"] > 0).sum()),
        "transmission_violation_mwh": float(flows.loc[~dist, "violation_mwh"].sum()),
        "signal_breach_mw": float(breaches["breach_mw"].sum()) if len(breaches) else 0.0,
    }


def _observability(result: ClearingResult) -> dict[str, Any]:
    """Per DSO: the share of MW activated in its network that it knew of before dispatch:
    it bought it, prequalified or disaggregated it (unless it reached the TSO directly),
    relays its instruction, or is sent the step's results, or it is the TSO (one TDSO)."""
    aw = result.awards
    steps = {s.name: s for s in result.design.steps}
    passed_up = {n: s.passes_through_dso or s.observed_by_dso for n, s in steps.items()}
    told = aw["step"].map(passed_up).astype(bool) & ~aw["direct"].astype(bool)
    relayed = _per_path(aw, lambda p: Tier.DSO.value in p).astype(bool)
    own = (aw["buyer_id"] == aw["dso_id"]) | (aw["operator_id"] == aw["dso_id"])
    known = told | relayed | own | result.design.tso_dso_combined  # one TDSO knows what it decides
    total = aw.groupby("dso_id")["quantity_mw"].sum()
    seen = aw[known].groupby("dso_id")["quantity_mw"].sum().reindex(total.index, fill_value=0.0)
    by_dso = {str(k): float(seen[k] / total[k]) if total[k] > 0 else 1.0 for k in total.index}
    return {"observability_by_dso": by_dso, "observability_min": min(by_dso.values(), default=1.0)}


def _latency(batch: Batch, result: ClearingResult) -> dict[str, Any]:
    """Per activation: the hops of its path x their latency, plus the sequential clearing
    stages up to and including the step that decided it x ``clearing_stage`` seconds."""
    hop = batch.config.hop_latency_s
    aw = result.awards
    stage = sequential_stages(result.design)
    hops = _per_path(aw, lambda p: sum(hop.get(t, 0.0) for t in p[:-1])).astype(float)
    total = hops + aw["step"].map(stage).astype(float) * hop.get(STAGE_KEY, 0.0)
    tiers = _per_path(aw, len)
    return {
        "latency_s_max": float(total.max()) if len(aw) else 0.0,
        "latency_s_mean_weighted": float(np.average(total, weights=aw["quantity_mw"])) if len(aw) else 0.0,
        "latency_path_tiers_max": int(tiers.max()) if len(aw) else 0,
        "latency_stages": max(sequential_stages(result.design).values(), default=0),
    }


def sequential_stages(design: Design) -> dict[str, int]:
    """Per step: how many clearing stages run one after the other up to and including it (a
    step run alongside the one before it shares that step's stage)."""
    out: dict[str, int] = {}
    stage = 0
    for s in design.steps:
        stage += 0 if s.simultaneous else 1
        out[s.name] = stage
    return out


def _scalability(result: ClearingResult) -> dict[str, Any]:
    """Size of each operator's largest optimisation (the TSO's: its own or a platform's
    model, which clears TSO needs; a DSO's interface curves and disaggregation count as
    the DSO's)."""
    steps = {s.name: s for s in result.design.steps}

    def op_of(st: ModelStats) -> str:
        return st.operator or steps[st.step].operator.value

    by_op: dict[str, int] = {}
    for st in result.stats:
        by_op[op_of(st)] = max(by_op.get(op_of(st), 0), st.n_variables)
    largest = max(result.stats, key=lambda s: (s.n_variables, s.n_constraints), default=None)
    tso_side = [st for st in result.stats if op_of(st) in (Operator.TSO.value, Operator.PLATFORM.value)]
    tso_largest = max(tso_side, key=lambda s: (s.n_variables, s.n_constraints), default=None)
    return {
        "scalability_tso_variables": tso_largest.n_variables if tso_largest else 0,
        "scalability_tso_constraints": tso_largest.n_constraints if tso_largest else 0,
        "scalability_variables_by_operator": by_op,
        "scalability_largest_variables": largest.n_variables if largest else 0,
        "scalability_largest_constraints": largest.n_constraints if largest else 0,
        "scalability_largest_integer": largest.n_integer if largest else 0,
        "scalability_models": len(result.stats),
    }


def _cyber(batch: Batch, result: ClearingResult) -> dict[str, Any]:
    """Distinct non-utility endpoints (aggregators, one aggregator coordinator, DER) among
    those activated with a dispatch link from the TSO (control) or only a data link into it
    (read-only; the design's ``data_links``, from directly reached DER only where it says
    so); their union is the headline; links from DSOs counted apart; and every endpoint
    registered with a link, activated or not (:mod:`market.clearing.exposure`)."""
    aw = result.awards.assign(coordinator=COORDINATOR)
    nxt = _per_path(aw, lambda p: p[1] if p[0] == Tier.TSO.value else None)
    control: set[str] = set()
    for tier in NON_UTILITY:  # one pass per tier kind, never per award
        sel = (nxt == tier).to_numpy()
        control.update(f"{tier}:{v}" for v in aw.loc[sel, ENDPOINT[Tier(tier)]].unique())
    linked = aw[aw["direct"].astype(bool)] if result.design.data_links_direct_only else aw
    data = {f"{t}:{v}" for t in result.design.data_links if t in ENDPOINT for v in linked[ENDPOINT[t]].unique()}
    dso_links = aw.loc[nxt.isin([Tier.DSO.value, Tier.IDSO.value]).to_numpy(), "dso_id"].nunique()
    registered, registered_read_only = registered_endpoints(batch, result.design)
    return {
        "cyber_exposure_endpoints": len(control | data),
        "cyber_exposure_control_endpoints": len(control),
        "cyber_exposure_read_only_endpoints": len(data - control),
        "cyber_exposure_dso_links": int(dso_links),
        "cyber_exposure_registered_endpoints": len(registered) + len(registered_read_only),
        "cyber_exposure_registered_read_only_endpoints": len(registered_read_only),
    }


def _routes(batch: Batch, design: Design) -> dict[str, Any]:
    """Where the design's route rule overrides the aggregators' own (design-level
    ``routes``): bid rows per aggregator whose route it changed (a design that leaves routes
    to the aggregators has no such metric)."""
    if design.routes is RoutePolicy.AGGREGATORS:
        return {}
    own = own_routes(batch)
    changed = own != effective_routes(own, design.routes)
    counts = batch.bids.loc[changed, "aggregator_id"].value_counts().sort_index()
    return {"routes_overridden_bids": {str(k): int(v) for k, v in counts.items()}}


def _fragmentation(result: ClearingResult) -> dict[str, Any]:
    """ENTSO-E's fragmentation argument: how many separate markets an activated aggregator
    had to trade in. Its market for an activation is the operator that decided it (the
    TSO, each DSO, a platform, an iDSO), or the DSO where the aggregator offered through the
    DSO (forwarded or interface offers) and not directly (the iDSO where one runs the
    distribution side); a single marketplace is one."""
    aw = result.awards
    if not len(aw):
        return {"fragmentation_markets_per_aggregator": 0.0, "fragmentation_markets_max": 0}
    through = aw["step"].map({s.name: s.passes_through_dso for s in result.design.steps}).astype(bool)
    via_dso = (through & ~aw["direct"].astype(bool)).to_numpy()
    idso = any(s.operator is Operator.IDSO for s in result.design.steps)  # one market across networks
    dso_market = np.full(len(aw), Operator.IDSO.value) if idso else aw["dso_id"].astype(str).to_numpy()
    market = np.where(via_dso, dso_market, aw["operator_id"].astype(str))
    per = aw.assign(market=market).groupby("aggregator_id")["market"].nunique()
    return {
        "fragmentation_markets_per_aggregator": float(per.mean()),
        "fragmentation_markets_max": int(per.max()),
    }


def _money(batch: Batch, result: ClearingResult, measured: dict[str, Any]) -> dict[str, Any]:
    """What buyers paid, what the activations cost, and a system cost with the consequences:
    VoLL x (TSO need unmet + DSO relief physically short), imbalance at VoLL + 1 and
    network violations at 2 x VoLL, plus the availability paid for reservations; welfare is its
    negative (value served counted in)."""
    h = batch.config.interval_hours
    voll = batch.config.voll_eur_mwh
    aw = result.awards
    paid = aw.assign(paid_eur=aw["cost_eur"] + aw["make_whole_eur"]).groupby("buyer_id")["paid_eur"].sum()
    if result.reservations is not None and len(result.reservations):  # holding capacity is paid too
        held = result.reservations.groupby("buyer_id")["availability_cost_eur"].sum()
        paid = paid.add(held, fill_value=0.0)
    needs = result.needs
    tso = needs["service"] == Service.TSO_BALANCING
    unmet_tso = needs.loc[tso, "unmet_mw"].sum() * h
    delivery = result.dso_delivery
    short = delivery.groupby("buyer_id")["shortfall_mw"].sum() * h if len(delivery) else pd.Series(dtype=float)
    unmet_by = {TSO_ID: float(unmet_tso), **{str(k): float(v) for k, v in short.items()}}
    elastic = needs["max_price_eur_mwh"].notna()
    value = float((needs.loc[elastic, "served_mw"] * needs.loc[elastic, "max_price_eur_mwh"]).sum() * h)
    bid_cost = float((aw["quantity_mw"] * aw["bid_price_eur_mwh"]).sum() * h)
    unmet = sum(unmet_by.values())
    imbalance = float(np.abs(result.imbalance["imbalance_mw"]).sum() * h)
    violations = measured["distribution_violation_mwh"] + measured["transmission_violation_mwh"]
    system = (
        bid_cost
        + measured["availability_cost_eur"]
        - value
        + voll * unmet
        + (voll + IMBALANCE_PREMIUM_EUR_MWH) * imbalance
        + VIOLATION_FACTOR * voll * violations
    )
    liq = result.liquidity.groupby("buyer_id")["offered_mw"].sum()
    return {
        "cost_by_buyer_eur": {str(k): float(v) for k, v in paid.items()},
        "total_cost_eur": float(paid.sum()),
        "make_whole_eur": float(aw["make_whole_eur"].sum()),
        "make_whole_bids_count": int(aw.loc[aw["make_whole_eur"] > 0, "bid_id"].nunique()),
        "bid_cost_eur": bid_cost,
        "value_served_eur": value,
        "unmet_by_buyer_mwh": unmet_by,
        "unmet_mwh": float(unmet),
        "imbalance_mwh": imbalance,
        "system_cost_eur": float(system),
        "welfare_eur": float(-system),
        "liquidity_by_buyer_mw": {str(k): float(v) for k, v in liq.items()},
        "activated_mwh": float(aw["energy_mwh"].sum()),
    }
