"""Which bids sit where a DSO has said something: a need's area, a red light."""

from __future__ import annotations

import numpy as np
import pandas as pd


def undoes_need(bids: pd.DataFrame, dso_needs: pd.DataFrame, node_areas: pd.DataFrame) -> np.ndarray:
    """Per bid: whether it would move one of its DSO's need areas against the need's
    direction in the need's interval (the DSO never passes such flexibility up)."""
    if not len(dso_needs):
        return np.zeros(len(bids), bool)
    against = (
        bids[["pos", "node_id", "t", "direction"]]
        .merge(node_areas[["node_id", "area_id"]], on="node_id")
        .merge(dso_needs[["area_id", "t", "direction"]], on=["area_id", "t"], suffixes=("", "_need"))
    )
    against = against.loc[against["direction"] != against["direction_need"], "pos"].to_numpy()
    return np.isin(bids["pos"].to_numpy(), against)


def in_red_area(bids: pd.DataFrame, signals: pd.DataFrame, node_areas: pd.DataFrame) -> np.ndarray:
    """Per bid: whether its DSO published red for one of its areas in its interval."""
    red = signals[signals["state"] == "red"] if len(signals) else signals
    if not len(red):
        return np.zeros(len(bids), bool)
    hit = bids[["pos", "node_id", "t"]].merge(node_areas[["node_id", "area_id"]], on="node_id")
    hit = hit.merge(red[["area_id", "t"]], on=["area_id", "t"])
    return np.isin(bids["pos"].to_numpy(), hit["pos"].to_numpy())
