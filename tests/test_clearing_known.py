"""Hand-solvable batches: quantities AND prices (duals) are pinned for every rule."""

import pytest

from market import clear
from market.testing import (
    area,
    award_mw,
    bid,
    constraint,
    dso_need,
    make_batch,
    price_of,
    signal,
    tso_need,
)

DESIGNS = ["single", "dso-led", "tso-only"]


@pytest.mark.parametrize("design", DESIGNS)
def test_plain_merit_order(design):
    b = make_batch([bid("b1", 10, 5), bid("b2", 20, 5), bid("b3", 30, 5)], [tso_need("N", 7)])
    r = clear(b, design, "pay-as-clear")
    assert award_mw(r, "b1") == pytest.approx(5)
    assert award_mw(r, "b2") == pytest.approx(2)
    assert award_mw(r, "b3") == 0
    assert price_of(r, "N") == pytest.approx(20)  # marginal bid sets the price
    assert set(r.awards["price_eur_mwh"]) == {20.0}
    pab = clear(b, design, "pay-as-bid")
    assert sorted(pab.awards["price_eur_mwh"]) == [10.0, 20.0]
    assert pab.metrics["total_cost_eur"] == pytest.approx(5 * 10 + 2 * 20)


def test_down_merit_order_price_sign():
    """Down need: the TSO pays down bids; cheapest first, price = marginal down bid."""
    b = make_batch(
        [bid("d1", 5, 4, direction="down"), bid("d2", 12, 4, direction="down"), bid("d3", -3, 1, direction="down")],
        [tso_need("N", 6, "down")],
    )
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "d3") == 1 and award_mw(r, "d1") == 4 and award_mw(r, "d2") == 1
    assert price_of(r, "N") == pytest.approx(12)


def test_red_area_is_skipped_by_tso():
    b = make_batch(
        [bid("cheap", 5, 10, node="n1"), bid("dear", 50, 10, node="n2")],
        [tso_need("N", 4)],
        signals=[signal("a-n1", "red")],
    )
    for design in DESIGNS:
        r = clear(b, design, "pay-as-clear")
        assert award_mw(r, "cheap") == 0, design
        assert award_mw(r, "dear") == pytest.approx(4)
        assert price_of(r, "N") == pytest.approx(50)


def test_amber_caps_tso_at_headroom():
    b = make_batch(
        [bid("cheap", 5, 10, node="n1"), bid("dear", 50, 10, node="n2")],
        [tso_need("N", 4)],
        signals=[signal("a-n1", "amber", up=1.5, down=0)],
    )
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "cheap") == pytest.approx(1.5)
    assert award_mw(r, "dear") == pytest.approx(2.5)
    assert price_of(r, "N") == pytest.approx(50)
    # the amber area's bid earns the system price minus the signal's rent: 50 - 45 = 5
    cheap = r.awards.loc[r.awards["bid_id"] == "cheap", "clearing_price_eur_mwh"].iloc[0]
    assert cheap == pytest.approx(5)
    # tso-only sees red only: amber does not bind there
    assert award_mw(clear(b, "tso-only"), "cheap") == pytest.approx(4)


def test_dso_may_use_own_red_area_for_own_need():
    b = make_batch(
        [bid("local", 30, 5, node="n1"), bid("far", 10, 5, node="n2")],
        [dso_need("D", "a-n1", 2)],
        signals=[signal("a-n1", "red")],
    )
    for design in DESIGNS:
        r = clear(b, design, "pay-as-clear")
        assert award_mw(r, "local", "dso1") == pytest.approx(2), design
        assert price_of(r, "D") == pytest.approx(30)


