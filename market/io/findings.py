"""Findings for the rows a vectorised check flags: one per row, with the row's id and the
offending value, built only for the flagged rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from market.errors import Finding, FindingCode
from market.io.schemas import TableSpec


def row_ids(spec: TableSpec, df: pd.DataFrame) -> list[str | None]:
    if spec.id_column and spec.id_column in df.columns:
        return [None if v is None else f"{spec.id_column}={v}" for v in df[spec.id_column]]
    key = [k for k in spec.key if k in df.columns]
    label = "/".join(key)
    return [f"{label}={'/'.join(map(str, row))}" for row in df[key].itertuples(index=False)]


def row_findings(
    spec: TableSpec,
    df: pd.DataFrame,
    mask: np.ndarray | pd.Series,
    column: str | None,
    reason: str | Callable[[int], str],
    code: FindingCode,
) -> list[Finding]:
    """Findings for each row where ``mask`` holds (vectorised mask, one finding per row)."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    if not len(idx):
        return []
    ids = row_ids(spec, df)
    out = []
    for i in (int(j) for j in idx):
        value = None if column is None else repr(plain(df[column].iloc[i]))
        text = reason(i) if callable(reason) else reason
        out.append(Finding(spec.name, int(i), ids[int(i)], column, value, text, code))
    return out


def plain(v: object) -> object:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v
