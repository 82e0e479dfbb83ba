"""Solver backends behind one protocol: ``solve(model, options) -> Solution``.

:func:`solve_highspy` (the default: the model's sparse families stacked and passed straight
to HiGHS) and :func:`solve_cvxpy` (the same model through cvxpy + HiGHS, one ``cp.Variable``
per family); :func:`solve` picks one by ``options["backend"]``. Marginals are
``d objective / d rhs`` for every sense, so the sign of a price never depends on how a
row was written. Values below ``SNAP_MW`` are snapped to zero before pricing. On the
highspy backend an LP's equal-cost alternatives come out as one canonical optimum
(:mod:`market.clearing.ties`); cvxpy returns the vertex HiGHS lands on.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import scipy.sparse as sp

from market.clearing.ir import SNAP_MW, LinearModel, Solution, SolveStatus
from market.clearing.options import BACKEND_OPTION, DEFAULT_HIGHS_OPTIONS, SOLVER_OUTPUT, Backend
from market.clearing.ties import Bounds, least_weighted_optimum, tie_weight_vector
from market.errors import SolverError, SolverNotInstalledError

if TYPE_CHECKING:  # cvxpy takes most of a second to import: only where a model is solved
    import cvxpy as cp


class Solver(Protocol):
    """What every backend is: a model and options in, a :class:`Solution` out."""

    def __call__(self, model: LinearModel, options: dict[str, object] | None = None) -> Solution: ...


# HiGHS's presolve spends most of an LP clearing model's solve finding little to remove (on
# the 1e6 bid-interval case: 5.8 s of parts solved in 1.9 s without it); a MILP keeps it
LP_HIGHS_OPTIONS: dict[str, Any] = {"presolve": "off"}

# Large clearing MILPs, as HiGHS's logs and profiles showed them on the synthetic cases with
# 10 % integer DER (1e5 bid-intervals: 112 k columns, 6 k binaries; 1e6: 1.1 M columns, 58 k
# binaries, balance rows of 10 k bids). Feasibility jump took 14-20 s at 1e6 to find a
# solution 2.9x the optimum; without any incumbent, randomized rounding propagated the long
# balance rows for 23 s; the root LP was presolved a second time as an LP (5 s; clearing LPs
# solve faster without). With a MIP start (:func:`_set_start`) and these options HiGHS
# solves the 1e5 MILP in 1.6 s instead of 3.8 s. At 1e6 full presolve still took 17-34 s
# where light presolve (mode 2) takes 1-4 s for 99.3 % of its reductions: 14 s in all
# instead of 60-66 s. Light presolve does not pay below that size (at 1e5 it left HiGHS's
# dominated-column search 4 s of work: 9 s in all). Optima within the same gap. A small
# MILP (the samples, the tests) takes HiGHS milliseconds with its defaults, which are kept:
# there the extra LP of a start would cost more than it saves.
LARGE_MILP_COLUMNS = 50_000
LARGE_MILP_HIGHS_OPTIONS: dict[str, Any] = {
    "mip_heuristic_run_feasibility_jump": False,
    "mip_root_presolve_only": True,  # the root LP without a second (LP) presolve
}
LIGHT_PRESOLVE_COLUMNS = 500_000
LIGHT_PRESOLVE_OPTIONS: dict[str, Any] = {"presolve_mode": 2}


def is_large_milp(model: LinearModel) -> bool:
    """A MILP big enough for :data:`LARGE_MILP_HIGHS_OPTIONS` and a MIP start."""
    return bool(model.n_integer) and model.n_variables >= LARGE_MILP_COLUMNS


def highs_options(model: LinearModel, options: dict[str, object] | None) -> dict[str, Any]:
    """The HiGHS options of a solve: the defaults, the LP or large-MILP ones, then ``options``."""
    kind: dict[str, Any] = {}
    if not model.n_integer:
        kind = LP_HIGHS_OPTIONS
    elif is_large_milp(model):
        light = model.n_variables >= LIGHT_PRESOLVE_COLUMNS
        kind = {**LARGE_MILP_HIGHS_OPTIONS, **(LIGHT_PRESOLVE_OPTIONS if light else {})}
    return {**DEFAULT_HIGHS_OPTIONS, **kind, **(options or {})}


@functools.cache
def silence_highs_banner() -> None:
    """HiGHS prints a copyright banner on stdout when the first ``Highs`` object of a process
    is made. Make that first object here with the process's stdout pointed at /dev/null, so
    no command or API call prints it (unless solver output was asked for)."""
    if SOLVER_OUTPUT["verbose"]:
        return
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def to_cvxpy(model: LinearModel) -> tuple[cp.Problem, dict[str, cp.Variable], dict[str, cp.Constraint]]:
    """The cvxpy problem of a model: one ``cp.Variable`` per family, bounds as bounds."""
    import cvxpy as cp

    cvars = {
        name: cp.Variable(fam.size, name=name, bounds=[fam.lower, fam.upper], integer=fam.integer)
        for name, fam in model.variables.items()
        if fam.size
    }
    constraints = {}
    for name, con in model.constraints.items():
        terms = [mat @ cvars[var] for var, mat in con.blocks if var in cvars]
        lhs = cp.sum(terms) if len(terms) > 1 else terms[0] if terms else None
        if lhs is None:
            continue
        if con.sense == "==":
            constraints[name] = lhs == con.rhs
        elif con.sense == "<=":
            constraints[name] = lhs <= con.rhs
        else:
            constraints[name] = lhs >= con.rhs
    objective = cp.sum([model.variables[n].cost @ v for n, v in cvars.items()])
    problem = cp.Problem(cp.Minimize(objective), list(constraints.values()))
    return problem, cvars, constraints


def _cvxpy_values(model: LinearModel, cvars: dict[str, cp.Variable]) -> dict[str, np.ndarray]:
    return {
        name: _snap(np.asarray(cvars[name].value, dtype=float).reshape(-1)) if name in cvars else np.zeros(0)
        for name in model.variables
    }


def _least_weighted_cvxpy(
    problem: cp.Problem, cvars: dict[str, cp.Variable], model: LinearModel, opts: dict[str, object]
) -> dict[str, np.ndarray]:
    """Of the LP's optima, the least tie-weighted (as :func:`solve_highspy` returns it): a
    second solve over the same rows with the cost held at its optimum (within 1e-9 EUR
    absolute). Prices stay the first solve's duals; should the second solve not end
    optimal, the first solve's values are kept."""
    import cvxpy as cp

    first = _cvxpy_values(model, cvars)
    terms = [w @ cvars[n] for n, w in (model.tie_weights or {}).items() if n in cvars]
    if not terms:
        return first
    held = problem.objective.args[0] <= float(problem.value) + 1e-9
    second = cp.Problem(cp.Minimize(cp.sum(terms)), [*problem.constraints, held])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        second.solve(solver="HIGHS", canon_backend="SCIPY", **opts)
    return _cvxpy_values(model, cvars) if second.status == cp.OPTIMAL else first