def test_tso_and_dso_compete_for_one_bid():
    """One cheap bid in the DSO's area; both buyers want it.

    single: the DSO's need is met by the cheap bid (it is the only bid in its area); the TSO
    covers its 6 MW with the rest of the cheap bid (2 MW) and 4 MW of the dear one, so the
    system price is 40 and the DSO's need costs 40 - 40 = 0 over energy (its congestion
    price is the premium of the area over the system, zero here).
    """
    b = make_batch(
        [bid("cheap", 10, 5, node="n1"), bid("dear", 40, 10, node="n2")], [tso_need("T", 6), dso_need("D", "a-n1", 3)]
    )
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "cheap", "dso1") == pytest.approx(3)
    assert award_mw(r, "cheap", "tso") == pytest.approx(2)
    assert award_mw(r, "dear", "tso") == pytest.approx(1)  # DSO's 3 MW up count in the balance
    assert price_of(r, "T") == pytest.approx(40)
    # One more MW for the DSO only moves the cheap bid's MW from the TSO to the DSO: the
    # area is not short, so the need's own dual is 0 and the DSO pays the energy price.
    d = r.prices.set_index("need_id").loc["D"]
    assert d["congestion_eur_mwh"] == pytest.approx(0)
    assert d["price_eur_mwh"] == pytest.approx(40)
    assert r.metrics["shared_der_intervals"] == 1  # same DER bought by two buyers, in one model: visible
    assert r.metrics["hidden_coupling_conflict_mw"] == 0
    t = clear(b, "tso-only", "pay-as-clear")
    assert award_mw(t, "cheap", "tso") == pytest.approx(5)  # TSO takes it all first
    # today's DSO, blind to the TSO's dispatch, buys the same bid: the DER delivers its 5 MW
    # once and the 3 MW sold twice are counted as hidden coupling
    assert t.awards.groupby("bid_id")["quantity_mw"].sum()["cheap"] == pytest.approx(5)
    assert t.metrics["hidden_coupling_sold_twice_mwh"] == pytest.approx(3)
    d = clear(b, "dso-led", "pay-as-clear")
    assert award_mw(d, "cheap", "dso1") == pytest.approx(3)
    assert award_mw(d, "dear", "tso") == pytest.approx(1)
    assert d.metrics["tier_bypassing_count"] == 0


def test_dso_need_forces_activation_and_the_tso_counters_it():
    """The DSO needs 4 MW up in its area, the TSO only 2 MW up in the system: the DSO's
    activations overshoot the balance, so the TSO buys 2 MW down.

    Marginals: one more MW of TSO need saves a 5 EUR down MW (energy price -5); one more MW
    of DSO need costs a 25 EUR area MW plus a 5 EUR down MW (need dual +30), so the DSO's
    price is -5 + 30 = 25, the marginal area bid.
    """
    bids = [
        bid("cheap", 10, 3, node="n1"),
        bid("mid", 25, 3, node="n1"),
        bid("dn", 5, 10, node="n2", direction="down"),
        bid("dear", 40, 10, node="n2"),
    ]
    b = make_batch(bids, [tso_need("T", 2), dso_need("D", "a-n1", 4)])
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "cheap", "dso1") == pytest.approx(3)
    assert award_mw(r, "mid", "dso1") == pytest.approx(1)
    assert award_mw(r, "dn", "tso") == pytest.approx(2)
    assert award_mw(r, "dear") == 0
    p = r.prices.set_index("need_id")
    assert p.loc["T", "price_eur_mwh"] == pytest.approx(-5)
    assert p.loc["D", "energy_eur_mwh"] == pytest.approx(-5)
    assert p.loc["D", "congestion_eur_mwh"] == pytest.approx(30)
    assert p.loc["D", "price_eur_mwh"] == pytest.approx(25)
    paid = r.awards.set_index("bid_id")["price_eur_mwh"]
    assert paid["mid"] == pytest.approx(25) and paid["cheap"] == pytest.approx(25)
    assert paid["dn"] == pytest.approx(5)  # down MW paid the down price (= -(-5))


