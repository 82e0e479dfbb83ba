"""Equal-cost alternatives (a degenerate LP) come out as one canonical optimum: the least
tie-weighted point of the optimal face, whatever the column order, the split into parts or
the solver's path; the prices stay the duals of the first solve."""

from __future__ import annotations

import numpy as np
import pytest

from market import clear
from market.clearing.decompose import solve_in_parts
from market.clearing.run import step_model
from market.clearing.solvers import solve_highspy
from market.clearing.ties import tie_weights
from market.io.synth import SynthSpec, synth_batch
from market.testing import area, award_mw, bid, constraint, make_batch, tso_need


def tied_batch(first: str, second: str, intervals: int = 1):  # type: ignore[no-untyped-def]
    """Two 2 MW bids at 10 EUR/MWh at different nodes (a line that never binds tells their
    columns apart, so they are not interchangeable copies), 1 MW needed per interval."""
    bids, needs = [], []
    for t in range(intervals):
        bids += [bid(f"{first}-{t}", 10, 2, node="n1", t=t), bid(f"{second}-{t}", 10, 2, node="n2", t=t)]
        needs.append(tso_need(f"T{t}", 1, t=t))
    sens = [
        {"constraint_id": "line", "node_id": "n1", "factor": 0.5},
        {"constraint_id": "line", "node_id": "n2", "factor": -0.5},
    ]
    areas = [area("a1", "n1"), area("a2", "n2")]
    return make_batch(bids, needs, areas, [constraint("line", 0, 100)], sens, n_intervals=intervals)


def lighter(first: str, second: str) -> str:
    """Of the two bids of interval 0, the one with the smaller tie weight."""
    import pandas as pd

    ids = pd.DataFrame({"bid_id": [f"{first}-0", f"{second}-0"]})
    w = tie_weights(ids, np.zeros(0, dtype=int))["x"]
    return str(ids["bid_id"][int(np.argmin(w))])


@pytest.mark.parametrize(("first", "second"), [("a", "b"), ("b", "a"), ("p", "q"), ("q", "p")])
def test_the_tied_mw_goes_to_the_least_weighted_bid_whatever_the_ids_order(first, second):
    result = clear(tied_batch(first, second), "single")
    winner = lighter(first, second)
    loser = ({f"{first}-0", f"{second}-0"} - {winner}).pop()
    assert award_mw(result, winner) == pytest.approx(1.0)
    assert award_mw(result, loser) == 0.0


def test_the_second_stage_moves_awards_only_and_keeps_the_prices():
    model = step_model(tied_batch("a", "b", intervals=3), "single")
    canonical = solve_highspy(model, None)
    weights = model.tie_weights
    model.tie_weights = None
    first = solve_highspy(model, None)
    model.tie_weights = weights
    assert canonical.objective == first.objective
    assert model.objective(canonical.values) == pytest.approx(first.objective, rel=1e-12)
    for name, duals in first.marginals.items():
        np.testing.assert_array_equal(canonical.marginals[name], duals)
    w = weights["x"]
    assert w @ canonical.values["x"] <= w @ first.values["x"] + 1e-12


@pytest.mark.parametrize("parts", [2, 6])
def test_parts_give_the_whole_models_awards_on_a_book_full_of_ties(parts):
    """The synthetic book's prices have two decimals, so equal-priced bids at different
    nodes tie in most intervals; split or whole, the awards are the same point. (On this
    book, without the second stage, 2 awards of the whole differ from the parts' with this
    HiGHS; at 1e6 bid-intervals, 27 of 115,108.)"""
    model = step_model(synth_batch(SynthSpec(bids=3000, intervals=6, dsos=3, seed=3)), "single")
    whole = solve_highspy(model, None)
    split = solve_in_parts(model, solve_highspy, None, parts=parts)
    assert split.objective == pytest.approx(whole.objective, rel=1e-9)
    for name in ("x", "yd"):
        np.testing.assert_allclose(split.values[name], whole.values[name], rtol=0, atol=1e-7)


def test_tie_weights_depend_on_the_bid_id_alone():
    import pandas as pd

    ids = pd.DataFrame({"bid_id": ["x1", "x2", "x3"]})
    both = tie_weights(ids, np.array([0, 2]))
    alone = tie_weights(ids.iloc[[2]].reset_index(drop=True), np.array([0]))
    assert both["x"][2] == alone["x"][0] and both["yd"][1] == alone["yd"][0]
    assert np.all((both["x"] >= 1) & (both["x"] < 2)) and len(set(both["x"])) == 3
