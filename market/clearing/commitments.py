"""Integer commitments of a step's bids: blocks (one accepted fraction across intervals),
minimum quantities and exclusive groups, as constraint families on ``x`` and a binary
``z`` per unit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.clearing.ir import LinearModel, Sense, sparse_block


def define_blocks(m: LinearModel, bids: pd.DataFrame) -> None:
    """All bids of a block are accepted at the same fraction of their capacity."""
    blk = bids.loc[bids["block_id"].notna(), ["pos", "block_id", "cap_mw"]]
    if not len(blk):
        return
    blk = blk.sort_values(["block_id", "pos"])
    anchor = blk.groupby("block_id")["pos"].transform("first").to_numpy()
    cap = bids["cap_mw"].to_numpy()
    others = blk["pos"].to_numpy() != anchor
    pos, anc = blk["pos"].to_numpy()[others], anchor[others]
    dead = cap[anc] <= 0
    if dead.any():  # anchor has no capacity left: the whole block is out
        fam = m.variables["x"]
        fam.upper[pos[dead]] = 0.0
    pos, anc = pos[~dead], anc[~dead]
    rows = np.arange(len(pos))
    n = len(bids)
    m.add_constraint(
        "block",
        {
            "x": sparse_block(
                np.concatenate([rows, rows]),
                np.concatenate([pos, anc]),
                np.concatenate([np.ones(len(pos)), -cap[pos] / cap[anc]]),
                (len(pos), n),
            ),
        },
        "==",
        np.zeros(len(pos)),
    )


def define_integer_units(m: LinearModel, bids: pd.DataFrame) -> pd.DataFrame:
    """Binary ``z`` per unit with a minimum or an exclusive group; at most one per group."""
    if not (bids["min_mw"].to_numpy() > 0).any() and not bids["exclusive_group"].notna().any():
        # no unit can have a minimum or a group (a block's ratio is its bids' largest): an LP
        return pd.DataFrame(
            {
                "unit": pd.Series(dtype=object),
                "anchor": pd.Series(dtype=np.int64),
                "ratio": pd.Series(dtype=float),
                "group": pd.Series(dtype=object),
                "live": pd.Series(dtype=bool),
            }
        )
    unit = bids["block_id"].where(bids["block_id"].notna(), "bid:" + bids["bid_id"])
    cap = bids["cap_mw"].to_numpy()
    ratio = np.divide(bids["min_mw"].to_numpy(), cap, out=np.zeros(len(bids)), where=cap > 0)
    frame = pd.DataFrame(
        {
            "unit": unit,
            "pos": bids["pos"],
            "ratio": ratio,
            "group": bids["exclusive_group"],
            "ub": m.variables["x"].upper,
        }
    )
    g = frame.groupby("unit", sort=True)
    units = pd.DataFrame(
        {
            "anchor": g["pos"].min(),
            "ratio": g["ratio"].max(),
            "group": g["group"].first(),
            "live": g["ub"].min() > 0,
        }
    ).reset_index()
    units = units[((units["ratio"] > 0) | units["group"].notna()) & units["live"]].reset_index(drop=True)
    k, n = len(units), len(bids)
    if not k:
        return units
    anc = units["anchor"].to_numpy()
    r = units["ratio"].to_numpy()
    # a minimum above the capacity the step may use (what a DSO prequalified, or what an
    # earlier step left) can only be rejected: accepting "all" of it would award below the minimum
    m.add_variable("z", np.zeros(k), np.where(r > 1.0 + 1e-9, 0.0, 1.0), np.zeros(k), integer=True)
    whole = r >= 1.0 - 1e-12  # all-or-nothing: x = cap * z, one tight row instead of two
    kinds: tuple[tuple[str, np.ndarray, Sense, float], ...] = (
        ("unit_whole", whole, "==", 1.0),
        ("unit_max", ~whole, "<=", 1.0),
    )
    for name, sel, sense, coef in kinds:
        rows = np.flatnonzero(sel)
        m.add_constraint(
            name,
            {
                "x": sparse_block(np.arange(len(rows)), anc[rows], 1.0, (len(rows), n)),
                "z": sparse_block(np.arange(len(rows)), rows, -coef * cap[anc[rows]], (len(rows), k)),
            },
            sense,
            np.zeros(len(rows)),
        )
    has_min = np.flatnonzero((r > 0) & ~whole)
    m.add_constraint(
        "unit_min",
        {
            "x": sparse_block(np.arange(len(has_min)), anc[has_min], 1.0, (len(has_min), n)),
            "z": sparse_block(np.arange(len(has_min)), has_min, -(r * cap[anc])[has_min], (len(has_min), k)),
        },
        ">=",
        np.zeros(len(has_min)),
    )
    grouped = units[units["group"].notna()]
    if len(grouped):
        codes, _ = pd.factorize(grouped["group"], sort=True)
        m.add_constraint(
            "exclusive",
            {
                "z": sparse_block(codes, grouped.index.to_numpy(), 1.0, (int(codes.max()) + 1, k)),
            },
            "<=",
            np.ones(int(codes.max()) + 1),
        )
    return units
