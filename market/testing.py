"""Builders of small hand-made batches, for tests and notebooks.

Each builder returns one row as a dict with every column of its table; defaults fill
what is not given (one DSO ``dso1``, node ``n1``, hourly intervals from
:data:`START`). :func:`make_batch` validates the rows like a batch folder::

    from market.testing import area, bid, make_batch, tso_need
    batch = make_batch(bids=[bid("b1", 50.0, 2.0)], needs=[tso_need("n1", 1.0)], areas=[area("a1", "n1")])
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from market.clearing.results import ClearingResult
from market.io.batch import Batch, BatchConfig
from market.io.read import batch_from_frames

Row = dict[str, Any]
START = "2026-01-05T00:00:00+00:00"


def ts(i: int = 0, minutes: int = 60) -> pd.Timestamp:
    """The start of interval ``i`` (``minutes`` long) from :data:`START`."""
    return pd.Timestamp(START) + pd.Timedelta(minutes=minutes * i)


def config(n_intervals: int = 1, minutes: int = 60, voll: float = 1000.0) -> BatchConfig:
    """A batch config of ``n_intervals`` intervals from :data:`START`."""
    start = pd.Timestamp(START)
    return BatchConfig(
        name="test",
        start=start,
        end=start + pd.Timedelta(minutes=minutes) * n_intervals,
        interval_minutes=minutes,
        voll_eur_mwh=voll,
    )


def bid(
    bid_id: str,
    price: float,
    q: float,
    *,
    node: str = "n1",
    dso: str = "dso1",
    direction: str = "up",
    t: int = 0,
    minq: float = 0.0,
    der: str | None = None,
    agg: str = "agg1",
    block: str | None = None,
    excl: str | None = None,
    services: str | None = None,
    minutes: int = 60,
    availability: float | None = None,
    max_usage: float | None = None,
    submitted_at: str | None = None,
) -> dict[str, Any]:
    """One ``bids`` row (up by default, fully divisible, both services); ``availability``:
    a two-part offer's EUR/MW/h; ``max_usage``: a capped-power (MaxUsage) ceiling in MW."""
    optional = {
        "availability_price_eur_mw_h": availability,
        "max_usage_mw": max_usage,
        "submitted_at": None if submitted_at is None else pd.Timestamp(submitted_at),
    }
    return {
        **{k: v for k, v in optional.items() if v is not None},
        "bid_id": bid_id,
        "aggregator_id": agg,
        "der_id": der or f"der-{bid_id}",
        "dso_id": dso,
        "node_id": node,
        "interval_start": ts(t, minutes),
        "direction": direction,
        "quantity_mw": q,
        "min_quantity_mw": minq,
        "price_eur_mwh": price,
        "block_id": block,
        "exclusive_group": excl,
        "services": services,
    }


def tso_need(
    need_id: str, q: float, direction: str = "up", t: int = 0, max_price: float | None = None, minutes: int = 60
) -> dict[str, Any]:
    """One TSO balancing need (must-meet unless ``max_price`` is given)."""
    return {
        "need_id": need_id,
        "buyer_id": "tso",
        "service": "tso_balancing",
        "area_id": "system",
        "interval_start": ts(t, minutes),
        "direction": direction,
        "quantity_mw": q,
        "max_price_eur_mwh": max_price,
    }


def dso_need(
    need_id: str,
    area: str,
    q: float,
    direction: str = "up",
    t: int = 0,
    dso: str = "dso1",
    max_price: float | None = None,
    minutes: int = 60,
) -> dict[str, Any]:
    """One DSO congestion need in ``area``."""
    return {
        "need_id": need_id,
        "buyer_id": dso,
        "service": "dso_congestion",
        "area_id": area,
        "interval_start": ts(t, minutes),
        "direction": direction,
        "quantity_mw": q,
        "max_price_eur_mwh": max_price,
    }


def forecast_row(quantity: str, key: str, value: float, t: int = 0, issued_at: str = "2026-01-04T08:00Z") -> Row:
    """One ``forecasts`` row: ``quantity`` (``base_flow``, ``need``, ``der_available``) of
    ``key`` for interval ``t``, issued at ``issued_at`` (default: 08:00 the day before)."""
    return {
        "quantity": quantity,
        "key": key,
        "interval_start": ts(t),
        "issued_at": pd.Timestamp(issued_at),
        "value": value,
    }


