"""Published prices against an independent DC-OPF: MATPOWER case30, case39 and case118
(pandapower's copies), linear costs, cleared by flexmarket as one TSO market over three
identical hours and by pandapower's own DC optimal power flow. LMPs must agree within the
0.001 EUR/MWh price resolution, with equal-priced offers (ties) and with binding lines."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from matpower import case_batch, load_case, reference_lmps

from market import clear
from market.io.grid import net_injection_mw, node_ids_of, pandapower_tables
from market.testing import bid, make_batch, tso_need

pytestmark = pytest.mark.filterwarnings("ignore")

CASES = [
    ("case30", 0, 0.0),  # one line binds, distinct LMPs
    ("case39", 0, 0.0),  # every generator at the same price: ties everywhere
    ("case39", 2, 0.05),  # distinct prices, two more lines tightened
    ("case118", 0, 0.0),  # many equal prices
    ("case118", 6, 0.05),  # distinct prices, lines binding
]


@pytest.mark.parametrize(("name", "tighten", "spread"), CASES)
def test_published_lmps_equal_pandapower_dc_opf(name: str, tighten: int, spread: float) -> None:
    net = load_case(name, tighten, spread)
    ref = reference_lmps(net)
    ref.index = node_ids_of(net)
    ref_cost = float(net.res_cost)
    result = clear(case_batch(net, intervals=3), "single", "pay-as-clear")
    prices = result.node_prices
    assert prices["interval_start"].nunique() == 3 and len(prices) == 3 * len(ref)
    published = prices["price_up_eur_mwh"].to_numpy()
    expected = ref.reindex(prices["node_id"]).to_numpy()
    assert np.abs(published - expected).max() <= 0.0005 + 1e-7
    assert result.metrics["bid_cost_eur"] / 3 == pytest.approx(ref_cost, rel=1e-7)


@pytest.mark.parametrize("name", ["case30", "case39", "case118"])
def test_imported_ptdf_reproduces_pandapower_dc_flows(name: str) -> None:
    import pandapower.networks as pn

    net = getattr(pn, name)()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = pandapower_tables(net)
        injection = net_injection_mw(net)
    flows = np.concatenate([net.res_line["p_from_mw"].to_numpy(), net.res_trafo["p_hv_mw"].to_numpy()])
    assert np.abs(grid.constraints["base_flow_mw"].to_numpy() - flows).max() < 1e-4
    bus = 3  # +1 MW at one bus, out at the slack, changes flows by that bus's PTDF column
    assert np.abs(grid.ptdf @ (injection + np.eye(len(injection))[bus]) - flows - grid.ptdf[:, bus]).max() < 1e-9


def test_equal_prices_are_taken_in_bid_id_order_and_prices_are_not_moved() -> None:
    bids = [bid(b, 50.0, 1.0, t=t) for t in (0, 5) for b in ("c", "a", "b")]
    bids = [{**x, "bid_id": f"{x['bid_id']}{i}"} for i, x in enumerate(bids)]
    batch = make_batch(bids=bids, needs=[tso_need("n0", 1.5), tso_need("n5", 1.5, t=5)], n_intervals=6)
    aw = clear(batch, "single", "pay-as-clear").awards.set_index("bid_id")["quantity_mw"]
    # interval 0: a1 < b2 < c0 by bid_id; interval 5 the same, the nudge does not grow with t
    assert aw.to_dict() == {"a1": 1.0, "b2": 0.5, "a4": 1.0, "b5": 0.5}
    prices = clear(batch, "single", "pay-as-clear").prices["price_eur_mwh"]
    assert prices.tolist() == [50.0, 50.0]  # the marginal value without any nudge


def test_a_nudge_never_reorders_different_prices() -> None:
    batch = make_batch(
        bids=[bid("a", 50.0001, 1.0), bid("b", 50.0, 1.0), bid("c", 50.0, 1.0)], needs=[tso_need("n", 1.5)]
    )
    aw = clear(batch, "single", "pay-as-clear").awards.set_index("bid_id")["quantity_mw"]
    assert aw.to_dict() == {"b": 1.0, "c": 0.5}


def test_equal_prices_at_different_nodes_follow_bid_id_when_nothing_tells_them_apart() -> None:
    bids = [bid("b", 50.0, 1.0, node="n2"), bid("a", 50.0, 1.0, node="n1"), bid("c", 50.0, 1.0, node="n3")]
    areas = [{"area_id": "grid", "node_id": n, "dso_id": "dso1"} for n in ("n1", "n2", "n3")]
    batch = make_batch(bids=bids, needs=[tso_need("n", 1.5)], areas=areas)
    aw = clear(batch, "single", "pay-as-clear").awards.set_index("bid_id")["quantity_mw"]
    assert aw.to_dict() == {"a": 1.0, "b": 0.5}
