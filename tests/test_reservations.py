"""Two-part products: reservation at an early gate, activation of reserved capacity first,
who may use a reservation, and the availability metrics; each case computed by hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from market import load_batch
from market.clearing.run import clear
from market.design.spec import Design, load_design, parse_design
from market.errors import DesignError
from market.testing import area, bid, dso_need, make_batch, ts, tso_need

D1_08 = pd.Timestamp("2026-01-04T08:00Z")  # the day before the test batches' delivery day, 08:00


def forecast(quantity: str, key: str, value: float, t: int = 0) -> dict[str, object]:
    return {"quantity": quantity, "key": key, "interval_start": ts(t), "issued_at": D1_08, "value": value}


def tso_reserves_then_activates(**design: object) -> Design:
    steps = [
        {"name": "tso-reserve", "buyers": ["tso"], "reserve": True, "gate": "D-1 10:00"},
        {"name": "tso-activate", "buyers": ["tso"], "gate": "H-1"},
    ]
    return parse_design({"name": "reserve-then-activate", "steps": steps, **design}, "test")


def short_reservation_batch():  # type: ignore[no-untyped-def]
    """The TSO forecasts 10 MW up at D-1 08:00; A (two-part: 50 EUR/MWh + 5 EUR/MW/h) is
    forecast to have 10 MW but has 6 at delivery; B (energy only) 20 MW at 80 EUR/MWh."""
    return make_batch(
        bids=[bid("A", 50.0, 6.0, availability=5.0), bid("B", 80.0, 20.0)],
        needs=[tso_need("t1", 10.0)],
        forecasts=[forecast("need", "t1", 10.0), forecast("der_available", "A", 10.0)],
    )


@pytest.mark.parametrize("pricing", ["pay-as-bid", "pay-as-clear"])
def test_reserved_short_then_the_rest_from_unreserved_bids(pricing: str) -> None:
    """D-1 10:00: 10 MW of A reserved (10 x 1 h x 5 = 50 EUR). H-1: A has 6 MW, called at its
    utilisation price 50 (300 EUR, whatever the pricing); the other 4 MW from B at 80
    (320 EUR; B is also the marginal offer). The TSO pays 670 EUR; 4 MWh reserved unused."""
    result = clear(short_reservation_batch(), tso_reserves_then_activates(), pricing)
    aw = result.awards.set_index("bid_id")
    assert aw.loc["A", "quantity_mw"] == 6.0 and aw.loc["A", "price_eur_mwh"] == 50.0
    assert aw.loc["A", "reservation_id"] == "tso-reserve/A" and aw.loc["A", "cost_eur"] == 300.0
    assert aw.loc["B", "quantity_mw"] == 4.0 and aw.loc["B", "price_eur_mwh"] == 80.0
    assert pd.isna(aw.loc["B", "reservation_id"])
    (res,) = result.reservations.itertuples()
    assert (res.reserved_mw, res.activated_mw, res.availability_cost_eur) == (10.0, 6.0, 50.0)
    m = result.metrics
    assert m["availability_cost_eur"] == 50.0 and m["reserved_mwh"] == 10.0 and m["reserved_unused_mwh"] == 4.0
    assert m["cost_by_buyer_eur"] == {"tso": 670.0} and m["system_cost_eur"] == 670.0
    assert m["unmet_mwh"] == 0.0
    # with perfect information the TSO would have reserved the 6 MW A had: 20 EUR less
    assert m["cost_of_information_eur"] == 20.0
    written = result.tables()["awards"]
    avail = written[written["product"] == "availability"]
    assert avail[["bid_id", "quantity_mw", "cost_eur", "energy_mwh"]].to_numpy().tolist() == [["A", 10.0, 50.0, 0.0]]
    assert list(avail["reservation_id"]) == ["tso-reserve/A"]
    assert written.loc[written["product"] == "energy", "availability_price_eur_mw_h"].isna().all()


def test_reserved_capacity_is_activated_first_even_when_dearer() -> None:
    """Reserved capacity is activated before cheaper unreserved capacity: A (reserved, 50)
    before C (not two-part, 30), as a reservation obliges the buyer to call it first."""
    batch = make_batch(
        bids=[bid("A", 50.0, 5.0, availability=1.0), bid("C", 30.0, 5.0)],
        needs=[tso_need("t1", 4.0)],
        forecasts=[forecast("need", "t1", 4.0)],
    )
    aw = clear(batch, tso_reserves_then_activates(), "pay-as-bid").awards.set_index("bid_id")
    assert aw["quantity_mw"].to_dict() == {"A": 4.0}


def contested_der_batch(tso_actual: float = 5.0):  # type: ignore[no-untyped-def]
    """One DER A (two-part: 40 EUR/MWh + 2 EUR/MW/h, 5 MW up) is the only flexibility in the
    DSO's area a1 (need 4 MW up); B (energy only, 90 EUR/MWh) sits in area a2. The TSO
    forecast 5 MW up at D-1 08:00; its actual need is ``tso_actual``."""
    return make_batch(
        bids=[bid("A", 40.0, 5.0, node="n1", availability=2.0), bid("B", 90.0, 10.0, node="n2")],
        needs=[tso_need("t1", tso_actual), dso_need("d1", "a1", 4.0)],
        areas=[area("a1", "n1"), area("a2", "n2")],
        forecasts=[forecast("need", "t1", 5.0)],
    )


def test_a_tso_reservation_leaves_the_dso_need_unmet_at_the_same_der() -> None:
    """TSO first: it reserves all 5 MW of A (10 EUR) for its forecast; its actual need is 1 MW,
    so it calls 1 MW and leaves 4 MW idle, but held. The DSO's H-1 market finds nothing in
    a1: its 4 MW need is unmet, all of it at capacity the TSO reserved. The TSO's 1 MW up in
    a1 relieves 1 MW physically; 3 MW of relief are short."""
    result = clear(contested_der_batch(tso_actual=1.0), "reserve-tso-first", "pay-as-bid")
    m = result.metrics
    assert result.reservations[["buyer_id", "reserved_mw", "activated_mw"]].to_numpy().tolist() == [["tso", 5.0, 1.0]]
    assert result.awards[["bid_id", "buyer_id", "quantity_mw"]].to_numpy().tolist() == [["A", "tso", 1.0]]
    assert m["unmet_reserved_by_other_mwh"] == 4.0 and m["reserved_unused_mwh"] == 4.0
    assert m["unmet_by_buyer_mwh"] == {"tso": 0.0, "dso1": 3.0}
    assert m["availability_cost_eur"] == 10.0


def test_the_dso_reserving_first_meets_its_need_and_the_tso_pays_more() -> None:
    """DSO first: it reserves 4 MW of A (8 EUR), the TSO the 1 MW left (2 EUR). The DSO calls
    its 4 MW at 40; they count toward the system balance too, so the TSO's 5 MW need is met
    by its 1 MW of A: nothing unmet, nothing held against another buyer's need."""
    result = clear(contested_der_batch(), "reserve-dso-first", "pay-as-bid")
    held = result.reservations.set_index("buyer_id")["reserved_mw"].to_dict()
    assert held == {"dso1": 4.0, "tso": 1.0}
    m = result.metrics
    assert m["unmet_by_buyer_mwh"] == {"tso": 0.0, "dso1": 0.0} and m["unmet_reserved_by_other_mwh"] == 0.0
    assert m["cost_by_buyer_eur"] == {"dso1": 4 * 40.0 + 8.0, "tso": 40.0 + 2.0}


