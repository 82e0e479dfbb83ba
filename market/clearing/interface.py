"""Layered decomposition: each DSO offers its remaining flexibility at its T-D interface.

The report's laminar coordination (Total DSO, UK Future World 1, AEMO layered): the TSO
never sees a DER bid. Per interface, interval and direction the DSO passes up a stepwise
price-quantity curve of at most ``interface_steps`` bands of what it can deliver there
without breaking its own limits or undoing its own needs; the TSO clears the curves only
(its model grows with interfaces x intervals x bands, not with the number of DER), and the
DSO disaggregates every accepted MW to the bids behind it, in merit order, within its limits.

**Interfaces.** A DSO's bids whose nodes move the TSO's constraints alike (the same factor
on every TSO-owned constraint) sit behind one interface: the TSO's network model is exact
for the curve, whatever the DSO dispatches behind it. A radial DSO under one HV/MV
transformer has one interface; a DSO fed at several points has one per feeding point.

**Bands.** The bids of an interface, interval and direction are put in merit order (price,
then ``bid_id``) and cut into ``interface_steps`` bands of equal offered MW. ``Q_k`` is the
most the DSO can deliver with the bids of bands ``0..k`` (a max-flow LP over the DSO's own
rows, each direction on its own; without DSO rows, the offered MW). Band ``k`` is offered
as ``Q_k - Q_(k-1)`` MW at the dearest price among its bids: every bid behind it is in the
money at that price, and with fewer bands the TSO pays a *price of decomposition*.

**Not passed up as curves.** Bids with a block, a minimum quantity or an exclusive group
(they cannot be split into a band), which the DSO forwards individually — checked
together, in merit order, against its limits, with the room they could take reserved from
the curves (:func:`market.clearing.forwarding.forwarded_together`), so whatever the TSO accepts fits — and bids that
reach the TSO directly (``route = "tso-direct"``, or at least ``direct_min_mw``). The DSO
does not offer flexibility that would undo one of its own needs: bids moving a need's area
against the need's direction in its interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from market.clearing.areas import in_red_area
from market.clearing.formulation import StepInput
from market.clearing.forwarding import forwarded_together
from market.clearing.ir import LinearModel, SolveStatus
from market.clearing.results import ModelStats
from market.clearing.solvers import solve
from market.enums import TSO_ID, Operator
from market.errors import SolverError

EPS_MW = 1e-9
log = logging.getLogger("flexmarket")
GROUP = ["interface_id", "t", "direction"]


def group_codes(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """0-based code per row of its group by ``cols``, numbered in order of first appearance."""
    return np.asarray(df.groupby(cols, sort=False, observed=True).ngroup().to_numpy(), dtype=int)


def interface_ids(bids: pd.DataFrame, sens: pd.DataFrame, network: pd.DataFrame) -> pd.Series:
    """Per bid: its DSO's interface (``<dso>/if<k>``), one per distinct set of TSO-constraint
    factors of its node (``k`` in order of the sorted signatures, so ids are stable)."""
    tso_cons = network.loc[network["owner_id"] == TSO_ID, "constraint_id"].unique()
    s = sens[sens["constraint_id"].isin(tso_cons)].sort_values(["node_id", "constraint_id"])
    sig = (s["constraint_id"].astype(str) + "=" + s["factor"].round(9).astype(str)).groupby(s["node_id"]).agg("|".join)
    node_sig = bids["node_id"].map(sig).fillna("")
    key = bids["dso_id"].astype(str) + "\n" + node_sig
    codes = pd.Series(pd.factorize(key, sort=True)[0], index=bids.index)
    first = codes.groupby(bids["dso_id"]).transform("min")
    return bids["dso_id"].astype(str) + "/if" + (codes - first).astype(str)


def curve_eligible(bids: pd.DataFrame) -> np.ndarray:
    """Bids a DSO can merge into a curve: offered for balancing, divisible, passed up
    through it, with MW left."""
    return (
        bids["tso_ok"].to_numpy()
        & bids["block_id"].isna().to_numpy()
        & bids["exclusive_group"].isna().to_numpy()
        & (bids["min_mw"].to_numpy() <= 0)
        & ~bids["direct"].to_numpy()
        & (bids["cap_mw"].to_numpy() > EPS_MW)
    )


def assign_bands(bids: pd.DataFrame, k: int) -> np.ndarray:
    """Per bid: its band ``0..k-1`` within its group, by merit order and equal offered MW."""
    order = bids.sort_values([*GROUP, "price_eur_mwh", "bid_id"]).index
    b = bids.loc[order]
    cap = b["cap_mw"].to_numpy()
    codes = group_codes(b, GROUP)
    total = np.bincount(codes, weights=cap)[codes]
    before = pd.Series(cap).groupby(codes).cumsum().to_numpy() - cap
    band = np.minimum(k - 1, np.floor(k * before / np.maximum(total, EPS_MW) + 1e-12)).astype(int)
    return pd.Series(band, index=order).reindex(bids.index).to_numpy()


def dso_limits(
    own: pd.DataFrame, network: pd.DataFrame, net_matrix: sp.csr_matrix, signals: pd.DataFrame, node_areas: pd.DataFrame
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The rows a DSO keeps when it offers or disaggregates ``own`` (its bids): its network
    rows (room to move each, never a bound that forces an existing violation back) and its
    published amber headroom per area, interval and direction. Red areas are left out of
    the offer before (their bids' capacity is 0)."""
    dso = str(own["dso_id"].iat[0])
    rows = np.flatnonzero(network["owner_id"].to_numpy() == dso)
    base = network["base_mw"].to_numpy()[rows]
    hi = np.maximum(network["max_flow_mw"].to_numpy()[rows] - base, 0.0)
    lo = np.minimum(network["min_flow_mw"].to_numpy()[rows] - base, 0.0)
    a = net_matrix[rows][:, own["pos"].to_numpy(dtype=np.int64)]
    amber = signals[(signals["state"] == "amber") & (signals["dso_id"] == dso)] if len(signals) else signals
    if not len(amber):
        return a.tocsr(), hi, lo
    at = (
        own[["node_id", "t", "direction"]]
        .assign(j=np.arange(len(own)))
        .merge(node_areas[["node_id", "area_id"]], on="node_id")
        .merge(amber[["area_id", "t", "headroom_up_mw", "headroom_down_mw"]], on=["area_id", "t"])
    )
    at["room"] = np.where(at["direction"] == "up", at["headroom_up_mw"], at["headroom_down_mw"])
    r = group_codes(at, ["area_id", "t", "direction"])
    room = at.groupby(r)["room"].first().to_numpy()
    extra = sp.csr_matrix((np.ones(len(at)), (r, at["j"].to_numpy())), shape=(len(room), len(own)))
    return (
        sp.vstack([a, extra], format="csr"),
        np.concatenate([hi, room]),
        np.concatenate([lo, np.full(len(room), -np.inf)]),
    )


