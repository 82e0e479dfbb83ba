"""Reservations: two-part products (section 3a of the contract).

A **reservation step** (``reserve = true``) decides at an early gate (week-ahead, D-1) on
what its operator has forecast by then: each need's MW (``need`` forecasts, else the
need as given) and each bid's available MW (``der_available`` forecasts, else its
quantity). It clears its buyers' needs like any step over the **two-part** bids (those
with an ``availability_price_eur_mw_h``), at the least availability plus utilisation cost
(EUR per MW and hour, both), and records what it chose as reservations: MW of a bid held
by one buyer. It activates nothing: the ex-post physics never sees a reservation.

The holder's later (activation) step runs in two passes:

1. **reserved first**: its model sees only the capacity its buyers reserved, as actually
   available then (a DER that delivers less than forecast leaves the reservation short),
   and each activation is paid the bid's utilisation price (``reservation_id`` names the
   reservation it calls);
2. **the rest**: the same model over the capacity nobody else holds, for what the first
   pass left (DSO needs reduced by what it served; the TSO balance by the net activated).
   A bid the buyer holds is bought only within its reservation (one award per bid, buyer
   and product: what settlement pays), not for the part beyond it.

A reservation held by one buyer is unavailable to the other buyer (every step of that
buyer, reservation steps included, sees the bid's quantity less the held MW not yet
activated); under ``reservation_use = "idle-to-other"`` what the holder left idle is
released once the holder's activation step has run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from market.clearing.formulation import StepInput
from market.clearing.information import decision_ns, forecast_known
from market.clearing.prepare import Prepared, step_inputs
from market.clearing.readback import StepOutcome
from market.design.spec import Design, Step
from market.enums import SYSTEM_AREA, TSO_ID, Buyer, ReservationUse, Service
from market.io.batch import Batch

AVAILABILITY_PRICE = "availability_price_eur_mw_h"
ROW_COLUMNS = ["pos", "holder", "step", "need_id", "mw", "activated", "released"]


@dataclass
class Reservations:
    """Every reservation of the run, one row each: the bid (batch position ``pos``), its
    ``holder`` (buyer id), the reserving ``step``, the ``need_id`` it was chosen for, the
    MW held, the MW its holder has activated within it, and whether its idle MW are
    released to the other buyer. A bid may be held in part by each buyer."""

    n_bids: int
    rows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROW_COLUMNS))

    def any(self) -> bool:
        return bool(len(self.rows))

    def _per_bid(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows["pos"].to_numpy(dtype=int), weights=values, minlength=self.n_bids)

    def _held_for(self, step: Step) -> np.ndarray:
        """Per row: whether a buyer of ``step`` holds it."""
        holder = self.rows["holder"].to_numpy(dtype=object)
        return np.asarray(
            ((holder == TSO_ID) & (Buyer.TSO in step.buyers)) | ((holder != TSO_ID) & (Buyer.DSO in step.buyers))
        )

    def _idle(self) -> np.ndarray:
        return np.clip(self.rows["mw"].to_numpy(dtype=float) - self.rows["activated"].to_numpy(dtype=float), 0.0, None)

    def reserved(self) -> np.ndarray:
        """Per bid: MW held by anyone."""
        return self._per_bid(self.rows["mw"].to_numpy(dtype=float)) if self.any() else np.zeros(self.n_bids)

    def own_room(self, step: Step) -> np.ndarray:
        """Per bid: reserved MW the buyers of ``step`` hold and have not activated."""
        if not self.any():
            return np.zeros(self.n_bids)
        return self._per_bid(np.where(self._held_for(step), self._idle(), 0.0))

    def held_bids(self, step: Step) -> np.ndarray:
        """Per bid: whether a buyer of ``step`` holds part of it (then it buys the bid only
        within that reservation: one award per bid, buyer and product)."""
        if not self.any():
            return np.zeros(self.n_bids, bool)
        return self._per_bid(self._held_for(step).astype(float)) > 0

    def blocked(self, step: Step) -> np.ndarray:
        """Per bid: MW ``step`` may not use because another buyer holds them."""
        if not self.any():
            return np.zeros(self.n_bids)
        free = self._held_for(step) | self.rows["released"].to_numpy(dtype=bool)
        return self._per_bid(np.where(free, 0.0, self._idle()))

    def add(self, step: Step, awards: pd.DataFrame) -> None:
        """The reservation step's choices, one row per awarded bid."""
        new = pd.DataFrame(
            {
                "pos": awards["pos"].to_numpy(dtype=int),
                "holder": awards["buyer_id"].to_numpy(dtype=object),
                "step": step.name,
                "need_id": awards["need_id"].to_numpy(dtype=object),
                "mw": awards["quantity_mw"].to_numpy(dtype=float),
                "activated": 0.0,
                "released": False,
            }
        )
        self.rows = pd.concat([self.rows, new], ignore_index=True) if len(self.rows) else new

    def call(self, step: Step, awards: pd.DataFrame) -> np.ndarray:
        """Count a first-pass activation against the reservation its step's buyers hold on the
        bid; returns each award's reservation row."""
        held = self.rows[self._held_for(step)]
        row = pd.Series(held.index, index=held["pos"].to_numpy()).groupby(level=0).first()
        which = row.reindex(awards["pos"].to_numpy(dtype=int)).to_numpy()
        act = self.rows["activated"].to_numpy(dtype=float).copy()
        np.add.at(act, which.astype(int), awards["quantity_mw"].to_numpy(dtype=float))
        self.rows["activated"] = act
        return which.astype(int)

    def release(self, step: Step, use: ReservationUse) -> None:
        """After the holder's activation step: idle MW go to the other buyer if the design says so."""
        if use is ReservationUse.IDLE_TO_OTHER and self.any():
            self.rows["released"] = self.rows["released"].to_numpy(dtype=bool) | self._held_for(step)


