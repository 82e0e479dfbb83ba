"""Every preset is a distinct design, faithful to its section of the report.

For each preset a small batch on which it differs from its nearest sibling the way the
report says it does (the section is cited in each test), the layered decomposition's
size and price, and on the sample: no two presets give the same dispatch and the same
measured risks.
"""

from __future__ import annotations

import itertools
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from market import clear, load_batch
from market.analysis.sweep import load_grid, run_sweep
from market.design.spec import Design, parse_design, preset_names
from market.errors import FlexmarketError
from market.io.synth import SynthSpec, synth_batch
from market.testing import area, award_mw, bid, constraint, dso_need, feeder_case, make_batch, tso_need

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _dso_led(bands: int) -> Design:
    """``dso-led`` with ``bands`` price bands per interface curve."""
    raw = tomllib.loads((resources.files("market.design.presets") / "dso-led.toml").read_text())
    raw["name"] = f"dso-led-{bands}"
    raw["steps"][1]["interface_steps"] = bands
    return parse_design(raw, "test")


# --- layered decomposition (DESIGN: interface offers; report 2.4 Total DSO, 3.1 UK FW1) ---


def test_layered_tso_step_is_at_most_a_quarter_of_single_on_a_few_thousand_der():
    b = synth_batch(SynthSpec(bids=3000, intervals=4, dsos=8, seed=1))
    single, layered = clear(b, "single"), clear(b, "dso-led")
    assert layered.metrics["scalability_tso_variables"] * 4 <= single.metrics["scalability_tso_variables"]
    # the DSOs disaggregated every accepted band to real bids, within their capacity
    per_bid = layered.awards.groupby("bid_id")["quantity_mw"].sum()
    q = b.bids.set_index("bid_id")["quantity_mw"]
    assert per_bid.index.isin(q.index).all()
    assert (per_bid <= q.reindex(per_bid.index) + 1e-6).all()


def test_price_of_decomposition_falls_with_more_bands_and_never_beats_the_joint_optimum():
    b = synth_batch(SynthSpec(bids=400, intervals=2, dsos=3, seed=7))
    joint = clear(b, "single", "pay-as-clear").metrics
    costs = {k: clear(b, _dso_led(k), "pay-as-clear").metrics for k in (1, 3, 50)}
    for m in costs.values():  # the joint optimiser's outcome is the cheapest possible
        assert m["system_cost_eur"] >= joint["system_cost_eur"] - 1e-6
    assert costs[50]["system_cost_eur"] <= costs[1]["system_cost_eur"] + 1e-6
    # one band per interface: every MW is priced at the dearest bid behind it
    assert costs[1]["total_cost_eur"] >= costs[50]["total_cost_eur"] - 1e-6


def test_interface_curve_never_breaks_the_dsos_own_limit_and_disaggregates_in_merit_order():
    b = feeder_case()  # 1 MW of headroom under the DSO feeder for the cheap bid
    r = clear(b, "dso-led", "pay-as-clear")
    assert r.metrics["distribution_violation_mwh"] == 0
    assert award_mw(r, "under") == pytest.approx(1.0)  # what the feeder allows
    assert award_mw(r, "elsewhere") == pytest.approx(2.0)
    assert set(r.awards["path"]) == {"tso>dso>aggregator>der"}


def test_all_or_nothing_bids_forwarded_one_by_one_are_checked_together_with_the_curves():
    """Layered designs (Total DSO, 3.1): each all-or-nothing bid fits the feeder alone, two
    together and the curve behind them do not. The DSO forwards them in merit order while
    they fit together and offers the curve only what they leave; the TSO-centric model,
    blind to the feeder, overloads it."""
    bids = [
        bid("aon1", 10, 0.8, node="n1", minq=0.8),
        bid("aon2", 11, 0.8, node="n1", minq=0.8),
        bid("div", 12, 1.0, node="n1"),
        bid("far", 50, 3, node="n2"),
    ]
    feeder = [constraint("head", base=0.0, max_mw=1.0)]
    sens = [{"constraint_id": "head", "node_id": "n1", "factor": 1.0}]
    b = make_batch(bids, [tso_need("T", 3)], constraints=feeder, sens=sens)
    led = clear(b, "dso-led")
    assert award_mw(led, "aon1") == 0.8 and award_mw(led, "aon2") == 0.0  # not forwarded: no room
    assert award_mw(led, "div") == pytest.approx(0.2) and award_mw(led, "far") == pytest.approx(2.0)
    assert led.metrics["distribution_violation_mwh"] == 0
    assert clear(b, "tso-only").metrics["distribution_violation_mwh"] == pytest.approx(1.6)


