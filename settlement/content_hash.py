"""The content hash of a statement's lines: a re-run whose lines hash the same as the
latest version's stores nothing."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from settlement.store_tables import LINE_COLS

# columns added later: left out of a statement's hash where zero or missing on every line, so
# statements without them keep the hash they had before they existed (energy lines: product
# is left out where every line is energy)
OPTIONAL_HASH_COLUMNS = {"make_whole_eur", "session_id", "product", "availability_factor"}


def content_hashes(lines: pd.DataFrame) -> dict[tuple[str, str], str]:
    """SHA-256 of each statement's lines, independent of row order and library versions.

    Per (aggregator, buyer), lines ordered by interval and bid; each line column in turn:
    numbers rounded to 1e-6 as little-endian float64 bytes, timestamps as UTC nanoseconds,
    text joined with a unit separator (``\\x00`` for missing), then a record separator.
    ``make_whole_eur`` (added later) is left out of a statement where it is zero or missing on
    every line, so statements without make-whole keep the hash they had before it existed.
    The lines are ordered (one ``lexsort`` on integer codes) and converted once; each
    statement hashes slices of them.
    """
    cols = [n for n, _ in LINE_COLS]
    agg = pd.factorize(lines["aggregator_id"], sort=True)[0]
    buyer = pd.factorize(lines["buyer_id"], sort=True)[0]
    when = pd.to_datetime(lines["interval_start"], utc=True).astype("int64").to_numpy()
    order = np.lexsort((pd.factorize(lines["bid_id"], sort=True)[0], when, buyer, agg))  # stable
    encoded: list[np.ndarray | list[str]] = []
    for c in cols:
        v = lines[c] if c in lines else pd.Series(None, index=lines.index, dtype=object)  # a later column
        if c == "product":  # energy is what every line was before products: hashed as missing
            v = v.where(v != "energy")
        if pd.api.types.is_numeric_dtype(v):
            encoded.append(np.round(v.to_numpy(dtype="float64", na_value=np.nan)[order], 6).astype("<f8"))
        elif pd.api.types.is_datetime64_any_dtype(v):
            encoded.append(pd.to_datetime(v, utc=True).astype("int64").to_numpy()[order].astype("<i8"))
        else:
            text = v.to_numpy(dtype=object)[order]
            missing = pd.isna(text)
            text = text.astype(str).astype(object)  # (numpy's fixed-width text drops "\x00")
            text[missing] = "\x00"
            encoded.append(text.tolist())
    group = agg[order].astype(np.int64) * (int(buyer.max(initial=0)) + 1) + buyer[order]
    bounds = np.flatnonzero(np.diff(group)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(group)]
    agg_ids, buyer_ids = lines["aggregator_id"].to_numpy()[order], lines["buyer_id"].to_numpy()[order]
    out: dict[tuple[str, str], str] = {}
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        if lo == hi:
            continue
        h = hashlib.sha256()
        for c, e in zip(cols, encoded, strict=True):
            if c in OPTIONAL_HASH_COLUMNS and _absent(e[lo:hi]):
                continue
            h.update(e[lo:hi].tobytes() if isinstance(e, np.ndarray) else "\x1f".join(e[lo:hi]).encode())
            h.update(b"\x1e")
        out[(agg_ids[lo], buyer_ids[lo])] = h.hexdigest()
    return out


def _absent(values: np.ndarray | list[str]) -> bool:
    """Zero or missing on every line (numbers), or missing on every line (text)."""
    if isinstance(values, np.ndarray):
        return not np.nan_to_num(values).any()
    return all(v == "\x00" for v in values)
