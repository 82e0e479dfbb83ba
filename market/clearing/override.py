"""The DSO override (EU DSO Committee, report 3.3): after a step, each DSO undoes that
step's TSO activations that break its own limits; the TSO is left with the imbalance.

Per violated DSO row (in a fixed order: constraint, interval), the step's TSO awards that
push the flow towards the violation are cut until the row is within its limit: those with
the most relief per MW first, then the dearest (the least valuable merit-order MW), then
by ``bid_id``. The cut MW are removed from the awards; the physics after the last step then
shows the imbalance the TSO is left with instead of the overload.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.clearing.prepare import Prepared
from market.clearing.readback import StepOutcome
from market.enums import TSO_ID

EPS_MW = 1e-9


def apply_override(prep: Prepared, taken: np.ndarray, outcomes: list[StepOutcome]) -> float:
    """Cut the TSO awards of ``outcomes`` (one step's) that break DSO limits, in place (and in
    ``taken``); return the MW cut."""
    net = prep.network
    dso_rows = np.flatnonzero(net["owner_id"].to_numpy() != TSO_ID)
    tso = [(o, o.awards.index[o.awards["buyer_id"] == TSO_ID]) for o in outcomes]
    if not len(dso_rows) or not any(len(idx) for _, idx in tso):
        return 0.0
    flow = net["base_mw"].to_numpy() + prep.net_matrix @ taken
    a = prep.net_matrix.tocsr()
    bids = prep.bids
    cut_total = 0.0
    for row in dso_rows:
        over = flow[row] - net["max_flow_mw"].iat[row]
        under = net["min_flow_mw"].iat[row] - flow[row]
        if max(over, under) <= EPS_MW:
            continue
        direction = 1.0 if over > EPS_MW else -1.0
        excess = over if direction > 0 else under
        for out, idx in tso:
            if excess <= EPS_MW or not len(idx):
                continue
            aw = out.awards.loc[idx]
            pos = aw["pos"].to_numpy(dtype=int)
            coef = direction * np.asarray(a[row, pos].todense()).reshape(-1)
            q = aw["quantity_mw"].to_numpy(dtype=float)
            push = (coef > EPS_MW) & (q > EPS_MW)
            if not push.any():
                continue
            order = (
                pd.DataFrame(
                    {
                        "relief": -coef[push],
                        "price": -bids["price_eur_mwh"].to_numpy()[pos[push]],
                        "bid": aw["bid_id"].to_numpy()[push],
                    }
                )
                .sort_values(["relief", "price", "bid"])
                .index.to_numpy()
            )
            rel, qs = coef[push][order], q[push][order]
            relief_before = np.cumsum(rel * qs) - rel * qs
            cut = np.clip((excess - relief_before) / rel, 0.0, qs)
            cuts = np.zeros(len(aw))
            cuts[np.flatnonzero(push)[order]] = cut
            out.awards.loc[idx, "quantity_mw"] = q - cuts
            np.subtract.at(taken, pos, cuts)
            flow -= prep.net_matrix @ np.bincount(pos, weights=cuts, minlength=len(taken))
            excess -= float(np.sum(rel * cut))
            cut_total += float(cuts.sum())
    for out, idx in tso:
        out.awards.drop(index=idx[out.awards.loc[idx, "quantity_mw"].to_numpy() <= EPS_MW], inplace=True)
    return cut_total
