"""Strict reading of configuration values: no truthy strings, no booleans as numbers, no
non-finite or absurd numbers, no unknown keys (each with a suggestion)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def is_number(value: Any) -> bool:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def unknown_keys(raw: dict[str, Any], allowed: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, reason)`` for every key of ``raw`` not in ``allowed``, with the closest
    allowed key as a suggestion where one is close."""
    allowed = sorted(allowed)
    out = []
    for key in sorted(set(raw) - set(allowed)):
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
        out.append((key, f"unknown key{hint}"))
    return out


def per_unique(series: pd.Series, fn: Callable[[object], Any]) -> np.ndarray:
    """``fn`` of every value of ``series``, called once per distinct value (missing values
    get ``fn(None)``): a column of a million cells with a handful of values costs a handful
    of calls."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values = [fn(u) for u in uniques]
    table = np.empty(len(values) + 1, dtype=object)
    table[: len(values)] = values
    table[-1] = fn(None)
    return table[codes]  # code -1 (missing) takes the last entry


def text_array(series: pd.Series) -> pa.Array | None:
    """The column as an Arrow string array when it holds only text (and missing values),
    else ``None`` (numbers, or mixed kinds)."""
    if series.dtype.kind in "biufcmM":
        return None
    try:
        arr = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if pa.types.is_null(arr.type):
        return arr.cast(pa.string())
    return arr if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) else None


def blank_text(series: pd.Series, text: pa.Array | None = None) -> np.ndarray:
    """Missing, or text that is empty after stripping whitespace: through Arrow when the
    column holds only text (C speed; ``text`` if already converted), cell by cell when it
    mixes kinds."""
    arr = text if text is not None else text_array(series)
    if arr is None:
        missing = np.asarray(series.isna())
        if series.dtype.kind in "biufcmM":
            return missing
        return missing | np.asarray(series.map(lambda v: isinstance(v, str) and v.strip() == ""), dtype=bool)
    # missing (null) or empty once stripped, in one Arrow pass (no per-object NA check)
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True)
    return np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
