"""Large MILPs get HiGHS options of their own and a MIP start (every integer unit rejected,
solved part by part): the optimum must be the one HiGHS finds without either, and a start
that is infeasible, or missing, must never change what is found."""

import numpy as np
import pytest

from market import clear
from market.clearing import solvers, solving
from market.clearing.ir import SolveStatus
from market.clearing.run import step_model
from market.io.synth import SynthSpec, synth_batch

EXACT = {"mip_rel_gap": 0.0}  # proven optima, so the objectives must agree, not just within a gap


@pytest.fixture(scope="module")
def batch():  # type: ignore[no-untyped-def]
    return synth_batch(SynthSpec(bids=60, intervals=8, dsos=2, seed=5, integer_share=0.3))


@pytest.fixture
def everything_large(monkeypatch):  # type: ignore[no-untyped-def]
    """Treat the small test MILP as large (start, large-MILP options, light presolve)."""
    monkeypatch.setattr(solvers, "LARGE_MILP_COLUMNS", 0)
    monkeypatch.setattr(solvers, "LIGHT_PRESOLVE_COLUMNS", 0)


def test_the_start_is_the_step_with_every_integer_unit_rejected(batch, everything_large):  # type: ignore[no-untyped-def]
    model = step_model(batch, "single")
    assert solvers.is_large_milp(model) and model.start is None
    sol = solving._start_rejecting_integers(model, EXACT, None)
    assert sol.status is SolveStatus.OPTIMAL and model.start is not None
    for name, fam in model.variables.items():
        if fam.integer:
            assert not model.start[name].any()  # every unit rejected
    assert max(model.residuals(model.start).values()) <= 1e-7  # a feasible point of the MILP
    assert model.objective(model.start) >= solvers.solve_highspy(model, EXACT).objective - 1e-6


def test_a_large_milp_clears_to_the_same_optimum_with_start_and_options(batch, monkeypatch):  # type: ignore[no-untyped-def]
    plain = clear(batch, "single", solver_options=EXACT)
    monkeypatch.setattr(solvers, "LARGE_MILP_COLUMNS", 0)
    monkeypatch.setattr(solvers, "LIGHT_PRESOLVE_COLUMNS", 0)
    started = []
    real = solving._start_rejecting_integers
    monkeypatch.setattr(solving, "_start_rejecting_integers", lambda *a: started.append(1) or real(*a))
    tuned = clear(batch, "single", solver_options=EXACT)
    assert started == [1]
    assert plain.ok and tuned.ok and tuned.stats[0].status == "optimal"
    assert tuned.stats[0].objective_eur_h == pytest.approx(plain.stats[0].objective_eur_h, rel=1e-9)
    assert tuned.metrics["total_cost_eur"] == pytest.approx(plain.metrics["total_cost_eur"], rel=1e-9)


def test_the_large_milp_options_reach_highs(batch, everything_large):  # type: ignore[no-untyped-def]
    model = step_model(batch, "single")
    options = solvers.highs_options(model, None)
    assert options["presolve_mode"] == 2 and options["mip_root_presolve_only"] is True
    assert options["mip_heuristic_run_feasibility_jump"] is False


def test_small_milps_and_lps_keep_highs_defaults(batch):  # type: ignore[no-untyped-def]
    model = step_model(batch, "single")
    assert model.n_integer and not solvers.is_large_milp(model)
    options = solvers.highs_options(model, None)
    assert "presolve_mode" not in options and "mip_root_presolve_only" not in options
    lp = step_model(synth_batch(SynthSpec(bids=60, intervals=8, dsos=2, seed=5)), "single")
    assert solvers.highs_options(lp, None)["presolve"] == "off"


def test_an_infeasible_or_missing_start_changes_nothing(batch, everything_large):  # type: ignore[no-untyped-def]
    model = step_model(batch, "single")
    reference = solvers.solve_highspy(model, EXACT)  # no start: HiGHS completes z = 0 itself
    model.start = {name: np.full(fam.size, 1.0) for name, fam in model.variables.items()}  # breaks rows
    assert max(model.residuals(model.start).values()) > 1e-3
    dropped = solvers.solve_highspy(model, EXACT)
    assert dropped.status is SolveStatus.OPTIMAL
    assert dropped.objective == pytest.approx(reference.objective, rel=1e-9)


def test_each_part_gets_its_own_slice_of_the_start():  # type: ignore[no-untyped-def]
    from market.clearing.decompose import split

    model = step_model(synth_batch(SynthSpec(bids=40, intervals=6, dsos=2, seed=2)), "single")
    model.start = {name: np.arange(fam.size, dtype=float) for name, fam in model.variables.items()}
    parts = split(model, parts=3)
    assert len(parts) > 1
    for part in parts:
        assert part.model.start is not None
        for name, idx in part.columns.items():
            np.testing.assert_array_equal(part.model.start[name], model.start[name][idx])