def test_binding_feeder_changes_merit_order():
    """Feeder head import limit 2 MW: down activations (more load) below it are capped."""
    bids = [bid("f1", 5, 5, node="n1", direction="down"), bid("f2", 15, 5, node="n2", direction="down")]
    cons = [constraint("head", base=1.0, max_mw=2.0)]
    sens = [{"constraint_id": "head", "node_id": "n1", "factor": -1.0}]
    b = make_batch(bids, [tso_need("N", 4, "down")], constraints=cons, sens=sens)
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "f1") == pytest.approx(1)  # 1 MW headroom
    assert award_mw(r, "f2") == pytest.approx(3)
    assert price_of(r, "N") == pytest.approx(15)
    assert r.flows["violation_mw"].max() == 0
    np_ = r.node_prices.set_index("node_id")
    # down price at n1 is 15 - congestion; the congestion part at n1 is 10 for up
    assert np_.loc["n1", "price_up_eur_mwh"] == pytest.approx(-5)
    assert np_.loc["n2", "price_up_eur_mwh"] == pytest.approx(-15)
    # tso-only ignores the feeder and overloads it by 3 MW
    t = clear(b, "tso-only")
    assert award_mw(t, "f1") == pytest.approx(4)
    assert t.flows["violation_mw"].max() == pytest.approx(3)
    assert t.metrics["distribution_violation_mwh"] == pytest.approx(3)


def test_tie_broken_by_bid_id():
    b = make_batch([bid("b2", 10, 5), bid("b1", 10, 5), bid("b3", 10, 5)], [tso_need("N", 7)])
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "b1") == pytest.approx(5)
    assert award_mw(r, "b2") == pytest.approx(2)
    assert award_mw(r, "b3") == 0
    assert price_of(r, "N") == pytest.approx(10)


def test_unmet_must_meet_need_priced_at_voll():
    b = make_batch([bid("b1", 10, 3)], [tso_need("N", 5)], voll=1000)
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "b1") == pytest.approx(3)
    assert r.unmet.set_index("need_id").loc["N", "unmet_mw"] == pytest.approx(2)
    assert price_of(r, "N") == pytest.approx(1000)


def test_elastic_need_bought_only_below_its_price():
    b = make_batch([bid("b1", 10, 3), bid("b2", 60, 3)], [tso_need("N", 5, max_price=50)])
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "b1") == pytest.approx(3)
    assert award_mw(r, "b2") == 0
    assert len(r.unmet) == 0
    assert price_of(r, "N") == pytest.approx(50)  # the elastic demand is marginal


def test_min_quantity_bid_all_or_nothing_prices_from_fixed_lp():
    b = make_batch([bid("lumpy", 10, 5, minq=5), bid("flex", 30, 5)], [tso_need("N", 3)])
    r = clear(b, "single", "pay-as-clear")
    # 5 MW of lumpy would overshoot a 3 MW need (imbalance at VoLL): take flex
    assert award_mw(r, "lumpy") == 0
    assert award_mw(r, "flex") == pytest.approx(3)
    assert price_of(r, "N") == pytest.approx(30)
    b2 = make_batch([bid("lumpy", 10, 5, minq=2), bid("flex", 30, 5)], [tso_need("N", 3)])
    r2 = clear(b2, "single", "pay-as-clear")
    assert award_mw(r2, "lumpy") == pytest.approx(3)
    assert price_of(r2, "N") == pytest.approx(10)


def test_exclusive_group_takes_at_most_one():
    b = make_batch([bid("e1", 10, 5, excl="g"), bid("e2", 12, 5, excl="g"), bid("o", 50, 10)], [tso_need("N", 8)])
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "e1") == pytest.approx(5)
    assert award_mw(r, "e2") == 0
    assert award_mw(r, "o") == pytest.approx(3)
    assert price_of(r, "N") == pytest.approx(50)


def test_block_accepted_at_one_fraction_across_intervals():
    bids = [
        bid("k0", 20, 4, t=0, block="K"),
        bid("k1", 20, 2, t=1, block="K"),
        bid("s0", 40, 10, t=0),
        bid("s1", 40, 10, t=1),
    ]
    b = make_batch(bids, [tso_need("N0", 2, t=0), tso_need("N1", 2, t=1)], n_intervals=2)
    r = clear(b, "single", "pay-as-clear")
    # block fraction f: k0 = 4f <= 2 -> f = 0.5, k1 = 1 MW; s1 covers the other 1 MW
    assert award_mw(r, "k0") == pytest.approx(2)
    assert award_mw(r, "k1") == pytest.approx(1)
    assert award_mw(r, "s1") == pytest.approx(1)
    assert award_mw(r, "s0") == 0


