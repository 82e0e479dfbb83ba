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
  (the same for every bid of a block) rounded down to UFTP's two decimals (a warning says
  so; below 0.01 no order), the offer's ISPs copied, ``Price`` = option price x factor,
  ``FlexOfferMessageID`` and ``OptionReference`` pointing at the offer and option.
* Ids of several parts (``need_id``, ``block_id``, ``bid_id``) join the parts with ``/``,
  each part percent-escaped (``quote(part, safe="")``): an ``OptionReference`` holding ``/``
  can never make another offer's id. Messages are read strictly (:mod:`market.io.uftp_strict`)
  and every ISP must lie in its message's period.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from market.enums import Direction, Service
from market.errors import BatchError
from market.io.batch import TABLE_NAMES, Batch
from market.io.uftp_strict import message_files, parse_message

log = logging.getLogger("flexmarket")
NAMESPACE = uuid.UUID("6f6c1d0e-6a5b-4c51-9d8e-0f1e2d3c4b5a")  # flexmarket's UUID namespace for FlexOrders
OFFERS_FOLDER = "uftp"


@dataclass(frozen=True)
class Imported:
    """What a folder of messages adds to a batch."""

    needs: pd.DataFrame
    bids: pd.DataFrame
    offers: dict[str, tuple[str, Any]]  # message id -> (file name, FlexOffer)


def read_messages(folder: Path) -> list[tuple[str, Any]]:
    """Every ``*.xml`` UFTP message of ``folder``, sorted by file name, read strictly
    (:mod:`market.io.uftp_strict`)."""
    out = [(path.name, parse_message(path)) for path in message_files(folder)]
    if not out:
        raise BatchError(f"{folder}: no UFTP messages (*.xml)")
    return out


def _isp_start(message: Any, isp: int, minutes: int, where: str) -> pd.Timestamp:
    duration = pd.Timedelta(str(message.isp_duration))
    if duration != pd.Timedelta(minutes=minutes):
        raise BatchError(f"{where}: ISP-Duration {message.isp_duration} is not the batch's {minutes}-minute interval")
    midnight = pd.Timestamp(str(message.period)).tz_localize(message.time_zone)
    return (midnight + (isp - 1) * duration).tz_convert("UTC")


def isps_in_period(message: Any, where: str) -> int:
    """How many ISPs the message's period (a local day of its time zone) has: 92, 96 or 100
    at 15 minutes (clock changes included)."""
    duration = pd.Timedelta(str(message.isp_duration))
    if duration <= pd.Timedelta(0):
        raise BatchError(f"{where}: ISP-Duration {message.isp_duration} is not positive")
    day = pd.Timestamp(str(message.period))
    midnight = day.tz_localize(message.time_zone)
    next_midnight = (day + pd.Timedelta(days=1)).tz_localize(message.time_zone)
    return int((next_midnight - midnight) / duration)


def check_isps(message: Any, isps: list[Any], where: str) -> None:
    """Every ISP range lies inside the message's period (ISP 1 to the period's last)."""
    last = isps_in_period(message, where)
    for isp in isps:
        length = 1 if isp.duration is None else int(isp.duration)
        if isp.start < 1 or length < 1 or isp.start + length - 1 > last:
            raise BatchError(
                f"{where}: ISPs {isp.start} to {isp.start + length - 1} lie outside the period {message.period}, "
                f"which has ISPs 1 to {last}"
            )