def idle_release_batch():  # type: ignore[no-untyped-def]
    """The DSO forecast 5 MW up in a1 and reserved A (5 MW); its actual need is 2 MW. The TSO
    then needs 3 MW up: A's 3 idle MW at 40, or B at 90."""
    return make_batch(
        bids=[bid("A", 40.0, 5.0, node="n1", availability=2.0), bid("B", 90.0, 10.0, node="n2")],
        needs=[tso_need("t1", 5.0), dso_need("d1", "a1", 2.0)],
        areas=[area("a1", "n1"), area("a2", "n2")],
        forecasts=[forecast("need", "d1", 5.0)],
    )


@pytest.mark.parametrize(("use", "b_mw"), [("holder", 3.0), ("idle-to-other", 0.0)])
def test_who_may_use_a_reservation_is_the_design_s_choice(use: str, b_mw: float) -> None:
    """Holder only: the TSO may not touch A's 3 idle MW and buys 3 MW of B at 90. Idle to the
    other buyer: once the DSO's activation step has run, the TSO takes A's idle 3 MW at 40."""
    steps = [
        {"name": "dso-reserve", "buyers": ["dso"], "per_dso": True, "reserve": True, "gate": "D-1 10:00"},
        {"name": "dso-activate", "buyers": ["dso"], "per_dso": True, "gate": "H-1"},
        {"name": "tso-activate", "buyers": ["tso"], "gate": "T-15min"},
    ]
    design = parse_design({"name": "d", "reservation_use": use, "steps": steps}, "test")
    aw = clear(idle_release_batch(), design, "pay-as-bid").awards
    tso = aw[aw["buyer_id"] == "tso"].set_index("bid_id")["quantity_mw"].to_dict()
    assert tso.get("B", 0.0) == b_mw
    assert tso.get("A", 0.0) == 3.0 - b_mw
    assert aw.loc[aw["buyer_id"] == "dso1", "quantity_mw"].sum() == 2.0


