"""From solved models to the run's tables (awards, prices, unmet, flows, ...)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.batch import Batch
from market.design import Design
from market.lp import LinearModel, Solution
from market.model import StepIndex, StepInput
from market.results import ClearingResult, ClearingStatus, ModelStats
from market.schemas import SYSTEM_AREA, TSO_ID

PRICE_DECIMALS = 3
MW_DECIMALS = 6


def _col_value(model: LinearModel, marg: dict[str, np.ndarray], var: str, families: tuple[str, ...]) -> np.ndarray:
    """``sum_f A_f[:, var]^T m_f``: what one more unit of each column is worth to those rows."""
    out = np.zeros(model.variables[var].size)
    for name in families:
        con = model.constraints.get(name)
        if con is None:
            continue
        for v, mat in con.blocks:
            if v == var:
                out += mat.T @ marg[name]
    return out


def read_step(inp: StepInput, model: LinearModel, index: StepIndex, sol: Solution, priced: Solution, stats: ModelStats):  # type: ignore[no-untyped-def]
    from market.clearing import StepOutcome

    bids = index.bids
    x = sol.values["x"]
    yd = np.zeros(len(bids))
    yd[index.members] = sol.values["yd"]
    yd = np.minimum(yd, x)
    tso_q = np.where(bids["tso_eff"], x - yd, 0.0)
    tso_q[np.abs(tso_q) < 1e-9] = 0.0
    marg = priced.marginals
    lam = np.zeros(len(inp.prior_net_mw))  # balance dual per interval of the batch
    if "balance" in marg:
        lam[index.balance_t] = marg["balance"]
    t = bids["t"].to_numpy()
    sign = bids["sign"].to_numpy()
    energy = sign * lam[t]  # zero where the step has no balance row
    congestion = _col_value(model, marg, "x", ("flow_max", "flow_min"))
    amber_rent = _col_value(model, marg, "x", ("amber",))
    dso_value = np.zeros(len(bids))
    dso_value[index.members] = _col_value(model, marg, "yd", ("dso_need",))
    need_of = index.pairs.groupby("pos")["r"].min()
    dso_needs = inp.dso_needs.reset_index(drop=True)

    rows = []
    tso_pos = np.flatnonzero(tso_q > 0)
    if len(tso_pos):
        tso_need = _tso_need_ids(inp.tso_needs, bids.iloc[tso_pos])
        rows.append(
            pd.DataFrame(
                {
                    "pos": tso_pos,
                    "bid_id": bids["bid_id"].to_numpy()[tso_pos],
                    "buyer_id": TSO_ID,
                    "service": "tso_balancing",
                    "need_id": tso_need,
                    "area_id": SYSTEM_AREA,
                    "quantity_mw": tso_q[tso_pos],
                    "clearing_price_eur_mwh": (energy + congestion + amber_rent)[tso_pos],
                    "step": stats.step,
                }
            )
        )
    dso_pos = np.flatnonzero(yd > 0)
    if len(dso_pos):
        r = need_of.reindex(dso_pos).to_numpy().astype(int)
        rows.append(
            pd.DataFrame(
                {
                    "pos": dso_pos,
                    "bid_id": bids["bid_id"].to_numpy()[dso_pos],
                    "buyer_id": dso_needs["buyer_id"].to_numpy()[r],
                    "service": "dso_congestion",
                    "need_id": dso_needs["need_id"].to_numpy()[r],
                    "area_id": dso_needs["area_id"].to_numpy()[r],
                    "quantity_mw": yd[dso_pos],
                    "clearing_price_eur_mwh": (energy + congestion + dso_value)[dso_pos],
                    "step": stats.step,
                }
            )
        )
    awards = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(
            columns=[
                "pos",
                "bid_id",
                "buyer_id",
                "service",
                "need_id",
                "area_id",
                "quantity_mw",
                "clearing_price_eur_mwh",
                "step",
            ]
        )
    )
    # The batch position of each bid (the step may hold a subset of the batch).
    awards["pos"] = bids["pos_batch"].to_numpy()[awards["pos"].to_numpy(dtype=int)]

    needs = _need_results(inp, sol, priced, lam)
    node_prices = _node_prices(inp, index, marg, lam, stats.step)
    liquidity = (
        pd.DataFrame(
            {
                "buyer_id": ["tso"] * int(bids["tso_eff"].sum())
                + list(dso_needs["buyer_id"].to_numpy()[need_of.to_numpy().astype(int)]),
                "quantity_mw": np.concatenate(
                    [
                        bids.loc[bids["tso_eff"], "cap_mw"].to_numpy(),
                        bids["cap_mw"].to_numpy()[need_of.index.to_numpy()],
                    ]
                ),
            }
        )
        .groupby("buyer_id", as_index=False)
        .agg(bids=("quantity_mw", "size"), offered_mw=("quantity_mw", "sum"))
    )
    liquidity["step"] = stats.step
    return StepOutcome(awards, needs, node_prices, liquidity, stats)


def _node_prices(
    inp: StepInput, index: StepIndex, marg: dict[str, np.ndarray], lam: np.ndarray, step: str
) -> pd.DataFrame:
    """Up-price per node and balance interval: energy (balance dual) + congestion.

    ``congestion(n, t) = sum_c (m_max + m_min)(c, t) * factor(c, n)``: the value of one MW of
    up activation at ``n`` through the network rows (DC-OPF locational price).
    """
    if not len(index.balance_t):
        return pd.DataFrame()
    nodes = np.unique(inp.node_areas["node_id"].to_numpy().astype(str))
    grid = pd.DataFrame({"node_id": np.repeat(nodes, len(index.balance_t)), "t": np.tile(index.balance_t, len(nodes))})
    net = inp.network.reset_index(drop=True)
    if len(net) and "flow_max" in marg:
        rows = net[["constraint_id", "t"]].assign(m=marg["flow_max"] + marg["flow_min"])
        cong = rows.merge(inp.sens, on="constraint_id")
        cong = (
            cong.assign(v=cong["m"] * cong["factor"])
            .groupby(["node_id", "t"])["v"]
            .sum()
            .rename("congestion_eur_mwh")
            .reset_index()
        )
        grid = grid.merge(cong, on=["node_id", "t"], how="left")
    else:
        grid["congestion_eur_mwh"] = 0.0
    grid["congestion_eur_mwh"] = grid["congestion_eur_mwh"].fillna(0.0)
    grid["energy_eur_mwh"] = lam[grid["t"].to_numpy()]
    grid["step"] = step
    return grid


def _tso_need_ids(tso_needs: pd.DataFrame, bids: pd.DataFrame) -> np.ndarray:
    key = tso_needs.drop_duplicates(["t", "direction"]).set_index(["t", "direction"])["need_id"]
    idx = pd.MultiIndex.from_arrays([bids["t"], bids["direction"]])
    return key.reindex(idx).to_numpy()


def _need_results(inp: StepInput, sol: Solution, priced: Solution, lam: np.ndarray) -> pd.DataFrame:
    frames = []
    for fam, needs, rows in (("w_tso", inp.tso_needs, "balance"), ("w_dso", inp.dso_needs, "dso_need")):
        if not len(needs):
            continue
        nd = needs.reset_index(drop=True)
        w = sol.values[fam]
        mm = nd["max_price_eur_mwh"].isna().to_numpy()
        served = np.where(mm, nd["quantity_mw"].to_numpy() - w, w)
        t = nd["t"].to_numpy()
        energy = nd["sign"].to_numpy() * lam[t]  # lam is zero where the step has no balance row
        congestion = priced.marginals.get("dso_need", np.zeros(len(nd))) if rows == "dso_need" else np.zeros(len(nd))
        frames.append(
            pd.DataFrame(
                {
                    "need_id": nd["need_id"],
                    "served_mw": served,
                    "unmet_mw": np.where(mm, w, 0.0),
                    "energy_eur_mwh": energy,
                    "congestion_eur_mwh": congestion,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["need_id", "served_mw", "unmet_mw", "energy_eur_mwh", "congestion_eur_mwh"])
    return pd.concat(frames, ignore_index=True)


def make_whole_eur(commitment: np.ndarray, shortfall_eur: np.ndarray, energy_mwh: np.ndarray) -> np.ndarray:
    """Make-whole (uplift) payment per award under pay-as-clear, in EUR.

    Integer bids (blocks, minimum quantities) are priced from the LP with their on/off
    decisions fixed (IP pricing), so an accepted unit can earn less at the clearing price
    than it bid (a paradoxically accepted bid). Its buyers then pay the difference: per
    commitment (a block over all its intervals, otherwise the bid), ``max(0, sum(bid price -
    clearing price) x MWh)``, shared over the commitment's awards pro rata to energy.
    Divisible bids never need it: LP prices never fall below an accepted divisible bid.
    """
    if not len(commitment):
        return np.zeros(0)
    keys, inverse = np.unique(commitment.astype(str), return_inverse=True)
    short = np.bincount(inverse, weights=shortfall_eur, minlength=len(keys))
    energy = np.bincount(inverse, weights=energy_mwh, minlength=len(keys))
    # below the price resolution (0.001 EUR/MWh, which also hides the tie nudge): none owed
    owed = np.where(short > 10.0**-PRICE_DECIMALS * energy + 1e-9, short, 0.0)
    share = np.divide(energy_mwh, energy[inverse], out=np.zeros(len(energy_mwh)), where=energy[inverse] > 0)
    return owed[inverse] * share


def assemble(batch: Batch, prep, design: Design, pricing: str, outcomes: list) -> ClearingResult:  # type: ignore[no-untyped-def]
    from market.metrics import compute_metrics

    cfg = batch.config
    h = cfg.interval_hours
    bids = prep.bids
    aw = (
        pd.concat([o.awards for o in outcomes if len(o.awards)], ignore_index=True)
        if any(len(o.awards) for o in outcomes)
        else pd.DataFrame(
            columns=[
                "pos",
                "bid_id",
                "buyer_id",
                "service",
                "need_id",
                "area_id",
                "quantity_mw",
                "clearing_price_eur_mwh",
                "step",
            ]
        )
    )
    b = bids.iloc[aw["pos"].astype(int).to_numpy()].reset_index(drop=True)
    paid = (
        b["price_eur_mwh"].to_numpy()
        if pricing == "pay-as-bid"
        else aw["clearing_price_eur_mwh"].to_numpy().astype(float)
    )
    q = aw["quantity_mw"].to_numpy().astype(float)
    awards = (
        pd.DataFrame(
            {
                "bid_id": aw["bid_id"].to_numpy(),
                "der_id": b["der_id"],
                "aggregator_id": b["aggregator_id"],
                "dso_id": b["dso_id"],
                "node_id": b["node_id"],
                "buyer_id": aw["buyer_id"].to_numpy(),
                "service": aw["service"].to_numpy(),
                "need_id": aw["need_id"].to_numpy(),
                "area_id": aw["area_id"].to_numpy(),
                "interval_start": b["interval_start"],
                "direction": b["direction"],
                "quantity_mw": np.round(q, MW_DECIMALS),
                "bid_price_eur_mwh": b["price_eur_mwh"],
                "nominated_baseline_mw": b["nominated_baseline_mw"],
                "clearing_price_eur_mwh": np.round(
                    aw["clearing_price_eur_mwh"].to_numpy().astype(float), PRICE_DECIMALS
                ),
                "price_eur_mwh": np.round(paid, PRICE_DECIMALS),
                "pricing": pricing,
                "energy_mwh": np.round(q * h, MW_DECIMALS),
                "cost_eur": np.round(np.round(paid, PRICE_DECIMALS) * q * h, 6),
                "make_whole_eur": np.round(
                    make_whole_eur(
                        commitment=b["block_id"].fillna(b["bid_id"]).to_numpy(),
                        shortfall_eur=(b["price_eur_mwh"].to_numpy() - paid) * q * h,
                        energy_mwh=q * h,
                    ),
                    6,
                )
                if pricing == "pay-as-clear"
                else 0.0,
                "step": aw["step"].to_numpy(),
            }
        )
        .sort_values(["interval_start", "bid_id", "buyer_id"])
        .reset_index(drop=True)
    )

    need_res = (
        pd.concat([o.needs for o in outcomes if len(o.needs)], ignore_index=True)
        if any(len(o.needs) for o in outcomes)
        else pd.DataFrame(columns=["need_id", "served_mw", "unmet_mw", "energy_eur_mwh", "congestion_eur_mwh"])
    )
    needs = batch.needs.merge(need_res, on="need_id", how="left", validate="one_to_one")
    not_cleared = needs["served_mw"].isna()
    mm = needs["max_price_eur_mwh"].isna()
    needs["served_mw"] = needs["served_mw"].fillna(0.0)
    needs["unmet_mw"] = np.where(not_cleared & mm, needs["quantity_mw"], needs["unmet_mw"])
    needs["unmet_mw"] = needs["unmet_mw"].fillna(0.0)
    needs["cleared"] = ~not_cleared
    for c in ("served_mw", "unmet_mw"):
        needs[c] = np.round(needs[c].astype(float), MW_DECIMALS)
    prices = needs.loc[
        needs["cleared"], ["need_id", "buyer_id", "service", "area_id", "interval_start", "direction"]
    ].copy()
    prices["energy_eur_mwh"] = np.round(needs.loc[needs["cleared"], "energy_eur_mwh"].astype(float), PRICE_DECIMALS)
    prices["congestion_eur_mwh"] = np.round(
        needs.loc[needs["cleared"], "congestion_eur_mwh"].astype(float), PRICE_DECIMALS
    )
    prices["price_eur_mwh"] = np.round(prices["energy_eur_mwh"] + prices["congestion_eur_mwh"], PRICE_DECIMALS)
    prices = prices.sort_values(["interval_start", "buyer_id", "area_id", "direction"]).reset_index(drop=True)
    needs = needs.drop(columns=["energy_eur_mwh", "congestion_eur_mwh", "t", "sign"], errors="ignore")
    unmet = needs.loc[
        needs["unmet_mw"] > 0,
        ["need_id", "buyer_id", "service", "area_id", "interval_start", "direction", "quantity_mw", "unmet_mw"],
    ].reset_index(drop=True)
    unmet["unmet_mwh"] = np.round(unmet["unmet_mw"] * h, MW_DECIMALS)

    taken = np.zeros(len(bids))
    np.add.at(taken, aw["pos"].astype(int).to_numpy(), q)
    flows = _flows(prep, taken, cfg)
    imbalance = _imbalance(bids, taken, needs, prep.n_t, cfg)
    nps = [o.node_prices for o in outcomes if len(o.node_prices)]
    node_prices = (
        pd.concat(nps, ignore_index=True)
        if nps
        else pd.DataFrame(columns=["node_id", "t", "energy_eur_mwh", "congestion_eur_mwh", "step"])
    )
    node_prices["interval_start"] = cfg.start + node_prices["t"].astype(int) * cfg.interval
    node_prices["price_up_eur_mwh"] = node_prices["energy_eur_mwh"] + node_prices["congestion_eur_mwh"]
    for c in ("energy_eur_mwh", "congestion_eur_mwh", "price_up_eur_mwh"):
        node_prices[c] = np.round(node_prices[c].astype(float), PRICE_DECIMALS)
    node_prices = (
        node_prices[["node_id", "interval_start", "energy_eur_mwh", "congestion_eur_mwh", "price_up_eur_mwh", "step"]]
        .sort_values(["interval_start", "node_id"])
        .reset_index(drop=True)
    )
    liq = [o.liquidity for o in outcomes if len(o.liquidity)]
    liquidity = (
        pd.concat(liq).groupby(["step", "buyer_id"], as_index=False).sum()
        if liq
        else pd.DataFrame(columns=["step", "buyer_id", "bids", "offered_mw"])
    )
    stats = tuple(o.stats for o in outcomes)
    result = ClearingResult(
        design,
        pricing,
        ClearingStatus.OPTIMAL,
        awards,
        prices,
        node_prices,
        unmet,
        flows,
        imbalance,
        needs,
        liquidity,
        stats,
    )
    metrics = compute_metrics(batch, result)
    return ClearingResult(**{**result.__dict__, "metrics": metrics})


def _flows(prep, taken: np.ndarray, cfg) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    net = prep.network
    flow = net["base_mw"].to_numpy() + prep.net_matrix @ taken
    over = np.maximum(flow - net["max_flow_mw"].to_numpy(), 0)
    under = np.maximum(net["min_flow_mw"].to_numpy() - flow, 0)
    viol = np.where(over > 1e-9, over, np.where(under > 1e-9, under, 0.0))
    return pd.DataFrame(
        {
            "constraint_id": net["constraint_id"],
            "owner_id": net["owner_id"],
            "interval_start": net["interval_start"],
            "base_flow_mw": net["base_mw"],
            "flow_mw": np.round(flow, MW_DECIMALS),
            "min_flow_mw": net["min_flow_mw"],
            "max_flow_mw": net["max_flow_mw"],
            "limit_mw": np.where(over > 1e-9, net["max_flow_mw"], np.where(under > 1e-9, net["min_flow_mw"], np.nan)),
            "violation_mw": np.round(viol, MW_DECIMALS),
            "violation_mwh": np.round(viol * cfg.interval_hours, MW_DECIMALS),
        }
    )


def _imbalance(bids: pd.DataFrame, taken: np.ndarray, needs: pd.DataFrame, n_t: int, cfg) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Net activation minus the TSO need served, per interval (positive = surplus up)."""
    net = np.bincount(bids["t"], weights=bids["sign"] * taken, minlength=n_t)
    tso = needs[needs["buyer_id"] == TSO_ID]
    t = ((tso["interval_start"] - cfg.start) // cfg.interval).astype(int).to_numpy()
    sign = np.where(tso["direction"] == "up", 1.0, -1.0)
    served = np.bincount(t, weights=sign * tso["served_mw"].to_numpy(), minlength=n_t)
    imb = net - served
    return pd.DataFrame(
        {
            "interval_start": cfg.intervals,
            "net_activation_mw": np.round(net, MW_DECIMALS),
            "tso_need_served_mw": np.round(served, MW_DECIMALS),
            "imbalance_mw": np.round(imb, MW_DECIMALS),
        }
    )