def uftp_id(*parts: object) -> str:
    """An id of several parts joined by '/', each part percent-escaped, so a part that holds
    '/' can never make the id of another (``a/b`` + ``c`` and ``a`` + ``b/c`` differ)."""
    return "/".join(quote(str(p), safe="") for p in parts)


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
    check_isps(request, request.isps, where)
    rows = []
    for isp in request.isps:
        if isp.disposition != AvailableRequested.REQUESTED:  # absent: Available, UFTP's default
            continue
        lo, hi = sorted((int(isp.min_power), int(isp.max_power)))
        if lo < 0 < hi or (lo == 0 and hi == 0):
            continue  # the range allows no change: nothing requested
        watts = hi if hi <= 0 else lo  # the bound nearest zero: the smallest requested change
        for k in range(isp.duration):
            number = isp.start + k
            rows.append(
                {
                    "need_id": uftp_id(request.message_id, number),
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
        check_isps(offer, option.isps, where)
        isps = _expand(option.isps)
        mwh = sum(abs(w) for _, w in isps) / 1e6 * hours
        if mwh <= 0:
            raise BatchError(f"{where}: option {option.option_reference} offers no energy")
        block = uftp_id(offer.message_id, option.option_reference)
        for number, watts in isps:
            q = abs(watts) / 1e6
            rows.append(
                {
                    "bid_id": uftp_id(offer.message_id, option.option_reference, number),
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


def merge_import(base: Batch, base_folder: Path, messages: Path, found: Imported) -> tuple[Batch, dict[str, bytes]]:
    """The base batch with the imported needs and bids added (every other table kept as it
    is), and the offer files the new batch keeps: those an earlier import left in the base
    batch's ``uftp/`` and the new ones. Two offers with one file name are refused."""
    from market.io.read import batch_from_frames

    files: dict[str, bytes] = {}
    earlier = base_folder / OFFERS_FOLDER
    if earlier.is_dir():
        for name, _ in read_messages(earlier):
            files[name] = (earlier / name).read_bytes()
    for name, _ in found.offers.values():
        if name in files:
            raise BatchError(f"{messages / name}: the base batch already holds an offer file of that name")
        files[name] = (messages / name).read_bytes()
    tables = {name: base.table(name) for name in TABLE_NAMES}
    if len(found.bids):
        tables["bids"] = pd.concat([base.bids, found.bids], ignore_index=True)
    if len(found.needs):
        tables["needs"] = pd.concat([base.needs, found.needs], ignore_index=True)
    return batch_from_frames(base.config, **tables), files


def orders_for_awards(awards: pd.DataFrame, offers: dict[str, Any], time_stamp: str | None = None) -> list[Any]:
    """One FlexOrder per offer option with activated MW (see the module docstring; a
    reserving run's availability rows are not orders).

    ``time_stamp``: the orders' TimeStamp (default: the offer's, so the same run gives the
    same files)."""
    from shapeshifter_uftp.uftp import FlexOrder, FlexOrderISP

    offered = pd.DataFrame(
        [
            {
                "bid_id": uftp_id(m, o.option_reference, k),
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
    if "product" in awards:  # an availability row holds capacity; only activations are ordered
        awards = awards[awards["product"] != "availability"]
    taken = awards.groupby("bid_id", as_index=False)["quantity_mw"].sum()
    accepted = offered.merge(taken[taken["quantity_mw"] > 0], on="bid_id")
    accepted["factor"] = accepted["quantity_mw"] / accepted["q"]
    factors = accepted.groupby(["message_id", "reference"])["factor"].max().to_dict()
    orders = []
    for (message_id, reference), factor in sorted(factors.items()):
        offer = offers[message_id]
        option = next(o for o in offer.offer_options if o.option_reference == reference)
        activation = activation_factor(factor, message_id, reference)
        if activation is None:
            continue
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


def activation_factor(factor: float, message_id: str, reference: str) -> Decimal | None:
    """The order's ``ActivationFactor`` for an accepted fraction: UFTP carries two decimals
    (0.01 to 1.00), so the fraction is rounded **down** (an order never asks for more than was
    cleared) and one below 0.01 gives no order; either is logged as a warning."""
    exact = Decimal(repr(min(max(factor, 0.0), 1.0)))
    if abs(exact - exact.quantize(Decimal("0.01"))) <= Decimal("1e-9"):  # solver residue
        exact = exact.quantize(Decimal("0.01"))
    rounded = exact.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    if rounded < Decimal("0.01"):
        log.warning(
            "offer %s option %s: accepted fraction %s is below 0.01: no FlexOrder", message_id, reference, exact
        )
        return None
    if rounded != exact:
        log.warning(
            "offer %s option %s: accepted fraction %s ordered as ActivationFactor %s (UFTP has two decimals)",
            message_id,
            reference,
            exact,
            rounded,
        )
    return rounded


def to_xml(message: Any) -> str:
    from shapeshifter_uftp.transport import to_xml as render

    return str(render(message))
