"""Availability payments for reserved capacity (two-part products), on hand-made runs: a
reservation is paid ``availability_price_eur_mw_h`` x MW x hours, scaled down by the share
not delivered when it was called (delivered / requested over its activations, measured
against the baseline); activations are paid their utilisation price as energy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from settle_helpers import daily_meter, make_run, write_meter

from market.errors import SettlementInputError
from settlement import SettleConfig, settle

AT = "2026-01-15T17:00Z"


def _meter(tmp_path: Path, event_kwh: float) -> Path:
    """D1 reads 10 MWh per hour on every day (baseline 10 MWh); at the event hour ``event_kwh``."""
    m = daily_meter("D1", "2025-11-03", 80, lambda d, s: 10_000.0, minutes=60)
    m.loc[m["interval_start"] == pd.Timestamp(AT), "consumption_kwh"] = event_kwh
    return write_meter(m, tmp_path / f"m{event_kwh:.0f}.parquet")


def _settle(tmp_path: Path, awards: list[dict], event_kwh: float):  # type: ignore[no-untyped-def,type-arg]
    run = make_run(tmp_path / "run", awards, minutes=60)
    return settle(run, _meter(tmp_path, event_kwh), SettleConfig(), db=f"duckdb:///{tmp_path / 's.duckdb'}")


RESERVE = {"bid_id": "r1", "t": AT, "q": 2.0, "price": 7.0, "product": "availability", "reservation": "R1"}
RESERVE["availability_price"] = 5.0


def test_availability_is_scaled_by_the_share_delivered_on_call(tmp_path: Path) -> None:
    """2 MW reserved for one hour at 5 EUR/MW/h (10 EUR if fully available); called for 2 MW
    at 7 EUR/MWh; the meter shows 1 MWh delivered (10 -> 9 MWh): factor 1/2, availability
    5 EUR; the activation is paid 7 EUR for 1 MWh and penalised 7 EUR for 1 MWh short."""
    call = {"bid_id": "r1", "t": AT, "q": 2.0, "price": 7.0, "reservation": "R1"}
    r = _settle(tmp_path, [RESERVE, call], event_kwh=9_000.0)
    lines = r.lines.set_index("product")
    assert lines.loc["availability", "availability_factor"] == pytest.approx(0.5)
    assert lines.loc["availability", "payment_eur"] == pytest.approx(5.0)
    assert lines.loc["availability", "awarded_mwh"] == 0.0  # energy totals count activations only
    assert lines.loc["energy", "payment_eur"] == pytest.approx(7.0)
    assert lines.loc["energy", "penalty_eur"] == pytest.approx(7.0)
    (st,) = r.statements.to_dict("records")
    assert st["payment_eur"] == pytest.approx(12.0) and st["net_eur"] == pytest.approx(5.0)
    assert st["awarded_mwh"] == pytest.approx(2.0)


def test_a_reservation_never_called_is_paid_in_full_and_is_not_an_event(tmp_path: Path) -> None:
    r = _settle(tmp_path, [RESERVE], event_kwh=10_000.0)
    (line,) = r.lines.to_dict("records")
    assert (line["product"], line["availability_factor"], line["payment_eur"]) == ("availability", 1.0, 10.0)
    assert line["status"] == "settled"


def test_full_delivery_pays_the_whole_availability(tmp_path: Path) -> None:
    call = {"bid_id": "r1", "t": AT, "q": 2.0, "price": 7.0, "reservation": "R1"}
    r = _settle(tmp_path, [RESERVE, call], event_kwh=8_000.0)
    avail = r.lines[r.lines["product"] == "availability"].iloc[0]
    assert avail["availability_factor"] == pytest.approx(1.0) and avail["payment_eur"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("award", "says"),
    [
        ({**RESERVE, "availability_price": None}, "availability_price_eur_mw_h"),
        ({**RESERVE, "reservation": None}, "reservation_id"),
        ({"bid_id": "x", "t": AT, "q": 1.0, "price": 7.0, "reservation": "NOPE"}, "does not hold"),
        ({**RESERVE, "product": "capacity"}, "not energy, availability or capped-power"),
    ],
)
def test_bad_product_columns_are_refused_by_name(tmp_path: Path, award: dict, says: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SettlementInputError, match=says):
        _settle(tmp_path, [award], event_kwh=10_000.0)


def test_a_reserving_run_settles_at_portfolio_level_too(tmp_path: Path) -> None:
    """The availability row and the activation that calls it are two lines of one bid and
    buyer; at portfolio level each line gets its own DER back, the figures as at DER level."""
    call = {"bid_id": "r1", "t": AT, "q": 2.0, "price": 7.0, "reservation": "R1"}
    run = make_run(tmp_path / "run", [RESERVE, call], minutes=60)
    cfg = SettleConfig(level="portfolio")
    r = settle(run, _meter(tmp_path, 9_000.0), cfg, db=f"duckdb:///{tmp_path / 'p.duckdb'}")
    lines = r.lines.set_index("product")
    assert set(lines["der_id"]) == {"D1"}
    assert lines.loc["availability", "payment_eur"] == pytest.approx(5.0)
    assert lines.loc["energy", "payment_eur"] == pytest.approx(7.0)
