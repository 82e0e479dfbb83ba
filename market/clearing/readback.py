"""Reading one solved model back into the batch's terms: awards per buyer, need results,
node prices and liquidity (the inverse of :mod:`market.clearing.formulation`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.clearing.formulation import StepIndex, StepInput
from market.clearing.ir import LinearModel, Solution
from market.clearing.locate import expand_pairs
from market.clearing.results import ModelStats
from market.clearing.ties import splitmix64
from market.enums import SYSTEM_AREA, TSO_ID, Service

# The columns of a step's awards (``pos`` = the bid's row in the batch)
AWARD_PARTS = [
    "pos",
    "bid_id",
    "buyer_id",
    "service",
    "need_id",
    "area_id",
    "quantity_mw",
    "clearing_price_eur_mwh",
    "step",
    "part",
    "direct",
]
NEED_PARTS = ["need_id", "served_mw", "unmet_mw", "energy_eur_mwh", "congestion_eur_mwh"]


@dataclass
class StepOutcome:
    """What one solved model contributes: awarded MW, per-need results, prices."""

    awards: pd.DataFrame
    needs: pd.DataFrame
    node_prices: pd.DataFrame
    liquidity: pd.DataFrame
    stats: ModelStats


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


# ``sign`` and ``service_set`` split the bids exactly as ``direction`` and ``services`` do
TIE_KEY = ["t", "sign", "price_eur_mwh", "service_set", "tso_eff", "member", "column"]
SHARED_ROWS = ("balance", "flow_max", "flow_min", "amber", "dso_need", "dso_physical")


def column_signatures(model: LinearModel, index: StepIndex) -> np.ndarray:
    """Per bid: a hash of its ``x`` and ``yd`` columns over the rows bids share (balance,
    network, amber, DSO need rows). Two bids with the same signature appear with the same
    coefficients in the same rows: on those rows they are interchangeable."""
    sig = np.zeros(len(index.bids), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k, name in enumerate(SHARED_ROWS):
            con = model.constraints.get(name)
            if con is None:
                continue
            for var, mat in con.blocks:
                if var not in ("x", "yd"):
                    continue
                coo = mat.tocoo()
                cols = coo.col if var == "x" else index.members[coo.col]
                value = np.round(coo.data * 1e9).astype(np.int64).view(np.uint64)
                h = splitmix64(value ^ splitmix64(coo.row.astype(np.uint64) * np.uint64(2 * k + (var == "yd") + 1)))
                np.add.at(sig, cols, h)
    return sig


def order_ties(
    bids: pd.DataFrame, x: np.ndarray, yd: np.ndarray, signature: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-priced interchangeable bids taken in ``bid_id`` order.

    Interchangeable: divisible bids (no block, minimum or exclusive group) of one interval,
    direction, price, services and eligibility whose columns are identical in every row
    the bids share (``signature``; bids at different nodes qualify unless a network row or
    an area tells them apart). Moving accepted MW between them keeps every shared row's
    activity, the cost and feasibility, so the solution stays optimal and the published
    prices (the model's marginal values) stay valid. Within each such group the accepted
    total (and the DSO's share of it) is handed out to the bids in ``bid_id`` order (the
    step's bids are in batch order, which is ``bid_id`` order), each up to its capacity.
    """
    free = (bids["block_id"].isna() & bids["exclusive_group"].isna() & (bids["min_mw"] <= 0)).to_numpy()
    if not free.any():
        return x, yd
    pos = np.flatnonzero(free)
    key = _tie_key([bids[c].to_numpy()[pos] for c in TIE_KEY[:-1]] + [signature[pos]])
    order = np.lexsort((bids["pos_batch"].to_numpy()[pos], key))
    pos, key = pos[order], key[order]
    group = np.concatenate([[0], np.cumsum(key[1:] != key[:-1])])  # 0, 1, ... per run of equal keys
    cap = np.asarray(bids["cap_mw"].to_numpy(), dtype=float)[pos]
    x, yd = x.copy(), yd.copy()
    x[pos] = _fill(group, cap, x[pos])
    yd[pos] = _fill(group, x[pos], yd[pos])
    return x, yd


def _tie_key(keys: list[np.ndarray]) -> np.ndarray:
    """One int64 per row, equal exactly where every key is equal (missing values alike).

    Each key is factorized and the codes combined in mixed radix; where the product of
    the key counts would leave int64, the combination so far is factorized again (exact,
    no hashing)."""
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    count = 1
    for key in keys:
        codes, uniques = pd.factorize(key, use_na_sentinel=False)
        if count * len(uniques) >= 2**62:
            combined, kept = pd.factorize(combined)
            count = len(kept)
        combined = combined * len(uniques) + codes
        count *= max(len(uniques), 1)
    return combined