def area(area_id: str, node: str, dso: str = "dso1") -> dict[str, Any]:
    """One ``node_areas`` row."""
    return {"area_id": area_id, "node_id": node, "dso_id": dso}


def constraint(
    cid: str,
    base: float,
    max_mw: float,
    min_mw: float | None = None,
    owner: str = "dso1",
    t: int | None = None,
    minutes: int = 60,
) -> dict[str, Any]:
    """One ``constraints`` row (every interval unless ``t`` is given; symmetric limits by default)."""
    return {
        "constraint_id": cid,
        "owner_id": owner,
        "interval_start": None if t is None else ts(t, minutes),
        "base_flow_mw": base,
        "max_flow_mw": max_mw,
        "min_flow_mw": -max_mw if min_mw is None else min_mw,
    }


def signal(
    area_id: str,
    state: str,
    t: int = 0,
    up: float | None = None,
    down: float | None = None,
    dso: str = "dso1",
    minutes: int = 60,
) -> dict[str, Any]:
    """One traffic-light ``signals`` row."""
    return {
        "dso_id": dso,
        "area_id": area_id,
        "interval_start": ts(t, minutes),
        "state": state,
        "headroom_up_mw": up,
        "headroom_down_mw": down,
    }


def make_batch(
    bids: list[Row],
    needs: list[Row],
    areas: list[Row] | None = None,
    constraints: list[Row] | None = None,
    sens: list[Row] | None = None,
    signals: list[Row] | None = None,
    n_intervals: int = 1,
    minutes: int = 60,
    voll: float = 1000.0,
    routes: dict[str, str] | None = None,
    forecasts: list[Row] | None = None,
    gate_closures: dict[str, str] | None = None,
) -> Batch:
    """A validated :class:`Batch` from rows (each area defaults to one node of its bid's DSO;
    ``routes``: aggregator -> route, the ``aggregators`` table)."""
    nodes = sorted({b["node_id"] for b in bids})
    if areas is None:
        areas = [area(f"a-{n}", n, next(b["dso_id"] for b in bids if b["node_id"] == n)) for n in nodes]
    frames: dict[str, pd.DataFrame] = {
        "bids": pd.DataFrame(bids),
        "needs": pd.DataFrame(needs),
        "node_areas": pd.DataFrame(areas),
    }
    if constraints:
        frames["constraints"] = pd.DataFrame(constraints)
    if sens:
        frames["sensitivities"] = pd.DataFrame(sens)
    if signals:
        frames["signals"] = pd.DataFrame(signals)
    if forecasts:
        frames["forecasts"] = pd.DataFrame(forecasts)
    if routes:
        frames["aggregators"] = pd.DataFrame({"aggregator_id": list(routes), "route": list(routes.values())})
    cfg = replace(config(n_intervals, minutes, voll), gate_closures=dict(gate_closures or {}))
    return batch_from_frames(cfg, **frames)


def award_mw(result: ClearingResult, bid_id: str, buyer: str | None = None) -> float:
    """MW awarded to ``bid_id`` (to ``buyer`` only, if given)."""
    aw = result.awards
    sel = aw["bid_id"] == bid_id
    if buyer:
        sel &= aw["buyer_id"] == buyer
    return float(aw.loc[sel, "quantity_mw"].sum())


def price_of(result: ClearingResult, need_id: str) -> float:
    """The published price of ``need_id``."""
    p = result.prices
    return float(p.loc[p["need_id"] == need_id, "price_eur_mwh"].iloc[0])


def feeder_case() -> Batch:
    """A cheap down bid (``under``, 4 MW at 5) under a DSO feeder with 1 MW of headroom (down
    at ``n1`` loads it: factor -1, base 1, limit 2); a dear one (``elsewhere``, 4 MW at 30);
    the TSO needs 3 MW down. A TSO blind to the feeder overloads it by 2 MW."""
    bids = [bid("under", 5, 4, node="n1", direction="down"), bid("elsewhere", 30, 4, node="n2", direction="down")]
    cons = [constraint("head", base=1.0, max_mw=2.0)]
    sens = [{"constraint_id": "head", "node_id": "n1", "factor": -1.0}]
    return make_batch(bids, [tso_need("N", 3, "down")], constraints=cons, sens=sens)