def solve_cvxpy(model: LinearModel, options: dict[str, object] | None = None) -> Solution:
    """Solve with cvxpy + HiGHS; duals (LP only) as marginals d objective / d rhs. cvxpy
    cannot pass a MIP start (``model.start`` is not used), so on a large MILP it may stop
    at another solution within the gap than :func:`solve_highspy`."""
    import cvxpy as cp

    if "HIGHS" not in cp.installed_solvers():
        raise SolverNotInstalledError("HiGHS is not installed for cvxpy: pip install highspy")
    silence_highs_banner()
    t0 = time.perf_counter()
    problem, cvars, constraints = to_cvxpy(model)
    t1 = time.perf_counter()
    opts = {**highs_options(model, options), "verbose": SOLVER_OUTPUT["verbose"]}
    try:
        with warnings.catch_warnings():  # a limit's "may be inaccurate": the status is handled below
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(solver="HIGHS", canon_backend="SCIPY", **opts)
    except cp.error.SolverError as exc:
        return Solution(SolveStatus.FAILED, np.nan, {}, {}, t1 - t0, time.perf_counter() - t1, "HIGHS", str(exc))
    t2 = time.perf_counter()
    status = {
        cp.OPTIMAL: SolveStatus.OPTIMAL,
        cp.OPTIMAL_INACCURATE: SolveStatus.OPTIMAL,  # accepted only if verification passes
        cp.INFEASIBLE: SolveStatus.INFEASIBLE,
        cp.INFEASIBLE_INACCURATE: SolveStatus.INFEASIBLE,
        cp.UNBOUNDED: SolveStatus.UNBOUNDED,
        cp.UNBOUNDED_INACCURATE: SolveStatus.UNBOUNDED,
    }.get(problem.status, SolveStatus.FAILED)
    gap = 0.0
    if problem.status == cp.USER_LIMIT and model.n_integer and all(v.value is not None for v in cvars.values()):
        status = SolveStatus.LIMIT  # the best feasible solution at the time limit, and its gap
        info = (problem.solver_stats.extra_stats if problem.solver_stats else None) or None
        gap = float(getattr(info, "mip_gap", np.inf))
    if status not in (SolveStatus.OPTIMAL, SolveStatus.LIMIT):
        return Solution(status, np.nan, {}, {}, t1 - t0, t2 - t1, "HIGHS", str(problem.status))
    marginals = {}
    if model.n_integer == 0:
        for name, con in model.constraints.items():
            if name not in constraints:
                marginals[name] = np.zeros(con.size)
                continue
            dual = np.asarray(constraints[name].dual_value, dtype=float).reshape(-1)
            marginals[name] = dual if con.sense == ">=" else -dual
    tied = model.n_integer == 0 and status is SolveStatus.OPTIMAL and model.tie_weights is not None
    values = _least_weighted_cvxpy(problem, cvars, model, opts) if tied else _cvxpy_values(model, cvars)
    return Solution(
        status, float(problem.value), values, marginals, t1 - t0, t2 - t1, "HIGHS", str(problem.status), gap
    )


