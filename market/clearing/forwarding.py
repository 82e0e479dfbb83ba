"""The DSO's check of the bids it passes up one by one in a layered design.

Bids with a block, a minimum quantity or an exclusive group cannot be merged into a DSO's
interface curve (:mod:`market.clearing.interface`): the DSO forwards them individually.
Each may fit the DSO's limits alone while several together, or with the curve, do not;
the DSO therefore checks them together and holds their room back from the curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def forwarded_together(
    one: pd.DataFrame, a: sp.csr_matrix, hi: np.ndarray, lo: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The DSO's check of the bids it forwards one by one (all-or-nothing, blocks, exclusive
    groups), together rather than each alone: per interval and direction in merit order
    (price, then ``bid_id``), a bid is forwarded only if its DSO rows (``a``: rows x ``one``,
    flow per MW; room ``lo``..``hi``) still hold with it and every cheaper forwarded bid of
    its direction accepted in full. Returns the forwarded mask and, per direction (up,
    down), the flow the forwarded bids reserve on each row: room the curves no longer offer.
    Each round drops, per interval, the cheapest bid that breaks a row (rounds: the most
    bids one interval drops)."""
    one = one.reset_index(drop=True)
    keep = np.ones(len(one), bool)
    reserve = []
    cap = one["cap_mw"].to_numpy()
    for up in (True, False):
        mine = (one["sign"].to_numpy() > 0) == up
        order = one[mine].sort_values(["price_eur_mwh", "bid_id"]).index
        cols = one.index.get_indexer(order)
        flows = sp.csc_matrix(a[:, cols].multiply(cap[cols][None, :]))
        t = one["t"].to_numpy()[cols]
        ok = np.ones(len(cols), bool)
        if not len(cols):
            reserve.append(np.zeros(a.shape[0]))
            continue
        while True:
            coo = sp.coo_matrix(flows @ sp.diags(ok.astype(float)))
            at = np.lexsort((coo.col, coo.row))
            row, col, val = coo.row[at], coo.col[at], coo.data[at]
            cum = pd.Series(val).groupby(row).cumsum().to_numpy()
            bad = (cum > hi[row] + 1e-9) | (cum < lo[row] - 1e-9)
            if not bad.any():
                break
            first = pd.Series(col[bad]).groupby(t[col[bad]]).min().to_numpy()
            ok[first] = False
        keep[cols[~ok]] = False
        reserve.append(np.asarray((flows @ sp.diags(ok.astype(float))).sum(axis=1)).reshape(-1))
    return keep, (reserve[0], reserve[1])
