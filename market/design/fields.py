"""Checks of single fields of a design step (each problem names the step and the field)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from market.enums import Buyer, Route, Tier, View
from market.errors import DesignError
from market.io.strict import is_number

TIERS = tuple(t.value for t in Tier)
VIEWS = tuple(v.value for v in View)
ROUTES = tuple(r.value for r in Route)


def fail(where: str, msg: str) -> DesignError:
    return DesignError(f"{where}: {msg}")


def instruction_path(path: object, starts: tuple[str, ...], where: str, key: str) -> tuple[Tier, ...]:
    """An instruction path: tiers from the buyer (or the step's operator) down to the DER."""
    if not isinstance(path, list) or not path or any(t not in TIERS for t in path):
        raise fail(where, f"{key} must be a path over tiers {TIERS}")
    if path[0] not in starts or path[-1] != "der":
        raise fail(where, f"{key} must start at {' or '.join(repr(s) for s in starts)} and end at 'der'")
    return tuple(Tier(t) for t in path)


def step_view(raw: dict[str, Any], buyers: tuple[Buyer, ...], i: int, where: str) -> View:
    view = raw.get("view", View.BIDS.value)
    if view not in VIEWS:
        raise fail(where, f"view must be one of {VIEWS}")
    if view != View.BIDS.value and buyers != (Buyer.TSO,):
        raise fail(where, f"view = {view!r} is a TSO step's view: it needs buyers = ['tso']")
    for key, needs in (("interface_steps", "interface"), ("min_aggregation_kw", "aggregator_node")):
        if key in raw and view != needs:
            raise fail(where, f"{key} applies to view = {needs!r} only")
    if "multi_node_route" in raw and (view != View.AGGREGATOR.value or raw["multi_node_route"] not in ROUTES):
        raise fail(where, f"multi_node_route applies to view = 'aggregator' only and is one of {ROUTES}")
    if "direct_min_mw" in raw and view != View.INTERFACE.value:
        raise fail(where, "direct_min_mw applies to view = 'interface' only")
    if raw.get("simultaneous") and i == 0:
        raise fail(where, "simultaneous needs a step before it to run alongside")
    return View(view)


def whole_number(raw: dict[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise fail(where, f"{key} must be a whole number in [1, 1000], not {value!r}")
    return value


def amount(raw: dict[str, Any], key: str, default: float | None, where: str) -> float | None:
    if key not in raw:
        return default
    value = raw[key]
    if not is_number(value) or not 0 <= value <= 1e5:
        raise fail(where, f"{key} must be a number in [0, 1e5], not {value!r}")
    return float(value)


def check_reservations(steps: Sequence[Any], where: str) -> None:
    """A reservation step decides at a gate, sees bids (not offers), and comes before its
    buyers' activation step; a buyer reserves in one step at most."""
    for i, st in enumerate(steps):
        if not st.reserve:
            continue
        w = f"{where} steps[{i}]"
        if st.gate is None:
            raise fail(w, "a reservation step (reserve = true) needs a gate such as 'D-1 10:00'")
        if st.view is not View.BIDS or st.simultaneous or st.dso_override or st.prequalify:
            raise fail(w, "a reservation step sees each bid (view 'bids'), runs alone and overrides nothing")
        for b in st.buyers:
            if any(o.reserve and b in o.buyers for o in steps[:i]):
                raise fail(w, f"buyer '{b}' reserves in more than one step")
            if not any(not o.reserve and b in o.buyers for o in steps[i + 1 :]):
                raise fail(w, f"buyer '{b}' reserves here but no later step activates its reservation")
