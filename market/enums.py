"""The vocabulary of the data contract as enums: every switch a user or a design sets.

Each is a :class:`~enum.StrEnum`, so a member equals (and serialises as) the text that
appears in the files (``Direction.UP == "up"``); code compares members, never strings.

Sign convention (everywhere): **up** = more injection into the grid or less consumption
(sign +1), **down** = the opposite (sign -1).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where used: the command line starts without it
    import numpy as np
    import pandas as pd

TSO_ID = "tso"  # the buyer_id (and owner_id) of the TSO
SYSTEM_AREA = "system"  # the area_id of TSO balancing needs


class Direction(StrEnum):
    """Direction of an activation, with its sign (+1 up, -1 down)."""

    UP = "up"
    DOWN = "down"

    @property
    def sign(self) -> float:
        return 1.0 if self is Direction.UP else -1.0

    @staticmethod
    def signs(direction: pd.Series | np.ndarray) -> np.ndarray:
        """+1.0 where ``direction`` is up, -1.0 where down (vectorised)."""
        import numpy as np

        return np.where(np.asarray(direction) == Direction.UP.value, 1.0, -1.0)


class Service(StrEnum):
    """What a need buys (and what a bid may be used for)."""

    TSO_BALANCING = "tso_balancing"
    DSO_CONGESTION = "dso_congestion"

    @staticmethod
    def listed(lists: pd.Index | np.ndarray, service: Service) -> np.ndarray:
        """Per distinct ``services`` list, and a last ``False`` for the code -1 a missing list
        gets from :func:`pandas.factorize`: does it list ``service``?"""
        import numpy as np

        return np.array([service.value in str(u).split(";") for u in lists] + [False], dtype=bool)


class SignalState(StrEnum):
    """A DSO traffic light for one area and interval."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class Pricing(StrEnum):
    """How awards are paid: the bid's own price, or the marginal value of the buyer's rows."""

    PAY_AS_BID = "pay-as-bid"
    PAY_AS_CLEAR = "pay-as-clear"


DEFAULT_PRICING = Pricing.PAY_AS_CLEAR  # one default everywhere: the CLI, clear(), compare(), sweeps


class Buyer(StrEnum):
    """Whose needs a design step clears: the TSO's, the DSOs', or both jointly."""

    TSO = "tso"
    DSO = "dso"


class Operator(StrEnum):
    """Who runs a design step: the TSO, each DSO on its own, a platform clearing TSO and DSO
    needs jointly (ENTSO-E marketplace, UK Future World 2), or an independent DSO market
    operator across several distribution networks (AEMO three-way)."""

    TSO = "tso"
    DSO = "dso"
    PLATFORM = "platform"
    IDSO = "idso"


class ConstraintScope(StrEnum):
    """Which network constraints a step enforces."""

    ALL = "all"
    DISTRIBUTION = "distribution"  # DSO-owned
    TRANSMISSION = "transmission"  # TSO-owned
    OWN = "own"  # the clearing DSO's own (fan-out steps)
    NONE = "none"


class SignalMode(StrEnum):
    """Which traffic-light signals a step respects for the TSO's activations."""

    FULL = "full"  # the batch's green / amber / red signals
    RED = "red"  # the batch's red signals only
    COMPUTED = "computed"  # the DSOs' own lights, computed from the headroom earlier steps left
    NONE = "none"


class RoutePolicy(StrEnum):
    """A design's rule for aggregators' routes (design-level ``routes``): each aggregator's
    own (``aggregators`` table), every aggregator through its DSO (Total DSO: a tso-direct
    or both aggregator is redirected, and the run counts its bids), or every aggregator
    reached by the design's operators (a platform that sees everything)."""

    AGGREGATORS = "aggregators"
    THROUGH_DSO = "through-dso"
    EVERY_AGGREGATOR = "every-aggregator"


class Route(StrEnum):
    """An aggregator's route to market (``aggregators`` table): through the DSO's market,
    directly to the TSO, or both (the default for an aggregator the table does not list)."""

    VIA_DSO = "via-dso"
    TSO_DIRECT = "tso-direct"
    BOTH = "both"

    def reaches(self, operator: Operator) -> bool:
        """Whether an aggregator on this route offers into a step run by ``operator``
        (a TSO step: tso-direct or both; a DSO, iDSO or platform step: via-dso or both)."""
        if self is Route.BOTH:
            return True
        return (self is Route.TSO_DIRECT) == (operator is Operator.TSO)


class View(StrEnum):
    """How a step sees the flexibility on offer.

    ``bids``: every remaining DER bid individually. ``interface``: per DSO interface,
    interval and direction, a stepwise curve of what the DSO can deliver (at most
    ``interface_steps`` price bands), disaggregated by the DSO after the step.
    ``aggregator_node``: each bid at its node, admitted only in aggregations of at least
    ``min_aggregation_kw`` per aggregator and T-D interface (NYISO: "entirely within a
    single TDC interface or pricing node"). ``aggregator``: per aggregator across
    nodes (CAISO multi-node): the step does not know where each MW lands.
    """

    BIDS = "bids"
    INTERFACE = "interface"
    AGGREGATOR_NODE = "aggregator_node"
    AGGREGATOR = "aggregator"


class Tier(StrEnum):
    """A tier an instruction passes on its way to a DER."""

    TSO = "tso"
    DSO = "dso"
    IDSO = "idso"
    COORDINATOR = "coordinator"
    AGGREGATOR = "aggregator"
    DER = "der"


class RunType(StrEnum):
    """Why a settlement run was made (the desk's calendar)."""

    INITIAL = "initial"  # the first statements of a period (T+n business days)
    RECALCULATION = "recalculation"  # a scheduled re-run with the newest meter data
    CORRECTION = "correction"  # an unscheduled re-run: corrected data, a resolved dispute


__all__ = [
    "TSO_ID",
    "SYSTEM_AREA",
    "Direction",
    "Service",
    "SignalState",
    "Pricing",
    "DEFAULT_PRICING",
    "Buyer",
    "Operator",
    "ConstraintScope",
    "SignalMode",
    "Tier",
    "Route",
    "View",
    "RunType",
]


class Product(StrEnum):
    """What an award buys (section 3a of the contract): ``energy`` (utilisation, EUR/MWh
    activated), ``availability`` (capacity held available, EUR/MW/h reserved, a two-part
    offer's first part) or ``capped-power`` (MaxUsage: a ceiling on a connection point's
    consumption, paid per MWh of relief and verified on the meter against the cap)."""

    ENERGY = "energy"
    AVAILABILITY = "availability"
    CAPPED_POWER = "capped-power"


class ReservationUse(StrEnum):
    """Who may activate capacity a buyer reserved (a design choice, report 3.4-3.5's
    multi-use rules): ``holder`` only the reserving buyer (the other buyer never gets the
    reserved MW), or ``idle-to-other`` (the other buyer may use what the holder left idle
    once the holder's activation step has run)."""

    HOLDER = "holder"
    IDLE_TO_OTHER = "idle-to-other"
