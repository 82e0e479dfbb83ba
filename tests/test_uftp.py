"""USEF UFTP through shapeshifter-uftp: FlexRequest and FlexOffer XML made with the library
go in, clear, and come out as FlexOrder XML the same library parses, each order pointing
at an imported offer and one of its options."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from shapeshifter_uftp.transport import from_xml, to_xml
from shapeshifter_uftp.uftp import (
    AvailableRequested,
    FlexOffer,
    FlexOfferOption,
    FlexOfferOptionISP,
    FlexOrder,
    FlexRequest,
    FlexRequestISP,
)
from typer.testing import CliRunner
from xsdata.models.datatype import XmlDate, XmlDuration

from market.cli import app
from market.io.batch import BatchConfig
from market.io.read import batch_from_frames
from market.io.write import write_batch

POINT = "ean.871685900012636543"
HEAD = {"version": "3.0.0", "time_stamp": "2026-01-04T12:00:00+01:00", "isp_duration": XmlDuration("PT15M")}
WHEN = {"time_zone": "Europe/Amsterdam", "period": XmlDate(2026, 1, 5), "congestion_point": POINT}
OFFER_ID = str(uuid.UUID(int=1))


def _base(folder: Path) -> Path:
    start = pd.Timestamp("2026-01-05T00:00:00+00:00")
    cfg = BatchConfig("uftp", start, start + pd.Timedelta(hours=2), 15, voll_eur_mwh=1000.0)
    bids = pd.DataFrame(
        [
            {
                "bid_id": "other",
                "aggregator_id": "agg",
                "der_id": "d0",
                "dso_id": "dso1",
                "node_id": "n9",
                "interval_start": start,
                "direction": "up",
                "quantity_mw": 1.0,
                "price_eur_mwh": 500.0,
            }
        ]
    )
    areas = pd.DataFrame({"area_id": [POINT, "elsewhere"], "node_id": ["n1", "n9"], "dso_id": "dso1"})
    needs = pd.DataFrame(
        columns=["need_id", "buyer_id", "service", "area_id", "interval_start", "direction", "quantity_mw"]
    )
    write_batch(batch_from_frames(cfg, bids=bids, needs=needs, node_areas=areas), folder)
    return folder


def _messages(folder: Path) -> Path:
    folder.mkdir()
    request = FlexRequest(
        **HEAD,
        **WHEN,
        sender_domain="dso.example.com",
        recipient_domain="agr.example.com",
        message_id=str(uuid.UUID(int=2)),
        conversation_id=str(uuid.UUID(int=3)),
        revision=1,
        expiration_date_time="2026-01-05T00:00:00+01:00",
        # ISPs 5 and 6 (00:00-00:30 UTC): at least 200 kW less consumption (UFTP: negative)
        isps=[
            FlexRequestISP(
                disposition=AvailableRequested.REQUESTED, min_power=-400000, max_power=-200000, start=5, duration=2
            )
        ],
    )
    options = [
        FlexOfferOption(option_reference="A", price=Decimal("30"), min_activation_factor=Decimal("0.5"),
                        isps=[FlexOfferOptionISP(power=-300000, start=5, duration=2)]),
        FlexOfferOption(option_reference="B", price=Decimal("10"), min_activation_factor=Decimal("1.0"),
                        isps=[FlexOfferOptionISP(power=-200000, start=5, duration=2)]),
    ]  # fmt: skip
    offer = FlexOffer(
        **HEAD,
        **WHEN,
        sender_domain="agr.example.com",
        recipient_domain="dso.example.com",
        message_id=OFFER_ID,
        conversation_id=str(uuid.UUID(int=3)),
        flex_request_message_id=str(uuid.UUID(int=2)),
        expiration_date_time="2026-01-05T00:00:00+01:00",
        currency="EUR",
        offer_options=options,
    )
    (folder / "request.xml").write_text(to_xml(request))
    (folder / "offer.xml").write_text(to_xml(offer))
    return folder


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("uftp")
    res = CliRunner().invoke(
        app,
        ["uftp", "import", str(_messages(tmp / "msgs")), "--base", str(_base(tmp / "base")), "--out", str(tmp / "b2")],
    )
    assert res.exit_code == 0, res.output
    return tmp / "b2"


def test_import_maps_requests_to_needs_and_options_to_blocks(imported: Path) -> None:
    needs = pd.read_parquet(imported / "needs.parquet").set_index("need_id")
    assert needs["quantity_mw"].tolist() == [0.2, 0.2] and set(needs["direction"]) == {"up"}
    assert needs["interval_start"].min() == pd.Timestamp("2026-01-05T00:00:00+00:00")  # ISP 5 of an Amsterdam day
    bids = pd.read_parquet(imported / "bids.parquet").set_index("bid_id")
    a = bids.loc[f"{OFFER_ID}/A/5"]
    assert (a["quantity_mw"], a["min_quantity_mw"], a["block_id"], a["exclusive_group"]) == (
        0.3,
        0.15,
        f"{OFFER_ID}/A",
        OFFER_ID,
    )
    assert a["price_eur_mwh"] == pytest.approx(30 / (0.3 * 0.5))  # the option's price over its energy
    assert (imported / "uftp" / "offer.xml").is_file()


def test_clear_and_export_flex_orders_the_library_parses(imported: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["clear", str(imported), "--design", "single", "--out", str(run)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["uftp", "export", str(run), "--batch", str(imported), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "o").glob("*.xml"))
    assert len(files) == 1  # the options are exclusive: only the cheaper B (10 EUR for 0.1 MWh)
    order = from_xml(files[0].read_bytes())
    assert isinstance(order, FlexOrder)
    assert order.flex_offer_message_id == OFFER_ID and order.option_reference == "B"
    assert order.activation_factor == Decimal("1.00") and order.price == Decimal("10.0000")
    assert [(i.power, i.start, i.duration) for i in order.isps] == [(-200000, 5, 2)]
    assert (order.sender_domain, order.recipient_domain, order.congestion_point) == (
        "dso.example.com",
        "agr.example.com",
        POINT,
    )


def test_settled_orders_export_as_flex_settlement(imported: Path, tmp_path: Path) -> None:
    """The DER consumes 500 kW and cuts 200 kW in the two ordered ISPs: meter-before baseline
    500 kW, delivered 200 kW up (UFTP: -200 kW), no deficiency, paid the order's 10 EUR."""
    from shapeshifter_uftp.uftp import FlexSettlement

    run = tmp_path / "run"
    assert CliRunner().invoke(app, ["clear", str(imported), "--out", str(run)]).exit_code == 0
    der = f"agr.example.com@{POINT}"
    ts = pd.date_range("2025-12-20T00:00:00+00:00", "2026-01-05T02:00:00+00:00", freq="15min", inclusive="left")
    kwh = [75.0 if pd.Timestamp("2026-01-05T00:00Z") <= t < pd.Timestamp("2026-01-05T00:30Z") else 125.0 for t in ts]
    pd.DataFrame({"der_id": der, "interval_start": ts, "consumption_kwh": kwh}).to_parquet(tmp_path / "meter.parquet")
    (tmp_path / "settle.toml").write_text('baseline = "meter-before-meter-after"\ntimezone = "Europe/Amsterdam"\n')
    settled = tmp_path / "settled"
    res = CliRunner().invoke(
        app,
        ["settle", "--run", str(run), "--meter", str(tmp_path / "meter.parquet"), "--config",
         str(tmp_path / "settle.toml"), "--out", str(settled)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        app,
        ["uftp", "settlement", str(settled), "--run", str(run), "--batch", str(imported), "--out", str(tmp_path / "s")],
    )
    assert res.exit_code == 0, res.output
    (path,) = sorted((tmp_path / "s").glob("*.xml"))
    message = from_xml(path.read_bytes())
    assert isinstance(message, FlexSettlement) and message.recipient_domain == "agr.example.com"
    (order,) = message.flex_order_settlements
    assert order.order_reference == str(uuid.uuid5(uuid.UUID("6f6c1d0e-6a5b-4c51-9d8e-0f1e2d3c4b5a"), f"{OFFER_ID}/B"))
    isps = [
        (i.start, i.baseline_power, i.ordered_flex_power, i.actual_power, i.delivered_flex_power, i.power_deficiency)
        for i in order.isps
    ]
    assert isps == [(5, 500000, -200000, 300000, -200000, 0), (6, 500000, -200000, 300000, -200000, 0)]
    assert (order.price, order.penalty, order.net_settlement) == (
        Decimal("10.0000"),
        Decimal("0.0000"),
        Decimal("10.0000"),
    )
