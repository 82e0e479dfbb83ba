"""The core clearing model of one step, one vectorised ``define_*`` per family.

Variables (one family each; bid limits are variable bounds, not rows):

``x``        accepted MW per bid, ``[0, cap]`` (cap = 0 where no buyer of the step may take it)
``yd``       MW of a bid bought by its DSO (only bids inside an area with a DSO need
             of the same interval and direction); the TSO's share is ``x - yd``
``w_tso``    per TSO need: unmet MW (must-meet, cost VoLL) or served MW (elastic, value)
``w_dso``    per DSO need: likewise
``e_up``, ``e_dn``  imbalance beyond the stated TSO need, per balance interval (VoLL + 1)
``v_over``, ``v_under``  MW over ``max_flow_mw`` / under ``min_flow_mw`` per network row
``z``        binary per integer unit (a block or a standalone bid with a minimum or in
             an exclusive group)

Objective (EUR per hour of the interval): ``sum(cost * x) + VoLL * unmet - value * served
+ penalties``; totals in EUR are multiplied by the interval length afterwards.

Sign convention: ``sign = +1`` for up (more injection), ``-1`` for down. A sensitivity
``factor`` is the flow change per MW of up activation at the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from market.clearing.commitments import define_blocks, define_integer_units
from market.clearing.ir import LinearModel, Sense, sparse_block
from market.clearing.locate import Located, bids_in_areas, dso_pairs, expand_pairs, in_areas, keyed, signal_sets
from market.clearing.ties import tie_weights

IMBALANCE_PREMIUM_EUR_MWH = 1.0  # imbalance beyond the stated TSO need costs VoLL + this
ALL_PARTS = "all"  # the part of a step that is not fanned out
RELIEF_PREMIUM_EUR_MWH = 1.0  # undoing bought DSO relief costs VoLL + this
VIOLATION_FACTOR = 2.0  # a network overload costs this x VoLL: security before balance


@dataclass(frozen=True)
class StepInput:
    """Everything one optimisation sees; frames are read-only views prepared by the runner.

    ``bids``: bid_id, i (row in the batch), t, sign, direction, cap_mw, min_mw, cost,
    node_id, dso_id, block_id, exclusive_group, tso_ok, dso_ok.
    ``tso_needs`` / ``dso_needs``: need rows of the buyers cleared here with ``t``.
    ``network``: one row per (constraint, interval) with ``base_mw`` including earlier
    steps' flows; ``sens``: constraint_id, node_id, factor.
    ``signals``: area_id, t, state, headroom_up_mw, headroom_down_mw (already filtered
    by the step's signal mode). ``prior_net_mw``: net MW activated by earlier steps per t.
    """

    step: str
    part: str  # the DSO of a fan-out step, or ALL_PARTS
    bids: pd.DataFrame
    tso_needs: pd.DataFrame
    dso_needs: pd.DataFrame
    node_areas: pd.DataFrame
    network: pd.DataFrame
    sens: pd.DataFrame
    signals: pd.DataFrame
    prior_net_mw: np.ndarray
    voll_eur_mwh: float
    violation_eur_mwh: float

    @property
    def name(self) -> str:
        """``step`` or ``step:part`` (the model's name in messages)."""
        return self.step if self.part == ALL_PARTS else f"{self.step}:{self.part}"


@dataclass(frozen=True)
class StepIndex:
    """How the model's rows and columns map back to the batch."""

    bids: pd.DataFrame  # the step's bids with tso_eff, member, red flags
    members: np.ndarray  # bid positions that have a yd column
    pairs: pd.DataFrame  # (pos, j, need row r) membership of bids in DSO need areas
    balance_t: np.ndarray  # interval index of each balance row
    amber: pd.DataFrame  # amber rows: area_id, t, direction, headroom
    amber_pairs: pd.DataFrame  # (row, pos) of amber rows
    units: pd.DataFrame  # integer units: anchor pos, unit id


def build_step_model(inp: StepInput) -> tuple[LinearModel, StepIndex]:
    m = LinearModel(name=inp.name)
    bids = inp.bids.copy(deep=False)  # columns are added or replaced, never written into
    bids.index = pd.RangeIndex(len(bids))
    n = len(bids)
    bids["pos_batch"] = bids["pos"] if "pos" in bids else np.arange(n)
    bids["pos"] = np.arange(n)
    balance_t = np.sort(inp.tso_needs["t"].unique()) if len(inp.tso_needs) else np.zeros(0, int)
    located = bids_in_areas(bids, inp.node_areas)
    red, amber, amber_pairs = signal_sets(bids, inp.signals, located)
    bids["tso_eff"] = bids["tso_ok"].to_numpy() & np.isin(bids["t"], balance_t) & ~red
    pairs = dso_pairs(bids, inp.dso_needs, located)
    members = np.unique(pairs["pos"].to_numpy()) if len(pairs) else np.zeros(0, int)
    pairs["j"] = np.searchsorted(members, pairs["pos"].to_numpy())
    bids["member"] = np.isin(bids["pos"], members)
    amber_pairs = amber_pairs[bids["tso_eff"].to_numpy()[amber_pairs["pos"].to_numpy()]]

    define_bid_variables(m, bids, members)
    define_dso_share(m, bids, members)
    define_tso_balance(m, bids, inp, balance_t)
    define_dso_needs(m, inp, pairs, len(members))
    define_dso_physical(m, bids, inp, pairs, len(members), located)
    define_amber_caps(m, bids, members, amber, amber_pairs)
    define_network(m, bids, inp)
    define_blocks(m, bids)
    units = define_integer_units(m, bids)
    m.tie_weights = tie_weights(bids, members)
    index = StepIndex(bids, members, pairs, balance_t, amber, amber_pairs, units)
    return m, index


def define_bid_variables(m: LinearModel, bids: pd.DataFrame, members: np.ndarray) -> None:
    """``x`` in [0, cap] where some buyer of this step may take the bid, else [0, 0]."""
    usable = bids["tso_eff"].to_numpy() | bids["member"].to_numpy()
    cap = np.where(usable, bids["cap_mw"].to_numpy(), 0.0)
    m.add_variable("x", np.zeros(len(bids)), cap, bids["cost"].to_numpy())
    m.add_variable("yd", np.zeros(len(members)), bids["cap_mw"].to_numpy()[members], np.zeros(len(members)))


def define_dso_share(m: LinearModel, bids: pd.DataFrame, members: np.ndarray) -> None:
    """``yd <= x`` where the TSO may take the rest; ``yd == x`` where only the DSO may."""
    n, k = len(bids), len(members)
    tso = bids["tso_eff"].to_numpy()[members]
    shares: tuple[tuple[str, np.ndarray, Sense], ...] = (("dso_share", tso, "<="), ("dso_only", ~tso, "=="))
    for name, mask, sense in shares:
        j = np.flatnonzero(mask)
        rows = np.arange(len(j))
        m.add_constraint(
            name,
            {
                "yd": sparse_block(rows, j, 1.0, (len(j), k)),
                "x": sparse_block(rows, members[j], -1.0, (len(j), n)),
            },
            sense,
            np.zeros(len(j)),
        )


def _need_terms(needs: pd.DataFrame, voll: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per need: must-meet flag, cost of ``w`` (VoLL or -value), and ``w``'s coefficient."""
    mm = needs["max_price_eur_mwh"].isna().to_numpy()
    cost = np.where(mm, voll, -needs["max_price_eur_mwh"].fillna(0).to_numpy())
    coef = np.where(mm, 1.0, -1.0)
    return mm, cost, coef


def define_tso_balance(m: LinearModel, bids: pd.DataFrame, inp: StepInput, balance_t: np.ndarray) -> None:
    """Per interval with a TSO need: net of all activations + unmet - served = need.

    ``sum_b sign_b x_b + sum_mm sign_r w_r - sum_el sign_r w_r + e_up - e_dn
    = sum_mm sign_r Q_r - prior_net_t``.
    """
    needs = inp.tso_needs.reset_index(drop=True)
    mm, cost, coef = _need_terms(needs, inp.voll_eur_mwh)
    m.add_variable("w_tso", np.zeros(len(needs)), needs["quantity_mw"].to_numpy(), cost)
    k = len(balance_t)
    premium = inp.voll_eur_mwh + IMBALANCE_PREMIUM_EUR_MWH
    m.add_variable("e_up", np.zeros(k), np.full(k, np.inf), np.full(k, premium))
    m.add_variable("e_dn", np.zeros(k), np.full(k, np.inf), np.full(k, premium))
    if not k:
        return
    row_of_t = np.full(int(max(balance_t.max(), bids["t"].to_numpy().max(initial=0))) + 1, -1)
    row_of_t[balance_t] = np.arange(k)
    bt = row_of_t[bids["t"].to_numpy()]
    on = bt >= 0
    sign_r = needs["sign"].to_numpy()
    rows_r = row_of_t[needs["t"].to_numpy()]
    rhs = np.bincount(rows_r, weights=sign_r * needs["quantity_mw"].to_numpy() * mm, minlength=k)
    rhs = rhs - inp.prior_net_mw[balance_t]
    eye = sp.identity(k, format="csr")
    m.add_constraint(
        "balance",
        {
            "x": sparse_block(bt[on], np.flatnonzero(on), bids["sign"].to_numpy()[on], (k, len(bids))),
            "w_tso": sparse_block(rows_r, np.arange(len(needs)), sign_r * coef, (k, len(needs))),
            "e_up": eye,
            "e_dn": -eye,
        },
        "==",
        rhs,
    )


def define_dso_needs(m: LinearModel, inp: StepInput, pairs: pd.DataFrame, n_yd: int) -> None:
    """Per DSO need: what the DSO buys in the area and direction + unmet - served = need."""
    needs = inp.dso_needs.reset_index(drop=True)
    mm, cost, coef = _need_terms(needs, inp.voll_eur_mwh)
    m.add_variable("w_dso", np.zeros(len(needs)), needs["quantity_mw"].to_numpy(), cost)
    k = len(needs)
    m.add_constraint(
        "dso_need",
        {
            "yd": sparse_block(pairs["r"].to_numpy(), pairs["j"].to_numpy(), 1.0, (k, n_yd)),
            "w_dso": sp.diags(coef, format="csr") if k else sp.csr_matrix((0, 0)),
        },
        "==",
        needs["quantity_mw"].to_numpy() * mm,
    )


def define_dso_physical(
    m: LinearModel,
    bids: pd.DataFrame,
    inp: StepInput,
    pairs: pd.DataFrame,
    n_yd: int,
    located: Located,
) -> None:
    """A DSO need is physical: the area's net change in the need's direction, from every
    activation in it (this step's, whoever buys them, and earlier steps'), covers what the
    DSO bought for it.

    ``d * sum_{b in A} s_b x_b - sum_{b in pairs(r)} yd_b + v_r >= -prior_r`` with ``d`` the
    need's sign and ``prior_r = d * (net MW earlier steps activated in A)``. The slack ``v``
    (relief undone, MW) costs VoLL + 1: undoing bought relief is never cheaper than leaving
    a need unmet.
    """
    needs = inp.dso_needs.reset_index(drop=True)
    k, n = len(needs), len(bids)
    m.add_variable("v_relief", np.zeros(k), np.full(k, np.inf), np.full(k, inp.voll_eur_mwh + RELIEF_PREMIUM_EUR_MWH))
    if not k:
        return
    pos, a, areas = located
    rows = keyed(needs[["area_id", "t", "sign"]], areas).drop(columns="area_id").assign(r=np.arange(k))
    inside = in_areas(bids, pos, a, ["t", "sign"])
    inside = inside.merge(rows, on=["a", "t"], suffixes=("", "_need"))
    eye = sp.identity(k, format="csr")
    m.add_constraint(
        "dso_physical",
        {
            "x": sparse_block(
                inside["r"].to_numpy(),
                inside["pos"].to_numpy(),
                (inside["sign"] * inside["sign_need"]).to_numpy(),
                (k, n),
            ),
            "yd": sparse_block(pairs["r"].to_numpy(), pairs["j"].to_numpy(), -1.0, (k, n_yd)),
            "v_relief": eye,
        },
        ">=",
        -needs["prior_dir_mw"].to_numpy() if "prior_dir_mw" in needs else np.zeros(k),
    )


def define_amber_caps(
    m: LinearModel, bids: pd.DataFrame, members: np.ndarray, amber: pd.DataFrame, amber_pairs: pd.DataFrame
) -> None:
    """Amber: the TSO's activations (``x - yd``) per area, direction and interval <= headroom."""
    k, n = len(amber), len(bids)
    if not k:
        return
    rows, pos = amber_pairs["row"].to_numpy(), amber_pairs["pos"].to_numpy()
    is_member = np.isin(pos, members)
    m.add_constraint(
        "amber",
        {
            "x": sparse_block(rows, pos, 1.0, (k, n)),
            "yd": sparse_block(rows[is_member], np.searchsorted(members, pos[is_member]), -1.0, (k, len(members))),
        },
        "<=",
        amber["headroom_mw"].to_numpy(),
    )


def network_matrix(bids: pd.DataFrame, network: pd.DataFrame, sens: pd.DataFrame) -> sp.csr_matrix:
    """Rows = network rows, columns = bids: flow change per MW accepted (factor * sign)."""
    if not len(network) or not len(bids):
        return sp.csr_matrix((len(network), len(bids)))
    nodes = pd.Index(pd.unique(sens["node_id"]))
    i, j = expand_pairs(nodes.get_indexer(bids["node_id"]), nodes.get_indexer(sens["node_id"]))
    cons = pd.Index(pd.unique(network["constraint_id"]))
    n_t = int(max(network["t"].max(), bids["t"].max())) + 1
    row_of = np.full(len(cons) * n_t, -1)  # (constraint, t) -> network row
    keys = cons.get_indexer(network["constraint_id"]) * n_t + network["t"].to_numpy()
    if len(np.unique(keys)) != len(keys):
        raise ValueError("network rows must be one per (constraint_id, t)")
    row_of[keys] = np.arange(len(network))
    c = cons.get_indexer(sens["constraint_id"])[j]  # one lookup per sensitivity row
    t = bids["t"].to_numpy()[i]
    row = np.where(c >= 0, row_of[np.where(c >= 0, c, 0) * n_t + t], -1)
    on = row >= 0
    vals = sens["factor"].to_numpy()[j[on]] * bids["sign"].to_numpy()[i[on]]
    return sparse_block(row[on], bids["pos"].to_numpy()[i[on]], vals, (len(network), len(bids)))


def define_network(m: LinearModel, bids: pd.DataFrame, inp: StepInput) -> None:
    """``min <= base + F (sign * x) <= max``, each side with a penalised violation slack."""
    net = inp.network.reset_index(drop=True)
    k = len(net)
    pen = np.full(k, inp.violation_eur_mwh)
    m.add_variable("v_over", np.zeros(k), np.full(k, np.inf), pen)
    m.add_variable("v_under", np.zeros(k), np.full(k, np.inf), pen)
    if not k:
        return
    a = network_matrix(bids, net, inp.sens)
    eye = sp.identity(k, format="csr")
    base = net["base_mw"].to_numpy()
    m.add_constraint("flow_max", {"x": a, "v_over": -eye}, "<=", net["max_flow_mw"].to_numpy() - base)
    m.add_constraint("flow_min", {"x": a, "v_under": eye}, ">=", net["min_flow_mw"].to_numpy() - base)
