"""Typed results of a clearing run (never written into the inputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from market.design.spec import Design
from market.enums import Pricing
from market.io.outputs import BID_AND_BUYER


class ClearingStatus(StrEnum):
    """Outcome of a whole design run."""

    OPTIMAL = "optimal"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelStats:
    """Size and timings of one optimisation (one step, or one DSO in a fan-out step)."""

    step: str
    part: str
    n_variables: int
    n_constraints: int
    n_integer: int
    build_seconds: float
    solve_seconds: float
    status: str
    objective_eur_h: float
    operator: str = ""  # who ran it, where not the step's operator (a DSO's curve or disaggregation)


@dataclass(frozen=True)
class ClearingResult:
    """The run tables of docs/contract.md ("A clearing run") plus solve statistics.

    ``awards``: one row per bid and buyer; ``prices``: one per need (area, service,
    direction, interval); ``node_prices``: locational up-price split into energy and
    congestion parts; ``unmet``: needs left short; ``flows``: every network row after
    dispatch with its violation; ``imbalance``: net activation minus the TSO need served.
    """

    design: Design
    pricing: Pricing
    status: ClearingStatus
    awards: pd.DataFrame
    prices: pd.DataFrame
    node_prices: pd.DataFrame
    unmet: pd.DataFrame
    flows: pd.DataFrame
    imbalance: pd.DataFrame
    needs: pd.DataFrame
    liquidity: pd.DataFrame
    stats: tuple[ModelStats, ...]
    dso_delivery: pd.DataFrame = field(default_factory=pd.DataFrame)
    signal_breaches: pd.DataFrame = field(default_factory=pd.DataFrame)
    conflicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    blind_violations: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    # MWh that two simultaneous steps both sold of one bid beyond its quantity: the DER
    # delivers its offered MW only, the later instruction gets what is left (never silent)
    sold_twice_mwh: float = 0.0
    stretches: int = 1  # stretches of the horizon cleared one by one (market.clearing.stream)
    # capacity held by reservation steps (market.clearing.reservation); None: the design reserves nothing
    reservations: pd.DataFrame | None = None

    @property
    def ok(self) -> bool:
        return self.status is ClearingStatus.OPTIMAL

    def tables(self) -> dict[str, pd.DataFrame]:
        """The run folder's tables. Where the design reserves, ``awards`` also holds one
        ``availability`` row per reservation (what settlement pays for availability) and
        ``reservations`` is written; ``self.awards`` stays the activations only."""
        held = {} if self.reservations is None else {"reservations": self.reservations}
        return {
            "awards": self.awards if self.reservations is None else with_availability(self.awards, self.reservations),
            **held,
            "prices": self.prices,
            "node_prices": self.node_prices,
            "unmet": self.unmet,
            "flows": self.flows,
            "imbalance": self.imbalance,
            "needs": self.needs,
            "liquidity": self.liquidity,
            "dso_delivery": self.dso_delivery,
            "signal_breaches": self.signal_breaches,
            "conflicts": self.conflicts,
            "blind_violations": self.blind_violations,
        }


def with_availability(awards: pd.DataFrame, reservations: pd.DataFrame) -> pd.DataFrame:
    """``awards`` plus one ``availability`` award per reservation: the reserved MW, paid
    ``availability_price_eur_mw_h`` x MW x hours (``cost_eur``) whatever is activated; no
    energy. Activations keep ``product = "energy"`` and name the reservation they call."""
    r = reservations
    rows = pd.DataFrame(
        {
            **{c: r[c].to_numpy() for c, _ in BID_AND_BUYER},
            "need_id": r["need_id"].to_numpy(),
            "area_id": r["area_id"].to_numpy(),
            "interval_start": r["interval_start"].to_numpy(),
            "direction": r["direction"].to_numpy(),
            "quantity_mw": r["reserved_mw"].to_numpy(),
            "bid_price_eur_mwh": r["utilisation_price_eur_mwh"].to_numpy(),
            "nominated_baseline_mw": float("nan"),
            "clearing_price_eur_mwh": r["utilisation_price_eur_mwh"].to_numpy(),
            "price_eur_mwh": r["utilisation_price_eur_mwh"].to_numpy(),
            "pricing": "pay-as-bid",
            "energy_mwh": 0.0,
            "cost_eur": r["availability_cost_eur"].to_numpy(),
            "make_whole_eur": 0.0,
            "step": r["step"].to_numpy(),
            "operator": r["operator"].to_numpy(),
            "operator_id": r["operator_id"].to_numpy(),
            "path": "",
            "direct": False,
            "product": "availability",
            "reservation_id": r["reservation_id"].to_numpy(),
            "availability_price_eur_mw_h": r["availability_price_eur_mw_h"].to_numpy(),
        }
    )
    energy = awards.assign(availability_price_eur_mw_h=float("nan"))
    rows = rows.reindex(columns=energy.columns)
    parts = [p for p in (energy, rows) if len(p)]  # (an empty part would decide no dtype)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else energy)
    return out.sort_values(["interval_start", "bid_id", "buyer_id", "product"], ignore_index=True)
