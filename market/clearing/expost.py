"""The physics after the last step: one evaluation of every activation of every step on
the full batch, the same for every design. The coordination risks are read from it
(:mod:`market.clearing.metrics`), never from the design's labels.

Tables (all MW, up positive; ``d`` = +1 for an up need, -1 for down):

``flows``            every constraint and interval: base + PTDF x activations, violation.
``imbalance``        net activation minus the TSO need served, per interval.
``dso_delivery``     every DSO need: what the DSO bought for it, the area's net change in
                     the need's direction from all activations (``d * net``), the relief
                     delivered and short, and the part of the DSO's own relief that other
                     activations in the area undid.
``signal_breaches``  amber/red signal rows where the TSO's activations in the area went
                     beyond the amber headroom, or into a red area.
``conflicts``        DER-intervals, and DSO need areas, that separate operators pushed in
                     opposite directions in one interval.
``blind``            violated network rows, with the part caused by operators that could
                     not see the constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.clearing.prepare import Prepared
from market.design.spec import Design, Step
from market.enums import TSO_ID, ConstraintScope, Direction, Operator, Service, SignalState
from market.io.batch import Batch

MW_DECIMALS = 6
EPS_MW = 1e-9


@dataclass(frozen=True)
class Evaluation:
    flows: pd.DataFrame
    imbalance: pd.DataFrame
    dso_delivery: pd.DataFrame
    signal_breaches: pd.DataFrame
    conflicts: pd.DataFrame
    blind: pd.DataFrame


def operator_id(step: Step, part: str) -> str:
    """Who decided an activation: ``tso``, ``platform``, ``idso``, or the DSO's id."""
    return part if step.operator is Operator.DSO else step.operator.value


def evaluate(batch: Batch, prep: Prepared, design: Design, acts: pd.DataFrame, needs: pd.DataFrame) -> Evaluation:
    """The evaluation of ``acts`` (one row per award: ``pos`` in the batch, ``quantity_mw``,
    ``buyer_id``, ``need_id``, ``step``, ``part``, ``operator_id``) against the batch.
    ``needs`` is the run's needs table (served MW of the TSO needs)."""
    taken = np.bincount(acts["pos"].astype(int), weights=acts["quantity_mw"].astype(float), minlength=len(prep.bids))
    flows = _flows(prep, taken, batch)
    return Evaluation(
        flows=flows,
        imbalance=_imbalance(prep, taken, needs, batch),
        dso_delivery=_dso_delivery(batch, prep, acts, taken),
        signal_breaches=_signal_breaches(batch, prep, acts),
        conflicts=_conflicts(batch, prep, acts),
        blind=_blind(prep, design, acts, flows),
    )


def _flows(prep: Prepared, taken: np.ndarray, batch: Batch) -> pd.DataFrame:
    net = prep.network
    flow = net["base_mw"].to_numpy() + prep.net_matrix @ taken
    over = np.maximum(flow - net["max_flow_mw"].to_numpy(), 0)
    under = np.maximum(net["min_flow_mw"].to_numpy() - flow, 0)
    viol = np.where(over > EPS_MW, over, np.where(under > EPS_MW, under, 0.0))
    limit = np.where(over > EPS_MW, net["max_flow_mw"], np.where(under > EPS_MW, net["min_flow_mw"], np.nan))
    return pd.DataFrame(
        {
            "constraint_id": net["constraint_id"],
            "owner_id": net["owner_id"],
            "interval_start": net["interval_start"],
            "base_flow_mw": net["base_mw"],
            "flow_mw": np.round(flow, MW_DECIMALS),
            "min_flow_mw": net["min_flow_mw"],
            "max_flow_mw": net["max_flow_mw"],
            "limit_mw": limit,
            "violation_mw": np.round(viol, MW_DECIMALS),
            "violation_mwh": np.round(viol * batch.config.interval_hours, MW_DECIMALS),
        }
    )


def _imbalance(prep: Prepared, taken: np.ndarray, needs: pd.DataFrame, batch: Batch) -> pd.DataFrame:
    """Net activation minus the TSO need served, per interval (positive = surplus up)."""
    cfg = batch.config
    bids = prep.bids
    net = np.bincount(bids["t"], weights=bids["sign"] * taken, minlength=prep.n_t)
    tso = needs[needs["buyer_id"] == TSO_ID]
    served = np.bincount(
        cfg.slot_of(tso["interval_start"]),
        weights=Direction.signs(tso["direction"]) * tso["served_mw"].to_numpy(),
        minlength=prep.n_t,
    )
    return pd.DataFrame(
        {
            "interval_start": cfg.intervals,
            "net_activation_mw": np.round(net, MW_DECIMALS),
            "tso_need_served_mw": np.round(served, MW_DECIMALS),
            "imbalance_mw": np.round(net - served, MW_DECIMALS),
        }
    )


