"""Running a design on a batch: steps in order, DSO steps fanned out, prices from duals.

``clear(batch, design, pricing)`` is the public entry point. Each step builds one
model (or one per DSO), solves it with HiGHS through cvxpy, checks the returned
values against every constraint family, fixes integer decisions and re-solves
the LP for prices, and passes on what it awarded: later steps see only the
remaining capacity, the flows and the net activation it caused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from market.clearing.assemble import assemble
from market.clearing.decompose import solve_in_parts
from market.clearing.formulation import StepInput, build_step_model
from market.clearing.information import (
    StepKnowledge,
    activation_known,
    information_metrics,
    informed,
    perfect_information,
    step_knowledge,
)
from market.clearing.interface import accepted, disaggregate, offer_curves, tso_view
from market.clearing.ir import LinearModel, Solution, SolveStatus
from market.clearing.metrics import compute_metrics
from market.clearing.override import apply_override
from market.clearing.parallel import once, parallel_map, stream_map
from market.clearing.prepare import Prepared, prepare, step_inputs
from market.clearing.readback import StepOutcome, read_step
from market.clearing.results import ClearingResult, ClearingStatus, ModelStats
from market.clearing.sizing import STREAM_FROM_BIDS, WORKERS
from market.clearing.solvers import is_large_milp, solve
from market.clearing.stream import stack, streamable, stretches, sub_batch
from market.clearing.verify import verify
from market.design.spec import Design, load_design
from market.enums import DEFAULT_PRICING, SYSTEM_AREA, TSO_ID, Pricing, Service, View
from market.errors import FlexmarketError, SolverError
from market.io.batch import Batch

Progress = Callable[[str], None]
log = logging.getLogger("flexmarket")


def clear(
    batch: Batch,
    design: str | Design = "single",
    pricing: str | Pricing = DEFAULT_PRICING,
    *,
    scheduler: str | None = None,
    raise_on_failure: bool = True,
    solver_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    stream: bool | None = None,
    metrics: bool = True,
    checks: Callable[[], None] | None = None,
) -> ClearingResult:
    """Clear ``batch`` under ``design`` (preset name, TOML path or :class:`Design`).

    ``pricing``: ``pay-as-bid`` or ``pay-as-clear``. ``scheduler``: a Dask scheduler
    address for the per-DSO fan-out, the independent parts of each model and the stretches
    of a streamed batch (default: local threads and worker processes). ``stream``: clear
    the horizon stretch by stretch (:mod:`market.clearing.stream`); ``None`` streams a
    batch of at least ``STREAM_FROM_BIDS`` bid-intervals when its design allows. Raises
    :class:`~market.errors.SolverError` on failure unless ``raise_on_failure=False``,
    in which case the result carries ``status=FAILED`` and the message. ``checks``: the
    batch's validation, still to run (:func:`market.io.validate.validate_tables_later`): run
    once the stretches are handed to the workers, else before anything is cleared; an error
    before that runs it first (invalid input is reported as such).
    """
    pricing = parse_pricing(pricing)
    design = design if isinstance(design, Design) else load_design(design)
    checked = once(checks)
    try:
        spans = _stretches(batch, design, stream)
        if len(spans) <= 1:
            checked()
            return _clear_whole(batch, design, pricing, scheduler, raise_on_failure, solver_options, progress, metrics)
        if progress:
            progress(f"{design.name}: {len(spans)} stretches of the horizon")
        common = (design, pricing, solver_options)
        result = stream_map(
            _clear_stretch, common, (sub_batch(batch, a, b) for a, b in spans),
            scheduler=scheduler, workers=WORKERS, count=len(spans), handed_off=checked,
        )  # fmt: skip
    except SolverError as exc:
        checked()
        if raise_on_failure:
            raise
        return _failed(design, pricing, str(exc), [])
    except Exception:
        checked()  # invalid input is what to report, whatever it broke (Ctrl-C is not waited on)
        raise
    checked()
    stacked = stack(result)
    return replace(stacked, metrics=compute_metrics(batch, stacked)) if metrics else stacked


def _clear_whole(
    batch: Batch,
    design: Design,
    pricing: Pricing,
    scheduler: str | None,
    raise_on_failure: bool,
    solver_options: dict[str, Any] | None,
    progress: Progress | None,
    metrics: bool,
) -> ClearingResult:
    """The whole horizon at once, step by step (see :func:`clear`)."""
    prep = prepare(batch, design.routes)
    taken = np.zeros(len(prep.bids))
    seen = taken  # what the next step sees: ``taken`` unless it runs alongside the step before
    outcomes: list[StepOutcome] = []
    info = informed(batch, design)
    knowledge: dict[str, StepKnowledge] = {}
    by_step: list[np.ndarray] = []  # each step's own awards per bid (informed batches)
    sold_twice_mw = 0.0
    try:
        for i, step in enumerate(design.steps):
            if progress:
                progress(f"{design.name}: {step.name}")
            known = step_knowledge(batch, prep.network, step) if info else None
            blind = False
            if known is not None:
                knowledge[step.name] = known
                seen, blind = _seen_by(batch, prep, design, knowledge, by_step, i)
            elif step.blind_to_earlier:
                seen, blind = np.zeros(len(prep.bids)), bool(taken.any())
            elif not step.simultaneous:
                seen = taken.copy()
            inputs = step_inputs(batch, prep, step, seen, known)
            if step.view is View.INTERFACE:
                base = None if known is None else known.base_mw
                results = solve_interface_step(prep, inputs[0], seen, step.interface_steps, solver_options, base)
            else:
                results = _solve_all(inputs, scheduler, solver_options)
            own = np.zeros(len(prep.bids))
            for out in results:
                if step.simultaneous or blind:
                    sold_twice_mw += _deliverable_only(prep, taken, out)
                outcomes.append(out)
                if len(out.awards):
                    np.add.at(taken, out.awards["pos"].to_numpy(), out.awards["quantity_mw"].to_numpy())
                    np.add.at(own, out.awards["pos"].to_numpy(), out.awards["quantity_mw"].to_numpy())
            by_step.append(own)
            if step.dso_override:
                cut = apply_override(prep, taken, results)
                if cut > 0:
                    log.info("%s: the DSOs undid %.3f MW of %s's TSO activations", design.name, cut, step.name)
    except SolverError as exc:
        if raise_on_failure:
            raise
        return _failed(design, pricing, str(exc), outcomes)
    sold_twice = round(sold_twice_mw * batch.config.interval_hours, 6)
    result = assemble(batch, prep, design, pricing, outcomes, metrics=metrics, sold_twice_mwh=sold_twice)
    if info and metrics and result.ok:
        ideal_batch, ideal_design = perfect_information(batch, design)
        perfect = _clear_whole(ideal_batch, ideal_design, pricing, scheduler, True, solver_options, None, True)
        extra = information_metrics(batch, prep.network, design, knowledge, result, perfect)
        result = replace(result, metrics={**result.metrics, **extra})
    return result


def _seen_by(
    batch: Batch,
    prep: Prepared,
    design: Design,
    knowledge: dict[str, StepKnowledge],
    by_step: list[np.ndarray],
    i: int,
) -> tuple[np.ndarray, bool]:
    """What step ``i`` of an informed batch sees of the earlier steps' activations (those that
    reached it by its decision, per interval), and whether it misses any of them."""
    step = design.steps[i]
    t = prep.bids["t"].to_numpy(dtype=int)
    seen = np.zeros(len(prep.bids))
    blind = False
    for k, earlier in enumerate(design.steps[:i]):
        if step.blind_to_earlier or (step.simultaneous and k == i - 1):
            blind = blind or bool(by_step[k].any())
            continue  # runs alongside the step before: sees it only afterwards
        arrived = activation_known(
            batch, earlier, knowledge[earlier.name].decision, step, knowledge[step.name].decision
        )
        mask = arrived[t]
        seen += np.where(mask, by_step[k], 0.0)
        blind = blind or bool((by_step[k][~mask] > 0).any())
    return seen, blind


def _stretches(batch: Batch, design: Design, stream: bool | None) -> list[tuple[int, int]]:
    whole = [(0, len(batch.config.intervals))]
    if stream is False or not streamable(design) or informed(batch, design):  # informed: whole, with its perfect twin
        return whole
    if stream is None and len(batch.bids) < STREAM_FROM_BIDS:
        return whole
    return stretches(batch)


def _clear_stretch(common: tuple[Design, Pricing, dict[str, Any] | None], part: Batch) -> ClearingResult:
    """One stretch of a streamed batch, cleared whole without metrics (on a worker)."""
    design, pricing, options = common
    return clear(part, design, pricing, solver_options=options, stream=False, metrics=False)


def _deliverable_only(prep: Prepared, taken: np.ndarray, out: StepOutcome) -> float:
    """A step run alongside another may sell a bid the other already sold: the DER can
    deliver only its offered MW, so the later instruction gets what is left (in place).
    Returns the MW sold twice (the run's ``sold_twice_mwh``)."""
    aw = out.awards
    if not len(aw):
        return 0.0
    pos = aw["pos"].to_numpy(dtype=int)
    room = prep.bids["quantity_mw"].to_numpy()[pos] - taken[pos]
    q = np.minimum(aw["quantity_mw"].to_numpy(dtype=float), np.clip(room, 0.0, None))
    cut = float(aw["quantity_mw"].sum() - q.sum())
    if cut > 1e-9:
        log.warning(
            "%s: %.3f MW sold twice by markets blind to each other (counted in sold_twice_mwh)", out.stats.step, cut
        )
    aw["quantity_mw"] = q
    out.awards = aw[q > 1e-9].reset_index(drop=True)
    return max(cut, 0.0)


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


def parse_pricing(pricing: str | Pricing) -> Pricing:
    """``pricing`` as a :class:`Pricing`, or a :class:`FlexmarketError` naming the choices."""
    try:
        return Pricing(pricing)
    except ValueError:
        choices = ", ".join(p.value for p in Pricing)
        raise FlexmarketError(f"unknown pricing {pricing!r}; choose {choices}") from None


def _failed(design: Design, pricing: Pricing, message: str, outcomes: list[StepOutcome]) -> ClearingResult:
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
    """Solve a step's model(s): a fan-out step's DSOs in parallel, or one model's independent
    parts in parallel (on the Dask cluster at ``scheduler`` if given)."""
    if len(inputs) == 1:
        return [solve_step(inputs[0], solver_options, scheduler)]
    return parallel_map(_solve_with, solver_options, inputs, scheduler=scheduler)


def _solve_with(solver_options: dict[str, Any] | None, inp: StepInput) -> StepOutcome:
    return solve_step(inp, solver_options)


def step_model(batch: Batch, design: str | Design = "single", step: int = 0) -> LinearModel:
    """The model of one (non-fan-out) step of a design, as the first step sees it: for
    reference solvers, the differential test and benchmarks."""
    design = design if isinstance(design, Design) else load_design(design)
    prep = prepare(batch, design.routes)
    (inp,) = step_inputs(batch, prep, design.steps[step], np.zeros(len(prep.bids)))
    return build_step_model(inp)[0]


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


__all__ = ["clear", "solve_step", "step_model"]
