"""Typed results of a clearing run (never written into the inputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from market.design.spec import Design
from market.enums import Pricing


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

    @property
    def ok(self) -> bool:
        return self.status is ClearingStatus.OPTIMAL

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "awards": self.awards,
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
