"""Reading raw cells as the contract's kinds (text, number, UTC timestamp), vectorised.

Each bad cell becomes a :class:`~market.errors.Finding` with its row, id and reason;
nothing is repaired or clamped.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from market.errors import Finding, FindingCode
from market.io.findings import RowIds
from market.io.schemas import TableSpec
from market.io.strict import arrow_array, blank_text, is_text, per_unique, per_unique_mask

TZ_SUFFIX = re.compile(r"(Z|z|[+-]\d{2}(:?\d{2})?)$")


COMPLETE = "flexmarket_complete"  # attrs key: the coerced columns with no missing value
EMPTY = "flexmarket_empty"  # attrs key: the coerced text columns with no value at all


def coerce_table(
    spec: TableSpec, raw: pd.DataFrame, arrow: pa.Table | None = None
) -> tuple[pd.DataFrame | None, list[Finding]]:
    """Give each column its kind; report cells that cannot be read as that kind.

    ``arrow``: the same table as read from Parquet, whose text columns are checked as they
    are (rather than converted from pandas objects once more).

    Returns ``None`` for the frame when a required column is missing (nothing else
    of that table can be checked meaningfully).
    """
    findings: list[Finding] = []
    missing = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    for name in missing:
        findings.append(
            Finding(spec.name, None, None, name, None, "missing required column", FindingCode.MISSING_COLUMN)
        )
    if missing:
        return None, findings
    if not raw.index.equals(pd.RangeIndex(len(raw))):  # rows are numbered from 0, as in the file
        raw = raw.reset_index(drop=True)
    ids = RowIds(spec, raw)
    columns: dict[str, pd.Series] = {}
    complete: set[str] = set()  # columns read with no missing value (as established here)
    empty: set[str] = set()  # text columns read with no value at all
    for col in spec.columns:
        if col.name not in raw.columns:
            fill = col.default if col.default is not None else None
            columns[col.name] = pd.Series(fill, index=raw.index, dtype=float if col.kind == "float" else object)
            continue
        series = raw[col.name]
        if col.kind == "str":
            source = arrow.column(col.name) if arrow is not None and col.name in arrow.column_names else None
            columns[col.name], blank = _as_str(series, source)
            if not blank.any():
                complete.add(col.name)
            elif blank.all():
                empty.add(col.name)
        elif col.kind == "float":
            columns[col.name], bad = _as_float(series)
            nan_text = bad.copy()
            if bad.any():  # only the bad cells are looked at again
                text = series[bad].astype(str).str.strip().str.lower()
                nan_text[bad] = np.asarray(text.isin(["nan", "-nan", "+nan"]))
            findings += _cell_findings(
                spec, series, nan_text, ids, col.name, "must be a finite number, not NaN", FindingCode.NOT_FINITE
            )
            findings += _cell_findings(
                spec, series, bad & ~nan_text, ids, col.name, "not a number", FindingCode.NOT_A_NUMBER
            )
        else:
            columns[col.name], naive, unreadable, beyond = _as_utc(series)
            findings += _cell_findings(
                spec,
                series,
                beyond,
                ids,
                col.name,
                "timestamp outside the range this engine holds (years 1677 to 2262)",
                FindingCode.NOT_A_TIMESTAMP,
            )
            findings += _cell_findings(
                spec,
                series,
                naive,
                ids,
                col.name,
                "timestamp has no timezone (naive); give UTC offset",
                FindingCode.NAIVE_TIMESTAMP,
            )
            findings += _cell_findings(
                spec, series, unreadable, ids, col.name, "not a timestamp", FindingCode.NOT_A_TIMESTAMP
            )
    complete |= {c.name for c in spec.columns if c.kind != "str" and not columns[c.name].isna().any()}
    extra = {name: raw[name] for name in raw.columns if name not in columns}
    # one frame from the columns (no copy of the raw table, no consolidation of its blocks)
    out = pd.DataFrame({**columns, **extra}, index=raw.index, copy=False)
    out.attrs[COMPLETE] = frozenset(complete)
    out.attrs[EMPTY] = frozenset(empty)
    return out, findings


def _cell_findings(
    spec: TableSpec, series: pd.Series, bad: np.ndarray, ids: RowIds, column: str, reason: str, code: FindingCode
) -> list[Finding]:
    rows = np.flatnonzero(bad)
    return [Finding(spec.name, int(i), ids[int(i)], column, repr(series.iloc[i]), reason, code) for i in rows]


def _is_blank(series: pd.Series) -> np.ndarray:
    return blank_text(series)


def _as_str(series: pd.Series, source: pa.ChunkedArray | None = None) -> tuple[pd.Series, np.ndarray]:
    """Text as is; a whole-number float as its integer (``7.0`` -> ``"7"``); other values as
    ``str``; blanks as missing (returned with the mask of blanks). Converted once per
    distinct value, never per cell. ``source``: the column as read from Parquet (used when
    it is text)."""
    arr = source.combine_chunks() if source is not None and is_text(source) else arrow_array(series)
    blank = blank_text(series, arr)
    text = is_text(arr)
    if text and series.dtype == object and not blank.any():
        return series, blank  # text already, nothing blank: kept as it is (no copy)
    nulls = arr.null_count if arr is not None else -1
    if source is not None and text and series.dtype == object and int(blank.sum()) == nulls:
        return series, blank  # read from Parquet, every blank a null (already None): no copy
    out = series.astype(object)
    if not text:
        out = pd.Series(per_unique(out, _str_value), index=series.index, dtype=object)
    return out.where(~blank, None), blank


def _str_value(v: object) -> object:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) else str(v)


def _as_float(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if series.dtype.kind in "iuf":  # numbers already (Parquet): nothing to parse, missing stays missing
        return series.astype(float, copy=False), np.zeros(len(series), dtype=bool)
    blank = _is_blank(series)
    if pd.api.types.is_bool_dtype(series):
        return pd.Series(np.nan, index=series.index), ~blank
    values = pd.to_numeric(series.where(~blank, None), errors="coerce").astype(float)
    bad = np.asarray(values.isna()) & ~blank
    return values, bad


def _as_utc(series: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """The column as UTC nanoseconds, with masks of naive, unreadable and out-of-range
    (beyond what nanoseconds hold: Parquet may store us or ms) cells."""
    n = len(series)
    no = np.zeros(n, dtype=bool)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        utc = series.dt.tz_convert("UTC")
        if utc.dt.unit == "ns":
            return utc, no, no, no
        low, high = (t.tz_localize("UTC") for t in (pd.Timestamp.min, pd.Timestamp.max))
        beyond = np.asarray(utc.notna() & ((utc < low) | (utc > high)))
        return utc.where(~beyond).dt.as_unit("ns"), no, no, beyond
    if pd.api.types.is_datetime64_dtype(series.dtype):
        naive = np.asarray(series.notna())
        return pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]"), naive, no, no
    blank = _is_blank(series)
    text = series.astype(object).where(~blank, None)
    has_tz = per_unique_mask(text, lambda v: isinstance(v, str) and bool(TZ_SUFFIX.search(v.strip())))
    looks_like_ts = per_unique_mask(text, _parses_naive)  # once per distinct value, not per cell
    naive = ~blank & ~has_tz & looks_like_ts
    parsed = pd.to_datetime(text.where(has_tz, None), utc=True, format="ISO8601", errors="coerce")
    unreadable = ~blank & ~naive & np.asarray(parsed.isna())
    return parsed.astype("datetime64[ns, UTC]"), naive, unreadable, no


def _parses_naive(v: object) -> bool:
    if not isinstance(v, str):
        return False
    try:
        pd.Timestamp(v)
    except (ValueError, TypeError):
        return False
    return True
