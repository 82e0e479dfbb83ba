"""pytest-benchmark: clearing per design and size, and the same LP straight to highspy.

Run: ``python -m pytest -o addopts="" tests/benchmarks --benchmark-only``
(the 10^6 case is in ``tests/benchmarks/compare.py``, which also measures peak memory).
"""

from __future__ import annotations

import numpy as np
import pytest

from market import clear
from market.clearing.run import step_model
from market.clearing.solvers import solve_cvxpy, solve_highspy
from market.io.synth import SynthSpec, synth_batch

from .cases import CLEARING_CASES, QUICK


@pytest.fixture(scope="module", params=QUICK)
def case(request):  # type: ignore[no-untyped-def]
    c = CLEARING_CASES[request.param]
    return c, synth_batch(c.spec)


@pytest.mark.parametrize("design", ["single", "dso-led", "tso-only"])
def test_clear_design(benchmark, case, design):
    c, batch = case
    benchmark.group = f"clear {c.name}"
    result = benchmark.pedantic(clear, args=(batch, design), rounds=2, iterations=1)
    assert result.ok


@pytest.mark.parametrize("solve", [solve_cvxpy, solve_highspy], ids=["cvxpy", "highspy-reference"])
def test_single_model(benchmark, case, solve):
    """The `single` model through cvxpy, and the same LP straight to highspy (reference)."""
    c, batch = case
    benchmark.group = f"single LP {c.name}"
    model = step_model(batch, "single")
    sol = benchmark.pedantic(solve, args=(model,), rounds=2, iterations=1)
    assert np.isfinite(sol.objective)


@pytest.mark.parametrize("n_der", [500, 2000, 8000])
@pytest.mark.parametrize("design", ["single", "dso-led"])
def test_tso_step_size_under_interface_offers(benchmark, n_der, design):
    """The TSO-side model as the number of DER grows: `single` grows with the DER, the
    layered TSO step (interface offers, 5 bands) with interfaces x intervals x bands only.
    Sizes are recorded in the benchmark's ``extra_info``."""
    batch = synth_batch(SynthSpec(bids=n_der, intervals=4, dsos=8, seed=1))
    benchmark.group = f"TSO step size, {n_der} DER x 4 intervals, 8 DSOs"
    result = benchmark.pedantic(clear, args=(batch, design), rounds=1, iterations=1)
    benchmark.extra_info["tso_variables"] = result.metrics["scalability_tso_variables"]
    benchmark.extra_info["tso_constraints"] = result.metrics["scalability_tso_constraints"]
    assert result.ok
