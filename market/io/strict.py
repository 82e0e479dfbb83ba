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

MAX_TOML_BYTES = 1_000_000  # a batch.toml, design, settle.toml or sweep.toml is far smaller
MAX_TOML_DEPTH = 50  # nested arrays or tables: the contract's files nest three deep


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """``text`` as TOML, or a :class:`ValueError` whose message names ``where`` and the reason
    (not TOML, too large, nested too deep): never a ``RecursionError`` traceback."""
    import tomllib

    if len(text) > MAX_TOML_BYTES:
        raise ValueError(f"{where}: {len(text):,} characters; a configuration file is at most {MAX_TOML_BYTES:,}")
    depth = max_nesting(text)
    if depth > MAX_TOML_DEPTH:
        raise ValueError(f"{where}: brackets nested {depth} deep; at most {MAX_TOML_DEPTH}")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML: {exc}") from exc
    except RecursionError as exc:  # pragma: no cover - max_nesting refuses such text first
        raise ValueError(f"{where}: nested too deep to read") from exc


def max_nesting(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``text`` (strings not told apart: an upper
    bound, enough to refuse a hostile file before the parser recurses)."""
    depth = best = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return best


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


def per_unique_mask(series: pd.Series, fn: Callable[[object], bool]) -> np.ndarray:
    """``fn`` of every value of ``series`` as a boolean array, called once per distinct
    value (missing values: NaN and NA are hashed as missing, so they get ``fn(None)``)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.fromiter((bool(fn(u)) for u in uniques), dtype=bool, count=len(uniques))
    return np.append(table, bool(fn(None)))[codes]  # code -1 (missing) takes the last entry


def arrow_array(series: pd.Series) -> pa.Array | None:
    """The column as one Arrow array (text, numbers, ...), or ``None`` when it mixes kinds
    Arrow cannot hold in one array."""
    if series.dtype.kind in "biufcmM":
        return None
    try:
        arr = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return arr.cast(pa.string()) if pa.types.is_null(arr.type) else arr


def is_text(arr: pa.Array | pa.ChunkedArray | None) -> bool:
    """Whether an Arrow array holds text (and missing values) only."""
    return arr is not None and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type))


def blank_text(series: pd.Series, arr: pa.Array | None = None) -> np.ndarray:
    """Missing, or text that is empty after stripping whitespace: through Arrow when the
    column converts to one Arrow array (C speed; ``arr`` if already converted), cell by cell
    only when it mixes kinds."""
    if series.dtype.kind in "biufcmM":
        return np.asarray(series.isna())
    arr = arr if arr is not None else arrow_array(series)
    if arr is None:  # mixed kinds: cell by cell
        missing = np.asarray(series.isna())
        return missing | np.asarray(series.map(lambda v: isinstance(v, str) and v.strip() == ""), dtype=bool)
    if not is_text(arr):  # no text at all: only missing values are blank
        return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    # missing (null), empty, or whitespace only (the same characters utf8_trim_whitespace
    # strips, checked over every code point): Arrow kernels, no string is copied
    blank = pc.fill_null(pc.or_(pc.equal(pc.binary_length(arr), 0), pc.utf8_is_space(arr)), True)
    return np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
