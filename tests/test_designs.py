"""Designs as data: presets, user files, and the coordination metrics on known cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from market import clear, load_batch
from market.cli.app import app
from market.design.spec import load_design, preset_names
from market.errors import DesignError
from market.testing import bid, dso_need, feeder_case, make_batch, signal, tso_need

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
REPORT_MODELS = {
    "tso-only",
    "aemo-centralised",
    "dso-led",
    "uk-fw2-joint",
    "single",
    "eu-dso-traffic-light",
    "nyiso-alt1",
    "nyiso-alt2",
    "california-today",
    "california-future",
    "aemo-three-way-idso",
    "japan-tdso-coordinator",
}


def test_every_report_model_is_a_preset_with_its_section():
    assert set(preset_names()) >= REPORT_MODELS
    for name in preset_names():
        d = load_design(name)
        assert d.report_section, name
        assert d.steps


@pytest.fixture(scope="module")
def sample():  # type: ignore[no-untyped-def]
    return load_batch(SAMPLE)


@pytest.mark.parametrize("name", sorted(REPORT_MODELS))
def test_every_preset_clears_the_sample(sample, name):
    r = clear(sample, name, "pay-as-clear")
    assert r.ok
    assert len(r.awards) > 0
    per_bid = r.awards.groupby("bid_id")["quantity_mw"].sum()
    q = sample.bids.set_index("bid_id")["quantity_mw"]
    assert (per_bid <= q.reindex(per_bid.index) + 1e-6).all()


def test_tso_only_bypasses_and_violates_where_others_do_not():
    b = feeder_case()
    tso_only, single, dso_led = (clear(b, d) for d in ("tso-only", "single", "dso-led"))
    assert tso_only.metrics["distribution_violation_mwh"] == pytest.approx(2.0)
    assert tso_only.metrics["tier_bypassing_count"] == 1
    assert tso_only.metrics["tier_bypassing_mw"] == pytest.approx(3)
    assert tso_only.metrics["observability_min"] == 0.0
    assert single.metrics["distribution_violation_mwh"] == 0
    assert dso_led.metrics["distribution_violation_mwh"] == 0
    assert dso_led.metrics["tier_bypassing_count"] == 0
    assert dso_led.metrics["tier_bypassing_mw"] == 0


def test_two_buyers_on_one_der_in_one_joint_model_is_visible_not_hidden():
    # one DER, one bid: the DSO needs 1 MW of it, the TSO 2 MW more: two buyers, one DER
    b = make_batch(
        [bid("b", 10, 5, node="n1", der="D1"), bid("o", 50, 5, node="n2")], [tso_need("T", 3), dso_need("X", "a-n1", 1)]
    )
    r = clear(b, "single")
    assert r.metrics["shared_der_intervals"] == 1
    assert r.metrics["hidden_coupling_conflict_mw"] == 0
    assert r.metrics["hidden_coupling_undone_mwh"] == 0
    # without the DSO need, only the TSO buys: nothing shared
    b2 = make_batch([bid("b", 10, 5, node="n1", der="D1"), bid("o", 50, 5, node="n2")], [tso_need("T", 3)])
    assert clear(b2, "single").metrics["shared_der_intervals"] == 0


def test_opposite_direction_coupling_in_tso_only():
    """The TSO buys a DER's down bid; the DSO later buys the same DER's up bid."""
    bids = [
        bid("dn", 5, 2, node="n1", der="D1", direction="down"),
        bid("up", 20, 2, node="n1", der="D1", direction="up"),
    ]
    b = make_batch(bids, [tso_need("T", 2, "down"), dso_need("X", "a-n1", 1, "up")])
    r = clear(b, "tso-only")
    # the TSO (blind to the DSO need) takes 2 MW down; the DSO, after it, 1 MW up of the same DER
    assert r.metrics["hidden_coupling_conflict_mw"] == pytest.approx(1)
    assert r.metrics["hidden_coupling_undone_mwh"] == pytest.approx(1)  # its 1 MW up undone by the 2 MW down
    assert r.metrics["unmet_by_buyer_mwh"]["dso1"] == pytest.approx(1)  # the area still moved down
    assert r.metrics["imbalance_mwh"] == pytest.approx(1)  # the late DSO activation


@pytest.mark.parametrize("design", ["single", "aemo-centralised"])
def test_a_joint_design_never_instructs_one_der_up_and_down(design):
    """TSO needs 2 MW down, the DSO 1 MW up in a1; one DER offers 2 down at 5 and 2 up at 20.
    A DSO need is physical, so a joint optimiser cannot meet it on paper while the area
    moves down: it leaves the DSO need unmet instead (VoLL once, not an undone relief)."""
    bids = [
        bid("dn", 5, 2, node="n1", der="D1", direction="down"),
        bid("up", 20, 2, node="n1", der="D1", direction="up"),
    ]
    r = clear(make_batch(bids, [tso_need("T", 2, "down"), dso_need("X", "a-n1", 1, "up")]), design)
    directions = r.awards.groupby("der_id")["direction"].nunique()
    assert (directions == 1).all()
    assert r.metrics["hidden_coupling_conflict_mw"] == 0
    assert r.metrics["hidden_coupling_undone_mwh"] == 0
    assert r.metrics["unmet_by_buyer_mwh"]["dso1"] == pytest.approx(1)


def test_uk_fw2_joint_step_never_undoes_what_the_dso_market_bought_first():
    """The same DER as above under Future World 2: the DSO's local market buys its 1 MW up
    first; the joint procurement knows that need and does not buy the DER down against it,
    so the TSO's need is short instead (no conflict, no undone relief)."""
    bids = [
        bid("dn", 5, 2, node="n1", der="D1", direction="down"),
        bid("up", 20, 2, node="n1", der="D1", direction="up"),
    ]
    r = clear(make_batch(bids, [tso_need("T", 2, "down"), dso_need("X", "a-n1", 1, "up")]), "uk-fw2-joint")
    assert set(r.awards["bid_id"]) == {"up"}
    assert r.metrics["hidden_coupling_conflict_mw"] == 0
    assert r.metrics["hidden_coupling_undone_mwh"] == 0
    assert r.metrics["unmet_by_buyer_mwh"]["dso1"] == 0
    assert r.metrics["unmet_by_buyer_mwh"]["tso"] == pytest.approx(2)


