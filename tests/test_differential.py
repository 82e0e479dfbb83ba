"""The cvxpy model and the same LP passed straight to highspy agree (objective and duals)."""

import numpy as np
import pytest

from market.clearing.run import step_model
from market.clearing.solvers import solve_cvxpy, solve_highspy
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
