"""Streaming a large batch through a design, one stretch of the horizon at a time.

Nothing in a step's model links two intervals except a block or an exclusive group, and
nothing a step prepares looks across intervals except the aggregator view (its virtual
node weights each aggregator's nodes over the whole horizon). So a batch whose design has
no aggregator view can be cut wherever no block or exclusive group crosses, into
*stretches* of consecutive intervals, and each stretch cleared on its own: every step, its
awards, prices, flows and physics. The run's tables are the stretches' tables stacked in
the contract's row order, and its metrics are computed once over them. Each stretch's
models are exactly the rows and columns of the whole run's models in those intervals, so
model sizes add up and the objective is the whole run's.

Only a stretch is ever built in memory at once per worker: the book is streamed through
two worker processes (or the Dask cluster at ``--scheduler``) instead of building every
constraint family for the whole horizon. A book of two stretches (up to 10^6 bid-intervals)
is cleared by this process and one worker, a stretch each, so that only one stretch is
pickled to a worker and back. The CLI starts the worker pool before it reads the batch, so
the workers import the clearing code meanwhile.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from market.clearing.assemble import sum_liquidity
from market.clearing.ir import SolveStatus
from market.clearing.results import ClearingResult, ClearingStatus, ModelStats
from market.clearing.sizing import BIDS_PER_STRETCH, WORKERS, stretch_count
from market.design.spec import Design
from market.enums import View
from market.io.batch import Batch

# the contract's row order of each run table that is not ordered by time first
ROW_ORDER = {
    "needs": ["need_id"],
    "unmet": ["need_id"],
    "dso_delivery": ["need_id"],
    "flows": ["constraint_id", "interval_start"],
    "blind_violations": ["constraint_id", "interval_start"],
}


def streamable(design: Design) -> bool:
    """Whether each stretch of the horizon can be cleared on its own (see module doc)."""
    return not design.reserves and all(step.view is not View.AGGREGATOR for step in design.steps)


LINKS = ("block_id", "exclusive_group")  # the bid columns whose units link intervals


def cut_points(batch: Batch) -> np.ndarray:
    """Interval boundaries (0 < k < n_t) no block or exclusive group crosses."""
    cfg, bids = batch.config, batch.bids
    return cut_points_of(len(cfg.intervals), cfg.slot_of(bids["interval_start"]), {c: bids[c] for c in LINKS})


def cut_points_of(n_t: int, slots: np.ndarray, links: dict[str, pd.Series]) -> np.ndarray:
    """:func:`cut_points` from each bid's interval index (``slots``) and its block and
    exclusive group (``links``: missing where none)."""
    crossing = np.zeros(n_t + 1, dtype=np.int64)
    for units in links.values():
        linked = units.notna().to_numpy()
        if not linked.any():
            continue
        span = (
            pd.DataFrame({"unit": units.to_numpy()[linked], "t": slots[linked]})
            .groupby("unit")["t"]
            .agg(["min", "max"])
        )
        np.add.at(crossing, span["min"].to_numpy() + 1, 1)  # boundaries min+1 .. max are crossed
        np.add.at(crossing, span["max"].to_numpy() + 1, -1)
    crossed = np.cumsum(crossing)
    return np.flatnonzero(crossed[1:n_t] == 0) + 1


def stretches(batch: Batch, per_stretch: int = BIDS_PER_STRETCH, at_least: int = WORKERS) -> list[tuple[int, int]]:
    """``[(first, end), ...]`` interval ranges covering the horizon, cut only at
    :func:`cut_points`, each about ``per_stretch`` bid-intervals (at least ``at_least``
    stretches where the cuts allow; deterministic)."""
    cfg, bids = batch.config, batch.bids
    slots = cfg.slot_of(bids["interval_start"])
    return stretches_of(len(cfg.intervals), slots, {c: bids[c] for c in LINKS}, per_stretch, at_least)


def stretches_of(
    n_t: int,
    slots: np.ndarray,
    links: dict[str, pd.Series],
    per_stretch: int = BIDS_PER_STRETCH,
    at_least: int = WORKERS,
) -> list[tuple[int, int]]:
    """:func:`stretches` from each bid's interval index and links (:func:`cut_points_of`)."""
    per_t = np.bincount(slots, minlength=n_t)
    total = int(per_t.sum())
    count = stretch_count(total, per_stretch, at_least)
    cuts = cut_points_of(n_t, slots, links)
    if count <= 1 or not len(cuts):
        return [(0, n_t)]
    before = np.cumsum(per_t)[cuts - 1]  # bid-intervals before each possible cut
    targets = total * np.arange(1, count) / count
    chosen = np.unique(cuts[np.abs(before[None, :] - targets[:, None]).argmin(axis=1)])
    edges = [0, *chosen.tolist(), n_t]
    return list(zip(edges[:-1], edges[1:], strict=True))


