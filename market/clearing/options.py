"""The solver options a user sets, without importing a solver (the command line reads them
before anything heavy is imported): which backend takes a model to HiGHS, and HiGHS's
options for every clearing model (:mod:`market.clearing.solvers` adds those per kind of
model).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

DEFAULT_HIGHS_OPTIONS: dict[str, Any] = {
    "threads": 1,
    "random_seed": 0,
    "mip_rel_gap": 1e-4,  # HiGHS default; prices come from the LP with integers fixed
    "time_limit": 600.0,  # s per MILP: then the best feasible solution is kept and its gap reported
    # HiGHS's probing (presolve rule 15) tries each binary both ways: on clearing MILPs
    # (all-or-nothing bids, blocks, exclusive groups) it found nothing on the 1e6-bid-interval
    # case and cost 50 s of 130 (the optimum within the gap is the same without it)
    "presolve_rule_off": 1 << 15,
    "primal_feasibility_tolerance": 1e-9,
    "dual_feasibility_tolerance": 1e-9,
}


class Backend(StrEnum):
    """How a model reaches HiGHS: straight through highspy (the default, fastest) or through
    cvxpy (one ``cp.Variable`` per family). Both give the same optimum and duals."""

    HIGHSPY = "highspy"
    CVXPY = "cvxpy"


BACKEND_OPTION = "backend"  # the key in solver options that picks the backend (not a HiGHS option)

SOLVER_OUTPUT = {"verbose": False}  # set by ``flexmarket --verbose``: HiGHS's own log on stdout