@pytest.mark.parametrize("seed", [0, 1])
def test_layered_designs_with_a_third_all_or_nothing_der_never_overload_their_feeders(seed: int) -> None:
    b = synth_batch(SynthSpec(bids=300, intervals=4, dsos=3, seed=seed, integer_share=0.3))
    for design in ("dso-led", "aemo-three-way-idso", "california-future"):
        assert clear(b, design).metrics["distribution_violation_mwh"] == 0, design


# --- each preset against its nearest sibling ---


def test_aemo_centralised_sees_distribution_limits_that_tso_only_breaks():
    """3.2, Figure 8: the central platform takes distribution constraints into account."""
    b = feeder_case()
    assert clear(b, "aemo-centralised").metrics["distribution_violation_mwh"] == 0
    assert clear(b, "tso-only").metrics["distribution_violation_mwh"] == pytest.approx(2.0)


def test_aemo_centralised_dispatches_like_single_but_the_tso_instructs_dso_relief_and_holds_der_links():
    """Figure 8 vs ENTSO-E's marketplace (3.3): one optimisation in both; in Total TSO the TSO
    instructs everything itself, DSO-bought relief included, and links to the DER."""
    b = make_batch(
        [bid("a", 10, 4, node="n1"), bid("b", 12, 4, node="n2")], [tso_need("T", 3), dso_need("X", "a-n1", 1)]
    )
    central, single = clear(b, "aemo-centralised").metrics, clear(b, "single").metrics
    assert central["bid_cost_eur"] == pytest.approx(single["bid_cost_eur"])
    assert central["tier_bypassing_mw"] == pytest.approx(single["tier_bypassing_mw"] + 1.0)
    assert central["cyber_exposure_endpoints"] > single["cyber_exposure_endpoints"]


def test_uk_fw2_joint_procurement_relays_through_the_dso_where_the_marketplace_bypasses():
    """3.1: Future World 2's joint procurement and dispatch may prevent tier bypassing;
    ENTSO-E's marketplace dispatches aggregators directly (3.3)."""
    b = make_batch([bid("a", 10, 4, node="n1")], [tso_need("T", 3), dso_need("X", "a-n1", 1)])
    fw2, single = clear(b, "uk-fw2-joint").metrics, clear(b, "single").metrics
    assert fw2["bid_cost_eur"] == pytest.approx(single["bid_cost_eur"])
    assert fw2["tier_bypassing_mw"] == 0 and single["tier_bypassing_mw"] == pytest.approx(2.0)
    assert fw2["observability_min"] == 1.0 and single["observability_min"] < 1.0


