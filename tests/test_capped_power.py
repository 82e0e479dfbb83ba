"""Capped power (MaxUsage): a DSO buys a ceiling on a connection point's consumption, cleared
against the flows it relieves and settled on the meter against the cap, not a baseline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from settle_helpers import daily_meter, make_run, write_meter

from market.clearing.run import clear
from market.testing import area, bid, constraint, dso_need, make_batch
from settlement import SettleConfig, settle


def feeder_with_a_cap():  # type: ignore[no-untyped-def]
    """A feeder head (limit 8 MW import) carries 10.5 MW: 2.5 MW over, a DSO need of 2.5 MW up
    in its area. ``cap``: a heat-pump site offers to keep its consumption under 3 MW (2.5 MW of
    relief against its expected 5.5 MW) at 30 EUR/MWh; ``flex``: 5 MW of ordinary up
    flexibility at 60 EUR/MWh on the same feeder."""
    return make_batch(
        bids=[
            bid("cap", 30.0, 2.5, node="n1", max_usage=3.0, services="dso_congestion"),
            bid("flex", 60.0, 5.0, node="n1"),
        ],
        needs=[dso_need("d1", "feeder", 2.5)],
        areas=[area("feeder", "n1")],
        constraints=[constraint("head", 10.5, 8.0)],
        sens=[{"constraint_id": "head", "node_id": "n1", "factor": -1.0}],
    )


def test_a_capped_power_offer_relieves_the_feeder_whole() -> None:
    """The cap's 2.5 MW of relief at 30 EUR/MWh (75 EUR) is cheaper than 2.5 MW of flex at 60
    (150 EUR): it is taken whole and the head is back at its 8 MW limit. (A ceiling is not
    divisible: were the need 2 MW, the extra 0.5 MW of relief would leave the TSO 0.5 MWh of
    imbalance at VoLL + 1, and the flex would be bought instead.)"""
    result = clear(feeder_with_a_cap(), "dso-led", "pay-as-bid")
    aw = result.awards.set_index("bid_id")
    assert list(aw.index) == ["cap"]
    assert (aw.loc["cap", "quantity_mw"], aw.loc["cap", "product"], aw.loc["cap", "max_usage_mw"]) == (
        2.5,
        "capped-power",
        3.0,
    )
    head = result.flows.set_index("constraint_id").loc["head"]
    assert head["flow_mw"] == pytest.approx(8.0) and head["violation_mw"] == 0.0


AT = "2026-01-15T17:00Z"


@pytest.mark.parametrize(
    ("metered_kwh", "allocated", "penalised"),
    [(2_900.0, 2.5, 0.0), (3_000.0, 2.5, 0.0), (3_200.0, 2.3, 0.2), (6_000.0, 0.0, 2.5)],
)
def test_capped_power_is_settled_on_the_meter_against_the_cap(
    tmp_path: Path, metered_kwh: float, allocated: float, penalised: float
) -> None:
    """2.5 MW of relief bought for one hour under a 3 MW cap at 30 EUR/MWh, penalty 40
    EUR/MWh. Metered 2.9 or 3.0 MWh: under the cap, all 2.5 MWh delivered (75 EUR). 3.2 MWh:
    0.2 MWh over the cap, 2.3 MWh delivered (69 EUR) and 0.2 MWh short (8 EUR). 6 MWh: the
    whole award short. No baseline is used: the DER's history (10 MWh an hour) is ignored."""
    award = {"bid_id": "cap", "t": AT, "q": 2.5, "price": 30.0, "product": "capped-power", "max_usage": 3.0}
    award |= {"buyer_id": "dso1", "service": "dso_congestion"}
    run = make_run(tmp_path / "run", [award], minutes=60)
    m = daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60)
    m.loc[m["interval_start"] == pd.Timestamp(AT), "consumption_kwh"] = metered_kwh
    meter = write_meter(m, tmp_path / "m.parquet")
    r = settle(run, meter, SettleConfig(penalty_eur_mwh=40.0), db=f"duckdb:///{tmp_path / 's.duckdb'}")
    (line,) = r.lines.to_dict("records")
    assert (line["product"], line["method"], line["status"]) == ("capped-power", "capped-power", "settled")
    assert line["baseline_kwh"] == pytest.approx(3_000.0)
    assert line["allocated_mwh"] == pytest.approx(allocated)
    assert line["payment_eur"] == pytest.approx(30.0 * allocated)
    assert line["penalty_eur"] == pytest.approx(40.0 * penalised)
