"""Forecasts of a batch's base flows from its actuals, with two documented forecasters.

- **same time previous day** (day-ahead): issued at ``day_ahead_at`` (UTC) of the day
  before each delivery day, the base flow of the same constraint at the same time 24 hours
  earlier; where the batch does not hold that day, from ``history`` (a batch of the days
  before), else no day-ahead forecast for that interval;
- **persistence** (intraday): for each lead time ``L``, issued ``L`` before the delivery
  interval, the actual of the last interval that had ended by then (the newest state a
  meter could report).

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
    return out[COLUMNS].reset_index(drop=True)