def test_uk_fw2_lets_the_dso_market_decide_first_so_it_dispatches_unlike_the_marketplace():
    """3.1: Future World 2 "leans toward a Total DSO model" but "partially degrades the layered
    decomposition structure": the DSO's local market clears first under its own limits, then
    the TSO's needs are procured jointly. The marketplace (3.3) decides both at once."""
    bids = [bid("a", 10, 1, node="n1"), bid("b", 12, 1, node="n2"), bid("c", 30, 1, node="n3")]
    areas = [area("A", "n1"), area("A", "n2"), area("B", "n3")]
    line = [constraint("line", base=0.0, max_mw=0.0, owner="tso")]  # no room for more at n1
    sens = [{"constraint_id": "line", "node_id": "n1", "factor": 1.0}]
    b = make_batch(bids, [tso_need("T", 2), dso_need("X", "A", 1)], areas=areas, constraints=line, sens=sens)
    fw2, single = clear(b, "uk-fw2-joint"), clear(b, "single")
    # the marketplace sees the line: the DSO's relief from n2, the TSO's from n3
    assert award_mw(single, "b", "dso1") == 1.0 and award_mw(single, "c", "tso") == 1.0
    assert single.metrics["transmission_violation_mwh"] == 0
    # the DSO's local market cannot see the TSO's line: it buys at n1, the joint step then n2
    assert award_mw(fw2, "a", "dso1") == 1.0 and award_mw(fw2, "b", "tso") == 1.0
    assert fw2.metrics["transmission_violation_mwh"] == pytest.approx(1.0)
    assert fw2.metrics["tier_bypassing_mwh"] == 0 and single.metrics["tier_bypassing_mwh"] == pytest.approx(1.0)
    assert [s.step for s in fw2.stats] == ["dso-local", "joint-procurement"]


def test_neither_todays_dso_nor_alternative_1s_sees_the_tsos_activations():
    """3.4: today "there are no coordination links between the CAISO (TSO) and the DSO";
    3.5: Alternative 1 "is a minor evolution from the present structure" in which "neither
    entity will have a sufficiently accurate picture". Both DSOs buy 1 MW under a feeder
    the TSO just loaded; Alternative 1's markets clear side by side (one stage, not two).
    The joint marketplace (3.3) sees both."""
    bids = [
        bid("tso-cheap", 5, 1, node="n1", der="D1", services="tso_balancing"),
        bid("local", 20, 1, node="n1", der="D2", services="dso_congestion"),
    ]
    cons = [constraint("head", base=0.0, max_mw=1.5)]  # the DSO's feeder: 1.5 MW of room
    sens = [{"constraint_id": "head", "node_id": "n1", "factor": 1.0}]
    b = make_batch(bids, [tso_need("T", 1), dso_need("X", "a-n1", 1)], constraints=cons, sens=sens)
    alt1, today, single = (clear(b, d).metrics for d in ("nyiso-alt1", "tso-only", "single"))
    for m in (alt1, today):  # both bought 1 MW at n1 without seeing the other: 2 MW on 1.5
        assert m["distribution_violation_mwh"] == pytest.approx(0.5)
        assert m["hidden_coupling_blind_violation_mwh"] > 0
    assert single["distribution_violation_mwh"] == 0
    assert alt1["latency_stages"] == 1 and today["latency_stages"] == 2


def test_a_bid_two_blind_markets_both_sold_is_delivered_once_and_counted():
    """The TSO's market and today's DSO (blind to it, 3.4) both buy the one cheap bid: the
    DER delivers its 1 MW once; the MW sold twice are counted, not dropped silently."""
    b = make_batch(
        [bid("x", 5, 1, node="n1"), bid("y", 40, 1, node="n2")], [tso_need("T", 1), dso_need("X", "a-n1", 1)]
    )
    today = clear(b, "tso-only")
    assert today.metrics["hidden_coupling_sold_twice_mwh"] == pytest.approx(1.0)
    assert today.awards.groupby("bid_id")["quantity_mw"].sum()["x"] == pytest.approx(1.0)
    assert clear(b, "single").metrics["hidden_coupling_sold_twice_mwh"] == 0


def test_nyiso_alt1_admits_aggregations_of_100_kw_behind_one_td_interface():
    """3.5: NYISO plans "to require these aggregations to be entirely within a single TDC
    interface or pricing node", of at least 100 kW: 3 x 50 kW at three nodes behind one
    interface are one 150 kW aggregation; 3 x 50 kW behind three interfaces are not."""
    one = [bid(f"s{i}", 10, 0.05, node=f"n{i}", agg="small") for i in range(3)]
    three = [bid(f"t{i}", 10, 0.05, node=f"m{i}", dso=f"dso{i + 2}", agg="spread") for i in range(3)]
    big = [bid("big1", 30, 0.06, node="m", agg="big"), bid("big2", 30, 0.06, node="m", agg="big")]
    b = make_batch(one + three + big, [tso_need("T", 0.4)])
    alt1 = clear(b, "nyiso-alt1")
    assert set(alt1.awards["bid_id"]) == {"s0", "s1", "s2", "big1", "big2"}
    assert set(clear(b, "tso-only").awards["bid_id"]) >= {"s0", "s1", "s2", "t0", "t1", "t2"}


