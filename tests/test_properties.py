"""Hypothesis properties over generated batches, for every design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from market import clear
from market.io.read import batch_from_frames, load_batch
from market.io.synth import SynthSpec, synth_batch
from market.io.write import write_batch

specs = st.builds(
    SynthSpec,
    bids=st.integers(4, 24),
    intervals=st.integers(1, 5),
    dsos=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    integer_share=st.sampled_from([0.0, 0.0, 0.2]),
)
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(spec=specs)
def test_generated_batches_validate_idempotently(spec, tmp_path_factory):
    batch = synth_batch(spec)
    folder = tmp_path_factory.mktemp("b")
    write_batch(batch, folder / "one")
    once = load_batch(folder / "one")
    write_batch(once, folder / "two", "csv")
    twice = load_batch(folder / "two")
    for name in ("bids", "needs", "node_areas", "constraints", "sensitivities", "signals"):
        pd.testing.assert_frame_equal(once.table(name), twice.table(name), check_dtype=False)
        pd.testing.assert_frame_equal(batch.table(name), once.table(name), check_dtype=False)


def _bid_areas(batch, awards):  # type: ignore[no-untyped-def]
    return awards.merge(batch.node_areas[["node_id", "area_id"]].rename(columns={"area_id": "in_area"}), on="node_id")


def check_invariants(batch, r):  # type: ignore[no-untyped-def]
    aw = r.awards
    per_bid = aw.groupby("bid_id")["quantity_mw"].sum()
    q = batch.bids.set_index("bid_id")["quantity_mw"].reindex(per_bid.index)
    assert (per_bid <= q + 1e-6).all(), "an award exceeds its bid"
    tso = _bid_areas(batch, aw[aw["buyer_id"] == "tso"])
    sig = batch.signals.rename(columns={"area_id": "in_area"})
    with_sig = tso.merge(sig, on=["in_area", "interval_start"])
    assert not (with_sig["state"] == "red").any(), "TSO used a red area"
    return with_sig


@SETTINGS
@given(spec=specs)
def test_design_invariants(spec):
    batch = synth_batch(spec)
    results = {d: clear(batch, d, "pay-as-clear") for d in ("single", "dso-led", "tso-only")}
    for design, r in results.items():
        with_sig = check_invariants(batch, r)
        if design == "tso-only":
            continue
        amber = with_sig[with_sig["state"] == "amber"]
        used = amber.groupby(["in_area", "interval_start", "direction"]).agg(
            mw=("quantity_mw", "sum"), up=("headroom_up_mw", "first"), down=("headroom_down_mw", "first")
        )
        cap = np.where(used.index.get_level_values("direction") == "up", used["up"], used["down"])
        assert (used["mw"].to_numpy() <= cap + 1e-6).all(), f"{design}: amber cap broken"
        f = r.flows
        base_over = np.maximum(f["base_flow_mw"] - f["max_flow_mw"], 0)
        base_under = np.maximum(f["min_flow_mw"] - f["base_flow_mw"], 0)
        assert (f["violation_mw"] <= np.maximum(base_over, base_under) + 1e-6).all(), (
            f"{design}: dispatch made a network limit worse"
        )
    single, dso_led = results["single"].metrics, results["dso-led"].metrics
    assert single["system_cost_eur"] <= dso_led["system_cost_eur"] + 1e-3 * (1 + abs(dso_led["system_cost_eur"])), (
        "single must cost no more than dso-led"
    )


@settings(max_examples=6, deadline=None)
@given(spec=specs, shuffle_seed=st.integers(0, 1000))
def test_results_do_not_depend_on_row_order(spec, shuffle_seed):
    batch = synth_batch(spec)
    rng = np.random.default_rng(shuffle_seed)
    frames = {
        name: batch.table(name).sample(frac=1.0, random_state=rng.integers(1 << 31))
        for name in ("bids", "needs", "node_areas", "constraints", "sensitivities", "signals")
    }
    shuffled = batch_from_frames(batch.config, **frames)
    for design in ("single", "dso-led"):
        a = clear(batch, design, "pay-as-clear")
        b = clear(shuffled, design, "pay-as-clear")
        pd.testing.assert_frame_equal(a.awards, b.awards)
        pd.testing.assert_frame_equal(a.prices, b.prices)


@pytest.mark.parametrize("design", ["single", "dso-led", "tso-only"])
def test_same_inputs_same_files(tmp_path, design):
    from typer.testing import CliRunner

    from market.cli.app import app

    batch = synth_batch(SynthSpec(bids=30, intervals=6, dsos=2, seed=5, integer_share=0.2))
    write_batch(batch, tmp_path / "batch")
    runner = CliRunner()
    for run in ("r1", "r2"):
        res = runner.invoke(
            app,
            [
                "clear",
                str(tmp_path / "batch"),
                "--design",
                design,
                "--pricing",
                "pay-as-clear",
                "--out",
                str(tmp_path / run),
            ],
        )
        assert res.exit_code == 0, res.output
    for name in ("awards", "prices", "unmet", "flows", "node_prices", "imbalance"):
        one = (tmp_path / "r1" / f"{name}.parquet").read_bytes()
        two = (tmp_path / "r2" / f"{name}.parquet").read_bytes()
        assert one == two, name


@SETTINGS
@given(spec=specs)
def test_pay_as_clear_makes_every_commitment_whole(spec):
    """Under pay-as-clear, clearing revenue + make-whole covers each accepted commitment's
    bid cost (a block over its intervals, otherwise a bid); divisible bids never need it."""
    batch = synth_batch(spec)
    bids = batch.bids.set_index("bid_id")
    for design in ("single", "dso-led", "tso-only"):
        aw = clear(batch, design, "pay-as-clear").awards
        if not len(aw):
            continue
        unit = (
            bids.loc[aw["bid_id"], "block_id"]
            .fillna(pd.Series(aw["bid_id"].to_numpy(), index=bids.loc[aw["bid_id"]].index))
            .to_numpy()
        )
        money = (
            aw.assign(
                unit=unit,
                bid_cost=aw["bid_price_eur_mwh"] * aw["energy_mwh"],
                paid=aw["cost_eur"] + aw["make_whole_eur"],
            )
            .groupby("unit")[["bid_cost", "paid", "make_whole_eur"]]
            .sum()
        )
        assert (money["paid"] >= money["bid_cost"] - 1e-3 * (1 + money["bid_cost"].abs())).all()
        integer = (bids["min_quantity_mw"] > 0) | bids["block_id"].notna() | bids["exclusive_group"].notna()
        divisible = aw["bid_id"].map(~integer).to_numpy(dtype=bool)
        assert (aw.loc[divisible, "make_whole_eur"] == 0).all(), design


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.integers(-1, 6), max_size=30),
    table=st.lists(st.integers(-1, 6), max_size=30),
)
def test_integer_join_is_pandas_inner_merge(keys, table):  # type: ignore[no-untyped-def]
    """``expand_pairs`` (the integer join behind bids-in-areas and the network matrix) gives
    the pairs of an inner ``pandas.merge`` in its order; -1 matches nothing."""
    from market.clearing.locate import expand_pairs

    i, j = expand_pairs(np.array(keys, dtype=int), np.array(table, dtype=int))
    left = pd.DataFrame({"k": keys, "i": np.arange(len(keys))})
    right = pd.DataFrame({"k": table, "j": np.arange(len(table))})
    want = left[left["k"] >= 0].merge(right[right["k"] >= 0], on="k")
    np.testing.assert_array_equal(i, want["i"].to_numpy())
    np.testing.assert_array_equal(j, want["j"].to_numpy())


@settings(max_examples=100, deadline=None)
@example(rows=80, spread=[10**6] * 12, seed=0, missing=True)  # 80 distinct values per key, 12 keys: past int64
@given(
    rows=st.integers(1, 80),
    spread=st.lists(st.sampled_from([1, 2, 3, 10**6]), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
    missing=st.booleans(),
)
def test_tie_key_groups_exactly_as_pandas_groupby(rows, spread, seed, missing):  # type: ignore[no-untyped-def]
    """The tie order's exact key (factorized codes in mixed radix, refactorized before
    int64 would overflow) puts two rows together exactly where ``groupby(dropna=False)`` does."""
    from market.clearing.readback import _tie_key

    rng = np.random.default_rng(seed)
    keys = [rng.integers(0, k, rows).astype(float) for k in spread]
    if missing:
        keys[0][rng.random(rows) < 0.3] = np.nan
    got = pd.factorize(_tie_key(keys))[0]
    frame = pd.DataFrame({f"k{n}": k for n, k in enumerate(keys)})
    want = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    np.testing.assert_array_equal(got, want)