def _snap(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[np.abs(x) < SNAP_MW] = 0.0
    return x


def stacked(model: LinearModel) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray, dict[str, slice], dict[str, slice]]:
    """The whole model as one CSC matrix with row bounds (for highspy)."""
    col: dict[str, slice] = {}
    start = 0
    for name, fam in model.variables.items():
        col[name] = slice(start, start + fam.size)
        start += fam.size
    n_cols = start
    rows: dict[str, slice] = {}
    parts, lo, hi = [], [], []
    r0 = 0
    for name, con in model.constraints.items():
        rows[name] = slice(r0, r0 + con.size)
        r0 += con.size
        blocks = []
        for var, mat in con.blocks:
            m = sp.coo_matrix(mat)
            blocks.append(sp.coo_matrix((m.data, (m.row, m.col + col[var].start)), shape=(con.size, n_cols)))
        parts.append(_coo_sum(blocks, (con.size, n_cols)))
        lo.append(con.rhs if con.sense in ("==", ">=") else np.full(con.size, -np.inf))
        hi.append(con.rhs if con.sense in ("==", "<=") else np.full(con.size, np.inf))
    if parts:
        a = sp.vstack(parts).tocsc()
        row_lo, row_hi = np.concatenate(lo), np.concatenate(hi)
    else:
        a, row_lo, row_hi = sp.csc_matrix((0, n_cols)), np.zeros(0), np.zeros(0)
    return a, row_lo, row_hi, col, rows


def _coo_sum(blocks: list[sp.coo_matrix], shape: tuple[int, int]) -> sp.coo_matrix:
    """Blocks of one row family over disjoint column ranges, as one COO matrix."""
    if not blocks:
        return sp.coo_matrix(shape)
    return sp.coo_matrix(
        (
            np.concatenate([b.data for b in blocks]),
            (np.concatenate([b.row for b in blocks]), np.concatenate([b.col for b in blocks])),
        ),
        shape=shape,
    )


def _highs_status(h: Any, model: LinearModel) -> tuple[SolveStatus, float, str]:
    """The :class:`SolveStatus`, MIP gap and a readable detail of a finished HiGHS run."""
    import highspy

    ms = h.getModelStatus()
    detail = h.modelStatusToString(ms)
    status = {
        highspy.HighsModelStatus.kOptimal: SolveStatus.OPTIMAL,
        highspy.HighsModelStatus.kModelEmpty: SolveStatus.OPTIMAL,  # no columns: nothing to decide
        highspy.HighsModelStatus.kInfeasible: SolveStatus.INFEASIBLE,
        highspy.HighsModelStatus.kUnbounded: SolveStatus.UNBOUNDED,
        highspy.HighsModelStatus.kUnboundedOrInfeasible: SolveStatus.INFEASIBLE,
    }.get(ms, SolveStatus.FAILED)
    info = h.getInfo()
    limits = (
        highspy.HighsModelStatus.kTimeLimit,
        highspy.HighsModelStatus.kIterationLimit,
        highspy.HighsModelStatus.kSolutionLimit,
    )
    feasible = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if ms in limits and model.n_integer and feasible:
        return SolveStatus.LIMIT, float(info.mip_gap), detail  # the best feasible solution and its gap
    return status, 0.0, detail


def _set_options(h: Any, options: dict[str, Any]) -> None:
    """Pass ``options`` to HiGHS; an unknown option or a value of the wrong type is an error."""
    h.setOptionValue("output_flag", bool(SOLVER_OUTPUT["verbose"]))
    for key, value in options.items():
        if str(h.setOptionValue(key, value)) != "HighsStatus.kOk":
            raise SolverError(f"HiGHS refused option {key} = {value!r}")