def sub_batch(batch: Batch, first: int, end: int) -> Batch:
    """The batch restricted to intervals ``[first, end)``: its own horizon, the bids, needs,
    signals and per-interval constraint rows of those intervals (every-interval rows and
    the static tables as they are), and the whole batch's buying DSOs."""
    cfg = batch.config
    start, stop = cfg.start + first * cfg.interval, cfg.start + end * cfg.interval

    def within(df: pd.DataFrame, keep_empty: bool = False) -> pd.DataFrame:
        ns = np.asarray(df["interval_start"].dt.as_unit("ns").array.asi8)  # UTC ns; NaT the least int64
        mask = (ns >= start.value) & (ns < stop.value)
        if keep_empty:
            mask |= ns == np.iinfo(np.int64).min
        out = df.take(np.flatnonzero(mask))  # one copy of the rows kept (no second for the index)
        out.index = pd.RangeIndex(len(out))
        return out

    part = replace(
        batch,
        bids=within(batch.bids),
        needs=within(batch.needs),
        signals=within(batch.signals),
        constraints=within(batch.constraints, keep_empty=True),
        buying_dsos=tuple(batch.dso_buyers),
    )
    return part.with_config(start=start, end=stop)


def stack(results: list[ClearingResult]) -> ClearingResult:
    """One result from the results of consecutive stretches (in time order)."""
    failed = next((r for r in results if not r.ok), None)
    if failed is not None:
        return failed
    first = results[0]
    tables: dict[str, pd.DataFrame] = {}
    for name in first.tables():
        frames = [r.tables()[name] for r in results]
        if name == "liquidity":
            tables[name] = sum_liquidity(frames)
            continue
        stacked = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        if name in ROW_ORDER and len(stacked):
            stacked = stacked.sort_values(ROW_ORDER[name], kind="stable", ignore_index=True)
        tables[name] = stacked
    return ClearingResult(
        first.design,
        first.pricing,
        ClearingStatus.OPTIMAL,
        stats=merge_stats([r.stats for r in results]),
        stretches=len(results),
        sold_twice_mwh=round(sum(r.sold_twice_mwh for r in results), 6),
        **tables,
    )


def merge_stats(per_stretch: list[tuple[ModelStats, ...]]) -> tuple[ModelStats, ...]:
    """One :class:`ModelStats` per model of the run: each stretch holds the rows and columns
    of the run's models in its intervals, so sizes, timings and objectives add up; a model
    that stopped at a limit in any stretch reports it."""
    merged: dict[tuple[str, str, str], ModelStats] = {}
    for stats in per_stretch:
        for st in stats:
            key = (st.step, st.part, st.operator)
            was = merged.get(key)
            if was is None:
                merged[key] = st
                continue
            merged[key] = replace(
                was,
                n_variables=was.n_variables + st.n_variables,
                n_constraints=was.n_constraints + st.n_constraints,
                n_integer=was.n_integer + st.n_integer,
                build_seconds=was.build_seconds + st.build_seconds,
                solve_seconds=was.solve_seconds + st.solve_seconds,
                status=was.status if was.status != SolveStatus.OPTIMAL.value else st.status,
                objective_eur_h=was.objective_eur_h + st.objective_eur_h,
            )
    return tuple(merged.values())
