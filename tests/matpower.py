"""MATPOWER cases (shipped with pandapower) as flexmarket batches, and their DC-OPF LMPs
from pandapower's own optimal power flow: an independent reference for published prices."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from market.io.batch import Batch, BatchConfig
from market.io.grid import pandapower_tables
from market.io.read import batch_from_frames

START = pd.Timestamp("2026-01-05T00:00:00+00:00")


def load_case(name: str, tighten: int = 0, spread: float = 0.0) -> Any:
    """A MATPOWER case with linear costs (the quadratic terms dropped); with ``tighten``,
    the limits of that many most loaded lines of its DC optimal power flow are set to 80 %
    of their flow there, so that lines bind; with ``spread``, the k-th cost row gets
    ``k * spread`` EUR/MWh more (distinct prices, so congestion shows in the LMPs)."""
    import pandapower.networks as pn

    net = getattr(pn, name)()
    net.poly_cost["cp2_eur_per_mw2"] = 0.0
    net.poly_cost["cp0_eur"] = 0.0
    net.poly_cost["cp1_eur_per_mw"] += spread * np.arange(len(net.poly_cost))
    if tighten:
        reference_lmps(net)
        loading = net.res_line["loading_percent"].sort_values(ascending=False).iloc[:tighten]
        net.line.loc[loading.index, "max_loading_percent"] = 0.9 * loading
    return net


def reference_lmps(net: Any) -> pd.Series:
    """LMP per bus (EUR/MWh) of pandapower's DC optimal power flow."""
    import pandapower as pp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(net)
    assert net.OPF_converged
    return net.res_bus["lam_p"]


def _generators(net: Any) -> pd.DataFrame:
    frames = []
    for et in ("gen", "ext_grid", "sgen"):
        table = getattr(net, et)
        if not len(table):
            continue
        cost = net.poly_cost[net.poly_cost["et"] == et].set_index("element")["cp1_eur_per_mw"]
        frames.append(
            pd.DataFrame(
                {
                    "der_id": [f"{et}:{i}" for i in table.index],
                    "bus": table["bus"].to_numpy(),
                    "min_p_mw": table["min_p_mw"].fillna(0.0).to_numpy(),
                    "max_p_mw": table["max_p_mw"].to_numpy(),
                    "price_eur_mwh": cost.reindex(table.index).to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def case_batch(net: Any, intervals: int = 3) -> Batch:
    """Every generator offers its range above its minimum, up, at its linear cost, in each of
    ``intervals`` hours; loads (and minimum outputs) are the base injection; the TSO needs the
    rest of the load, must-meet; every branch is a TSO limit with its PTDF row."""
    gens = _generators(net)
    bus_pos = pd.Series(np.arange(len(net.bus)), index=net.bus.index)
    injection = np.zeros(len(net.bus))
    np.add.at(injection, bus_pos[net.load["bus"]].to_numpy(), -net.load["p_mw"].to_numpy())
    np.add.at(injection, bus_pos[gens["bus"]].to_numpy(), gens["min_p_mw"].to_numpy())
    grid = pandapower_tables(net, injection, tso_min_kv=0.0)
    node = grid.node_ids[bus_pos[gens["bus"]].to_numpy()]
    times = [START + pd.Timedelta(hours=t) for t in range(intervals)]
    bids = pd.DataFrame(
        [
            {
                "bid_id": f"{g.der_id}@{t}",
                "aggregator_id": "market",
                "der_id": g.der_id,
                "dso_id": "dso1",
                "node_id": n,
                "interval_start": ts,
                "direction": "up",
                "quantity_mw": g.max_p_mw - g.min_p_mw,
                "price_eur_mwh": g.price_eur_mwh,
            }
            for t, ts in enumerate(times)
            for g, n in zip(gens.itertuples(), node, strict=True)
            if g.max_p_mw > g.min_p_mw
        ]
    )
    need = float(net.load["p_mw"].sum() - gens["min_p_mw"].sum())
    needs = pd.DataFrame(
        [
            {
                "need_id": f"balance@{t}",
                "buyer_id": "tso",
                "service": "tso_balancing",
                "area_id": "system",
                "interval_start": ts,
                "direction": "up",
                "quantity_mw": need,
            }
            for t, ts in enumerate(times)
        ]
    )
    areas = pd.DataFrame({"area_id": "grid", "node_id": grid.node_ids, "dso_id": "dso1"})
    cfg = BatchConfig("matpower", START, START + pd.Timedelta(hours=intervals), 60, voll_eur_mwh=10_000.0)
    cons = grid.constraints[np.isfinite(grid.constraints["max_flow_mw"])]
    sens = grid.sensitivities[grid.sensitivities["constraint_id"].isin(cons["constraint_id"])]
    return batch_from_frames(cfg, bids=bids, needs=needs, node_areas=areas, constraints=cons, sensitivities=sens)