def _fill(group: np.ndarray, cap: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Per group (consecutive rows), the group's total ``amount`` handed out in row order,
    each row up to ``cap`` (prefix sums taken within each group, so no rounding of a
    batch-wide running sum leaks into another group)."""
    total = np.bincount(group, weights=amount)[group]
    before = np.zeros(len(cap))  # capacity of earlier rows of the group
    shared = np.bincount(group)[group] > 1  # most groups are one bid, with nothing before it
    before[shared] = pd.Series(cap[shared]).groupby(group[shared]).cumsum().to_numpy() - cap[shared]
    out = np.clip(total - before, 0.0, cap)
    out[out < 1e-9] = 0.0  # snap residues, as after every solve
    return out


def read_step(
    inp: StepInput, model: LinearModel, index: StepIndex, sol: Solution, priced: Solution, stats: ModelStats
) -> StepOutcome:
    """Awards (TSO share and DSO share of each bid), need results, node prices and liquidity
    of one solved model; prices from the marginals of ``priced`` (the LP with integers fixed)."""
    bids = index.bids
    yd = np.zeros(len(bids))
    yd[index.members] = sol.values["yd"]
    x, yd = order_ties(bids, sol.values["x"], np.minimum(yd, sol.values["x"]), column_signatures(model, index))
    tso_q = np.where(bids["tso_eff"], x - yd, 0.0)
    tso_q[np.abs(tso_q) < 1e-9] = 0.0
    marg = priced.marginals
    lam = np.zeros(len(inp.prior_net_mw))  # balance dual per interval of the batch
    if "balance" in marg:
        lam[index.balance_t] = marg["balance"]
    t = bids["t"].to_numpy()
    sign = bids["sign"].to_numpy()
    energy = sign * lam[t]  # zero where the step has no balance row
    congestion = _col_value(model, marg, "x", ("flow_max", "flow_min", "dso_physical"))
    amber_rent = _col_value(model, marg, "x", ("amber",))
    dso_value = np.zeros(len(bids))
    dso_value[index.members] = _col_value(model, marg, "yd", ("dso_need", "dso_physical"))
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
                    "service": Service.TSO_BALANCING.value,
                    "need_id": tso_need,
                    "area_id": SYSTEM_AREA,
                    "quantity_mw": tso_q[tso_pos],
                    "clearing_price_eur_mwh": (energy + congestion + amber_rent)[tso_pos],
                    "step": stats.step,
                    "part": stats.part,
                    "direct": bids["direct"].to_numpy()[tso_pos] if "direct" in bids else False,
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
                    "service": Service.DSO_CONGESTION.value,
                    "need_id": dso_needs["need_id"].to_numpy()[r],
                    "area_id": dso_needs["area_id"].to_numpy()[r],
                    "quantity_mw": yd[dso_pos],
                    "clearing_price_eur_mwh": (energy + congestion + dso_value)[dso_pos],
                    "step": stats.step,
                    "part": stats.part,
                    "direct": False,
                }
            )
        )
    awards = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=AWARD_PARTS)
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
    """Up-price per node and balance interval: energy (balance dual) + congestion; rows in
    interval order, nodes in order within each (the contract's order of ``node_prices``).

    ``congestion(n, t) = sum_c (m_max + m_min)(c, t) * factor(c, n)``: the value of one MW of
    up activation at ``n`` through the network rows (DC-OPF locational price).
    """
    if not len(index.balance_t):
        return pd.DataFrame()
    nodes = np.unique(inp.node_areas["node_id"].to_numpy().astype(str))
    bt = np.asarray(index.balance_t)
    congestion = np.zeros(len(nodes) * len(bt))
    net = inp.network.reset_index(drop=True)
    if len(net) and "flow_max" in marg:
        sens = inp.sens
        cons = pd.Index(pd.unique(net["constraint_id"]))
        # (network row, sensitivity row) of each constraint: an integer join in merge's order
        i, j = expand_pairs(cons.get_indexer(net["constraint_id"]), cons.get_indexer(sens["constraint_id"]))
        node = pd.Index(nodes).get_indexer(sens["node_id"].astype(str))[j]  # -1: a node in no area
        t = net["t"].to_numpy()[i]
        slot = np.minimum(np.searchsorted(bt, t), len(bt) - 1)
        keep = (node >= 0) & (bt[slot] == t)  # nodes of the grid, balance intervals only
        cell = slot[keep] * len(nodes) + node[keep]  # the grid's row: intervals in order, each over the nodes
        v = ((marg["flow_max"] + marg["flow_min"])[i] * sens["factor"].to_numpy()[j])[keep]
        congestion = np.asarray(np.bincount(cell, weights=v, minlength=len(congestion)), dtype=float)
    names = nodes.astype(object)  # one str per node, shared by its rows
    grid = pd.DataFrame(
        {"node_id": np.tile(names, len(bt)), "t": np.repeat(bt, len(nodes)), "congestion_eur_mwh": congestion}
    )
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