def _area_net(prep: Prepared, taken: np.ndarray, node_areas: pd.DataFrame) -> pd.Series:
    """Net MW (up positive) activated per (area_id, t)."""
    bids = prep.bids
    on = taken > 0
    act = pd.DataFrame(
        {"node_id": bids["node_id"].to_numpy()[on], "t": bids["t"].to_numpy()[on], "mw": (bids["sign"] * taken)[on]}
    )
    return act.merge(node_areas[["node_id", "area_id"]], on="node_id").groupby(["area_id", "t"])["mw"].sum()


def _dso_delivery(batch: Batch, prep: Prepared, acts: pd.DataFrame, taken: np.ndarray) -> pd.DataFrame:
    needs = prep.needs[prep.needs["service"] == Service.DSO_CONGESTION]
    cols = ["need_id", "buyer_id", "area_id", "interval_start", "direction", "quantity_mw"]
    out = needs[cols].reset_index(drop=True).copy()
    d = needs["sign"].to_numpy()
    net = _area_net(prep, taken, batch.node_areas)
    area_net = net.reindex(pd.MultiIndex.from_frame(needs[["area_id", "t"]])).fillna(0.0).to_numpy()
    bought = (
        acts["quantity_mw"]
        .astype(float)
        .groupby(acts["need_id"])
        .sum()
        .reindex(needs["need_id"])
        .fillna(0.0)
        .to_numpy()
    )
    must = needs["max_price_eur_mwh"].isna().to_numpy()
    target = np.where(must, needs["quantity_mw"].to_numpy(), bought)
    net_dir = d * area_net
    delivered = np.clip(net_dir, 0.0, target)
    out["bought_mw"] = np.round(bought, MW_DECIMALS)
    out["area_net_mw"] = np.round(net_dir, MW_DECIMALS)
    out["delivered_mw"] = np.round(delivered, MW_DECIMALS)
    out["shortfall_mw"] = np.round(target - delivered, MW_DECIMALS)
    out["undone_mw"] = np.round(np.clip(bought - net_dir, 0.0, bought), MW_DECIMALS)
    return out


def _in_areas(prep: Prepared, acts: pd.DataFrame, node_areas: pd.DataFrame) -> pd.DataFrame:
    """Each award with its bid's interval, signed MW and every area its node is in."""
    bids = prep.bids
    pos = acts["pos"].astype(int).to_numpy()
    frame = acts.drop(columns=["area_id", "node_id", "der_id", "direction"], errors="ignore").assign(
        node_id=bids["node_id"].to_numpy()[pos],
        der_id=bids["der_id"].to_numpy()[pos],
        t=bids["t"].to_numpy()[pos],
        direction=bids["direction"].to_numpy()[pos],
        mw=bids["sign"].to_numpy()[pos] * acts["quantity_mw"].to_numpy(),
    )
    return frame.merge(node_areas[["node_id", "area_id"]], on="node_id")


def _signal_breaches(batch: Batch, prep: Prepared, acts: pd.DataFrame) -> pd.DataFrame:
    cols = ["area_id", "interval_start", "state", "direction", "tso_mw", "headroom_mw", "breach_mw"]
    sig = prep.signals[prep.signals["state"] != SignalState.GREEN]
    tso = acts[acts["buyer_id"] == TSO_ID]
    if not len(sig) or not len(tso):
        return pd.DataFrame({c: pd.Series(dtype=object if c in cols[:4] else float) for c in cols})
    per = _in_areas(prep, tso, batch.node_areas).groupby(["area_id", "t", "direction"])["quantity_mw"].sum()
    per = per.rename("tso_mw").reset_index()
    rows = sig.merge(per, on=["area_id", "t"])
    head = np.where(rows["direction"] == Direction.UP, rows["headroom_up_mw"], rows["headroom_down_mw"])
    red = (rows["state"] == SignalState.RED).to_numpy()
    rows["headroom_mw"] = np.where(red, 0.0, head)
    rows["breach_mw"] = np.round(np.maximum(rows["tso_mw"] - rows["headroom_mw"], 0.0), MW_DECIMALS)
    rows["tso_mw"] = np.round(rows["tso_mw"], MW_DECIMALS)
    rows = rows[rows["breach_mw"] > EPS_MW]
    return rows[cols].sort_values(["interval_start", "area_id", "direction"]).reset_index(drop=True)


