"""Cyber exposure by registration: every non-utility endpoint with a link into the TSO.

An attacker reaches what is linked, not what happened to be dispatched today: the endpoints
*registered* on a design's TSO markets are the aggregators (or the one aggregator
coordinator, or the DER) next after the TSO on the instruction path of every bid that may
offer into a step buying for the TSO (its route reaches the step, it is offered for
balancing), plus the design's data links from those bids' aggregators and DER (from the
directly reached ones only with ``data_links_direct_only``). Read from the batch and the
design's wiring: a structural property.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.clearing.prepare import effective_routes, offered_services, own_routes, route_reach
from market.design.spec import Design
from market.enums import Buyer, Tier
from market.io.batch import Batch

# the column naming each kind of endpoint; every aggregator coordinator is one endpoint
ENDPOINT = {Tier.AGGREGATOR: "aggregator_id", Tier.DER: "der_id", Tier.COORDINATOR: "coordinator"}
COORDINATOR = "one"


def registered_endpoints(batch: Batch, design: Design) -> tuple[set[str], set[str]]:
    """``(control, read_only)``: endpoints the TSO may instruct, and those with only a data
    link into it, over every bid registered on the design's TSO markets."""
    bids = batch.bids
    frame = pd.DataFrame(
        {
            "route": effective_routes(own_routes(batch), design.routes),
            "quantity_mw": bids["quantity_mw"].to_numpy(),
            "aggregator_id": bids["aggregator_id"].to_numpy(),
            "der_id": bids["der_id"].to_numpy(),
            "coordinator": COORDINATOR,
        }
    )
    offered = offered_services(bids)[1]
    control: set[str] = set()
    registered = np.zeros(len(bids), bool)
    direct_any = np.zeros(len(bids), bool)
    for step in design.steps:
        if Buyer.TSO not in step.buyers:
            continue
        reach, direct = route_reach(frame, step)
        ok = reach & offered
        registered |= ok
        direct_any |= ok & direct
        for mask, path in ((ok & ~direct, step.path_for(Buyer.TSO)), (ok & direct, step.direct_path)):
            tier = path[1] if len(path) > 1 else None
            if tier in ENDPOINT and mask.any():
                control |= {f"{tier}:{v}" for v in frame.loc[mask, ENDPOINT[tier]].unique()}
    linked = direct_any if design.data_links_direct_only else registered
    data = {f"{t}:{v}" for t in design.data_links if t in ENDPOINT for v in frame.loc[linked, ENDPOINT[t]].unique()}
    return control, data - control
