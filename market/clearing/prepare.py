"""What each step sees: batch-wide arrays built once, then one model input per step
(or per DSO when the step fans out) with the capacity, flows and net activation that
earlier steps left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from market.clearing.areas import undoes_need
from market.clearing.formulation import ALL_PARTS, VIOLATION_FACTOR, StepInput, network_matrix
from market.design.spec import Step
from market.enums import (
    TSO_ID,
    Buyer,
    ConstraintScope,
    Direction,
    Operator,
    Route,
    RoutePolicy,
    Service,
    SignalMode,
    SignalState,
    View,
)
from market.io.batch import Batch


@dataclass(frozen=True)
class Prepared:
    """Batch-wide arrays every step reuses (built once, vectorised)."""

    bids: pd.DataFrame
    needs: pd.DataFrame
    network: pd.DataFrame
    net_matrix: Any
    sens: pd.DataFrame
    signals: pd.DataFrame
    n_t: int


def prepare(batch: Batch, policy: RoutePolicy = RoutePolicy.AGGREGATORS) -> Prepared:
    """The batch as the models read it; ``policy``: the design's rule for routes (see
    :func:`effective_routes`)."""
    cfg = batch.config
    bids = batch.bids.copy(deep=False)  # columns are added or replaced, never written into
    bids["pos"] = np.arange(len(bids))
    bids["t"] = cfg.slot_of(bids["interval_start"])
    bids["sign"] = Direction.signs(bids["direction"])
    bids["cost"] = bids["price_eur_mwh"]
    if "max_usage_mw" in bids:  # a capped-power offer is a ceiling: its relief is accepted whole or not
        capped = bids["max_usage_mw"].notna().to_numpy()
        bids["min_quantity_mw"] = np.where(capped, bids["quantity_mw"], bids["min_quantity_mw"])
    bids["service_set"], bids["tso_ok"], bids["dso_ok"] = offered_services(bids)
    bids["route"] = effective_routes(own_routes(batch), policy)
    needs = batch.needs.copy()
    needs["t"] = cfg.slot_of(needs["interval_start"])
    needs["sign"] = Direction.signs(needs["direction"])
    n_t = len(cfg.intervals)
    network = expand_constraints(batch, n_t)
    sens = batch.sensitivities[["constraint_id", "node_id", "factor"]]
    net_matrix = network_matrix(bids, network, sens)
    signals = batch.signals.copy()
    signals["t"] = cfg.slot_of(signals["interval_start"])
    return Prepared(bids, needs, network, net_matrix, sens, signals, n_t)


def expand_constraints(batch: Batch, n_t: int) -> pd.DataFrame:
    """One row per constraint and interval (an empty interval_start means every interval)."""
    cfg = batch.config
    cons = batch.constraints
    every = cons[cons["interval_start"].isna()]
    some = cons[cons["interval_start"].notna()].copy()
    some["t"] = cfg.slot_of(some["interval_start"])
    rep = every.loc[every.index.repeat(n_t)].copy()
    rep["t"] = np.tile(np.arange(n_t), len(every))
    out = pd.concat([some, rep], ignore_index=True)
    out["interval_start"] = cfg.start + out["t"].astype(int) * cfg.interval
    out = out.rename(columns={"base_flow_mw": "base_mw"})
    return out.sort_values(["constraint_id", "t"]).reset_index(drop=True)


def step_inputs(
    batch: Batch, prep: Prepared, step: Step, taken: np.ndarray, known: Any = None, room: np.ndarray | None = None
) -> list[StepInput]:
    """The model input(s) of a step: one, or one per DSO when the step fans out. ``known``
    (:class:`market.clearing.information.StepKnowledge`): the grid state the step knows at
    its gate, in place of the actuals (an informed batch only). ``room``: per bid, the most
    MW the step may take (capacity reserved by another buyer, or its own reservations
    only; :mod:`market.clearing.reservation`), on top of what is left after ``taken``."""
    bids = prep.bids.copy(deep=False)  # columns are added or replaced, never written into
    # Awards never exceed the capacity a step saw (verified after every solve), so this only
    # removes solver round-off below 1e-9 MW; it cannot hide an over-award.
    left = bids["quantity_mw"].to_numpy() - taken
    bids["cap_mw"] = np.round(left if room is None else np.minimum(left, room), 9).clip(min=0.0)
    bids["min_mw"] = np.where(taken > 0, 0.0, bids["min_quantity_mw"])
    flows_so_far = prep.net_matrix @ taken
    network = prep.network.copy()
    base = network["base_mw"].to_numpy() if known is None else known.base_mw
    network["base_mw"] = base + flows_so_far
    net_prior = np.bincount(bids["t"], weights=bids["sign"] * taken, minlength=prep.n_t)
    reach, bids["direct"] = route_reach(bids, step)
    bids["cap_mw"] = np.where(reach, bids["cap_mw"].to_numpy(), 0.0)
    if step.passes_through_dso:  # the DSO checks what it passes up: alone within its limits
        through = ~bids["direct"].to_numpy()
        bids["cap_mw"] = np.where(through, prequalified_cap(bids, network, prep), bids["cap_mw"].to_numpy())
        if step.view is View.INTERFACE:  # ... and never what would undo its own needs
            bought = prep.needs[(prep.needs["buyer_id"] != TSO_ID)]
            against = through & undoes_need(bids, bought, batch.node_areas)
            bids["cap_mw"] = np.where(against, 0.0, bids["cap_mw"].to_numpy())
    if step.shares_dso_needs:  # joint procurement: the DSOs' needs are known, never undone
        against = undoes_need(bids, prep.needs[prep.needs["buyer_id"] != TSO_ID], batch.node_areas)
        bids["cap_mw"] = np.where(against, 0.0, bids["cap_mw"].to_numpy())
    sens = prep.sens
    if step.view is View.AGGREGATOR_NODE:
        bids["cap_mw"] = admitted_aggregations(bids, step.min_aggregation_kw)
    elif step.view is View.AGGREGATOR:
        bids, sens = multi_node(bids, sens, step.multi_node_route)
    if step.signals is SignalMode.COMPUTED:
        published = network if known is None else network.assign(base_mw=known.light_base_mw + flows_so_far)
        computed = computed_signals(prep, published, batch.node_areas, step.amber_margin, bids)
        signals = strictest(prep.signals, computed)
    else:
        signals = _signals_for(prep.signals, step.signals)
    network = _scope(network, step.constraints)
    needs = prep.needs
    tso_needs = needs[needs["buyer_id"] == TSO_ID] if Buyer.TSO in step.buyers else needs.iloc[:0]
    dso_needs = needs[needs["buyer_id"] != TSO_ID] if Buyer.DSO in step.buyers else needs.iloc[:0]
    dso_needs = dso_needs.assign(
        prior_dir_mw=dso_needs["sign"].to_numpy() * area_net_mw(bids, taken, batch.node_areas, dso_needs)
    )
    na = batch.node_areas
    cfg = batch.config

    def one(part: str, b: pd.DataFrame, dn: pd.DataFrame, net: pd.DataFrame) -> StepInput:
        return StepInput(
            step.name,
            part,
            b,
            tso_needs,
            dn,
            na,
            net,
            sens,
            signals,
            net_prior,
            cfg.voll_eur_mwh,
            VIOLATION_FACTOR * cfg.voll_eur_mwh,
        )

    if not step.per_dso:
        return [one(ALL_PARTS, bids, dso_needs, network)]
    out = []
    for dso in batch.dso_buyers if Buyer.DSO in step.buyers else []:
        dn = dso_needs[dso_needs["buyer_id"] == dso]
        b = _bids_for_dso(bids, dn, na, dso)
        net = network[network["owner_id"] == dso] if step.constraints is ConstraintScope.OWN else network
        out.append(one(dso, b, dn, net))
    return out


def offered_services(bids: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bid: a code per distinct services list (a handful; equal exactly where
    ``services`` is), and whether it is offered for TSO balancing and for DSO congestion."""
    service_set, lists = pd.factorize(bids["services"], use_na_sentinel=True)
    tso_ok = Service.listed(lists, Service.TSO_BALANCING)[service_set]
    return service_set, tso_ok, Service.listed(lists, Service.DSO_CONGESTION)[service_set]