def test_services_restrict_buyers():
    b = make_batch([bid("dso_only", 5, 5, services="dso_congestion"), bid("any", 20, 5)], [tso_need("N", 3)])
    r = clear(b, "single", "pay-as-clear")
    assert award_mw(r, "dso_only") == 0
    assert award_mw(r, "any") == pytest.approx(3)


def test_three_bus_negative_prices():
    """External reference case: costs 10/20/100, equal reactances, line 1-3 at 10 MW, 100 MW at bus 3."""
    bids = [bid("g1", 10, 1000, node="1"), bid("g2", 20, 1000, node="2"), bid("g3", 100, 1000, node="3")]
    # PTDF with bus 3 as reference: line 1-3 sees 2/3 of an injection at 1, 1/3 at 2.
    cons = [constraint("l13", base=0.0, max_mw=10.0, owner="tso")]
    sens = [
        {"constraint_id": "l13", "node_id": "1", "factor": 2 / 3},
        {"constraint_id": "l13", "node_id": "2", "factor": 1 / 3},
    ]
    b = make_batch(
        bids,
        [tso_need("L", 100)],
        constraints=cons,
        sens=sens,
        areas=[area("a1", "1"), area("a2", "2"), area("a3", "3")],
        voll=10000,
    )
    r = clear(b, "single", "pay-as-clear")
    assert [award_mw(r, g) for g in ("g1", "g2", "g3")] == pytest.approx([0, 30, 70], abs=1e-6)
    lmp = r.node_prices.set_index("node_id")["price_up_eur_mwh"]
    assert [lmp["1"], lmp["2"], lmp["3"]] == pytest.approx([-60, 20, 100], abs=1e-3)
    assert r.metrics["bid_cost_eur"] == pytest.approx(7600)


def test_pjm_five_bus():
    """MATPOWER case5 as a batch: cost 17479.897, LMPs 16.977/26.384/30/39.943/10."""
    from pjm5 import pjm5_batch

    r = clear(pjm5_batch(), "single", "pay-as-clear")
    assert r.metrics["bid_cost_eur"] == pytest.approx(17479.897, abs=1e-3)
    lmp = r.node_prices.set_index("node_id")["price_up_eur_mwh"]
    assert [lmp[n] for n in "ABCDE"] == pytest.approx([16.977, 26.384, 30.0, 39.943, 10.0], abs=1e-3)
    flows = r.flows.set_index("constraint_id")
    binding = flows[(flows["flow_mw"].abs() - flows["max_flow_mw"]).abs() < 1e-6]
    assert list(binding.index) == ["l4-5"]


def _bichler_batch(demand_mw: tuple[float, ...], min_a: float, min_b: float):  # type: ignore[no-untyped-def]
    """Bichler, Knörr, Maldonado (2021), 'Pricing in non-convex markets: how to price
    electricity in the presence of demand response', section 5.1, as used in ASSUME's
    tests/test_clearing_paper_examples.py: two block demands worth 100 EUR/MWh (summed
    here into one TSO need per hour), supplier A 15 MW at 5 and supplier B 20 MW at 3 in
    each of three hours, with minimum acceptance (MW) per hour."""
    bids = [bid(f"A{t}", 5, 15, t=t, minq=min_a, der="A") for t in range(3)] + [
        bid(f"B{t}", 3, 20, t=t, minq=min_b, der="B") for t in range(3)
    ]
    needs = [tso_need(f"N{t}", q, t=t, max_price=100) for t, q in enumerate(demand_mw)]
    return make_batch(bids, needs, n_intervals=3)