def test_red_signal_respected_by_eu_traffic_light():
    b = make_batch(
        [bid("red", 5, 5, node="n1"), bid("ok", 50, 5, node="n2")], [tso_need("T", 2)], signals=[signal("a-n1", "red")]
    )
    r = clear(b, "eu-dso-traffic-light")
    assert r.awards.set_index("bid_id").loc["ok", "quantity_mw"] == pytest.approx(2)
    assert r.metrics["tier_bypassing_count"] == 0
    assert r.metrics["cyber_exposure_endpoints"] == 2  # data links from the activated aggregator and DER


def test_latency_and_cyber_follow_paths():
    b = make_batch([bid("a", 10, 5, node="n1")], [tso_need("T", 1)])
    idso = clear(b, "aemo-three-way-idso").metrics
    single = clear(b, "single").metrics
    assert idso["latency_path_tiers_max"] == 5 and single["latency_path_tiers_max"] == 3
    # hops tso, idso, dso, aggregator; decided in the second of two sequential stages of 60 s
    assert idso["latency_s_max"] == pytest.approx(4 + 1 + 2 + 1 + 2 * 60)
    assert single["latency_s_max"] == pytest.approx(4 + 1 + 60)
    assert idso["cyber_exposure_endpoints"] == 0  # only the iDSO talks to the TSO
    assert idso["cyber_exposure_dso_links"] == 1
    assert single["cyber_exposure_endpoints"] == 1  # one aggregator dispatched directly


def test_user_design_file_without_code(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("""
name = "tso-first-with-signals"
title = "TSO first, full traffic lights"
report_section = "user"
[[steps]]
name = "tso"
buyers = ["tso"]
signals = "full"
constraints = "none"
[[steps]]
name = "dsos"
buyers = ["dso"]
per_dso = true
constraints = "own"
signals = "none"
""")
    b = make_batch(
        [bid("red", 5, 5, node="n1"), bid("ok", 50, 5, node="n2")], [tso_need("T", 2)], signals=[signal("a-n1", "red")]
    )
    r = clear(b, str(path))
    assert r.design.name == "tso-first-with-signals"
    assert r.awards.set_index("bid_id").loc["ok", "quantity_mw"] == pytest.approx(2)


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ('name="x"\n', "at least one"),
        ('name="x"\n[[steps]]\nbuyers=["nobody"]\n', "buyers"),
        ('name="x"\n[[steps]]\nbuyers=["tso"]\nsignals="purple"\n', "signals"),
        ('name="x"\n[[steps]]\nbuyers=["tso"]\nfoo=1\n', "foo: unknown key"),
        ('name="x"\n[[steps]]\nbuyers=["tso"]\n[[steps]]\nbuyers=["tso"]\n', "more than one step"),
        ('name="x"\n[[steps]]\nbuyers=["tso"]\nmulti_node_route="both"\n', "multi_node_route applies"),
        ('name="x"\n[[steps]]\nbuyers=["tso"]\nview="aggregator"\nmulti_node_route="x"\n', "one of"),
        ('name="x"\n[[steps]]\nbuyers=["tso"]\nblind_to_earlier="yes"\n', "true or false"),
        ('name="x"\nroutes="anywhere"\n[[steps]]\nbuyers=["tso"]\n', "routes must be one of"),
        ('name="x"\ntso_dso_combined=1\n[[steps]]\nbuyers=["tso"]\n', "true or false"),
    ],
)
def test_bad_design_files_name_the_problem(tmp_path, text, msg):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DesignError, match=msg):
        load_design(path)


def test_designs_cli():
    runner = CliRunner()
    listing = runner.invoke(app, ["designs", "list"])
    assert listing.exit_code == 0
    for name in REPORT_MODELS:
        assert name in listing.output
    show = runner.invoke(app, ["designs", "show", "dso-led"])
    assert show.exit_code == 0
    assert "[        dso] --dispatch" in show.output or "dso" in show.output
    assert "--dispatch (tso-from-interface-offers)--> [dso]" in show.output
    assert "interface_steps" in show.output and "simultaneous" in show.output  # every step setting
    assert runner.invoke(app, ["designs", "show", "nope"]).exit_code == 2
    bracketed = runner.invoke(app, ["designs", "show", "[red]nope"])  # no rich markup in errors
    assert bracketed.exit_code == 2 and "'[red]nope'" in " ".join(bracketed.output.split())
