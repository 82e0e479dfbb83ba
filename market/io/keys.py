"""A table's natural-key order, and whether its key is certainly unique, at 10^7 rows.

Arrow's stable sort (C++ string comparisons, about 3x pandas' on 10^7 ids) gives the order
a valid table is kept in; equal keys then sit side by side, so one pass over the sorted
keys settles uniqueness where no key part is missing (pandera's hash check, 6.9 s on 10^7
ids, is then not needed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from market.io.schemas import TableSpec


def key_order(spec: TableSpec, df: pd.DataFrame) -> np.ndarray:
    """Row positions in natural-key order (stable; missing first): the order a valid table
    is kept in, and the order in which equal keys sit side by side."""
    key = [k for k in spec.key if k in df.columns]
    if not key or not len(df):
        return np.arange(len(df))
    try:  # Arrow's stable sort: C++ string comparisons, about 3x pandas' on 10^7 ids
        table = pa.table({k: pa.array(df[k], from_pandas=True) for k in key})
        order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_start") for k in key])
        return np.asarray(order.to_numpy(), dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # mixed kinds in a column
        keys = pd.DataFrame({k: df[k] for k in key}, copy=False)
        ordered = keys.sort_values(key, kind="stable", na_position="first", ignore_index=False)
        return np.asarray(ordered.index.to_numpy(), dtype=np.int64)


def surely_unique(spec: TableSpec, df: pd.DataFrame, order: np.ndarray) -> bool:
    """True when the natural key has no missing part and no two rows share it (equal keys
    sit side by side in ``order``); False when that is not certain (pandera then checks)."""
    key = list(spec.key)
    if len(df) < 2:
        return True
    if any(k not in df.columns for k in key) or df[key].isna().to_numpy().any():
        return False
    same = np.ones(len(df) - 1, dtype=bool)
    for k in key:
        v = df[k].to_numpy()[order]
        same &= v[1:] == v[:-1]
    return not same.any()