def deliverable(
    bids: pd.DataFrame,
    band: np.ndarray,
    k: int,
    a: sp.csr_matrix,
    hi: np.ndarray,
    lo: np.ndarray,
    name: str,
    options: dict[str, object] | None,
    reserved: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, ModelStats | None]:
    """``Q[i, j]``: most MW deliverable in group ``i`` with bands ``0..j`` (one LP over ``k``
    stacked copies; each direction against the rows on its own). ``a``: the DSO's rows x
    the DSO's bids (flow per MW accepted); ``reserved``: per direction (up, down), the flow
    on each row held for the bids the DSO forwards one by one (:mod:`market.clearing.forwarding`)."""
    codes = group_codes(bids, GROUP)
    n_g, n = int(codes.max(initial=-1)) + 1, len(bids)
    cap = bids["cap_mw"].to_numpy()
    touched = np.asarray(abs(a).sum(axis=0)).reshape(-1) > 0 if a.shape[0] else np.zeros(n, bool)
    lower = np.repeat(np.arange(k)[:, None], n, axis=1) >= band[None, :]  # copy j uses bands <= j
    x = np.where(lower, cap[None, :], 0.0)  # no DSO row touched: all of it is deliverable
    stats = None
    if touched.any():
        up = bids["sign"].to_numpy() > 0
        blocks = [a.multiply(up[None, :]).tocsr(), a.multiply(~up[None, :]).tocsr()]
        per_copy = sp.vstack(blocks, format="csr")
        m = LinearModel(name=f"{name}:curve")
        m.add_variable("x", np.zeros(k * n), x.reshape(-1), -np.ones(k * n))
        big = sp.block_diag([per_copy] * k, format="csr")
        up_held, down_held = reserved if reserved is not None else (np.zeros(len(hi)), np.zeros(len(hi)))
        room_hi = np.concatenate([hi - up_held, hi - down_held])
        room_lo = np.concatenate([lo - up_held, lo - down_held])
        m.add_constraint("room_max", {"x": big}, "<=", np.tile(room_hi, k))
        m.add_constraint("room_min", {"x": big}, ">=", np.tile(room_lo, k))
        values, stats = _solve_dso_model(m, name, "curve", options)
        x = np.clip(values["x"].reshape(k, n), 0.0, cap[None, :])
    q = np.stack([np.bincount(codes, weights=x[j], minlength=n_g) for j in range(k)], axis=1)
    return np.maximum.accumulate(np.round(q, 9), axis=1), stats


