"""Network tables from a PyPSA network file (``.nc`` or ``.h5``), with PyPSA's own PTDF.

Branches are lines and transformers (``s_nom`` x ``s_max_pu`` as the limit, owner by the
nominal voltage of ``bus0``); the PTDF is PyPSA's ``calculate_PTDF`` of each sub-network
(slack referenced: flow per MW injected at a bus and taken out at the sub-network's slack);
base flows are PyPSA's linear (DC) power flow of the network's first snapshot.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from market.enums import TSO_ID
from market.errors import NetworkError


def read_pypsa(path: str) -> Any:
    try:
        import pypsa
    except ImportError as exc:
        raise NetworkError("PyPSA is not installed: pip install pypsa") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pypsa.Network(path)
    except Exception as exc:  # PyPSA and netCDF raise many kinds for a bad file
        raise NetworkError(f"{path}: not a PyPSA network ({exc})") from exc


def pypsa_batch_tables(path: str, *, dso_id: str = "dso1", tso_min_kv: float = 110.0) -> dict[str, pd.DataFrame]:
    """``constraints`` (every interval), ``sensitivities`` and ``node_areas`` of a PyPSA network."""
    n = read_pypsa(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n.determine_network_topology()
        n.lpf(n.snapshots[:1])
    rows, sens = [], []
    for sub in n.sub_networks.obj:
        sub.calculate_PTDF()
        branches = sub.branches_i()
        ptdf = np.asarray(sub.PTDF)
        r, c = np.nonzero(np.abs(ptdf) >= 1e-9)
        names = np.asarray([name for _, name in branches])
        sens.append(
            pd.DataFrame({"constraint_id": names[r], "node_id": np.asarray(sub.buses_o)[c], "factor": ptdf[r, c]})
        )
        for component, name in branches:
            table = n.lines if component == "Line" else n.transformers
            flows = n.lines_t.p0 if component == "Line" else n.transformers_t.p0
            limit = float(table.at[name, "s_nom"] * table.at[name, "s_max_pu"])
            kv = float(n.buses.at[table.at[name, "bus0"], "v_nom"])
            rows.append(
                {
                    "constraint_id": name,
                    "owner_id": TSO_ID if kv >= tso_min_kv else dso_id,
                    "base_flow_mw": float(flows[name].iloc[0]),
                    "max_flow_mw": limit if limit > 0 else np.inf,
                    "min_flow_mw": -limit if limit > 0 else -np.inf,
                }
            )
    constraints = pd.DataFrame(rows)
    constraints.insert(2, "interval_start", pd.Series([pd.NaT] * len(constraints), dtype="datetime64[ns, UTC]"))
    constraints = constraints[np.isfinite(constraints["max_flow_mw"])].reset_index(drop=True)
    sensitivities = pd.concat(sens, ignore_index=True)
    sensitivities = sensitivities[sensitivities["constraint_id"].isin(constraints["constraint_id"])]
    areas = pd.DataFrame({"area_id": "grid", "node_id": n.buses.index.astype(str), "dso_id": dso_id})
    return {"constraints": constraints, "sensitivities": sensitivities.reset_index(drop=True), "node_areas": areas}