def _set_start(h: Any, model: LinearModel, integer_cols: np.ndarray) -> None:
    """Give HiGHS a MIP start: ``model.start`` when the caller solved one (the clearing
    solves the step with every integer unit rejected, part by part), else every integer unit
    rejected (``z = 0``) with the continuous columns left to HiGHS to complete with one LP.
    An infeasible start is dropped by HiGHS with a log line. An incumbent before the root
    spares the heuristics that otherwise search for a first one (see ``LARGE_MILP_HIGHS_OPTIONS``);
    the optimum within the gap is HiGHS's, and the same start gives the same result."""
    import highspy

    if model.start is not None:
        start = highspy.HighsSolution()
        start.col_value = np.concatenate([model.start[name] for name in model.variables])
        start.value_valid = True
        status = h.setSolution(start)
    else:
        status = h.setSolution(len(integer_cols), integer_cols, np.zeros(len(integer_cols)))
    if str(status) == "HighsStatus.kError":  # kWarning: values HiGHS will check, and drop if infeasible
        raise SolverError(f"{model.name}: HiGHS refused the MIP start")


def solve_highspy(model: LinearModel, options: dict[str, object] | None = None) -> Solution:
    """Solve with HiGHS through highspy (production): the model's families stacked into one
    column-wise matrix and passed as it is; duals (LP only) as marginals d objective / d rhs
    (HiGHS's row duals of a minimisation, whatever the row's sense). An optimal LP with
    ``tie_weights`` then returns the least tie-weighted of its optima (same prices, same
    cost; :func:`market.clearing.ties.least_weighted_optimum`)."""
    import highspy

    silence_highs_banner()
    t0 = time.perf_counter()
    a, row_lo, row_hi, col, rows = stacked(model)
    fams = list(model.variables.values())
    bounds = Bounds(
        np.concatenate([f.lower for f in fams]) if fams else np.zeros(0),
        np.concatenate([f.upper for f in fams]) if fams else np.zeros(0),
        np.where(np.isinf(row_lo), -highspy.kHighsInf, row_lo),
        np.where(np.isinf(row_hi), highspy.kHighsInf, row_hi),
    )
    integer = np.concatenate([np.full(f.size, f.integer) for f in fams]) if fams else np.zeros(0, bool)
    h = highspy.Highs()
    _set_options(h, highs_options(model, options))
    # the arrays as they are (a HighsLp's fields would copy each through a Python setter:
    # 10 ms against 0.3 ms for a part of 22,000 columns); integrality in full, 1 = integer
    passed = h.passModel(
        a.shape[1],
        a.shape[0],
        a.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        np.concatenate([f.cost for f in fams]) if fams else np.zeros(0),
        *bounds,
        a.indptr.astype(np.int32, copy=False),
        a.indices.astype(np.int32, copy=False),
        a.data,
        integer.astype(np.int32),
    )
    if passed == highspy.HighsStatus.kError:
        raise SolverError(f"{model.name}: HiGHS refused the model as passed")
    if model.n_integer and is_large_milp(model):
        _set_start(h, model, np.flatnonzero(integer).astype(np.int32))
    t1 = time.perf_counter()
    h.run()
    t2 = time.perf_counter()
    status, gap, detail = _highs_status(h, model)
    if status not in (SolveStatus.OPTIMAL, SolveStatus.LIMIT):
        return Solution(status, np.nan, {}, {}, t1 - t0, t2 - t1, "HiGHS", detail)
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    duals = np.asarray(sol.row_dual) if not model.n_integer else np.zeros(0)
    marginals = {name: duals[s] for name, s in rows.items()} if not model.n_integer else {}
    objective = float(h.getInfo().objective_function_value)
    if not model.n_integer and status == SolveStatus.OPTIMAL and model.tie_weights is not None:
        x = least_weighted_optimum(h, sol, x, duals, bounds, tie_weight_vector(model, col))
    values = {name: _snap(x[s]) for name, s in col.items()}
    t3 = time.perf_counter()
    return Solution(status, objective, values, marginals, t1 - t0, t3 - t1, "HiGHS", detail, gap)


BACKENDS: dict[Backend, Solver] = {Backend.HIGHSPY: solve_highspy, Backend.CVXPY: solve_cvxpy}


def solve(model: LinearModel, options: dict[str, object] | None = None) -> Solution:
    """Solve ``model`` with the backend ``options["backend"]`` names (default highspy)."""
    rest = dict(options or {})
    name = str(rest.pop(BACKEND_OPTION, Backend.HIGHSPY))
    if name not in set(Backend):
        raise SolverError(f"unknown backend {name!r}: one of {', '.join(Backend)}")
    return BACKENDS[Backend(name)](model, rest)