def test_nyiso_alt2_keeps_large_der_direct_where_dso_led_does_not():
    """3.5, Alternative 2 / DSP 2.x: the few large DER stay directly on the NYISO: some tier
    bypassing and cyber exposure remain at the TSO; Total DSO has neither."""
    b = make_batch([bid("big", 10, 2.0, node="n1"), bid("small", 12, 0.5, node="n2")], [tso_need("T", 2.3)])
    alt2, led = clear(b, "nyiso-alt2").metrics, clear(b, "dso-led").metrics
    assert alt2["tier_bypassing_mw"] == pytest.approx(2.0) and led["tier_bypassing_mw"] == 0
    assert alt2["cyber_exposure_endpoints"] >= 1 and led["cyber_exposure_endpoints"] == 0
    assert alt2["observability_min"] < 1.0 and led["observability_min"] == 1.0


def test_california_today_multi_node_aggregation_is_optional_and_cannot_see_where_its_mw_land():
    """3.4: the CAISO DER aggregation model "allows an aggregation to include multiple TDC
    interface nodes", but "thus far no aggregators have opted to use this model and instead
    use the demand response model": an aggregator that opts in (direct wholesale access) is
    seen as one total and a transmission limit at one node breaks; the same DER in the
    demand-response model are seen per DER, as by today's TSO (no break)."""
    bids = [bid("at-n1", 10, 4, node="n1", agg="A"), bid("at-n2", 12, 4, node="n2", agg="A")]
    cons = [constraint("line", base=0.0, max_mw=2.0, owner="tso")]
    sens = [{"constraint_id": "line", "node_id": "n1", "factor": 1.0}]
    opted = make_batch(bids, [tso_need("T", 3)], constraints=cons, sens=sens, routes={"A": "tso-direct"})
    programme = make_batch(bids, [tso_need("T", 3)], constraints=cons, sens=sens)
    assert clear(opted, "california-today").metrics["transmission_violation_mwh"] == pytest.approx(1.0)
    assert clear(programme, "california-today").metrics["transmission_violation_mwh"] == 0
    assert clear(opted, "tso-only").metrics["transmission_violation_mwh"] == 0


def test_a_multi_node_aggregation_stays_within_one_utilitys_network():
    """CAISO keeps an aggregation within one sub-LAP: an aggregator's DER under two DSOs are
    two aggregations, each at its own default distribution."""
    bids = [bid("d1", 10, 4, node="n1", agg="A", dso="dso1"), bid("d2", 12, 4, node="n2", agg="A", dso="dso2")]
    cons = [constraint("line", base=0.0, max_mw=2.0, owner="tso")]
    sens = [{"constraint_id": "line", "node_id": "n1", "factor": 1.0}]
    b = make_batch(bids, [tso_need("T", 3)], constraints=cons, sens=sens, routes={"A": "tso-direct"})
    r = clear(b, "california-today")
    assert r.metrics["transmission_violation_mwh"] == 0  # dso1's aggregation is seen at n1's factor
    assert award_mw(r, "d1") == pytest.approx(2.0) and award_mw(r, "d2") == pytest.approx(1.0)