def _opposed(signed: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Per ``key``: MW pushed up and down by operators' nets, and their overlap (conflict)."""
    net = signed.groupby([*key, "operator_id"])["mw"].sum().reset_index()
    net["up_mw"] = net["mw"].clip(lower=0.0)
    net["down_mw"] = (-net["mw"]).clip(lower=0.0)
    g = net.groupby(key)[["up_mw", "down_mw"]].sum()
    g["conflict_mw"] = np.minimum(g["up_mw"], g["down_mw"])
    g = g[g["conflict_mw"] > EPS_MW].reset_index()
    ops = net.merge(g[key], on=key).sort_values("operator_id").groupby(key)["operator_id"].agg(";".join)
    return g.merge(ops.rename("operators").reset_index(), on=key, how="left")


def _conflicts(batch: Batch, prep: Prepared, acts: pd.DataFrame) -> pd.DataFrame:
    """Opposite instructions from separate operators: per DER-interval, and per DSO need
    area-interval beyond what its DER-level conflicts already count."""
    cols = ["level", "id", "interval_start", "up_mw", "down_mw", "conflict_mw", "operators"]
    if not len(acts) or acts["operator_id"].nunique() < 2:  # opposition needs two operators
        kinds = {"interval_start": "datetime64[ns, UTC]", "up_mw": float, "down_mw": float, "conflict_mw": float}
        return pd.DataFrame({c: pd.Series(dtype=kinds.get(c, object)) for c in cols})
    located = _in_areas(prep, acts, batch.node_areas)
    per_der = _opposed(located.drop_duplicates(["pos", "buyer_id", "need_id", "operator_id"]), ["der_id", "t"])
    per_der = per_der[per_der["conflict_mw"] > EPS_MW]
    need_areas = prep.needs.loc[prep.needs["service"] == Service.DSO_CONGESTION, ["area_id", "t"]].drop_duplicates()
    per_area = _opposed(located.merge(need_areas, on=["area_id", "t"]), ["area_id", "t"])
    der_in_area = (
        per_der.merge(located[["der_id", "t", "area_id"]].drop_duplicates(), on=["der_id", "t"])
        .groupby(["area_id", "t"])["conflict_mw"]
        .sum()
    )
    counted = der_in_area.reindex(pd.MultiIndex.from_frame(per_area[["area_id", "t"]])).fillna(0.0).to_numpy()
    per_area["conflict_mw"] = np.maximum(per_area["conflict_mw"].to_numpy() - counted, 0.0)
    per_area = per_area[per_area["conflict_mw"] > EPS_MW]
    frames = [
        per_der.rename(columns={"der_id": "id"}).assign(level="der"),
        per_area.rename(columns={"area_id": "id"}).assign(level="area"),
    ]
    out = pd.concat(frames, ignore_index=True)
    out["interval_start"] = batch.config.start + out["t"].astype(int) * batch.config.interval
    for c in ("up_mw", "down_mw", "conflict_mw"):
        out[c] = np.round(out[c].astype(float), MW_DECIMALS)
    return out[cols].sort_values(["interval_start", "level", "id"]).reset_index(drop=True)


def sees(step: Step, part: str, owners: np.ndarray) -> np.ndarray:
    """Which network rows (by owner) the model of ``step`` (part ``part``) enforced."""
    tso = owners == TSO_ID
    scope = step.constraints
    if scope is ConstraintScope.ALL:
        return np.ones(len(owners), dtype=bool)
    if scope is ConstraintScope.NONE:
        return np.zeros(len(owners), dtype=bool)
    if scope is ConstraintScope.TRANSMISSION:
        return tso
    if scope is ConstraintScope.DISTRIBUTION:
        return ~tso
    return owners == part if step.per_dso else np.ones(len(owners), dtype=bool)  # OWN


def _blind(prep: Prepared, design: Design, acts: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Per violated row: the violation and the part caused by operators that could not see
    the constraint: ``min(violation, their push towards it)``."""
    cols = ["constraint_id", "owner_id", "interval_start", "violation_mw", "blind_push_mw", "blind_mw"]
    viol = np.flatnonzero(flows["violation_mw"].to_numpy() > EPS_MW)
    if not len(viol) or not len(acts):
        return pd.DataFrame({c: pd.Series(dtype=float if c.endswith("_mw") else object) for c in cols})
    over = (flows["flow_mw"].to_numpy()[viol] > flows["max_flow_mw"].to_numpy()[viol]).astype(float) * 2 - 1
    owners = flows["owner_id"].to_numpy()[viol]
    a = prep.net_matrix[viol]
    steps = {s.name: s for s in design.steps}
    blind_push = np.zeros(len(viol))
    for (step, part), g in acts.groupby(["step", "part"], sort=True):
        taken = np.bincount(g["pos"].astype(int), weights=g["quantity_mw"].astype(float), minlength=a.shape[1])
        push = np.maximum(over * (a @ taken), 0.0)
        blind_push += np.where(sees(steps[str(step)], str(part), owners), 0.0, push)
    out = flows.iloc[viol][["constraint_id", "owner_id", "interval_start", "violation_mw"]].reset_index(drop=True)
    out["blind_push_mw"] = np.round(blind_push, MW_DECIMALS)
    out["blind_mw"] = np.round(np.minimum(out["violation_mw"].to_numpy(), blind_push), MW_DECIMALS)
    return out[cols]
