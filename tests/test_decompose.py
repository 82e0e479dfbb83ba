"""Exact decomposition: a model splits only where nothing couples it, and the parts'
solutions stitched together are the whole model's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from market import clear
from market.clearing import decompose
from market.clearing.decompose import component_labels, solve_in_parts, split
from market.clearing.run import step_model
from market.clearing.solvers import solve_highspy
from market.clearing.verify import verify
from market.io.synth import SynthSpec, synth_batch
from market.testing import bid, make_batch, tso_need


def test_parts_solve_to_the_whole_models_optimum():
    model = step_model(synth_batch(SynthSpec(bids=150, intervals=12, dsos=2, seed=5)), "single")
    whole = solve_highspy(model, None)
    parts = solve_in_parts(model, solve_highspy, None, parts=4)
    assert len(split(model, 4)) == 4
    assert parts.objective == pytest.approx(whole.objective, rel=1e-9)
    verify(model, parts)  # the stitched values keep every row of the whole model
    for name in whole.values:
        np.testing.assert_allclose(parts.values[name], whole.values[name], atol=1e-7)


def test_no_part_is_empty_when_parts_outnumber_what_can_be_filled():
    """Components are never cut, so asking for many parts skips part numbers: only parts
    that hold columns or rows are made (no empty solve), and together they hold everything."""
    model = step_model(synth_batch(SynthSpec(bids=60, intervals=8, dsos=2, seed=1)), "single")
    parts = split(model, parts=40)
    assert all(p.model.n_variables or any(len(r) for r in p.rows.values()) for p in parts)
    for name, fam in model.variables.items():
        assert sorted(np.concatenate([p.columns[name] for p in parts])) == list(range(fam.size))
    for name, con in model.constraints.items():
        assert sorted(np.concatenate([p.rows[name] for p in parts])) == list(range(con.size))
    sol = solve_in_parts(model, solve_highspy, None, parts=40)
    assert sol.objective == pytest.approx(solve_highspy(model, None).objective, rel=1e-9)


def test_a_block_keeps_the_intervals_it_spans_together():
    bids = [
        bid("blk0", 10, 2, t=0, block="B"),
        bid("blk1", 10, 2, t=1, block="B"),
        bid("alone", 12, 2, t=2),
    ]
    b = make_batch(bids, [tso_need(f"T{t}", 1, t=t) for t in range(3)], n_intervals=3)
    model = step_model(b, "single")
    count, col_labels, _ = component_labels(model)
    x = col_labels[: model.variables["x"].size]  # x is the first family; bids in bid_id order
    alone, blk0, blk1 = x
    assert blk0 == blk1 != alone
    assert count >= 2
    pieces = split(model, 2)
    assert len(pieces) == 2
    assert any(set(p.columns["x"]) >= {1, 2} for p in pieces)


def test_a_milps_pricing_lp_falls_apart_once_its_integers_are_fixed():
    """An exclusive group spanning the day couples every interval of the MILP; with the
    integer decisions fixed (the LP that prices it), the group's row holds only constants,
    so the pricing LP splits per interval, with the whole model's values and prices."""
    bids = [bid(f"ex{t}", 10 + t, 2, t=t, minq=2, excl="G") for t in range(4)]
    bids += [bid(f"c{t}", 30, 5, t=t) for t in range(4)]
    b = make_batch(bids, [tso_need(f"T{t}", 3, t=t) for t in range(4)], n_intervals=4)
    model = step_model(b, "single")
    assert model.variables["x"].size == 8  # x is the first family; bids in bid_id order: c0..c3, ex0..ex3
    assert model.n_integer and len(set(component_labels(model)[1][:4])) == 1  # the group joins them
    mip = solve_highspy(model, None)
    fixed = model.fixed_integers(mip.values)
    assert len(set(component_labels(fixed)[1][:4])) == 4  # fixed: one component per interval
    assert len(split(fixed, 4)) == 4
    whole = solve_highspy(fixed, None)
    parts = solve_in_parts(fixed, solve_highspy, None, parts=4)
    verify(fixed, parts)
    assert parts.objective == pytest.approx(whole.objective, rel=1e-9)
    for name in whole.values:
        np.testing.assert_allclose(parts.values[name], whole.values[name], atol=1e-7)
    for name in whole.marginals:
        np.testing.assert_allclose(parts.marginals[name], whole.marginals[name], atol=1e-7)


def test_clear_gives_the_same_awards_whole_and_in_parts(monkeypatch):
    batch = synth_batch(SynthSpec(bids=200, intervals=16, dsos=2, seed=2))
    monkeypatch.setattr(decompose, "COLUMNS_PER_PART", 10**9)
    whole = clear(batch, "single", "pay-as-bid")
    monkeypatch.setattr(decompose, "COLUMNS_PER_PART", 500)
    assert len(split(step_model(batch, "single"))) > 1
    parts = clear(batch, "single", "pay-as-bid")
    key = ["bid_id", "buyer_id"]
    pd.testing.assert_frame_equal(
        whole.awards.sort_values(key)[[*key, "quantity_mw"]].reset_index(drop=True),
        parts.awards.sort_values(key)[[*key, "quantity_mw"]].reset_index(drop=True),
    )
    assert parts.metrics["system_cost_eur"] == pytest.approx(whole.metrics["system_cost_eur"], rel=1e-9)


def test_parts_fan_out_on_a_real_dask_cluster_with_the_same_result(monkeypatch, dask_scheduler):
    batch = synth_batch(SynthSpec(bids=120, intervals=8, dsos=2, seed=4))
    monkeypatch.setattr(decompose, "COLUMNS_PER_PART", 300)
    assert len(split(step_model(batch, "single"))) > 1
    local = clear(batch, "single", "pay-as-clear")
    remote = clear(batch, "single", "pay-as-clear", scheduler=dask_scheduler)
    pd.testing.assert_frame_equal(remote.awards, local.awards)
    pd.testing.assert_frame_equal(remote.prices, local.prices)
    assert remote.metrics["system_cost_eur"] == local.metrics["system_cost_eur"]