def test_a_batch_without_two_part_offers_clears_as_without_reservations() -> None:
    """No bid has an availability price: nothing is reserved, and the activation steps clear
    as the same steps without reservation steps."""
    batch = contested_der_batch()
    preset = load_design("reserve-tso-first")
    plain = replace(preset, steps=tuple(s for s in preset.steps if not s.reserve))
    energy_only = batch.replace(bids=batch.bids.assign(availability_price_eur_mw_h=np.nan))
    with_res = clear(energy_only, "reserve-tso-first", "pay-as-bid")
    without = clear(energy_only, plain, "pay-as-bid")
    assert len(with_res.reservations) == 0
    cols = ["bid_id", "buyer_id", "quantity_mw", "price_eur_mwh"]
    assert with_res.awards[cols].equals(without.awards[cols])


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"buyers": ["tso"], "reserve": True}, {"buyers": ["tso"]}], "needs a gate"),
        ([{"buyers": ["tso"], "reserve": True, "gate": "D-1 10:00"}], "no later step activates"),
        (
            [
                {"buyers": ["tso"], "reserve": True, "gate": "D-1 10:00"},
                {"buyers": ["tso"], "reserve": True, "gate": "D-1 11:00"},
                {"buyers": ["tso"]},
            ],
            "reserves in more than one step",
        ),
        ([{"buyers": ["tso"], "reserve": True, "gate": "D-1 10:00", "view": "interface"}, {"buyers": ["tso"]}], "view"),
    ],
)
def test_bad_reservation_steps_are_refused(steps: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DesignError, match=message):
        parse_design({"name": "bad", "steps": steps}, "test")


def test_reservation_use_must_be_known() -> None:
    with pytest.raises(DesignError, match="reservation_use"):
        tso_reserves_then_activates(reservation_use="anyone")


def test_a_cleared_reservation_is_settled_by_the_share_delivered_on_call(tmp_path: Path) -> None:
    """From ``flexmarket clear`` to settlement: the short-reservation day (A reserved 10 MW at
    5 EUR/MW/h, called for 6 MW at 50; B 4 MW at 80). A's meter (10 MWh an hour on every
    day) reads 7 MWh at the event: 3 of the 6 MWh called are delivered, so the reservation's
    availability factor is 1/2 and it is paid 50 x 1/2 = 25 EUR; B delivers its 4 MWh."""
    from settle_helpers import daily_meter, write_meter

    from market.cli import app
    from market.io.write import write_batch
    from settlement import SettleConfig, settle

    batch_dir = write_batch(short_reservation_batch(), tmp_path / "batch", "parquet") or tmp_path / "batch"
    design = tmp_path / "reserve.toml"
    design.write_text(
        'name = "reserve-then-activate"\n[[steps]]\nname = "tso-reserve"\nbuyers = ["tso"]\nreserve = true\n'
        'gate = "D-1 10:00"\n[[steps]]\nname = "tso-activate"\nbuyers = ["tso"]\ngate = "H-1"\n'
    )
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["clear", str(batch_dir), "--design", str(design), "--pricing", "pay-as-bid",
                                   "--out", str(run)])  # fmt: skip
    assert res.exit_code == 0, res.output
    at = pd.Timestamp("2026-01-05T00:00Z")
    meters = []
    for der, level, event in (("der-A", 10_000.0, 7_000.0), ("der-B", 20_000.0, 16_000.0)):
        m = daily_meter(der, "2025-11-03", 64, lambda d, s, v=level: v, minutes=60)
        m.loc[m["interval_start"] == at, "consumption_kwh"] = event
        meters.append(m)
    meter = write_meter(pd.concat(meters, ignore_index=True), tmp_path / "meter.parquet")
    r = settle(run, meter, SettleConfig(penalty_eur_mwh=0.0), db=f"duckdb:///{tmp_path / 's.duckdb'}")
    lines = r.lines.set_index(["bid_id", "product"])
    assert lines.loc[("A", "availability"), "availability_factor"] == pytest.approx(0.5)
    assert lines.loc[("A", "availability"), "payment_eur"] == pytest.approx(25.0)
    assert lines.loc[("A", "energy"), "allocated_mwh"] == pytest.approx(3.0)
    assert lines.loc[("A", "energy"), "payment_eur"] == pytest.approx(150.0)
    assert lines.loc[("B", "energy"), "payment_eur"] == pytest.approx(320.0)


def test_who_reserves_first_is_measured_on_the_contested_day() -> None:
    """The two presets differ only in who reserves first. On the contested day (two-part
    offers on every second flexible load) the TSO reserving first, blind to the lights at
    D-1, holds capacity the DSOs then lack: more of their need is left unmet at capacity the
    TSO reserved, and more of the DSOs' relief is physically short, than when the DSOs
    reserve first (guide, "Products")."""
    batch = load_batch(Path(__file__).resolve().parents[1] / "data" / "contested")
    tso_first, dso_first = (clear(batch, d, "pay-as-clear").metrics for d in ("reserve-tso-first", "reserve-dso-first"))
    for m in (tso_first, dso_first):
        assert m["availability_cost_eur"] > 0 and m["reserved_mwh"] > 0
    assert tso_first["unmet_reserved_by_other_mwh"] > dso_first["unmet_reserved_by_other_mwh"]
    dso_short = [sum(v for k, v in m["unmet_by_buyer_mwh"].items() if k != "tso") for m in (tso_first, dso_first)]
    assert dso_short[0] > dso_short[1]