def test_california_future_routes_direct_aggregators_past_the_dso():
    """3.4, Figure 15: aggregators that insist on direct wholesale access keep it: the DSO
    neither checks nor sees them, so its feeder can break; via-DSO aggregators cannot."""
    b0 = feeder_case()
    direct = make_batch(
        [
            bid("under", 5, 4, node="n1", direction="down", agg="wholesale"),
            bid("elsewhere", 30, 4, node="n2", direction="down"),
        ],
        [tso_need("N", 3, "down")],
        constraints=[constraint("head", base=1.0, max_mw=2.0)],
        sens=[{"constraint_id": "head", "node_id": "n1", "factor": -1.0}],
        routes={"wholesale": "tso-direct"},
    )
    via = clear(b0, "california-future").metrics
    routed = clear(direct, "california-future")
    assert via["distribution_violation_mwh"] == 0 and via["tier_bypassing_mw"] == 0
    assert routed.metrics["distribution_violation_mwh"] == pytest.approx(2.0)
    assert routed.metrics["tier_bypassing_mw"] == pytest.approx(3.0)
    assert routed.awards["direct"].all()


def test_via_dso_aggregators_never_reach_todays_tso_market():
    """Routes: a via-DSO aggregator offers only through the DSO; today's TSO cannot buy it."""
    b = make_batch(
        [bid("v", 5, 4, node="n1", agg="v"), bid("d", 30, 4, node="n2", agg="d")],
        [tso_need("T", 2)],
        routes={"v": "via-dso"},
    )
    assert set(clear(b, "tso-only").awards["bid_id"]) == {"d"}
    assert set(clear(b, "dso-led").awards["bid_id"]) == {"v"}


def test_total_dso_sends_a_tso_direct_aggregator_through_the_dso_and_says_so():
    """3.1: in Future World 1 "DER coordination flows entirely through the DSO to the TSO";
    California's future structure (3.4) keeps direct wholesale access for those who want it."""
    b = make_batch(
        [bid("spot", 5, 2, node="n1", agg="spot"), bid("grid", 30, 2, node="n2", agg="grid")],
        [tso_need("T", 1)],
        routes={"spot": "tso-direct", "grid": "via-dso"},
    )
    led, future = clear(b, "dso-led"), clear(b, "california-future")
    assert award_mw(led, "spot") == 1.0 and not led.awards["direct"].any()
    assert set(led.awards["path"]) == {"tso>dso>aggregator>der"}
    assert led.metrics["routes_overridden_bids"] == {"spot": 1}
    assert led.metrics["tier_bypassing_mwh"] == 0
    assert award_mw(future, "spot") == 1.0 and future.awards["direct"].all()
    assert "routes_overridden_bids" not in future.metrics
    assert future.metrics["tier_bypassing_mwh"] == pytest.approx(1.0)


@pytest.mark.parametrize("platform", ["aemo-centralised", "japan-tdso-coordinator"])
def test_a_platform_that_sees_everything_reaches_via_dso_aggregators_that_todays_tso_cannot(platform):
    """3.2 (Figure 8: AEMO optimises all DER dispatch) and 3.6 (one TDSO, transmission and
    distribution not separated): their market reaches every aggregator; today's TSO market
    reaches no aggregator that offers only through the DSO."""
    b = make_batch(
        [bid("v", 5, 4, node="n1", agg="v"), bid("d", 30, 4, node="n2", agg="d")],
        [tso_need("T", 2)],
        routes={"v": "via-dso"},
    )
    assert set(clear(b, platform).awards["bid_id"]) == {"v"}
    assert set(clear(b, "tso-only").awards["bid_id"]) == {"d"}
    assert clear(b, platform).metrics["routes_overridden_bids"] == {"v": 1}  # d: both already


def test_aemo_three_way_runs_one_idso_market_across_networks_with_one_more_tier():
    """3.2, Figure 10: one independent DSO market across the distribution networks (one model,
    not one per DSO), and one more tier on the TSO's instructions than Total DSO."""
    bids = [bid("a", 10, 2, node="n1", dso="dso1"), bid("b", 10, 2, node="n2", dso="dso2")]
    needs = [tso_need("T", 3), dso_need("X1", "a-n1", 1, dso="dso1"), dso_need("X2", "a-n2", 1, dso="dso2")]
    b = make_batch(bids, needs)
    idso, led = clear(b, "aemo-three-way-idso"), clear(b, "dso-led")
    assert [s.part for s in idso.stats if s.step == "idso-market"] == ["all"]
    assert sorted(s.part for s in led.stats if s.step == "dso-local") == ["dso1", "dso2"]
    assert idso.metrics["latency_path_tiers_max"] == led.metrics["latency_path_tiers_max"] + 1


