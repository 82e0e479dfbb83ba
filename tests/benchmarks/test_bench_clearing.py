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
from market.io.synth import synth_batch

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
