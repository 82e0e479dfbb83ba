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
from market.clearing.formulation import StepInput, build_step_model
from market.clearing.information import (
    StepKnowledge,
    activation_known,
    information_metrics,
    informed,
    perfect_information,
    step_knowledge,
)
from market.clearing.ir import LinearModel
from market.clearing.metrics import compute_metrics
from market.clearing.override import apply_override
from market.clearing.parallel import once, stream_map
from market.clearing.prepare import Prepared, prepare, step_inputs
from market.clearing.readback import StepOutcome
from market.clearing.reservation import (
    Reservations,
    called,
    left_after,
    merge_needs,
    record,
    reservation_inputs,
    reservations_table,
)
from market.clearing.results import ClearingResult, ClearingStatus
from market.clearing.sizing import STREAM_FROM_BIDS, WORKERS
from market.clearing.solving import solve_all, solve_interface_step, solve_step
from market.clearing.stream import stack, streamable, stretches, sub_batch
from market.design.spec import Design, Step, load_design
from market.enums import DEFAULT_PRICING, Pricing, View
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
    twin: bool = False,
) -> ClearingResult:
    """The whole horizon at once, step by step (see :func:`clear`); ``twin``: the same design
    cleared with perfect information for the cost of information (it warns of nothing)."""
    prep = prepare(batch, design.routes)
    taken = np.zeros(len(prep.bids))
    seen = taken  # what the next step sees: ``taken`` unless it runs alongside the step before
    outcomes: list[StepOutcome] = []
    info = informed(batch, design)
    knowledge: dict[str, StepKnowledge] = {}
    by_step: list[np.ndarray] = []  # each step's own awards per bid (informed batches)
    res = Reservations(len(prep.bids))
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
            if step.reserve:  # holds capacity for later; activates nothing (market.clearing.reservation)
                inputs = reservation_inputs(batch, prep, step, res, known)
                outcomes += record(res, step, solve_all(inputs, scheduler, solver_options))
                by_step.append(np.zeros(len(prep.bids)))
                continue
            results = _activate(batch, prep, design, step, seen, known, res, scheduler, solver_options)
            own = np.zeros(len(prep.bids))
            for out in results:
                if step.simultaneous or blind:
                    sold_twice_mw += _deliverable_only(prep, taken, out, warn=not twin)
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
    held = reservations_table(batch, prep, design, res) if design.reserves else None
    result = assemble(batch, prep, design, pricing, outcomes, metrics=metrics, sold_twice_mwh=sold_twice,
                      reservations=held)  # fmt: skip
    if info and metrics and result.ok:
        ideal_batch, ideal_design = perfect_information(batch, design)
        perfect = _clear_whole(
            ideal_batch, ideal_design, pricing, scheduler, True, solver_options, None, True, twin=True
        )
        extra = information_metrics(batch, prep.network, design, knowledge, result, perfect)
        result = replace(result, metrics={**result.metrics, **extra})
    return result


def _activate(
    batch: Batch,
    prep: Prepared,
    design: Design,
    step: Step,
    seen: np.ndarray,
    known: StepKnowledge | None,
    res: Reservations,
    scheduler: str | None,
    solver_options: dict[str, Any] | None,
) -> list[StepOutcome]:
    """An activation step: its buyers' reserved capacity first, then the rest from capacity
    no other buyer holds (:mod:`market.clearing.reservation`); one pass without reservations."""
    first: list[StepOutcome] = []
    whole = prep  # every need of the step, for one result per need across both passes
    own = res.own_room(step)
    if (own > 0).any():
        inputs = step_inputs(batch, prep, step, seen, known, room=own)
        first = called(res, prep, step, _solve(prep, step, inputs, seen, known, scheduler, solver_options))
        seen = seen.copy()
        for out in first:
            np.add.at(seen, out.awards["pos"].to_numpy(dtype=int), out.awards["quantity_mw"].to_numpy(dtype=float))
        prep = replace(prep, needs=left_after(prep.needs, first))
    blocked = res.blocked(step)
    room = prep.bids["quantity_mw"].to_numpy() - seen - blocked if res.any() else None
    if room is not None:
        room[res.held_bids(step)] = 0.0
    second = _solve(
        prep, step, step_inputs(batch, prep, step, seen, known, room), seen, known, scheduler, solver_options
    )
    merge_needs(first, second, whole)
    res.release(step, design.reservation_use)
    return first + second


def _solve(
    prep: Prepared,
    step: Step,
    inputs: list[StepInput],
    seen: np.ndarray,
    known: StepKnowledge | None,
    scheduler: str | None,
    solver_options: dict[str, Any] | None,
) -> list[StepOutcome]:
    if step.view is View.INTERFACE:
        base = None if known is None else known.base_mw
        return solve_interface_step(prep, inputs[0], seen, step.interface_steps, solver_options, base)
    return solve_all(inputs, scheduler, solver_options)


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


def _deliverable_only(prep: Prepared, taken: np.ndarray, out: StepOutcome, warn: bool = True) -> float:
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
    if cut > 1e-9 and warn:  # (not for the perfect-information twin: the run's own warning is the one)
        log.warning(
            "%s: %.3f MW sold twice by markets blind to each other (counted in sold_twice_mwh)", out.stats.step, cut
        )
    aw["quantity_mw"] = q
    out.awards = aw[q > 1e-9].reset_index(drop=True)
    return max(cut, 0.0)


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


def step_model(batch: Batch, design: str | Design = "single", step: int = 0) -> LinearModel:
    """The model of one (non-fan-out) step of a design, as the first step sees it: for
    reference solvers, the differential test and benchmarks."""
    design = design if isinstance(design, Design) else load_design(design)
    prep = prepare(batch, design.routes)
    (inp,) = step_inputs(batch, prep, design.steps[step], np.zeros(len(prep.bids)))
    return build_step_model(inp)[0]


__all__ = ["clear", "solve_step", "step_model"]