def reservation_inputs(batch: Batch, prep: Prepared, step: Step, res: Reservations, known: object) -> list[StepInput]:
    """The reservation step's model inputs: its buyers' forecast needs over the two-part
    bids' forecast capacity (less what is already reserved), at availability plus
    utilisation cost."""
    decision = decision_ns(step, batch)
    bids = prep.bids.copy(deep=False)
    two_part = bids[AVAILABILITY_PRICE].notna().to_numpy() if AVAILABILITY_PRICE in bids else np.zeros(len(bids), bool)
    t = bids["t"].to_numpy(dtype=int)
    available, _ = forecast_known(
        batch.forecasts, "der_available", bids["bid_id"], bids["interval_start"], decision[t], bids["quantity_mw"]
    )
    bids["quantity_mw"] = np.where(two_part, np.clip(available - res.reserved(), 0.0, None), 0.0)
    if two_part.any():
        bids["cost"] = bids["price_eur_mwh"].to_numpy() + bids[AVAILABILITY_PRICE].fillna(0.0).to_numpy()
    needs = prep.needs.copy()
    nt = needs["t"].to_numpy(dtype=int)
    needs["quantity_mw"], _ = forecast_known(
        batch.forecasts, "need", needs["need_id"], needs["interval_start"], decision[nt], needs["quantity_mw"]
    )
    return step_inputs(batch, replace(prep, bids=bids, needs=needs), step, np.zeros(len(bids)), known)


def record(res: Reservations, step: Step, outcomes: list[StepOutcome]) -> list[StepOutcome]:
    """Record a reservation step's choices in ``res``; the outcomes keep their model
    statistics only (a reservation activates, serves and prices nothing)."""
    for out in outcomes:
        if len(out.awards):
            res.add(step, out.awards)
    return [StepOutcome(o.awards.iloc[:0], o.needs.iloc[:0], o.node_prices.iloc[:0], o.liquidity.iloc[:0], o.stats)
            for o in outcomes]  # fmt: skip


def reservation_ids(steps: np.ndarray, bid_ids: pd.Series) -> np.ndarray:
    """``<reserving step>/<bid_id>`` per row (vectorised)."""
    return (pd.Series(steps, dtype=object).astype(str) + "/" + bid_ids.astype(str).to_numpy()).to_numpy(dtype=object)


def called(res: Reservations, prep: Prepared, step: Step, outcomes: list[StepOutcome]) -> list[StepOutcome]:
    """The first pass's awards as calls on their reservations: paid the bid's utilisation
    price, naming the reservation; the activated MW are counted in ``res``. Its node prices
    and liquidity are dropped: the step's market is its second pass."""
    price = prep.bids["price_eur_mwh"].to_numpy()
    for out in outcomes:
        # the market's prices and liquidity are the second pass's (this one sells held MW only)
        out.node_prices, out.liquidity = out.node_prices.iloc[:0], out.liquidity.iloc[:0]
        aw = out.awards
        if not len(aw):
            continue
        pos = aw["pos"].to_numpy(dtype=int)
        steps = res.rows["step"].to_numpy(dtype=object)[res.call(step, aw)]
        ids = reservation_ids(steps, aw["bid_id"])
        out.awards = aw.assign(clearing_price_eur_mwh=price[pos], reservation_id=ids)
    return outcomes


