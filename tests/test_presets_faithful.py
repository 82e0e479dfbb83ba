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
from market.testing import award_mw, bid, constraint, dso_need, feeder_case, make_batch, tso_need

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


def test_nyiso_alt1_separate_processes_hide_each_others_activations():
    """3.5, Alternative 1: TSO and DSO clear at the same time, each blind to the other
    ("neither entity will have a sufficiently accurate picture"); the TSO-first model of
    today at least lets the DSO see the TSO's flows before it clears."""
    bids = [
        bid("tso-cheap", 5, 1, node="n1", der="D1", services="tso_balancing"),
        bid("local", 20, 1, node="n1", der="D2", services="dso_congestion"),
    ]
    cons = [constraint("head", base=0.0, max_mw=1.5)]  # the DSO's feeder: 1.5 MW of room
    sens = [{"constraint_id": "head", "node_id": "n1", "factor": 1.0}]
    b = make_batch(bids, [tso_need("T", 1), dso_need("X", "a-n1", 1)], constraints=cons, sens=sens)
    alt1, today = clear(b, "nyiso-alt1").metrics, clear(b, "tso-only").metrics
    # both bought 1 MW at n1 without seeing the other: the feeder carries 2 MW
    assert alt1["distribution_violation_mwh"] == pytest.approx(0.5)
    assert alt1["hidden_coupling_blind_violation_mwh"] > 0
    # today the DSO saw the TSO's 1 MW on its feeder and bought only what fits
    assert today["distribution_violation_mwh"] == 0
    assert alt1["latency_stages"] == 1 and today["latency_stages"] == 2


def test_nyiso_alt1_admits_only_single_node_aggregations_of_100_kw():
    """3.5: NYISO aggregations of at least 100 kW within one node (CAISO allows multi-node)."""
    bids = [bid(f"s{i}", 10, 0.05, node=f"n{i}", agg="small") for i in range(3)]
    bids += [bid("big1", 30, 0.06, node="m", agg="big"), bid("big2", 30, 0.06, node="m", agg="big")]
    b = make_batch(bids, [tso_need("T", 0.3)])
    alt1 = clear(b, "nyiso-alt1")
    assert set(alt1.awards["bid_id"]) == {"big1", "big2"}  # 3 x 50 kW at three nodes: not admitted
    assert set(clear(b, "tso-only").awards["bid_id"]) >= {"s0", "s1", "s2"}


def test_nyiso_alt2_keeps_large_der_direct_where_dso_led_does_not():
    """3.5, Alternative 2 / DSP 2.x: the few large DER stay directly on the NYISO: some tier
    bypassing and cyber exposure remain at the TSO; Total DSO has neither."""
    b = make_batch([bid("big", 10, 2.0, node="n1"), bid("small", 12, 0.5, node="n2")], [tso_need("T", 2.3)])
    alt2, led = clear(b, "nyiso-alt2").metrics, clear(b, "dso-led").metrics
    assert alt2["tier_bypassing_mw"] == pytest.approx(2.0) and led["tier_bypassing_mw"] == 0
    assert alt2["cyber_exposure_endpoints"] >= 1 and led["cyber_exposure_endpoints"] == 0
    assert alt2["observability_min"] < 1.0 and led["observability_min"] == 1.0


def test_california_today_multi_node_aggregation_cannot_see_where_its_mw_land():
    """3.4: CAISO aggregations may span several T-D nodes; the TSO sees the aggregate only,
    so a transmission limit at one node can break (today's TSO, per DER, keeps it)."""
    bids = [bid("at-n1", 10, 4, node="n1", agg="A"), bid("at-n2", 12, 4, node="n2", agg="A")]
    cons = [constraint("line", base=0.0, max_mw=2.0, owner="tso")]
    sens = [{"constraint_id": "line", "node_id": "n1", "factor": 1.0}]
    b = make_batch(bids, [tso_need("T", 3)], constraints=cons, sens=sens)
    ca, today = clear(b, "california-today").metrics, clear(b, "tso-only").metrics
    assert ca["transmission_violation_mwh"] == pytest.approx(1.0)  # it saw 0.5 x 3 MW on the line
    assert today["transmission_violation_mwh"] == 0


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
        risks = [k for k in ra.metrics if k not in ("scalability_models",) and ra.metrics[k] != rb.metrics[k]]
        if dispatch(ra).equals(dispatch(rb)) and not risks:
            same.append((a, b))
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
