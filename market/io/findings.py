"""Findings for the rows a vectorised check flags: one per row, with the row's id and the
offending value, built only for the flagged rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from market.errors import Finding, FindingCode
from market.io.schemas import TableSpec


class RowIds:
    """Each row's id label (``bid_id=b1``; for a table keyed by several columns, the key's
    parts: ``area_id/node_id=a1/n1``), worked out only for the rows asked for: a table of
    10^7 rows with one bad cell labels one row. ``None`` where the id is missing or the
    table has no key column."""

    def __init__(self, spec: TableSpec, df: pd.DataFrame) -> None:
        self.df = df
        self.by_id = bool(spec.id_column and spec.id_column in df.columns)
        self.columns = [spec.id_column] if self.by_id else [k for k in spec.key if k in df.columns]
        self.label = "/".join(str(c) for c in self.columns)

    def __getitem__(self, row: int) -> str | None:
        if not self.columns:
            return None
        values = [self.df[c].iloc[row] for c in self.columns]
        if self.by_id and values[0] is None:
            return None
        return f"{self.label}={'/'.join(map(str, values))}"


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
    ids = RowIds(spec, df)
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
