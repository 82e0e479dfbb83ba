"""Never trust a solver status alone: check the returned values against every family."""

from __future__ import annotations

import numpy as np

from market.clearing.ir import LinearModel, Solution
from market.errors import SolverError


def verify(model: LinearModel, solution: Solution, tol: float = 1e-6) -> None:
    """Raise :class:`SolverError` if the returned values break any family of the model."""
    worst = model.residuals(solution.values)
    bad = {k: v for k, v in worst.items() if v > tol}
    if bad:
        detail = ", ".join(f"{k} by {v:.3g}" for k, v in sorted(bad.items()))
        raise SolverError(f"{model.name}: solver returned {solution.detail!r} but the solution breaks {detail}")
    ints = [n for n, f in model.variables.items() if f.integer]
    for n in ints:
        v = solution.values[n]
        if np.max(np.abs(v - np.round(v)), initial=0.0) > tol:
            raise SolverError(f"{model.name}: integer family {n} has fractional values")
