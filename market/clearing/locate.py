"""Where each bid of a step sits: in which areas, under which traffic lights, beside which
DSO needs. Strings are hashed once per table, then everything is joined as integers.

Sign convention as in :mod:`market.clearing.formulation`: ``direction`` up is more injection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.enums import Direction, SignalState


def expand_pairs(keys: np.ndarray, table_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with ``keys[i] == table_keys[j]`` (integer codes, -1 matches nothing),
    ordered by ``i`` and then by ``j``: an inner join done with integers (as
    ``pandas.merge`` orders it)."""
    valid = table_keys >= 0
    order = np.flatnonzero(valid)[np.argsort(table_keys[valid], kind="stable")]
    n_keys = int(max(keys.max(initial=0), table_keys.max(initial=0))) + 1
    counts = np.bincount(table_keys[valid], minlength=n_keys)
    starts = np.cumsum(counts) - counts
    k = np.where(keys >= 0, keys, 0)
    rep = np.where(keys >= 0, counts[k], 0)
    i = np.repeat(np.arange(len(keys)), rep)
    within = np.arange(len(i)) - np.repeat(np.cumsum(rep) - rep, rep)
    return i, order[starts[k[i]] + within]


Located = tuple[np.ndarray, np.ndarray, pd.Index]  # (bid positions, area codes, area ids)


def bids_in_areas(bids: pd.DataFrame, node_areas: pd.DataFrame) -> Located:
    """Each bid position once per area its node is in: (bid positions, area codes, the area
    ids the codes index). Strings are hashed once per table, then joined as integers."""
    nodes = pd.Index(pd.unique(node_areas["node_id"]))
    areas = pd.Index(pd.unique(node_areas["area_id"]))
    i, j = expand_pairs(nodes.get_indexer(bids["node_id"]), nodes.get_indexer(node_areas["node_id"]))
    return i, areas.get_indexer(node_areas["area_id"])[j], areas  # one lookup per table row


def in_areas(bids: pd.DataFrame, pos: np.ndarray, a: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """One row per (bid position, area code) pair, with the bid's ``columns`` beside them."""
    return pd.DataFrame({"pos": pos, "a": a, **{c: bids[c].to_numpy()[pos] for c in columns}})


def keyed(frame: pd.DataFrame, areas: pd.Index) -> pd.DataFrame:
    """``frame`` with ``a``, its ``area_id`` as a code of ``areas`` (-1: not an area of the grid)."""
    return frame.assign(a=areas.get_indexer(frame["area_id"]))


def signal_sets(
    bids: pd.DataFrame, signals: pd.DataFrame, located: Located
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Red flag per bid; amber rows (area, t, direction, headroom; sorted by the first three)
    and their bids (row, pos; in the order of ``located``)."""
    n = len(bids)
    empty = pd.DataFrame({"area_id": [], "t": [], "direction": [], "headroom_mw": [], "row": []})
    if not len(signals) or not n:
        return np.zeros(n, bool), empty, pd.DataFrame({"row": [], "pos": []}, dtype=int)
    pos, a, areas = located
    sig = keyed(signals[signals["state"] != SignalState.GREEN], areas).reset_index(drop=True)  # green limits nothing
    row = signal_row(a, bids["t"].to_numpy()[pos], sig, len(areas))
    hit = row >= 0
    pos, row = pos[hit], row[hit]  # each located bid under a red or amber light, and that light
    state = sig["state"].to_numpy()
    red = np.zeros(n, bool)
    red[pos[(state == SignalState.RED.value)[row]]] = True
    amber = (state == SignalState.AMBER.value)[row]
    pos, row = pos[amber], row[amber]
    direction = bids["direction"].to_numpy()[pos]
    up = direction == Direction.UP.value
    # one amber row per light and direction: (area, t) is the light's key
    cell_of, cells = pd.factorize(row * 2 + up)
    light, first = cells // 2, np.unique(cell_of, return_index=True)[1]
    rows = pd.DataFrame(
        {
            "area_id": sig["area_id"].to_numpy()[light],
            "t": bids["t"].to_numpy()[pos[first]],  # the light's interval, as the bids hold it
            "direction": direction[first],
            "headroom_mw": np.where(
                up[first], sig["headroom_up_mw"].to_numpy()[light], sig["headroom_down_mw"].to_numpy()[light]
            ),
        }
    )
    order = rows.sort_values(["area_id", "t", "direction"]).index.to_numpy()
    rows = rows.take(order).reset_index(drop=True)
    rows["row"] = np.arange(len(rows))
    row_of_cell = np.empty(len(order), dtype=np.int64)
    row_of_cell[order] = np.arange(len(order))
    return red, rows, pd.DataFrame({"row": row_of_cell[cell_of], "pos": pos}).astype(int)


def signal_row(a: np.ndarray, t: np.ndarray, sig: pd.DataFrame, n_areas: int) -> np.ndarray:
    """Per (area code, interval) pair, the row of ``sig`` (``a``, ``t``: at most one row per
    area and interval, its key) with the same area and interval, or -1: a dense table of
    (area, interval) cells instead of a hash join."""
    sa, st = sig["a"].to_numpy(), sig["t"].to_numpy()  # ``t`` may come as float from a concat
    known = (sa >= 0) & (st >= 0)  # an area of the grid, an interval (a NaN compares false)
    slot = np.where(known, st, 0).astype(np.int64)
    known &= slot == np.where(known, st, 0)
    n_t = int(max(t.max(initial=-1), slot.max(initial=-1))) + 1
    row_of = np.full(n_areas * n_t, -1, dtype=np.int64)
    row_of[sa[known] * n_t + slot[known]] = np.flatnonzero(known)
    return row_of[a * n_t + t]


def dso_pairs(bids: pd.DataFrame, dso_needs: pd.DataFrame, located: Located) -> pd.DataFrame:
    """(bid position, DSO need row) where the bid sits in the need's area, same t and direction."""
    needs = dso_needs.reset_index(drop=True)
    if not len(needs) or not len(bids):
        return pd.DataFrame({"pos": np.zeros(0, int), "r": np.zeros(0, int)})
    pos, a, areas = located
    nr = keyed(needs[["area_id", "t", "direction", "buyer_id"]], areas).rename(columns={"buyer_id": "dso_id"})
    nr["r"] = np.arange(len(needs))
    t = bids["t"].to_numpy()
    n_t = int(max(t.max(), nr["t"].max())) + 1
    need_cells = nr["a"].to_numpy() * n_t + nr["t"].to_numpy()  # (area, t) of each need (-1 area: none)
    ok = bids["dso_ok"].to_numpy()[pos] & np.isin(a * n_t + t[pos], need_cells[nr["a"].to_numpy() >= 0])
    pos, a = pos[ok], a[ok]  # only pairs in an area and interval with a need are joined below
    cand = in_areas(bids, pos, a, ["t", "direction", "dso_id"])
    pairs = cand.merge(nr[["a", "t", "direction", "dso_id", "r"]], on=["a", "t", "direction", "dso_id"])
    return pairs[["pos", "r"]].sort_values(["pos", "r"]).reset_index(drop=True)