@dataclass(frozen=True)
class Offers:
    """What the DSOs pass up at their interfaces (:func:`offer_curves`)."""

    curves: pd.DataFrame  # one row per interface, interval, direction and band
    behind: pd.DataFrame  # the bids merged into the curves
    alone: pd.DataFrame  # the bids the TSO sees one by one (integer, or direct)
    stats: list[ModelStats]  # the DSOs' curve LPs


def offer_curves(
    inp: StepInput,
    network: pd.DataFrame,
    net_matrix: sp.csr_matrix,
    k: int,
    options: dict[str, object] | None,
) -> Offers:
    """Every DSO's interface curves, the bids behind them (with ``interface_id`` and
    ``band``) and the bids the TSO sees individually (forwarded or direct). ``network``/``net_matrix`` are the full
    batch network with the flows after earlier steps and its matrix over the batch's bids."""
    bids = inp.bids.copy()
    bids["interface_id"] = interface_ids(bids, inp.sens, network)
    red = in_red_area(bids, inp.signals, inp.node_areas)
    behind = bids[curve_eligible(bids) & ~red].copy()
    bids["alone"] = ~bids["pos"].isin(behind["pos"]) & bids["tso_ok"] & ~red & (bids["cap_mw"] > EPS_MW)
    checked = bids[bids["alone"] & ~bids["direct"]]  # forwarded one by one: the DSO checks them
    behind["band"] = assign_bands(behind, k) if len(behind) else 0
    curves, all_stats, dropped = [], [], []
    for dso in sorted(set(behind["dso_id"].dropna()) | set(checked["dso_id"].dropna())):
        own, one = behind[behind["dso_id"] == dso], checked[checked["dso_id"] == dso]
        union = pd.concat([f for f in (own, one) if len(f)])
        a, hi, lo = dso_limits(union, network, net_matrix, inp.signals, inp.node_areas)
        a = a.tocsc()
        keep, held = forwarded_together(one, a[:, len(own) :], hi, lo)
        dropped.append(one.loc[~keep, "pos"].to_numpy())
        if len(own):
            q, stats = deliverable(
                own, own["band"].to_numpy(), k, a[:, : len(own)], hi, lo, f"{inp.step}:{dso}", options, held
            )
            curves.append(_bands(own, q, k))
            all_stats += [stats] if stats else []
    bids["alone"] &= ~bids["pos"].isin(np.concatenate([np.zeros(0, int), *dropped]))
    if not curves:
        empty = pd.DataFrame(columns=[*GROUP, "dso_id", "sign", "band", "quantity_mw", "price_eur_mwh"])
        return Offers(empty, behind, bids[bids["alone"]], all_stats)
    return Offers(pd.concat(curves, ignore_index=True), behind, bids[bids["alone"]], all_stats)


def _bands(own: pd.DataFrame, q: np.ndarray, k: int) -> pd.DataFrame:
    """One row per group and band with MW > 0: ``Q_j - Q_(j-1)`` at the band's dearest price."""
    groups = own.drop_duplicates(GROUP)[[*GROUP, "dso_id", "sign"]]  # row i = group code i of deliverable()
    inc = np.diff(np.concatenate([np.zeros((len(q), 1)), q], axis=1), axis=1)
    price = own.groupby([*GROUP, "band"])["price_eur_mwh"].max()
    rows = groups.reset_index(drop=True).loc[np.repeat(np.arange(len(groups)), k)].reset_index(drop=True)
    rows["band"] = np.tile(np.arange(k), len(groups))
    rows["quantity_mw"] = inc.reshape(-1)
    rows = rows[rows["quantity_mw"] > EPS_MW].copy()
    # a band's MW may come from cheaper bands' bids the limits held back: price its own bids,
    # or (a band of none) the dearest bid below it
    idx = pd.MultiIndex.from_frame(rows[[*GROUP, "band"]])
    own_price = price.reindex(idx).to_numpy()
    below = price.groupby(level=[0, 1, 2]).cummax().reindex(idx).to_numpy()
    rows["price_eur_mwh"] = np.where(np.isnan(own_price), below, own_price)
    return rows.reset_index(drop=True)


