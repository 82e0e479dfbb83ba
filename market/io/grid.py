"""Network tables from a pandapower net (or a SimBench grid loaded into one).

The PTDF comes from pandapower itself (``makePTDF`` on the net's DC model), slack
referenced: ``factor`` is the flow change on a branch (MW, in its from->to direction)
per MW injected at a bus and taken out at the slack. Branch limits are the DC model's
``RATE_A`` (MVA, used as MW). Base flows are ``PTDF @ injection`` for the injection the
caller gives (MW per bus, positive = into the grid), by default the net's own loads and
generation from a DC power flow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from market.enums import TSO_ID


@dataclass(frozen=True)
class GridTables:
    """A net's branches as ``constraints``/``sensitivities`` rows and its buses as nodes."""

    constraints: pd.DataFrame  # constraint_id, owner_id, interval_start, base_flow_mw, max/min_flow_mw
    sensitivities: pd.DataFrame  # constraint_id, node_id, factor
    node_ids: pd.Index  # one per pandapower bus index, in net.bus order
    ptdf: np.ndarray  # branches x buses (net.bus order), MW per MW
    voltage_kv: np.ndarray  # highest nominal voltage of each branch


def node_ids_of(net: Any) -> pd.Index:
    """Bus names where they are unique and present, else the bus index as text."""
    bus = net.bus
    names = bus["name"]
    if names.notna().all() and names.astype(str).is_unique:
        return pd.Index(names.astype(str).to_numpy(), name="node_id")
    return pd.Index(bus.index.astype(str), name="node_id")


def net_injection_mw(net: Any) -> np.ndarray:
    """MW injected per bus (net.bus order) by the net's loads, static and voltage-controlled
    generators, storage and external grids after a DC power flow (positive = into the grid)."""
    import pandapower as pp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net)
    bus = net.bus
    return -net.res_bus.loc[bus.index, "p_mw"].to_numpy()


def pandapower_tables(
    net: Any,
    injection_mw: np.ndarray | None = None,
    *,
    dso_id: str = "dso1",
    tso_min_kv: float = 110.0,
    min_abs_factor: float = 1e-9,
) -> GridTables:
    """Constraints, PTDF sensitivities and node ids of ``net``.

    Branches whose highest nominal voltage is at least ``tso_min_kv`` are owned by the TSO,
    the others by ``dso_id``. Constraint ids are the branch names where unique, else
    ``line:<index>`` / ``trafo:<index>``. Factors smaller than ``min_abs_factor`` are left out.
    """
    import pandapower as pp
    from pandapower.pypower.idx_brch import RATE_A
    from pandapower.pypower.idx_bus import BUS_TYPE, REF
    from pandapower.pypower.makePTDF import makePTDF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net)
        ppc = net._ppc
        slack = int(np.flatnonzero(ppc["bus"][:, BUS_TYPE] == REF)[0])
        h = makePTDF(ppc["baseMVA"], ppc["bus"], ppc["branch"], slack)
    bus = net.bus
    lookup = net._pd2ppc_lookups
    ptdf = h[:, lookup["bus"][bus.index.to_numpy()]]
    ids, kv = _branch_ids_and_kv(net, lookup["branch"])
    nodes = node_ids_of(net)
    inj = net_injection_mw(net) if injection_mw is None else np.asarray(injection_mw, dtype=float)
    rate = ppc["branch"][:, RATE_A].real
    rate = np.where(rate > 0, rate, np.inf)  # RATE_A = 0 means unlimited in MATPOWER
    constraints = pd.DataFrame(
        {
            "constraint_id": ids,
            "owner_id": np.where(kv >= tso_min_kv, TSO_ID, dso_id),
            "interval_start": pd.Series([pd.NaT] * len(ids), dtype="datetime64[ns, UTC]"),
            "base_flow_mw": ptdf @ inj,
            "max_flow_mw": rate,
            "min_flow_mw": -rate,
        }
    )
    rows, cols = np.nonzero(np.abs(ptdf) >= min_abs_factor)
    sensitivities = pd.DataFrame(
        {"constraint_id": np.asarray(ids)[rows], "node_id": nodes.to_numpy()[cols], "factor": ptdf[rows, cols]}
    )
    return GridTables(constraints, sensitivities, nodes, ptdf, kv)


def _branch_ids_and_kv(net: Any, ranges: dict[str, tuple[int, int]]) -> tuple[list[str], np.ndarray]:
    ids: list[str] = []
    kv: list[float] = []
    vn = net.bus["vn_kv"]
    for kind in ("line", "trafo"):
        if kind not in ranges:
            continue
        table = getattr(net, kind)
        names = table["name"]
        unique = names.notna().all() and names.astype(str).is_unique
        ids += list(names.astype(str)) if unique else [f"{kind}:{i}" for i in table.index]
        if kind == "line":
            kv += list(np.maximum(vn.loc[table["from_bus"]].to_numpy(), vn.loc[table["to_bus"]].to_numpy()))
        else:
            kv += list(table["vn_hv_kv"].to_numpy())
    return ids, np.asarray(kv, dtype=float)
