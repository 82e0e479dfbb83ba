"""Forecasts of a batch's state from its actuals, with two documented forecasters.

- **same time previous day** (day-ahead): issued at ``day_ahead_at`` (UTC) of the day
  before each delivery day, the base flow of the same constraint at the same time 24 hours
  earlier; where the batch does not hold that day, from ``history`` (a batch of the days
  before), else no day-ahead forecast for that interval;
- **persistence** (intraday): for each lead time ``L``, issued ``L`` before the delivery
  interval, the actual of the last interval that had ended by then (the newest state a
  meter could report).

What reservation steps read, day-ahead only (same time previous day, issued at
``day_ahead_at`` the day before): each **need**'s MW as the need of the same buyer, area
and direction 24 hours earlier (0 where there was none: no need is a forecast too), and
each bid's **available MW** (``der_available``) as the same DER's offer in the same
direction 24 hours earlier (no forecast where it offered nothing then). The previous day
comes from the batch itself or from ``history``.

Deterministic: the same batch, history and options give the same table, row for row (no
randomness is involved).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from market.io.batch import Batch

COLUMNS = ["quantity", "key", "interval_start", "issued_at", "value"]


def actual_flows(batch: Batch) -> pd.DataFrame:
    """``(key, interval_start, value)``: every constraint's actual base flow per interval."""
    cfg = batch.config
    cons = batch.constraints
    starts = pd.DatetimeIndex(cfg.intervals)
    every = cons[cons["interval_start"].isna()]
    some = cons[cons["interval_start"].notna()]
    rep = pd.DataFrame(
        {
            "key": np.repeat(every["constraint_id"].to_numpy(), len(starts)),
            "interval_start": np.tile(starts, len(every)),
            "value": np.repeat(every["base_flow_mw"].to_numpy(dtype=float), len(starts)),
        }
    )
    own = pd.DataFrame(
        {
            "key": some["constraint_id"].to_numpy(),
            "interval_start": some["interval_start"].to_numpy(),
            "value": some["base_flow_mw"].to_numpy(dtype=float),
        }
    )
    out = pd.concat([f for f in (own, rep) if len(f)] or [own], ignore_index=True)
    out["interval_start"] = pd.to_datetime(out["interval_start"], utc=True)
    return out.sort_values(["key", "interval_start"]).reset_index(drop=True)


def make_forecasts(
    batch: Batch,
    history: Batch | None = None,
    lead_minutes: Sequence[int] = (15, 60),
    day_ahead_at: str = "12:00",
) -> pd.DataFrame:
    """The ``forecasts`` table of ``batch`` (see the module docstring)."""
    actual = actual_flows(batch)
    past = pd.concat([actual_flows(history), actual], ignore_index=True) if history is not None else actual
    past = past.drop_duplicates(["key", "interval_start"], keep="last")
    known = past.set_index(["key", "interval_start"])["value"]
    parts = []
    hours, minutes = (int(x) for x in day_ahead_at.split(":"))
    prev = actual.assign(source=actual["interval_start"] - pd.Timedelta(days=1))
    prev["value"] = known.reindex(pd.MultiIndex.from_frame(prev[["key", "source"]])).to_numpy()
    prev["issued_at"] = (
        prev["interval_start"].dt.floor("D") - pd.Timedelta(days=1) + pd.Timedelta(hours=hours, minutes=minutes)
    )
    parts.append(prev.dropna(subset=["value"]))
    step = batch.config.interval
    for lead in lead_minutes:
        issued = actual["interval_start"] - pd.Timedelta(minutes=int(lead))
        last_ended = ((issued - batch.config.start) // step - 1) * step + batch.config.start  # ended by then
        pers = actual.assign(issued_at=issued, source=last_ended)
        pers["value"] = known.reindex(pd.MultiIndex.from_frame(pers[["key", "source"]])).to_numpy()
        parts.append(pers.dropna(subset=["value"]))
    out = pd.concat(parts, ignore_index=True).assign(quantity="base_flow")
    out = out.sort_values(["key", "interval_start", "issued_at"]).drop_duplicates(
        ["key", "interval_start", "issued_at"], keep="first"
    )
    ahead = [
        day_before(batch.needs, history.needs if history is not None else None, NEED_MATCH, "need_id", 0.0),
        day_before(batch.bids, history.bids if history is not None else None, BID_MATCH, "bid_id", None),
    ]
    issued = [
        _issued(f, hours, minutes).assign(quantity=q) for f, q in zip(ahead, ("need", "der_available"), strict=True)
    ]
    return pd.concat([out[COLUMNS], *[f[COLUMNS] for f in issued if len(f)]], ignore_index=True)


NEED_MATCH = ["buyer_id", "area_id", "direction"]
BID_MATCH = ["der_id", "direction"]


def day_before(
    rows: pd.DataFrame, history: pd.DataFrame | None, match: list[str], key: str, missing: float | None
) -> pd.DataFrame:
    """``(key, interval_start, value)``: each row's MW as the row matching it on ``match``
    24 hours earlier (in ``rows`` or ``history``), summed; ``missing`` where none did (no
    row where ``missing`` is None)."""
    past = pd.concat([h for h in (history, rows) if h is not None], ignore_index=True)
    then = past.groupby([*match, "interval_start"])["quantity_mw"].sum()
    want = pd.MultiIndex.from_frame(
        rows[match].assign(interval_start=pd.to_datetime(rows["interval_start"], utc=True) - pd.Timedelta(days=1))
    )
    value = then.reindex(want).to_numpy(dtype=float)
    out = pd.DataFrame(
        {"key": rows[key].to_numpy(), "interval_start": rows["interval_start"].to_numpy(), "value": value}
    )
    out["interval_start"] = pd.to_datetime(out["interval_start"], utc=True)
    return out.dropna(subset=["value"]) if missing is None else out.fillna({"value": missing})


def _issued(f: pd.DataFrame, hours: int, minutes: int) -> pd.DataFrame:
    """Day-ahead forecasts issued at HH:MM (UTC) the day before their interval."""
    day = f["interval_start"].dt.floor("D") - pd.Timedelta(days=1)
    return f.assign(issued_at=day + pd.Timedelta(hours=hours, minutes=minutes))