NUMERIC_COLUMNS = ("pos", "t", "sign", "cap_mw", "quantity_mw", "min_mw", "cost", "service_set")


def tso_view(inp: StepInput, offers: Offers, network: pd.DataFrame) -> StepInput:
    """The TSO step's input: one pseudo-bid per band (node = its interface, with the TSO
    factors of the nodes behind it) and the bids passed up individually."""
    curves, behind = offers.curves, offers.behind
    alone = offers.alone.drop(columns=["interface_id", "alone"])
    n = len(curves)
    pseudo = pd.DataFrame(
        {
            "bid_id": curves["interface_id"]
            + "/t"
            + curves["t"].astype(str)
            + "/"
            + curves["direction"]
            + "/b"
            + curves["band"].astype(str),
            "pos": -1 - np.arange(n),
            "t": curves["t"].to_numpy(dtype=np.int64),
            "sign": curves["sign"].to_numpy(dtype=np.float64),
            "direction": curves["direction"].to_numpy(),
            "cap_mw": curves["quantity_mw"].to_numpy(),
            "quantity_mw": curves["quantity_mw"].to_numpy(),
            "min_mw": 0.0,
            "min_quantity_mw": 0.0,
            "cost": curves["price_eur_mwh"].to_numpy(),
            "price_eur_mwh": curves["price_eur_mwh"].to_numpy(),
            "node_id": curves["interface_id"].to_numpy(),
            "dso_id": curves["dso_id"].to_numpy(),
            "block_id": None,
            "exclusive_group": None,
            "tso_ok": True,
            "dso_ok": False,
            "services": "tso_balancing",
            # a service set of its own: a band is never tied with a bid that serves both buyers
            "service_set": int(inp.bids["service_set"].max()) + 1 if len(inp.bids) else 0,
            "direct": False,
        }
    )
    rep = behind.drop_duplicates("interface_id")[["interface_id", "node_id"]]
    tso_cons = network.loc[network["owner_id"] == TSO_ID, "constraint_id"].unique()
    s = inp.sens[inp.sens["constraint_id"].isin(tso_cons)]
    iface_sens = rep.merge(s, on="node_id")[["constraint_id", "interface_id", "factor"]]
    iface_sens = iface_sens.rename(columns={"interface_id": "node_id"})
    pseudo = pseudo[[c for c in pseudo.columns if c in alone.columns or c == "pos"]]
    # an empty side must not decide the dtypes (an object ``t`` cannot index the balance rows)
    parts = [f for f in (alone, pseudo) if len(f)] or [alone]
    bids = pd.concat(parts, ignore_index=True).astype({c: alone[c].dtype for c in NUMERIC_COLUMNS if c in alone})
    return replace(inp, bids=bids, sens=pd.concat([inp.sens, iface_sens], ignore_index=True))