def own_routes(batch: Batch) -> np.ndarray:
    """Each bid's aggregator's own route (``both`` where it gives none, or the bid's
    aggregator is not listed in ``aggregators``)."""
    routes = batch.aggregators.set_index("aggregator_id")["route"].fillna(Route.BOTH.value)
    known = np.append(routes.to_numpy(dtype=object), Route.BOTH.value)
    return known[routes.index.get_indexer(batch.bids["aggregator_id"])]  # -1: the last, both


def effective_routes(route: np.ndarray, policy: RoutePolicy) -> np.ndarray:
    """Each bid's route under the design's policy: its aggregator's own, every one via the
    DSO (Total DSO), or every one both ways (a platform reaching every aggregator)."""
    if policy is RoutePolicy.THROUGH_DSO:
        return np.full(len(route), Route.VIA_DSO.value, dtype=object)
    if policy is RoutePolicy.EVERY_AGGREGATOR:
        return np.full(len(route), Route.BOTH.value, dtype=object)
    return route


def route_reach(bids: pd.DataFrame, step: Step) -> tuple[np.ndarray, np.ndarray]:
    """Per bid: whether its aggregator's route reaches the step, and whether it reached a TSO
    step that takes bids through the DSO directly instead (so its instruction follows the
    step's ``direct_path``). See :mod:`market.design.spec`, "Routes"."""
    route = bids["route"].to_numpy()
    n = len(bids)
    if step.operator is Operator.PLATFORM:
        return np.ones(n, bool), np.zeros(n, bool)
    if step.operator is not Operator.TSO:
        return route != Route.TSO_DIRECT.value, np.zeros(n, bool)
    if not step.passes_through_dso:
        return route != Route.VIA_DSO.value, np.zeros(n, bool)
    direct = route == Route.TSO_DIRECT.value
    if step.view is View.INTERFACE and step.direct_min_mw is not None:
        direct |= (route != Route.VIA_DSO.value) & (bids["quantity_mw"].to_numpy() >= step.direct_min_mw)
    return np.ones(n, bool), direct