def left_after(needs: pd.DataFrame, first: list[StepOutcome]) -> pd.DataFrame:
    """The DSO needs the second pass buys: each less what the first pass served (a DSO buys
    relief per need; the TSO's balance already counts the net the first pass activated)."""
    served = pd.concat([o.needs for o in first if len(o.needs)] or [pd.DataFrame(columns=["need_id", "served_mw"])])
    got = served.groupby("need_id")["served_mw"].sum()
    dso = (needs["buyer_id"] != TSO_ID).to_numpy()
    less = got.reindex(needs["need_id"]).fillna(0.0).to_numpy()
    out = needs.assign(quantity_mw=np.where(dso, needs["quantity_mw"].to_numpy() - less, needs["quantity_mw"]))
    return out[~dso | (out["quantity_mw"].to_numpy() > 1e-9)]


def merge_needs(first: list[StepOutcome], second: list[StepOutcome], prep: Prepared) -> None:
    """One result per need across both passes (in place): a DSO need served in the first pass
    adds to what the second served (or stands alone if the second had nothing left to
    buy); a TSO need's second-pass result already counts the first's activations."""
    a = pd.concat([o.needs for o in first if len(o.needs)] or [pd.DataFrame(columns=["need_id"])], ignore_index=True)
    if not len(a):
        return
    dso_ids = set(prep.needs.loc[prep.needs["buyer_id"] != TSO_ID, "need_id"])
    a = a[a["need_id"].isin(dso_ids)]
    in_second = set()
    for out in second:
        if not len(out.needs):
            continue
        extra = a.set_index("need_id")["served_mw"].reindex(out.needs["need_id"]).fillna(0.0).to_numpy()
        out.needs = out.needs.assign(served_mw=out.needs["served_mw"].to_numpy() + extra)
        in_second |= set(out.needs["need_id"])
    for out in (o for o in first if len(o.needs)):  # DSO needs the second pass had nothing left of
        out.needs = out.needs[out.needs["need_id"].isin(dso_ids - in_second)]


def area_of(prep: Prepared, holder: np.ndarray, need_id: np.ndarray) -> np.ndarray:
    """The area of each reservation's need (the system for the TSO)."""
    areas = prep.needs.set_index("need_id")["area_id"]
    found = areas.reindex(pd.Index(need_id)).to_numpy(dtype=object)
    return np.where(holder == TSO_ID, SYSTEM_AREA, found)


def reservations_table(batch: Batch, prep: Prepared, design: Design, res: Reservations) -> pd.DataFrame:
    """``reservations``: one row per reservation (section 3a): the MW held, by whom, at which
    availability and utilisation price, how much its holder activated and the availability
    cost (EUR = availability price x MW x interval hours)."""
    h = batch.config.interval_hours
    r = res.rows[res.rows["mw"].to_numpy(dtype=float) > 1e-9] if res.any() else res.rows
    b = prep.bids.iloc[r["pos"].to_numpy(dtype=int)]
    mw = np.round(r["mw"].to_numpy(dtype=float), 6)
    price = b[AVAILABILITY_PRICE].to_numpy(dtype=float) if AVAILABILITY_PRICE in b else np.zeros(len(b))
    holder = r["holder"].to_numpy(dtype=object)
    step = r["step"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "reservation_id": reservation_ids(step, b["bid_id"]),
            "bid_id": b["bid_id"].to_numpy(),
            "der_id": b["der_id"].to_numpy(),
            "aggregator_id": b["aggregator_id"].to_numpy(),
            "dso_id": b["dso_id"].to_numpy(),
            "node_id": b["node_id"].to_numpy(),
            "buyer_id": holder,
            "service": np.where(holder == TSO_ID, Service.TSO_BALANCING.value, Service.DSO_CONGESTION.value),
            "need_id": r["need_id"].to_numpy(dtype=object),
            "area_id": area_of(prep, holder, r["need_id"].to_numpy(dtype=object)),
            "interval_start": b["interval_start"].to_numpy(),
            "direction": b["direction"].to_numpy(),
            "reserved_mw": mw,
            "activated_mw": np.round(np.minimum(r["activated"].to_numpy(dtype=float), mw), 6),
            "availability_price_eur_mw_h": price,
            "utilisation_price_eur_mwh": b["price_eur_mwh"].to_numpy(dtype=float),
            "availability_cost_eur": np.round(price * mw * h, 6),
            "step": step,
            "operator": pd.Series(step, dtype=object).map({s.name: s.operator.value for s in design.steps}).to_numpy(),
            "operator_id": holder,
        }
    ).sort_values(["interval_start", "bid_id", "buyer_id"], ignore_index=True)