def test_japan_tdso_procures_no_distribution_services_and_adds_the_coordinator_tier():
    """3.6: local distribution services are not contemplated; instructions pass an
    aggregator coordinator. The centralised Total TSO (Figure 8) buys the DSO's relief."""
    bids = [bid("a", 10, 4, node="n1"), bid("c", 5, 4, node="n2")]
    b = make_batch(bids, [tso_need("T", 1), dso_need("X", "a-n1", 1)])
    japan, central = clear(b, "japan-tdso-coordinator").metrics, clear(b, "aemo-centralised").metrics
    assert japan["unmet_by_buyer_mwh"]["dso1"] == pytest.approx(1.0)
    assert central["unmet_by_buyer_mwh"]["dso1"] == pytest.approx(0.0)
    assert japan["latency_path_tiers_max"] == 4 and central["latency_path_tiers_max"] == 3


def test_japans_tdso_neither_bypasses_itself_nor_is_blind_and_its_coordinator_is_one_endpoint():
    """3.6: the future structure "is reasonably well structured from a layering standpoint
    because transmission and distribution operations are not separated"; the aggregator
    coordinator is one interface. The centralised Total TSO (3.2, Figure 8) instructs DER in
    the DSO's network past a separate DSO."""
    bids = [bid("a", 10, 2, node="n1", agg="A"), bid("b", 11, 2, node="n2", agg="B"), bid("c", 12, 2, agg="C")]
    b = make_batch(bids, [tso_need("T", 5)])
    japan, central = clear(b, "japan-tdso-coordinator").metrics, clear(b, "aemo-centralised").metrics
    assert japan["bid_cost_eur"] == central["bid_cost_eur"]  # the same MW bought
    assert japan["tier_bypassing_mwh"] == 0 and central["tier_bypassing_mwh"] == pytest.approx(5.0)
    assert japan["observability_min"] == 1.0 and central["observability_min"] == 0.0
    # three aggregators behind one coordinator: one control endpoint at the TDSO
    assert japan["cyber_exposure_control_endpoints"] == 1
    assert central["cyber_exposure_control_endpoints"] == 3


def test_california_future_offers_interface_curves_where_todays_caiso_sees_every_der():
    """3.4, Figure 15: "Overall scalability is good due to the near Total DSO structure, which
    is well layered": the CAISO clears the DSOs' interface offers (plus the direct route),
    not every DER bid as in today's structure (3.4, Figure 13)."""
    b = synth_batch(SynthSpec(bids=2000, intervals=4, dsos=4, seed=2))
    future, today = clear(b, "california-future").metrics, clear(b, "california-today").metrics
    assert future["scalability_tso_variables"] * 4 <= today["scalability_tso_variables"]
    assert future["tier_bypassing_mwh"] < today["tier_bypassing_mwh"]


