"""pytest-benchmark: clearing per design and size, and the same LP straight to highspy.

Run: ``python -m pytest -o addopts="" tests/benchmarks --benchmark-only``
(the 10^6 case is in ``tests/benchmarks/compare.py``, which also measures peak memory).
"""

from __future__ import annotations

import numpy as np
import pytest

from market import clear
from market.clearing import prepare, step_inputs
from market.design import load_design
from market.lp import solve_cvxpy, solve_highspy
from market.model import build_step_model
from market.synth import synth_batch

from .cases import CLEARING_CASES, QUICK


@pytest.fixture(scope="module", params=QUICK)
def case(request):  # type: ignore[no-untyped-def]
    c = CLEARING_CASES[request.param]
    return c, synth_batch(c.spec)


def single_model(batch):  # type: ignore[no-untyped-def]
    prep = prepare(batch)
    (inp,) = step_inputs(batch, prep, load_design("single").steps[0], np.zeros(len(prep.bids)))
    return build_step_model(inp)[0]


@pytest.mark.parametrize("design", ["single", "dso-led", "tso-only"])
def test_clear_design(benchmark, case, design):
    c, batch = case
    benchmark.group = f"clear {c.name}"
    result = benchmark.pedantic(clear, args=(batch, design), rounds=2, iterations=1)
    assert result.ok


def test_single_cvxpy(benchmark, case):
    c, batch = case
    benchmark.group = f"single LP {c.name}"
    model = single_model(batch)
    sol = benchmark.pedantic(solve_cvxpy, args=(model,), rounds=2, iterations=1)
    assert np.isfinite(sol.objective)


def test_single_highspy_reference(benchmark, case):
    c, batch = case
    benchmark.group = f"single LP {c.name}"
    model = single_model(batch)
    sol = benchmark.pedantic(solve_highspy, args=(model,), rounds=2, iterations=1)
    assert np.isfinite(sol.objective)
