"""Running a design on a batch: steps in order, DSO steps fanned out, prices from duals.

``clear(batch, design, pricing)`` is the public entry point. Each step builds one
model (or one per DSO), solves it with HiGHS through cvxpy, checks the returned
values against every constraint family, fixes integer decisions and re-solves
the LP for prices, and passes on what it awarded: later steps see only the
remaining capacity, the flows and the net activation it caused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from market.batch import Batch
from market.design import Design, Step, load_design
from market.errors import FlexmarketError, SolverError
from market.lp import LinearModel, Solution, SolveStatus, solve_cvxpy, verify
from market.model import (
    VIOLATION_FACTOR,
    StepIndex,
    StepInput,
    build_step_model,
    network_matrix,
)
from market.results import PRICINGS, ClearingResult, ClearingStatus, ModelStats
from market.schemas import TSO_ID

TIE_BREAK_EUR_MWH = 4e-4  # largest cost nudge that orders equal-priced bids by bid_id

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """Batch-wide arrays every step reuses (built once, vectorised)."""

    bids: pd.DataFrame
    needs: pd.DataFrame
    network: pd.DataFrame
    net_matrix: Any
    sens: pd.DataFrame
    signals: pd.DataFrame
    n_t: int


def prepare(batch: Batch) -> Prepared:
    cfg = batch.config
    step = cfg.interval
    bids = batch.bids.copy()
    bids["pos"] = np.arange(len(bids))
    bids["t"] = ((bids["interval_start"] - cfg.start) // step).astype(int)
    bids["sign"] = np.where(bids["direction"] == "up", 1.0, -1.0)
    rank = bids.groupby("price_eur_mwh", sort=False).cumcount().to_numpy()
    size = bids.groupby("price_eur_mwh", sort=False)["bid_id"].transform("size").to_numpy()
    bids["cost"] = bids["price_eur_mwh"] + TIE_BREAK_EUR_MWH * rank / np.maximum(size, 1)
    bids["tso_ok"] = bids["services"].str.contains("tso_balancing")
    bids["dso_ok"] = bids["services"].str.contains("dso_congestion")
    needs = batch.needs.copy()
    needs["t"] = ((needs["interval_start"] - cfg.start) // step).astype(int)
    needs["sign"] = np.where(needs["direction"] == "up", 1.0, -1.0)
    n_t = len(cfg.intervals)
    network = expand_constraints(batch, n_t)
    sens = batch.sensitivities[["constraint_id", "node_id", "factor"]]
    net_matrix = network_matrix(bids, network, sens)
    signals = batch.signals.copy()
    signals["t"] = ((signals["interval_start"] - cfg.start) // step).astype(int)
    return Prepared(bids, needs, network, net_matrix, sens, signals, n_t)


def expand_constraints(batch: Batch, n_t: int) -> pd.DataFrame:
    """One row per constraint and interval (an empty interval_start means every interval)."""
    cfg = batch.config
    cons = batch.constraints
    every = cons[cons["interval_start"].isna()]
    some = cons[cons["interval_start"].notna()].copy()
    some["t"] = ((some["interval_start"] - cfg.start) // cfg.interval).astype(int)
    rep = every.loc[every.index.repeat(n_t)].copy()
    rep["t"] = np.tile(np.arange(n_t), len(every))
    out = pd.concat([some, rep], ignore_index=True)
    out["interval_start"] = cfg.start + out["t"].astype(int) * cfg.interval
    out = out.rename(columns={"base_flow_mw": "base_mw"})
    return out.sort_values(["constraint_id", "t"]).reset_index(drop=True)


@dataclass
class StepOutcome:
    """What one solved model contributes: awarded MW, per-need results, prices."""

    awards: pd.DataFrame
    needs: pd.DataFrame
    node_prices: pd.DataFrame
    liquidity: pd.DataFrame
    stats: ModelStats


def clear(
    batch: Batch,
    design: str | Design = "single",
    pricing: str = "pay-as-bid",
    *,
    scheduler: str | None = None,
    raise_on_failure: bool = True,
    solver_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> ClearingResult:
    """Clear ``batch`` under ``design`` (preset name, TOML path or :class:`Design`).

    ``pricing``: ``pay-as-bid`` or ``pay-as-clear``. ``scheduler``: a Dask scheduler
    address for the per-DSO fan-out (default: local threads). Raises
    :class:`~market.errors.SolverError` on failure unless ``raise_on_failure=False``,
    in which case the result carries ``status=FAILED`` and the message.
    """
    if pricing not in PRICINGS:
        raise FlexmarketError(f"unknown pricing {pricing!r}; choose {', '.join(PRICINGS)}")
    design = design if isinstance(design, Design) else load_design(design)
    prep = prepare(batch)
    taken = np.zeros(len(prep.bids))
    outcomes: list[StepOutcome] = []
    try:
        for step in design.steps:
            if progress:
                progress(f"{design.name}: {step.name}")
            inputs = step_inputs(batch, prep, step, taken)
            results = _solve_all(inputs, scheduler, solver_options)
            for out in results:
                outcomes.append(out)
                if len(out.awards):
                    np.add.at(taken, out.awards["pos"].to_numpy(), out.awards["quantity_mw"].to_numpy())
    except SolverError as exc:
        if raise_on_failure:
            raise
        return _failed(design, pricing, str(exc), outcomes)
    from market.tables import assemble

    return assemble(batch, prep, design, pricing, outcomes)


def _failed(design: Design, pricing: str, message: str, outcomes: list[StepOutcome]) -> ClearingResult:
    empty = pd.DataFrame()
    return ClearingResult(
        design,
        pricing,
        ClearingStatus.FAILED,
        empty,
        empty,
        empty,
        empty,
        empty,
        empty,
        empty,
        empty,
        tuple(o.stats for o in outcomes),
        message=message,
    )


def _solve_all(
    inputs: list[StepInput], scheduler: str | None, solver_options: dict[str, Any] | None
) -> list[StepOutcome]:
    if len(inputs) <= 1:
        return [solve_step(i, solver_options) for i in inputs]
    import dask

    tasks = [dask.delayed(solve_step)(i, solver_options) for i in inputs]
    if scheduler:
        from distributed import Client

        with Client(scheduler) as client:
            return list(client.compute(tasks, sync=True))
    return list(dask.compute(*tasks, scheduler="threads", num_workers=2))


def step_inputs(batch: Batch, prep: Prepared, step: Step, taken: np.ndarray) -> list[StepInput]:
    """The model input(s) of a step: one, or one per DSO when the step fans out."""
    bids = prep.bids.copy()
    # Awards never exceed the capacity a step saw (verified after every solve), so this only
    # removes solver round-off below 1e-9 MW; it cannot hide an over-award.
    bids["cap_mw"] = np.round(bids["quantity_mw"].to_numpy() - taken, 9).clip(min=0.0)
    bids["min_mw"] = np.where(taken > 0, 0.0, bids["min_quantity_mw"])
    flows_so_far = prep.net_matrix @ taken
    network = prep.network.copy()
    network["base_mw"] = network["base_mw"].to_numpy() + flows_so_far
    net_prior = np.bincount(bids["t"], weights=bids["sign"] * taken, minlength=prep.n_t)
    if step.prequalify:
        bids["cap_mw"] = prequalified_cap(bids, network, prep)
    network = _scope(network, step.constraints)
    signals = _signals_for(prep.signals, step.signals)
    needs = prep.needs
    tso_needs = needs[needs["buyer_id"] == TSO_ID] if "tso" in step.buyers else needs.iloc[:0]
    dso_needs = needs[needs["buyer_id"] != TSO_ID] if "dso" in step.buyers else needs.iloc[:0]
    sens = prep.sens
    na = batch.node_areas
    cfg = batch.config

    def one(name: str, b: pd.DataFrame, dn: pd.DataFrame, net: pd.DataFrame) -> StepInput:
        return StepInput(
            name,
            b,
            tso_needs,
            dn,
            na,
            net,
            sens,
            signals,
            net_prior,
            cfg.voll_eur_mwh,
            VIOLATION_FACTOR * cfg.voll_eur_mwh,
        )

    if not step.per_dso:
        return [one(step.name, bids, dso_needs, network)]
    out = []
    for dso in sorted(dso_needs["buyer_id"].unique()):
        dn = dso_needs[dso_needs["buyer_id"] == dso]
        b = _bids_for_dso(bids, dn, na, dso)
        net = network[network["owner_id"] == dso] if step.constraints == "own" else network
        out.append(one(f"{step.name}:{dso}", b, dn, net))
    return out


def _bids_for_dso(bids: pd.DataFrame, needs: pd.DataFrame, na: pd.DataFrame, dso: str) -> pd.DataFrame:
    """Bids of ``dso`` that sit in one of its need areas at the need's interval and direction,
    plus the other bids of their blocks (a block is accepted whole or at one fraction)."""
    mine = bids[bids["dso_id"] == dso]
    hit = (
        mine[["pos", "node_id", "t", "direction"]]
        .merge(na[["node_id", "area_id"]], on="node_id")
        .merge(needs[["area_id", "t", "direction"]], on=["area_id", "t", "direction"])
    )
    keep = mine["pos"].isin(hit["pos"])
    blocks = mine.loc[keep, "block_id"].dropna().unique()
    keep |= mine["block_id"].isin(blocks)
    return mine[keep]


def _scope(network: pd.DataFrame, scope: str) -> pd.DataFrame:
    if scope in ("all", "own"):
        return network
    if scope == "none":
        return network.iloc[:0]
    tso = network["owner_id"] == TSO_ID
    return network[tso] if scope == "transmission" else network[~tso]


def _signals_for(signals: pd.DataFrame, mode: str) -> pd.DataFrame:
    if mode == "none":
        return signals.iloc[:0]
    if mode == "red":
        return signals[signals["state"] == "red"]
    return signals


def prequalified_cap(bids: pd.DataFrame, network: pd.DataFrame, prep: Prepared) -> np.ndarray:
    """Remaining capacity each bid can deliver alone without breaking a DSO constraint.

    For every DSO-owned network row the bid moves (``a = factor * sign``), the headroom
    left after earlier steps allows ``(max - flow) / a`` when ``a > 0`` and
    ``(flow - min) / -a`` when ``a < 0``; the bid keeps the smallest of these.
    """
    cap = bids["cap_mw"].to_numpy().copy()
    dist = network["owner_id"].to_numpy() != TSO_ID
    a = prep.net_matrix.tocoo()
    keep = dist[a.row]
    rows, cols, val = a.row[keep], a.col[keep], a.data[keep]
    base = network["base_mw"].to_numpy()[rows]
    head = np.where(
        val > 0,
        (network["max_flow_mw"].to_numpy()[rows] - base) / val,
        (base - network["min_flow_mw"].to_numpy()[rows]) / -val,
    )
    head = np.clip(head, 0.0, None)
    limit = np.full(len(cap), np.inf)
    np.minimum.at(limit, cols, head)
    return np.minimum(cap, limit)


def step_model(batch: Batch, design: str | Design = "single", step: int = 0) -> LinearModel:
    """The model of one (non-fan-out) step of a design, as the first step sees it: for
    reference solvers, the differential test and benchmarks."""
    design = design if isinstance(design, Design) else load_design(design)
    prep = prepare(batch)
    (inp,) = step_inputs(batch, prep, design.steps[step], np.zeros(len(prep.bids)))
    return build_step_model(inp)[0]


def solve_step(inp: StepInput, solver_options: dict[str, Any] | None = None) -> StepOutcome:
    """Build, solve, verify, price (LP with integers fixed) and read back one model."""
    part = inp.name.split(":", 1)[1] if ":" in inp.name else "all"
    step = inp.name.split(":", 1)[0]
    model, index = build_step_model(inp)
    sol = _solve_checked(model, solver_options)
    priced = sol
    if model.n_integer:
        fixed = model.fixed_integers(sol.values)
        priced = _solve_checked(fixed, solver_options)
    stats = ModelStats(
        step,
        part,
        model.n_variables,
        model.n_constraints,
        model.n_integer,
        sol.build_seconds + (priced.build_seconds if priced is not sol else 0.0),
        sol.solve_seconds + (priced.solve_seconds if priced is not sol else 0.0),
        sol.status.value,
        sol.objective,
    )
    from market.tables import read_step

    return read_step(inp, model, index, sol, priced, stats)


def _solve_checked(model: LinearModel, options: dict[str, Any] | None) -> Solution:
    sol = solve_cvxpy(model, options)
    if sol.status is not SolveStatus.OPTIMAL:
        raise SolverError(f"{model.name}: HiGHS returned {sol.status.value} ({sol.detail})")
    verify(model, sol)
    return sol


__all__ = ["clear", "prepare", "solve_step", "step_inputs", "step_model", "StepIndex"]