def test_eu_dso_committee_amber_protects_the_local_relief_and_data_access_skips_the_dso():
    """3.3: in amber "distribution system operators can call upon the flexibility offered by
    DER aggregators in that local distribution area to prevent a red phase situation", the
    DSOs "Prioritize distribution system reliability needs in the event that a TSO dispatch
    of DER conflicts with such needs", and the data access concepts 1 and 3 are "additional
    options for data flows to the TSO that imply a degree of tier bypassing". Today's model
    has "only a green phase ... that can, in extreme situations, suddenly become red"."""
    bids = [
        bid("local", 20, 1, node="n1", direction="down"),
        bid("cheap", 5, 3, node="n1"),
        bid("far", 30, 3, node="n2"),
    ]
    feeder = [constraint("head", base=0.8, max_mw=1.0)]  # 80 % loaded: a potential bottleneck
    sens = [{"constraint_id": "head", "node_id": "n1", "factor": 1.0}]
    b = make_batch(bids, [tso_need("T", 2), dso_need("X", "a-n1", 0.5, "down")], constraints=feeder, sens=sens)
    eu, today = clear(b, "eu-dso-traffic-light"), clear(b, "tso-only")
    # the DSO's local relief first; the TSO's market then buys nothing that undoes it
    assert award_mw(eu, "local", "dso1") == 0.5 and award_mw(eu, "cheap") == 0.0
    assert eu.metrics["unmet_by_buyer_mwh"]["dso1"] == 0 and eu.metrics["distribution_violation_mwh"] == 0
    # today: the TSO, seeing no amber, buys at n1, overloads the feeder and undoes the relief
    assert today.metrics["distribution_violation_mwh"] == pytest.approx(1.3)
    assert today.metrics["unmet_by_buyer_mwh"]["dso1"] == pytest.approx(0.5)
    # no instruction skips the DSO, but the data access concepts do: information links apart
    assert eu.metrics["tier_bypassing_mwh"] == 0 and eu.metrics["tier_bypassing_information_links"] == 3
    assert today.metrics["tier_bypassing_information_links"] == 0


def test_eu_dsos_offer_their_flexibility_up_to_the_tso_within_their_limits():
    """3.3: the DSO Committee's DSOs "Offer flexibility and aggregated DER services up to
    TSOs", and "the DSO is instructing the aggregator": a via-DSO aggregator reaches the
    TSO's market through its DSO, capped at what the feeder allows; today's TSO market
    cannot reach it; a tso-direct aggregator is instructed through the DSO too."""
    b = make_batch(
        [bid("v", 5, 4, node="n1", agg="v"), bid("d", 30, 4, node="n2", agg="d")],
        [tso_need("T", 3)],
        constraints=[constraint("head", base=0.0, max_mw=2.0)],
        sens=[{"constraint_id": "head", "node_id": "n1", "factor": 1.0}],
        routes={"v": "via-dso", "d": "tso-direct"},
    )
    eu, today = clear(b, "eu-dso-traffic-light"), clear(b, "tso-only")
    assert award_mw(eu, "v") == pytest.approx(2.0) and award_mw(eu, "d") == pytest.approx(1.0)
    assert eu.metrics["distribution_violation_mwh"] == 0 and eu.metrics["tier_bypassing_mwh"] == 0
    assert set(eu.awards["path"]) == {"tso>dso>aggregator>der"}
    assert award_mw(today, "v") == 0.0 and award_mw(today, "d") == pytest.approx(3.0)


def test_nyiso_alt2_links_only_its_direct_der_to_the_tso_where_alt1_links_every_der():
    """3.5: in Alternative 2 "the few direct interfaces between DER and the NYISO would involve
    distribution connected bulk power system resources"; Alternative 1's "direct connection
    of DER to the TSO" makes its cyber vulnerability "high". Data links are read-only,
    counted apart from dispatch links."""
    bids = [bid("big", 10, 2.0, node="n1", agg="A")] + [bid(f"s{i}", 12 + i, 0.3, node="n2", agg="A") for i in range(4)]
    b = make_batch(bids, [tso_need("T", 3.0)])
    alt2, alt1 = clear(b, "nyiso-alt2").metrics, clear(b, "nyiso-alt1").metrics
    assert alt2["cyber_exposure_control_endpoints"] == 1  # the big DER, dispatched directly
    assert alt2["cyber_exposure_read_only_endpoints"] == 0  # its data link is the same endpoint
    assert alt1["cyber_exposure_control_endpoints"] == 1  # the aggregator
    assert alt1["cyber_exposure_read_only_endpoints"] == 5  # every activated DER's data link
    assert alt2["cyber_exposure_endpoints"] < alt1["cyber_exposure_endpoints"]
    # registered, dispatched today or not: Alternative 2's small DER offer through the DSO
    assert alt2["cyber_exposure_registered_endpoints"] == 1
    assert alt1["cyber_exposure_registered_endpoints"] == 6  # the aggregator and five DER links
    assert alt1["cyber_exposure_registered_read_only_endpoints"] == 5