def accepted(awards: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """MW the TSO accepted per group (from the pseudo-bid awards) and its clearing price."""
    pseudo = awards[awards["pos"] < 0]
    rows = curves.iloc[(-1 - pseudo["pos"].to_numpy()).astype(int)][GROUP].reset_index(drop=True)
    rows["quantity_mw"] = pseudo["quantity_mw"].to_numpy()
    rows["clearing_price_eur_mwh"] = pseudo["clearing_price_eur_mwh"].to_numpy()
    rows["need_id"] = pseudo["need_id"].to_numpy()
    return rows.groupby(GROUP, as_index=False).agg(
        quantity_mw=("quantity_mw", "sum"),
        clearing_price_eur_mwh=("clearing_price_eur_mwh", "max"),
        need_id=("need_id", "first"),
    )


def disaggregate(
    inp: StepInput,
    behind: pd.DataFrame,
    acc: pd.DataFrame,
    network: pd.DataFrame,
    net_matrix: sp.csr_matrix,
    options: dict[str, object] | None,
) -> tuple[pd.DataFrame, list[ModelStats]]:
    """Each accepted MW to the bids behind its interface, in merit order (price, ``bid_id``)
    within the DSO's limits: a prefix fill where it keeps every DSO row, else the DSO's
    least-cost LP (ties then as HiGHS leaves them; the fill is tried first)."""
    name, signals, node_areas = inp.step, inp.signals, inp.node_areas
    if not len(acc):
        return behind.iloc[:0].assign(quantity_mw=0.0, need_id=None, clearing_price_eur_mwh=0.0), []
    b = behind.merge(acc, on=GROUP, suffixes=("", "_acc"))
    b = b.sort_values([*GROUP, "price_eur_mwh", "bid_id"]).reset_index(drop=True)
    codes = group_codes(b, GROUP)
    cap = b["cap_mw"].to_numpy()
    before = pd.Series(cap).groupby(codes).cumsum().to_numpy() - cap
    b["x"] = np.clip(b["quantity_mw_acc"].to_numpy() - before, 0.0, cap)
    stats: list[ModelStats] = []
    frames = []
    for dso, own in b.groupby("dso_id", sort=True, observed=True):
        a, hi, lo = dso_limits(own, network, net_matrix, signals, node_areas)
        move = a @ own["x"].to_numpy()
        if a.shape[0] and (np.any(move > hi + 1e-7) or np.any(move < lo - 1e-7)):
            own, st = _least_cost(own, a, hi, lo, f"{name}:{dso}", options)
            stats.append(st)
        frames.append(own)
    out = pd.concat(frames, ignore_index=True)
    out = out[out["x"] > EPS_MW]
    return out.assign(quantity_mw=out["x"]).drop(columns=["x"]), stats


def _least_cost(
    own: pd.DataFrame, a: sp.csr_matrix, hi: np.ndarray, lo: np.ndarray, name: str, options: dict[str, object] | None
) -> tuple[pd.DataFrame, ModelStats]:
    codes = group_codes(own, GROUP)
    target = own.groupby(codes)["quantity_mw_acc"].first().to_numpy()
    n, g, r = len(own), len(target), a.shape[0]
    penalty = 1e6  # MW short of what the TSO accepted, or over a DSO limit (never cheaper than a bid)
    m = LinearModel(name=f"{name}:disaggregate")
    m.add_variable("x", np.zeros(n), own["cap_mw"].to_numpy(), own["price_eur_mwh"].to_numpy())
    m.add_variable("short", np.zeros(g), np.full(g, np.inf), np.full(g, penalty))
    m.add_variable("over", np.zeros(r), np.full(r, np.inf), np.full(r, 2 * penalty))
    m.add_variable("under", np.zeros(r), np.full(r, np.inf), np.full(r, 2 * penalty))
    pick = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(g, n))
    m.add_constraint("deliver", {"x": pick, "short": sp.identity(g, format="csr")}, "==", target)
    m.add_constraint("room_max", {"x": a, "over": -sp.identity(r, format="csr")}, "<=", hi)
    m.add_constraint("room_min", {"x": a, "under": sp.identity(r, format="csr")}, ">=", lo)
    # of equal-cost splits, the one that fills in merit order (price, then bid_id): the same
    # whether the horizon is cleared whole or in stretches
    merit = np.lexsort((own["bid_id"].to_numpy(), own["price_eur_mwh"].to_numpy()))
    rank = np.empty(n)
    rank[merit] = np.arange(n)
    m.tie_weights = {"x": rank}
    values, st = _solve_dso_model(m, name, "disaggregate", options)
    short = float(values["short"].sum())
    if short > 1e-6:
        log.warning("%s: %.3f MW the TSO accepted could not be delivered within the DSO's limits", m.name, short)
    x = np.clip(values["x"], 0.0, own["cap_mw"].to_numpy())
    x[x < EPS_MW] = 0.0
    return own.assign(x=x), st


def _solve_dso_model(
    m: LinearModel, name: str, kind: str, options: dict[str, object] | None
) -> tuple[dict[str, np.ndarray], ModelStats]:
    """Solve one of a DSO's own LPs (``name`` = ``step:dso``) and describe it as the DSO's."""
    sol = solve(m, options)
    if sol.status is not SolveStatus.OPTIMAL:
        raise SolverError(f"{m.name}: HiGHS returned {sol.status.value} ({sol.detail})")
    step, dso = name.split(":")[0], name.split(":")[-1]
    stats = ModelStats(
        step,
        f"{dso}:{kind}",
        m.n_variables,
        m.n_constraints,
        0,
        sol.build_seconds,
        sol.solve_seconds,
        sol.status.value,
        sol.objective,
        operator=Operator.DSO.value,
    )
    return sol.values, stats