def test_bichler_convex_three_hours():
    """Section 5.1.1: hourly volumes 7/12/22, prices 3/3/5."""
    r = clear(_bichler_batch((7, 12, 22), 0, 0), "single", "pay-as-clear")
    assert [award_mw(r, f"B{t}") for t in range(3)] == pytest.approx([7, 12, 20])
    assert [award_mw(r, f"A{t}") for t in range(3)] == pytest.approx([0, 0, 2])
    assert [price_of(r, f"N{t}") for t in range(3)] == pytest.approx([3, 3, 5])
    assert r.metrics["total_cost_eur"] == pytest.approx(7 * 3 + 12 * 3 + 22 * 5)
    assert r.metrics["welfare_eur"] == pytest.approx(100 * 41 - (3 * 39 + 5 * 2))
    assert r.metrics["make_whole_eur"] == 0


def test_bichler_minimum_acceptance_three_hours():
    """Section 5.1.2: A must run at least 2 MW, B at least 10 MW when accepted. Hour 1
    (7 MW) is too small for B, so A serves it at 5; hours 2-3 as in the convex case."""
    r = clear(_bichler_batch((7, 12, 23), 2, 10), "single", "pay-as-clear")
    assert [award_mw(r, f"A{t}") for t in range(3)] == pytest.approx([7, 0, 3])
    assert [award_mw(r, f"B{t}") for t in range(3)] == pytest.approx([0, 12, 20])
    assert [price_of(r, f"N{t}") for t in range(3)] == pytest.approx([5, 3, 5])
    assert r.metrics["welfare_eur"] == pytest.approx(100 * 42 - (7 * 5 + 12 * 3 + 3 * 5 + 20 * 3))
    assert r.metrics["make_whole_eur"] == 0  # every accepted unit earns at least its bid


@pytest.mark.parametrize("design", DESIGNS)
def test_paradoxically_accepted_unit_is_made_whole(design):
    """An all-or-nothing 10 MW unit at 40 plus 2 MW of a 20 EUR bid meet a 12 MW need (the
    cheapest way). The price from the LP with the unit fixed is 20, below the unit's bid:
    pay-as-clear adds a make-whole payment of (40 - 20) x 10 MWh; pay-as-bid needs none."""
    b = make_batch([bid("lumpy", 40, 10, minq=10), bid("flex", 20, 5)], [tso_need("N", 12)])
    r = clear(b, design, "pay-as-clear")
    assert award_mw(r, "lumpy") == pytest.approx(10) and award_mw(r, "flex") == pytest.approx(2)
    assert price_of(r, "N") == pytest.approx(20)
    aw = r.awards.set_index("bid_id")
    assert aw.loc["lumpy", "make_whole_eur"] == pytest.approx(200)
    assert aw.loc["flex", "make_whole_eur"] == 0
    assert r.metrics["make_whole_eur"] == pytest.approx(200)
    assert r.metrics["make_whole_bids_count"] == 1
    assert r.metrics["total_cost_eur"] == pytest.approx(10 * 20 + 2 * 20 + 200)  # = bid cost
    pab = clear(b, design, "pay-as-bid")
    assert pab.metrics["make_whole_eur"] == 0
    assert pab.metrics["total_cost_eur"] == pytest.approx(10 * 40 + 2 * 20)


def test_block_is_made_whole_over_its_intervals_not_per_interval():
    """A divisible block loses in one interval and gains in the other: no make-whole."""
    bids = [
        bid("k0", 20, 4, t=0, block="K"),
        bid("k1", 20, 2, t=1, block="K"),
        bid("s0", 40, 10, t=0),
        bid("s1", 40, 10, t=1),
    ]
    b = make_batch(bids, [tso_need("N0", 2, t=0), tso_need("N1", 2, t=1)], n_intervals=2)
    r = clear(b, "single", "pay-as-clear")
    # fraction 0.5: k0 earns 10 < 20 on 2 MW, k1 earns 40 > 20 on 1 MW; nets to zero
    assert [price_of(r, "N0"), price_of(r, "N1")] == pytest.approx([10, 40])
    assert r.metrics["make_whole_eur"] == pytest.approx(0, abs=1e-6)