# --- no two presets are one design under two names ---


@pytest.fixture(scope="module")
def sample_runs():  # type: ignore[no-untyped-def]
    b = load_batch(SAMPLE)
    return {name: clear(b, name) for name in preset_names()}


def test_every_preset_differs_from_every_other_in_dispatch_or_a_measured_risk(sample_runs):
    def dispatch(r):  # type: ignore[no-untyped-def]
        a = r.awards.groupby(["bid_id", "buyer_id"])["quantity_mw"].sum().round(6)
        return a[a > 0]

    same = []
    for a, b in itertools.combinations(sorted(sample_runs), 2):
        ra, rb = sample_runs[a], sample_runs[b]
        keys = (ra.metrics.keys() | rb.metrics.keys()) - {"scalability_models"}
        risks = [k for k in keys if ra.metrics.get(k) != rb.metrics.get(k)]
        if dispatch(ra).equals(dispatch(rb)) and not risks:
            same.append((a, b))
    assert same == []


def test_no_two_presets_give_the_same_dispatch_on_the_contested_day():
    """The demo's day (``data/contested-forecast``: operators decide at their gates on
    forecasts). Without forecasts (``data/contested``) the iDSO's market and Total DSO's
    per-DSO markets coincide: the report (3.2, Figure 10) separates them by who runs the
    market and one more tier, which the metrics measure, not by what is bought."""
    b = load_batch(SAMPLE.parent / "contested-forecast")
    runs = {name: clear(b, name) for name in preset_names()}

    def dispatch(name: str) -> dict[tuple[str, str], float]:
        a = runs[name].awards.groupby(["bid_id", "buyer_id"])["quantity_mw"].sum().round(4)
        return a[a > 0].to_dict()

    same = [(x, y) for x, y in itertools.combinations(sorted(runs), 2) if dispatch(x) == dispatch(y)]
    assert same == []


def test_sweep_over_interface_steps_reports_the_price_of_decomposition(tmp_path):
    grid_file = tmp_path / "sweep.toml"
    grid_file.write_text("[grid]\ninterface_steps = [1, 20]\n")
    grid = load_grid(grid_file)
    b = synth_batch(SynthSpec(bids=60, intervals=2, dsos=2, seed=3))
    res = run_sweep(b, ["single", "dso-led"], grid)
    cost = res[res["metric"] == "system_cost_eur"].set_index(["interface_steps", "design"])["value"]
    assert cost[(1.0, "single")] == cost[(20.0, "single")]  # no interface step to vary
    assert cost[(1.0, "dso-led")] >= cost[(20.0, "dso-led")] - 1e-6 >= cost[(20.0, "single")] - 2e-6
    grid_file.write_text("[grid]\ninterface_steps = [2.5]\n")
    with pytest.raises(FlexmarketError, match="whole numbers"):
        load_grid(grid_file)


def test_fragmentation_counts_the_markets_an_aggregator_trades_in():
    """ENTSO-E (3.3): one marketplace avoids fragmenting an aggregator's offers over the
    DSOs' markets; in a layered design an aggregator spanning two DSOs trades in both."""
    bids = [bid("a", 10, 2, node="n1", dso="dso1", agg="A"), bid("b", 11, 2, node="n2", dso="dso2", agg="A")]
    b = make_batch(bids, [tso_need("T", 3)])
    assert clear(b, "single").metrics["fragmentation_markets_per_aggregator"] == 1.0
    assert clear(b, "dso-led").metrics["fragmentation_markets_per_aggregator"] == 2.0
    assert clear(b, "aemo-three-way-idso").metrics["fragmentation_markets_per_aggregator"] == 1.0
