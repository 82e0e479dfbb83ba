"""The two backends agree: the model through cvxpy and the same model passed straight to
highspy give the same objective and duals, and whole runs give the same tables."""

import numpy as np
import pandas as pd
import pytest

from market import clear
from market.clearing.ir import LinearModel, SolveStatus
from market.clearing.run import step_model
from market.clearing.solvers import BACKEND_OPTION, Backend, solve_cvxpy, solve_highspy
from market.io.read import load_batch
from market.io.synth import SynthSpec, synth_batch


@pytest.mark.parametrize("integer_share", [0.0, 0.2])
@pytest.mark.parametrize("seed", [1, 2])
def test_cvxpy_and_highspy_agree(seed, integer_share):
    batch = synth_batch(SynthSpec(bids=80, intervals=6, dsos=2, seed=seed, integer_share=integer_share))
    model = step_model(batch, "single")
    a, b = solve_cvxpy(model), solve_highspy(model)
    assert a.objective == pytest.approx(b.objective, rel=1e-7, abs=1e-6)
    assert model.objective(a.values) == pytest.approx(a.objective, rel=1e-7, abs=1e-6)
    if not model.n_integer:
        for name in ("balance", "dso_need", "flow_max"):
            if name in model.constraints:
                np.testing.assert_allclose(a.marginals[name], b.marginals[name], atol=1e-5)


@pytest.mark.parametrize("solve", [solve_cvxpy, solve_highspy])
def test_a_model_without_columns_is_solved_as_empty(solve):  # type: ignore[no-untyped-def]
    """A part of a decomposed model may hold no columns at all: that is an optimum of 0."""
    model = LinearModel("empty")
    model.add_variable("x", np.zeros(0), np.zeros(0), np.zeros(0))
    sol = solve(model)
    assert sol.status is SolveStatus.OPTIMAL and sol.objective == 0.0 and sol.values["x"].size == 0


@pytest.fixture(scope="module")
def contested():  # type: ignore[no-untyped-def]
    return load_batch("data/contested")


@pytest.mark.parametrize("design", ["single", "dso-led", "tso-only", "nyiso-alt1", "california-today"])
def test_both_backends_clear_the_contested_day_alike(contested, design):  # type: ignore[no-untyped-def]
    """Every table of the run (awards, prices from duals, flows, physics) is the same whether
    the models reach HiGHS through cvxpy or straight through highspy."""
    runs = [clear(contested, design, solver_options={BACKEND_OPTION: b.value}) for b in Backend]
    for name, table in runs[1].tables().items():
        pd.testing.assert_frame_equal(runs[0].tables()[name], table, check_exact=False, atol=1e-6, obj=name)
    assert runs[0].metrics.keys() == runs[1].metrics.keys()
    assert runs[0].metrics["total_cost_eur"] == pytest.approx(runs[1].metrics["total_cost_eur"], rel=1e-9)


def test_an_unknown_backend_or_option_is_a_named_error():  # type: ignore[no-untyped-def]
    from market.clearing.solvers import solve
    from market.errors import SolverError

    model = step_model(synth_batch(SynthSpec(bids=8, intervals=2, dsos=1, seed=1)), "single")
    with pytest.raises(SolverError, match="unknown backend 'gurobi'"):
        solve(model, {BACKEND_OPTION: "gurobi"})
    with pytest.raises(SolverError, match="HiGHS refused option no_such_option"):
        solve(model, {"no_such_option": 1})
