"""Each coordination risk pinned on a hand-computed case, measured from the physics after
the last step and the information flow, and the designs ordered as the report argues
(section 2.1 Table 1; 2.4 Total TSO vs Total DSO; 3.3 EU DSO Committee; 3.5 NYISO)."""

from __future__ import annotations

import pytest

from market import clear
from market.testing import bid, dso_need, feeder_case, make_batch, signal, tso_need

VOLL = 1000.0  # make_batch's VoLL


def test_a_tso_blind_to_a_feeder_overloads_it_and_is_not_cheaper():
    b = feeder_case()
    blind, single = clear(b, "tso-only").metrics, clear(b, "single").metrics
    # the TSO sees transmission only: 3 MW down under the feeder, flow 1 + 3 = 4 > 2
    assert blind["distribution_violation_mwh"] == pytest.approx(2.0)
    assert blind["hidden_coupling_blind_violation_mwh"] == pytest.approx(2.0)
    assert blind["bid_cost_eur"] == pytest.approx(15.0)
    assert blind["system_cost_eur"] == pytest.approx(15.0 + 2 * VOLL * 2.0)
    # the joint market sees the feeder: 1 MW under it, 2 MW elsewhere
    assert single["hidden_coupling_blind_violation_mwh"] == 0
    assert single["system_cost_eur"] == pytest.approx(5.0 + 60.0)
    assert single["welfare_eur"] > blind["welfare_eur"]
    assert single["bid_cost_eur"] > blind["bid_cost_eur"]  # cheaper on paper, dearer in fact


def test_an_amber_breach_is_measured_and_designs_that_respect_amber_have_none():
    bids = [bid("cheap", 5, 4, node="n1"), bid("dear", 30, 4, node="n2")]
    b = make_batch(bids, [tso_need("N", 3)], signals=[signal("a-n1", "amber", up=1.0, down=1.0)])
    breach = {d: clear(b, d).metrics["signal_breach_mw"] for d in ("tso-only", "single", "eu-dso-traffic-light")}
    assert breach == {"tso-only": pytest.approx(2.0), "single": 0.0, "eu-dso-traffic-light": 0.0}
    rows = clear(b, "tso-only").signal_breaches
    assert rows[["state", "direction", "tso_mw", "headroom_mw", "breach_mw"]].values.tolist() == [
        ["amber", "up", 3.0, 1.0, 2.0]
    ]


def test_separate_processes_conflict_where_a_joint_one_does_not():
    bids = [bid("dn", 5, 2, node="n1", der="D1", direction="down"), bid("up", 20, 2, node="n1", der="D1")]
    b = make_batch(bids, [tso_need("T", 2, "down"), dso_need("X", "a-n1", 1, "up")])
    seq = clear(b, "tso-only")
    assert seq.conflicts[["level", "id", "up_mw", "down_mw", "conflict_mw"]].values.tolist() == [
        ["der", "D1", 1.0, 2.0, 1.0]
    ]
    assert seq.conflicts["operators"].tolist() == ["dso1;tso"]
    delivery = seq.dso_delivery.set_index("need_id").loc["X"]
    assert (delivery["bought_mw"], delivery["area_net_mw"], delivery["undone_mw"]) == (1.0, -1.0, 1.0)
    joint = clear(b, "single")
    assert len(joint.conflicts) == 0 and joint.metrics["hidden_coupling_undone_mwh"] == 0


def test_layered_designs_expose_fewer_endpoints_than_tso_centric_ones():
    bids = [bid("a", 10, 5, node="n1", agg="agg1"), bid("b", 11, 5, node="n2", agg="agg2", der="D2")]
    b = make_batch(bids, [tso_need("T", 8)])
    cyber = {
        d: clear(b, d).metrics["cyber_exposure_endpoints"]
        for d in ("tso-only", "single", "dso-led", "aemo-three-way-idso")
    }
    assert cyber == {"tso-only": 2, "single": 2, "dso-led": 0, "aemo-three-way-idso": 0}
    assert clear(b, "dso-led").metrics["cyber_exposure_dso_links"] == 1


def test_observability_is_measured_from_who_knew_not_from_a_flag():
    b = make_batch([bid("a", 10, 4, node="n1")], [tso_need("T", 4), dso_need("X", "a-n1", 1)])
    platform, layered = clear(b, "single").metrics, clear(b, "dso-led").metrics
    # the marketplace: the DSO buys 1 MW of the DER, the TSO 3 MW straight from the aggregator
    assert platform["tier_bypassing_mw"] == pytest.approx(3.0)
    assert platform["observability_by_dso"] == {"dso1": pytest.approx(0.25)}
    assert layered["observability_by_dso"] == {"dso1": 1.0}  # it cleared 1 MW and disaggregated 3


