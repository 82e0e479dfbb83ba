"""USEF UFTP (Shapeshifter) messages in and out, through ``shapeshifter-uftp``.

In: ``FlexRequest`` -> DSO needs; ``FlexOffer`` -> bids. Out: ``FlexOrder`` per accepted
offer option. The mapping (UFTP sign convention: power in W, positive = more consumption
or less production, i.e. flexmarket's **down**; negative = flexmarket's **up**):

* Time: ISP ``k`` of a message (1-based) starts ``(k - 1) x ISP-Duration`` after local
  midnight of its ``Period`` in its ``TimeZone``; the ISP duration must equal the batch's
  interval length.
* Place: a message's ``CongestionPoint`` is an ``area_id`` of the base batch; its DSO is the
  area's ``dso_id``. An offer's flexibility is located at the area's first node (sorted).
* ``FlexRequest``: each ``Requested`` ISP whose power range lies on one side of zero is a
  must-meet ``dso_congestion`` need of the smallest requested change (the range bound
  nearest zero), ``need_id = <MessageID>/<ISP>``; ``Available`` ISPs and ranges spanning
  zero ask for no change and give no need.
* ``FlexOffer``: each option is a block (``block_id = <MessageID>/<OptionReference>``) of one
  bid per ISP (``bid_id = <block_id>/<ISP>``), ``quantity_mw = |Power| / 1e6``,
  ``min_quantity_mw = MinActivationFactor x quantity_mw`` (accepted at one fraction, 0 or
  at least the factor), the options of one offer mutually exclusive
  (``exclusive_group = <MessageID>``), the option's total ``Price`` spread over its energy
  (``price_eur_mwh = Price / sum(|Power| x ISP hours) x 1e6``), aggregator =
  ``SenderDomain``, DER = ``<SenderDomain>@<CongestionPoint>``, service ``dso_congestion``.
  The offers are kept verbatim in ``uftp/`` of the batch they were imported into.
* ``FlexOrder``: one per option with accepted MW; ``ActivationFactor`` = accepted / offered
  (the same for every bid of a block), the offer's ISPs copied, ``Price`` = option price x
  factor, ``FlexOfferMessageID`` and ``OptionReference`` pointing at the offer and option.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from market.enums import Direction, Service
from market.errors import BatchError

NAMESPACE = uuid.UUID("6f6c1d0e-6a5b-4c51-9d8e-0f1e2d3c4b5a")  # flexmarket's UUID namespace for FlexOrders
OFFERS_FOLDER = "uftp"


@dataclass(frozen=True)
class Imported:
    """What a folder of messages adds to a batch."""

    needs: pd.DataFrame
    bids: pd.DataFrame
    offers: dict[str, tuple[str, Any]]  # message id -> (file name, FlexOffer)


def read_messages(folder: Path) -> list[tuple[str, Any]]:
    """Every ``*.xml`` UFTP message of ``folder``, sorted by file name."""
    from shapeshifter_uftp.transport import from_xml

    out = []
    for path in sorted(folder.glob("*.xml")):
        try:
            out.append((path.name, from_xml(path.read_bytes())))
        except Exception as exc:  # xsdata raises several kinds for a bad file
            raise BatchError(f"{path}: not a UFTP message ({exc})") from exc
    if not out:
        raise BatchError(f"{folder}: no UFTP messages (*.xml)")
    return out


def _isp_start(message: Any, isp: int, minutes: int, where: str) -> pd.Timestamp:
    duration = pd.Timedelta(str(message.isp_duration))
    if duration != pd.Timedelta(minutes=minutes):
        raise BatchError(f"{where}: ISP-Duration {message.isp_duration} is not the batch's {minutes}-minute interval")
    midnight = pd.Timestamp(str(message.period)).tz_localize(message.time_zone)
    return (midnight + (isp - 1) * duration).tz_convert("UTC")


def _area(node_areas: pd.DataFrame, point: str, where: str) -> tuple[str, str]:
    """(DSO, first node) of the area named by a congestion point."""
    rows = node_areas[node_areas["area_id"] == point]
    if not len(rows):
        raise BatchError(f"{where}: congestion point {point} is not an area_id of the base batch's node_areas")
    return str(rows["dso_id"].iloc[0]), str(rows["node_id"].min())


def _expand(isps: list[Any]) -> list[tuple[int, int]]:
    """(ISP number, power W) for every ISP an element covers."""
    return [(isp.start + k, int(isp.power)) for isp in isps for k in range(isp.duration)]


def needs_from_request(request: Any, node_areas: pd.DataFrame, minutes: int, where: str) -> list[dict[str, Any]]:
    from shapeshifter_uftp.uftp import AvailableRequested

    dso, _ = _area(node_areas, request.congestion_point, where)
    rows = []
    for isp in request.isps:
        if isp.disposition != AvailableRequested.REQUESTED:
            continue
        lo, hi = sorted((int(isp.min_power), int(isp.max_power)))
        if lo < 0 < hi or (lo == 0 and hi == 0):
            continue  # the range allows no change: nothing requested
        watts = hi if hi <= 0 else lo  # the bound nearest zero: the smallest requested change
        for k in range(isp.duration):
            number = isp.start + k
            rows.append(
                {
                    "need_id": f"{request.message_id}/{number}",
                    "buyer_id": dso,
                    "service": Service.DSO_CONGESTION.value,
                    "area_id": request.congestion_point,
                    "interval_start": _isp_start(request, number, minutes, where),
                    "direction": (Direction.UP if watts < 0 else Direction.DOWN).value,
                    "quantity_mw": abs(watts) / 1e6,
                    "max_price_eur_mwh": None,
                }
            )
    return rows


def bids_from_offer(offer: Any, node_areas: pd.DataFrame, minutes: int, where: str) -> list[dict[str, Any]]:
    dso, node = _area(node_areas, offer.congestion_point, where)
    hours = minutes / 60.0
    rows = []
    for option in offer.offer_options:
        isps = _expand(option.isps)
        mwh = sum(abs(w) for _, w in isps) / 1e6 * hours
        if mwh <= 0:
            raise BatchError(f"{where}: option {option.option_reference} offers no energy")
        block = f"{offer.message_id}/{option.option_reference}"
        for number, watts in isps:
            q = abs(watts) / 1e6
            rows.append(
                {
                    "bid_id": f"{block}/{number}",
                    "aggregator_id": offer.sender_domain,
                    "der_id": f"{offer.sender_domain}@{offer.congestion_point}",
                    "dso_id": dso,
                    "node_id": node,
                    "interval_start": _isp_start(offer, number, minutes, where),
                    "direction": (Direction.UP if watts < 0 else Direction.DOWN).value,
                    "quantity_mw": q,
                    "min_quantity_mw": float(option.min_activation_factor) * q,
                    "price_eur_mwh": float(option.price) / mwh,
                    "block_id": block,
                    "exclusive_group": str(offer.message_id) if len(offer.offer_options) > 1 else None,
                    "services": Service.DSO_CONGESTION.value,
                }
            )
    return rows


def import_messages(folder: Path, node_areas: pd.DataFrame, minutes: int) -> Imported:
    """Needs and bids from every FlexRequest and FlexOffer in ``folder``."""
    from shapeshifter_uftp.uftp import FlexOffer, FlexRequest

    needs: list[dict[str, Any]] = []
    bids: list[dict[str, Any]] = []
    offers: dict[str, tuple[str, Any]] = {}
    for name, message in read_messages(folder):
        where = str(folder / name)
        if isinstance(message, FlexRequest):
            needs += needs_from_request(message, node_areas, minutes, where)
        elif isinstance(message, FlexOffer):
            bids += bids_from_offer(message, node_areas, minutes, where)
            offers[str(message.message_id)] = (name, message)
        else:
            raise BatchError(f"{where}: a {type(message).__name__} is not imported (FlexRequest or FlexOffer)")
    return Imported(pd.DataFrame(needs), pd.DataFrame(bids), offers)


def orders_for_awards(awards: pd.DataFrame, offers: dict[str, Any], time_stamp: str | None = None) -> list[Any]:
    """One FlexOrder per offer option with accepted MW (see the module docstring).

    ``time_stamp``: the orders' TimeStamp (default: the offer's, so the same run gives the
    same files)."""
    from shapeshifter_uftp.uftp import FlexOrder, FlexOrderISP

    offered = pd.DataFrame(
        [
            {
                "bid_id": f"{m}/{o.option_reference}/{k}",
                "message_id": m,
                "reference": o.option_reference,
                "q": abs(w) / 1e6,
            }
            for m, offer in offers.items()
            for o in offer.offer_options
            for k, w in _expand(o.isps)
        ],
        columns=["bid_id", "message_id", "reference", "q"],
    )
    taken = awards.groupby("bid_id", as_index=False)["quantity_mw"].sum()
    accepted = offered.merge(taken[taken["quantity_mw"] > 0], on="bid_id")
    accepted["factor"] = accepted["quantity_mw"] / accepted["q"]
    factors = accepted.groupby(["message_id", "reference"])["factor"].max().to_dict()
    orders = []
    for (message_id, reference), factor in sorted(factors.items()):
        offer = offers[message_id]
        option = next(o for o in offer.offer_options if o.option_reference == reference)
        activation = Decimal(str(min(factor, 1.0))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        order_id = str(uuid.uuid5(NAMESPACE, f"{message_id}/{reference}"))
        orders.append(
            FlexOrder(
                version=offer.version,
                sender_domain=offer.recipient_domain,
                recipient_domain=offer.sender_domain,
                time_stamp=time_stamp or offer.time_stamp,
                message_id=order_id,
                conversation_id=offer.conversation_id,
                isp_duration=offer.isp_duration,
                time_zone=offer.time_zone,
                period=offer.period,
                congestion_point=offer.congestion_point,
                isps=[FlexOrderISP(power=i.power, start=i.start, duration=i.duration) for i in option.isps],
                flex_offer_message_id=message_id,
                price=(option.price * activation).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                currency=offer.currency,
                order_reference=order_id,
                option_reference=reference,
                activation_factor=activation,
            )
        )
    return orders


def settlements_for_lines(
    lines: pd.DataFrame, orders: list[Any], offers: dict[str, Any], minutes: int
) -> tuple[list[Any], list[str]]:
    """One FlexSettlement per aggregator (offer sender) with a FlexOrderSettlement per order
    whose lines are all settled, from the settlement ``lines`` of the run; and the order
    references left out (a line without meter data or baseline).

    Per ISP (W, UFTP sign: positive = consumption): ``BaselinePower`` and ``ActualPower``
    from the line's baseline and metered kWh; ``OrderedFlexPower`` the offer's power x the
    activation factor; ``DeliveredFlexPower`` = -delivered up power; ``PowerDeficiency`` the
    shortfall, with the ordered power's sign. ``Price`` = the lines' payment + make-whole
    (an all-or-nothing option priced below its bid is made whole), ``Penalty`` and
    ``NetSettlement`` the lines' EUR.
    shapeshifter-uftp requires a ContractSettlement: one per period with zero reserved power
    is written (no capacity contract exists)."""
    from shapeshifter_uftp.uftp import (
        ContractSettlement,
        ContractSettlementISP,
        ContractSettlementPeriod,
        FlexOrderSettlement,
        FlexOrderSettlementISP,
        FlexSettlement,
    )

    hours = minutes / 60.0
    by_bid = lines.set_index("bid_id")
    per_agr: dict[str, list[Any]] = {}
    left_out = []
    for order in orders:
        offer = offers[order.flex_offer_message_id]
        option = next(o for o in offer.offer_options if o.option_reference == order.option_reference)
        isps = _expand(option.isps)
        ids = [f"{offer.message_id}/{option.option_reference}/{k}" for k, _ in isps]
        rows = by_bid.reindex(ids)
        if rows["status"].ne("settled").any():
            left_out.append(str(order.order_reference))
            continue
        factor = float(order.activation_factor)
        sign = [(-1 if w < 0 else 1) for _, w in isps]
        settled_isps = [
            FlexOrderSettlementISP(
                start=k,
                duration=1,
                baseline_power=round(r.baseline_kwh / hours * 1e3),
                ordered_flex_power=round(w * factor),
                actual_power=round(r.metered_kwh / hours * 1e3),
                delivered_flex_power=round(-r.delivered_up_mwh / hours * 1e6),
                power_deficiency=round(s * r.shortfall_mwh / hours * 1e6),
            )
            for (k, w), s, r in zip(isps, sign, rows.itertuples(), strict=True)
        ]
        per_agr.setdefault(offer.sender_domain, []).append(
            FlexOrderSettlement(
                isps=settled_isps,
                order_reference=order.order_reference,
                period=offer.period,
                congestion_point=offer.congestion_point,
                price=_eur(rows["payment_eur"].sum() + rows["make_whole_eur"].sum()),
                penalty=_eur(rows["penalty_eur"].sum()),
                net_settlement=_eur(rows["net_eur"].sum()),
            )
        )
    messages = []
    for agr, settled in sorted(per_agr.items()):
        first = offers[next(o for o in orders if o.order_reference == settled[0].order_reference).flex_offer_message_id]
        periods = sorted({str(s.period) for s in settled})
        contract = ContractSettlement(
            periods=[
                ContractSettlementPeriod(period=next(s.period for s in settled if str(s.period) == p),
                                         isps=[ContractSettlementISP(start=1, duration=1, reserved_power=0)])
                for p in periods
            ]
        )  # fmt: skip
        messages.append(
            FlexSettlement(
                version=first.version,
                sender_domain=first.recipient_domain,
                recipient_domain=agr,
                time_stamp=first.time_stamp,
                message_id=str(uuid.uuid5(NAMESPACE, f"settlement/{agr}/{periods[0]}/{periods[-1]}")),
                conversation_id=str(uuid.uuid5(NAMESPACE, f"settlement/{agr}")),
                flex_order_settlements=settled,
                contract_settlements=[contract],
                period_start=settled[0].period,
                period_end=settled[-1].period,
                currency=first.currency,
            )
        )
    return messages, left_out


def _eur(value: float) -> Decimal:
    return Decimal(str(round(float(value), 4))).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def to_xml(message: Any) -> str:
    from shapeshifter_uftp.transport import to_xml as render

    return str(render(message))
