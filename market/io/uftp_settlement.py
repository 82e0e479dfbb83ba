"""UFTP ``FlexSettlement`` messages from the settled lines of a run's FlexOrders (see
:mod:`market.io.uftp` for the mapping of offers and orders)."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from market.io.uftp import NAMESPACE, _expand, uftp_id


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
        ids = [uftp_id(offer.message_id, option.option_reference, k) for k, _ in isps]
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
