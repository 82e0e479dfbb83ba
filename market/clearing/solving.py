"""Solving a step: one model (or one per DSO, or one per independent part), verified and
priced; a TSO step over the DSOs' interface curves with its disaggregation."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from market.clearing.decompose import solve_in_parts
from market.clearing.formulation import StepInput, build_step_model
from market.clearing.interface import accepted, disaggregate, offer_curves, tso_view
from market.clearing.ir import LinearModel, Solution, SolveStatus
from market.clearing.parallel import parallel_map
from market.clearing.prepare import Prepared
from market.clearing.readback import StepOutcome, read_step
from market.clearing.results import ModelStats
from market.clearing.solvers import is_large_milp, solve
from market.clearing.verify import verify
from market.enums import SYSTEM_AREA, TSO_ID, Service
from market.errors import SolverError

log = logging.getLogger("flexmarket")


def solve_interface_step(
    prep: Prepared,
    inp: StepInput,
    seen: np.ndarray,
    bands: int,
    solver_options: dict[str, Any] | None,
    base: np.ndarray | None = None,
) -> list[StepOutcome]:
    """A TSO step that clears the DSOs' interface curves (:mod:`market.clearing.interface`):
    curves, the TSO's model over them, then each DSO's disaggregation to its bids. ``base``:
    the base flows the step knows (an informed batch), else the actuals."""
    known = prep.network["base_mw"].to_numpy() if base is None else base
    network = prep.network.assign(base_mw=known + prep.net_matrix @ seen)
    offers = offer_curves(inp, network, prep.net_matrix, bands, solver_options)
    out = solve_step(tso_view(inp, offers, network), solver_options)
    acc = accepted(out.awards, offers.curves)
    # the DSO disaggregates within what the bids it forwarded one by one left on its rows
    one = out.awards[(out.awards["pos"] >= 0) & ~out.awards["direct"].astype(bool)]
    moved = prep.net_matrix[:, one["pos"].to_numpy(dtype=np.int64)] @ one["quantity_mw"].to_numpy(dtype=float)
    after = network.assign(base_mw=network["base_mw"].to_numpy() + moved)
    parts, dis_stats = disaggregate(inp, offers.behind, acc, after, prep.net_matrix, solver_options)
    to_bids = pd.DataFrame(
        {
            "pos": parts["pos"].to_numpy(),
            "bid_id": parts["bid_id"].to_numpy(),
            "buyer_id": TSO_ID,
            "service": Service.TSO_BALANCING.value,
            "need_id": parts["need_id"].to_numpy(),
            "area_id": SYSTEM_AREA,
            "quantity_mw": parts["quantity_mw"].to_numpy(),
            "clearing_price_eur_mwh": parts["clearing_price_eur_mwh"].to_numpy(),
            "step": inp.step,
            "part": inp.part,
            "direct": False,
        }
    )
    out.awards = pd.concat([out.awards[out.awards["pos"] >= 0], to_bids], ignore_index=True)
    side = [StepOutcome(to_bids.iloc[:0], pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), st) for st in offers.stats]
    side += [StepOutcome(to_bids.iloc[:0], pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), st) for st in dis_stats]
    return [out, *side]


def solve_all(
    inputs: list[StepInput], scheduler: str | None, solver_options: dict[str, Any] | None
) -> list[StepOutcome]:
    """Solve a step's model(s): a fan-out step's DSOs in parallel, or one model's independent
    parts in parallel (on the Dask cluster at ``scheduler`` if given)."""
    if len(inputs) == 1:
        return [solve_step(inputs[0], solver_options, scheduler)]
    return parallel_map(_solve_with, solver_options, inputs, scheduler=scheduler)


def _solve_with(solver_options: dict[str, Any] | None, inp: StepInput) -> StepOutcome:
    return solve_step(inp, solver_options)


def solve_step(
    inp: StepInput, solver_options: dict[str, Any] | None = None, scheduler: str | None = None
) -> StepOutcome:
    """Build, solve, verify, price and read back one model.

    Prices are the marginal values of the model as built (no tie-break nudge in any cost);
    for a MILP, of the LP with the integer decisions fixed. Equal-priced interchangeable
    bids are then put in ``bid_id`` order (:func:`market.clearing.readback.order_ties`),
    which changes no row's activity and so neither cost nor prices.
    """
    model, index = build_step_model(inp)
    solves = []
    if is_large_milp(model):
        solves.append(_start_rejecting_integers(model, solver_options, scheduler))
    sol = _solve_checked(model, solver_options, scheduler)
    priced = sol
    if model.n_integer:
        priced = _solve_checked(model.fixed_integers(sol.values), solver_options, scheduler)
    solves += [sol] if priced is sol else [sol, priced]
    stats = ModelStats(
        inp.step,
        inp.part,
        model.n_variables,
        model.n_constraints,
        model.n_integer,
        sum(s.build_seconds for s in solves),
        sum(s.solve_seconds for s in solves),
        sol.status.value if sol.status is SolveStatus.OPTIMAL else f"{sol.status.value} (gap {sol.gap:.3g})",
        sol.objective,
    )
    return read_step(inp, model, index, sol, priced, stats)


def _start_rejecting_integers(model: LinearModel, options: dict[str, Any] | None, scheduler: str | None) -> Solution:
    """Set ``model.start`` to the step cleared with every integer unit rejected: an LP that
    nothing but the network and the needs couples, so it is solved part by part (on the 1e6
    bid-interval case with 10 % integer DER, 30 parts in about 4 s, where HiGHS completing a
    partial start took 8.6 s as one LP). Left unset when that LP has no optimum."""
    rejected = {name: np.zeros(fam.size) for name, fam in model.variables.items() if fam.integer}
    sol = solve_in_parts(model.fixed_integers(rejected), solve, options, scheduler=scheduler)
    if sol.status is SolveStatus.OPTIMAL:
        model.start = sol.values
    return sol


def _solve_checked(model: LinearModel, options: dict[str, Any] | None, scheduler: str | None = None) -> Solution:
    sol = solve_in_parts(model, solve, options, scheduler=scheduler)  # exact: only what nothing couples
    if sol.status not in (SolveStatus.OPTIMAL, SolveStatus.LIMIT):
        raise SolverError(f"{model.name}: HiGHS returned {sol.status.value} ({sol.detail})")
    verify(model, sol)
    if sol.status is SolveStatus.LIMIT:
        log.warning(
            "%s: a solver limit was reached; the best feasible solution is kept (MIP gap %.3g)", model.name, sol.gap
        )
    return sol