def test_scalability_counts_the_tso_side_model():
    b = make_batch(
        [bid("a", 10, 4, node="n1"), bid("b", 12, 4, node="n2")], [tso_need("T", 4), dso_need("X", "a-n1", 1)]
    )
    single, dso_led = clear(b, "single"), clear(b, "dso-led")
    assert single.metrics["scalability_tso_variables"] == single.stats[0].n_variables  # the platform's model
    tso_step = [s for s in dso_led.stats if s.step == "tso-from-interface-offers" and not s.operator][0]
    assert dso_led.metrics["scalability_tso_variables"] == tso_step.n_variables
    assert dso_led.metrics["scalability_variables_by_operator"].keys() == {"dso", "tso"}


def test_with_its_own_computed_lights_the_eu_design_never_overloads_a_dso_feeder():
    """EU DSO Committee (report 3.3): the DSO computes its traffic light after its own step
    from the headroom left; the TSO, which sees no distribution limits, stays within it."""
    b = feeder_case()  # 1 MW of headroom under the feeder, 4 MW of cheap bids under it
    eu = clear(b, "eu-dso-traffic-light")
    assert eu.metrics["distribution_violation_mwh"] == 0
    assert eu.metrics["hidden_coupling_blind_violation_mwh"] == 0
    assert eu.awards.set_index("bid_id").loc["under", "quantity_mw"] == pytest.approx(1.0)  # the amber headroom
    blind = clear(b, "tso-only")  # the TSO-centric model with only red lights overloads it
    assert blind.metrics["distribution_violation_mwh"] == pytest.approx(2.0)


def test_computed_lights_follow_the_headroom_left():
    from market.clearing.prepare import computed_signals, prepare

    b = feeder_case()
    prep = prepare(b)
    net = prep.network.copy()
    bids = prep.bids.assign(cap_mw=prep.bids["quantity_mw"])
    lights = computed_signals(prep, net, b.node_areas, 0.2, bids)
    row = lights.set_index("area_id").loc["a-n1"]
    # factor -1 for up at n1: up unloads the feeder (room to min = 1 + 2), down loads it (room 2 - 1)
    assert (row["state"], row["headroom_up_mw"], row["headroom_down_mw"]) == ("amber", 3.0, 1.0)
    net["base_mw"] = 2.0  # the feeder full: no room down, room up 4
    full = computed_signals(prep, net, b.node_areas, 0.2, bids).set_index("area_id").loc["a-n1"]
    assert (full["state"], full["headroom_down_mw"]) == ("amber", 0.0)


def test_the_dso_override_undoes_what_breaks_its_limits_and_leaves_the_tso_short(tmp_path):  # type: ignore[no-untyped-def]
    """A TSO blind to the feeder takes 3 MW under it (2 MW too many); with the override the
    DSO undoes those 2 MW: no overload, and the TSO is left 2 MW short (imbalance)."""
    design = tmp_path / "override.toml"
    design.write_text(
        'name = "blind-tso-with-override"\n[[steps]]\nname = "tso"\nbuyers = ["tso"]\n'
        'constraints = "transmission"\nsignals = "none"\ndso_override = true\n'
    )
    r = clear(feeder_case(), str(design))
    assert r.awards.set_index("bid_id").loc["under", "quantity_mw"] == pytest.approx(1.0)
    assert r.metrics["distribution_violation_mwh"] == 0
    assert r.metrics["imbalance_mwh"] == pytest.approx(2.0)
    without = tmp_path / "plain.toml"
    without.write_text(design.read_text().replace("dso_override = true\n", "").replace("with-override", "plain"))
    assert clear(feeder_case(), str(without)).metrics["distribution_violation_mwh"] == pytest.approx(2.0)


def test_cyber_exposure_counts_every_registered_endpoint_not_only_those_dispatched_today():
    """An attacker reaches what is linked, not what happened to be dispatched: two
    aggregators offer on the TSO's market, one is dispatched; a via-DSO one is not linked."""
    b = make_batch(
        [bid("a", 10, 4, node="n1", agg="A"), bid("b", 50, 4, node="n2", agg="B"), bid("c", 5, 4, node="n2", agg="C")],
        [tso_need("T", 2)],
        routes={"C": "via-dso"},
    )
    m = clear(b, "tso-only").metrics
    assert m["cyber_exposure_control_endpoints"] == 1  # A, dispatched
    assert m["cyber_exposure_registered_endpoints"] == 2  # A and B, linked; C offers via its DSO
    assert clear(b, "dso-led").metrics["cyber_exposure_registered_endpoints"] == 0