def td_interface(bids: pd.DataFrame) -> pd.Series:
    """Per bid: the T-D interface it sits behind for an aggregation rule: its DSO's network,
    or, transmission-connected, its own node (``node:<node>``)."""
    return bids["dso_id"].astype(object).where(bids["dso_id"].notna(), "node:" + bids["node_id"].astype(str))


def admitted_aggregations(bids: pd.DataFrame, min_kw: float) -> np.ndarray:
    """NYISO's rule (report 3.5: aggregations "entirely within a single TDC interface or
    pricing node"): an aggregator's offer behind one T-D interface (its DSO's network; a
    transmission-connected DER's own node), interval and direction enters the market only
    if it totals at least ``min_kw``; smaller ones are left out (capacity 0)."""
    cap = bids["cap_mw"].to_numpy()
    keys = [bids["aggregator_id"], td_interface(bids).rename("interface"), bids["t"], bids["direction"]]
    total = bids["cap_mw"].groupby(keys).transform("sum").to_numpy()
    return np.where(total * 1000.0 >= min_kw - 1e-9, cap, 0.0)


def multi_node(
    bids: pd.DataFrame, sens: pd.DataFrame, opt_in: Route | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CAISO multi-node aggregation: the step knows only each aggregation's total, not where
    each MW lands. An aggregation is an aggregator's bids within one DSO's network (CAISO
    keeps an aggregation within one sub-LAP; a transmission-connected bid alone at its
    node), seen at a virtual node ``agg:<aggregator>@<dso>`` whose factor on each
    constraint is the capacity-weighted mean over its nodes (a default distribution
    factor); the physics after the run uses the true nodes, and so shows what the step
    could not see. ``opt_in``: only aggregators on this route aggregate; the rest are seen
    per DER at their nodes (3.4: "no aggregators have opted to use this model")."""
    joins = np.ones(len(bids), bool) if opt_in is None else (bids["route"] == opt_in.value).to_numpy()
    key = "agg:" + bids["aggregator_id"].astype(str) + "@" + td_interface(bids).astype(str)
    part = bids.assign(virtual=key)[joins]
    w = part.groupby(["virtual", "node_id"], as_index=False)["quantity_mw"].sum()
    w["share"] = w["quantity_mw"] / w.groupby("virtual")["quantity_mw"].transform("sum")
    f = w.merge(sens, on="node_id").assign(v=lambda d: d["share"] * d["factor"])
    virtual = f.groupby(["virtual", "constraint_id"], as_index=False)["v"].sum()
    virtual = pd.DataFrame(
        {"constraint_id": virtual["constraint_id"], "node_id": virtual["virtual"], "factor": virtual["v"]}
    )
    seen = bids.assign(node_id=np.where(joins, key, bids["node_id"].astype(object)))
    return seen, pd.concat([sens, virtual], ignore_index=True)


def area_net_mw(bids: pd.DataFrame, taken: np.ndarray, node_areas: pd.DataFrame, needs: pd.DataFrame) -> np.ndarray:
    """Per need row: the net MW (up positive) already activated in its area and interval."""
    if not len(needs):
        return np.zeros(0)
    on = taken > 0
    act = pd.DataFrame(
        {
            "node_id": bids["node_id"].to_numpy()[on],
            "t": bids["t"].to_numpy()[on],
            "mw": (bids["sign"].to_numpy() * taken)[on],
        }
    )
    net = act.merge(node_areas[["node_id", "area_id"]], on="node_id").groupby(["area_id", "t"])["mw"].sum()
    return net.reindex(pd.MultiIndex.from_frame(needs[["area_id", "t"]])).fillna(0.0).to_numpy()


def _bids_for_dso(bids: pd.DataFrame, needs: pd.DataFrame, na: pd.DataFrame, dso: str) -> pd.DataFrame:
    """Bids of ``dso`` that sit in one of its need areas at the need's interval and direction,
    plus the other bids of their blocks (a block is accepted whole or at one fraction)."""
    mine = bids[bids["dso_id"] == dso]
    hit = (
        mine[["pos", "node_id", "t", "direction"]]
        .merge(na[["node_id", "area_id"]], on="node_id")
        .merge(needs[["area_id", "t", "direction"]], on=["area_id", "t", "direction"])
    )
    keep = mine["pos"].isin(hit["pos"])
    blocks = mine.loc[keep, "block_id"].dropna().unique()
    keep |= mine["block_id"].isin(blocks)
    return mine[keep]


def _scope(network: pd.DataFrame, scope: ConstraintScope) -> pd.DataFrame:
    if scope in (ConstraintScope.ALL, ConstraintScope.OWN):
        return network
    if scope is ConstraintScope.NONE:
        return network.iloc[:0]
    tso = network["owner_id"] == TSO_ID
    return network[tso] if scope is ConstraintScope.TRANSMISSION else network[~tso]


def _signals_for(signals: pd.DataFrame, mode: SignalMode) -> pd.DataFrame:
    if mode is SignalMode.NONE:
        return signals.iloc[:0]
    if mode is SignalMode.RED:
        return signals[signals["state"] == SignalState.RED]
    return signals


def computed_signals(
    prep: Prepared, network: pd.DataFrame, node_areas: pd.DataFrame, amber_margin: float, bids: pd.DataFrame
) -> pd.DataFrame:
    """The DSOs' own traffic lights from the headroom earlier steps left on their limits.

    For each area and interval, the up (down) headroom is the smallest MW an activation at
    one of the area's nodes may still add without breaking one of the area's DSO's own
    constraints (``network`` holds the flows after earlier steps): ``(max - flow) / f`` for
    a factor ``f > 0``, ``(flow - min) / -f`` for ``f < 0`` (down: the other side). ``red``
    where neither direction has headroom left, ``amber`` (with both headrooms) where one
    of them is below ``amber_margin`` x the limit's size or below the capacity still offered
    in the area in that direction (so the TSO can never take more than the limit allows),
    ``green`` (no row) otherwise.
    """
    cols = ["dso_id", "area_id", "t", "state", "headroom_up_mw", "headroom_down_mw"]
    rows = network.loc[
        network["owner_id"] != TSO_ID, ["constraint_id", "owner_id", "t", "base_mw", "max_flow_mw", "min_flow_mw"]
    ]
    if not len(rows):
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in ("dso_id", "area_id", "state") else float) for c in cols}
        )
    at = rows.merge(prep.sens, on="constraint_id").merge(node_areas, on="node_id")
    at = at[at["owner_id"] == at["dso_id"]]
    f = at["factor"].to_numpy()
    room_max = (at["max_flow_mw"] - at["base_mw"]).to_numpy()
    room_min = (at["base_mw"] - at["min_flow_mw"]).to_numpy()
    with np.errstate(divide="ignore"):
        up = np.where(f > 0, room_max / f, np.where(f < 0, room_min / -f, np.inf))
        down = np.where(f > 0, room_min / f, np.where(f < 0, room_max / -f, np.inf))
    size = (at["max_flow_mw"] - at["min_flow_mw"]).abs().to_numpy() / 2 / np.maximum(np.abs(f), 1e-12)
    lights = at[["dso_id", "area_id", "t"]].assign(
        headroom_up_mw=np.clip(up, 0.0, None), headroom_down_mw=np.clip(down, 0.0, None), size=size
    )
    g = lights.groupby(["dso_id", "area_id", "t"], as_index=False).agg(
        headroom_up_mw=("headroom_up_mw", "min"), headroom_down_mw=("headroom_down_mw", "min"), size=("size", "min")
    )
    offered = (
        bids.loc[bids["cap_mw"] > 0, ["node_id", "t", "direction", "cap_mw"]]
        .merge(node_areas[["node_id", "area_id"]], on="node_id")
        .pivot_table(index=["area_id", "t"], columns="direction", values="cap_mw", aggfunc="sum", fill_value=0.0)
    )
    key = pd.MultiIndex.from_frame(g[["area_id", "t"]])
    up_offer = offered.get(Direction.UP.value, pd.Series(dtype=float)).reindex(key).fillna(0.0).to_numpy()
    down_offer = offered.get(Direction.DOWN.value, pd.Series(dtype=float)).reindex(key).fillna(0.0).to_numpy()
    red = (g["headroom_up_mw"] <= 1e-9) & (g["headroom_down_mw"] <= 1e-9)
    tight = np.minimum(g["headroom_up_mw"], g["headroom_down_mw"]) < amber_margin * g["size"]
    short = (g["headroom_up_mw"].to_numpy() < up_offer) | (g["headroom_down_mw"].to_numpy() < down_offer)
    amber = ~red & (tight | short)
    g["state"] = np.where(red, SignalState.RED.value, np.where(amber, SignalState.AMBER.value, SignalState.GREEN.value))
    return g.loc[g["state"] != SignalState.GREEN.value, cols].reset_index(drop=True)


SEVERITY = {SignalState.GREEN.value: 0, SignalState.AMBER.value: 1, SignalState.RED.value: 2}


def strictest(given: pd.DataFrame, computed: pd.DataFrame) -> pd.DataFrame:
    """Per area and interval, the stricter of the batch's published light and the computed
    one: the worse state and the smaller headroom in each direction (a DSO's refreshed
    light is never looser than what it published)."""
    cols = ["dso_id", "area_id", "t", "state", "headroom_up_mw", "headroom_down_mw"]
    both = pd.concat([given[cols], computed[cols]], ignore_index=True)
    if not len(both):
        return both
    both["severity"] = both["state"].map(SEVERITY)
    g = both.groupby(["dso_id", "area_id", "t"], as_index=False).agg(
        severity=("severity", "max"),
        headroom_up_mw=("headroom_up_mw", "min"),
        headroom_down_mw=("headroom_down_mw", "min"),
    )
    g["state"] = g["severity"].map({v: k for k, v in SEVERITY.items()})
    return g[cols]


def prequalified_cap(bids: pd.DataFrame, network: pd.DataFrame, prep: Prepared) -> np.ndarray:
    """Remaining capacity each bid can deliver alone without breaking a DSO constraint.

    For every DSO-owned network row the bid moves (``a = factor * sign``), the headroom
    left after earlier steps allows ``(max - flow) / a`` when ``a > 0`` and
    ``(flow - min) / -a`` when ``a < 0``; the bid keeps the smallest of these.
    """
    cap = bids["cap_mw"].to_numpy().copy()
    dist = network["owner_id"].to_numpy() != TSO_ID
    a = prep.net_matrix.tocoo()
    keep = dist[a.row]
    rows, cols, val = a.row[keep], a.col[keep], a.data[keep]
    base = network["base_mw"].to_numpy()[rows]
    head = np.where(
        val > 0,
        (network["max_flow_mw"].to_numpy()[rows] - base) / val,
        (base - network["min_flow_mw"].to_numpy()[rows]) / -val,
    )
    head = np.clip(head, 0.0, None)
    limit = np.full(len(cap), np.inf)
    np.minimum.at(limit, cols, head)
    return np.minimum(cap, limit)
