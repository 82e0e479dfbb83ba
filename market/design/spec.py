"""Coordination designs as data.

A design is an ordered list of clearing *steps*. A step says who buys (the TSO,
the DSOs, or both in one joint optimisation), whether each DSO clears alone
(fan-out), which bids it may use (all, or what earlier steps left), which network
constraints and traffic-light signals it enforces, and along which tiers its
dispatch instructions travel. Presets live in ``market/design/presets/*.toml``; a user
passes a path to any other TOML file of the same form.

Step fields (TOML ``[[steps]]``):

``buyers``        list of ``"tso"`` / ``"dso"``: whose needs this step clears.
``per_dso``       each DSO clears its own needs alone (requires buyers = ["dso"]).
(Every step sees only the capacity earlier steps left: a bid is never sold twice.)
``prequalify``    cap each remaining bid at what it can deliver alone without breaking
                  the DSO's constraints and signals (the DSO's check before forwarding).
``constraints``   ``"all"``, ``"distribution"`` (DSO-owned), ``"transmission"``
                  (TSO-owned), ``"own"`` (the clearing DSO's), or ``"none"``.
``signals``       ``"full"`` (green/amber/red), ``"red"`` (red only), ``"computed"`` (the
                  DSOs' own lights from the headroom earlier steps left) or ``"none"``;
                  applies to activations bought by the TSO (with ``view = "interface"``
                  the DSOs apply them to their own curves).
``dispatch``      table buyer -> instruction path, e.g. ``tso = ["tso", "dso",
                  "aggregator", "der"]``: which tiers each activation passes.
``observed_by_dso`` whether the step's results are sent to the DSO before dispatch (default
                  false: a DSO knows an activation only if it bought it, prequalified
                  it, relays its instruction, or is sent the results).
``operator``      who runs the step: ``tso``, ``dso`` (each DSO, with ``per_dso``),
                  ``platform`` (a joint market) or ``idso``; default from ``buyers``.
``view``          how the step sees the flexibility (:class:`market.enums.View`): ``bids``
                  (each DER bid), ``interface`` (each DSO's aggregated offer curve at its
                  T-D interface, disaggregated by the DSO afterwards), ``aggregator_node``
                  (NYISO: per aggregator and T-D interface, at least ``min_aggregation_kw``) or
                  ``aggregator`` (CAISO multi-node: per aggregator within one DSO's network,
                  location unknown).
``multi_node_route`` with ``view = "aggregator"``: only aggregators on this route opt in to the
                  multi-node model (CAISO's DER aggregations); the rest are seen per DER.
``interface_steps`` price bands per interface curve (``view = "interface"``; default 5).
``min_aggregation_kw`` smallest aggregation admitted (``view = "aggregator_node"``).
``direct_min_mw`` with ``view = "interface"``: bids of at least this size stay directly
                  on the TSO's market (NYISO Alternative 2's large DER), instructed along
                  ``direct_path``.
``direct_path``   the path of activations that reached a TSO step directly, not through
                  the DSO (route ``tso-direct``, large DER); default tso > aggregator > der.
``shares_dso_needs`` the step knows the DSOs' needs (a joint step, or lights that protect them):
                  it takes no bid that would move a need's area against the need.
``blind_to_earlier`` no information path from earlier steps reaches it before delivery: it
                  sees neither their activations nor the capacity they used (``sold_twice_mwh``).
``gate``          when the step decides: ``"D-1 12:00"``, ``"H-1"``, ``"T-15min"``
                  (:mod:`market.io.gates`); without one, at delivery. What it knows
                  then (forecasts, published lights, earlier steps' activations) is
                  decided by the batch's information paths (:mod:`market.clearing.information`).
``reserve``       a reservation step (two-part products, section 3a): at its (early) ``gate``,
                  on the needs and DER availability its operator has forecast, it reserves
                  capacity of two-part bids (``availability_price_eur_mw_h``) for its buyers,
                  at the least availability plus utilisation cost; it activates nothing. The
                  buyer's later step activates its reserved capacity first at the bid's
                  utilisation price, then buys the rest from capacity nobody holds
                  (:mod:`market.clearing.reservation`).
``simultaneous``  the step runs at the same time as the step before it (separate
                  processes, NYISO Alternative 1): it sees neither that step's activations
                  nor the capacity it used; each learns of the other only afterwards.

Routes: a bid reaches a step only along its aggregator's route (``aggregators`` table):
a TSO step sees ``tso-direct`` and ``both`` aggregators, plus ``via-dso`` ones when the DSO
passes them up (``prequalify`` or ``view = "interface"``); DSO, iDSO and platform steps see
``via-dso`` and ``both``; a platform sees all.

Design-level ``routes`` (:class:`market.enums.RoutePolicy`): ``aggregators`` (default) keeps
each aggregator's own route; ``through-dso`` sends every aggregator through its DSO (Total
DSO: tso-direct and both aggregators are redirected, counted per aggregator in the metric
``routes_overridden_bids``); ``every-aggregator`` lets every step reach every aggregator
(a platform that sees all DER).

Design-level ``reservation_use`` (:class:`market.enums.ReservationUse`): who may activate a
reservation: ``holder`` (default; reserved MW are never available to the other buyer) or
``idle-to-other`` (the other buyer may take what the holder left idle once the holder's
activation step has run).

Design-level ``tso_dso_combined``: one operator runs transmission and distribution (Japan's
TDSO): its instructions skip no DSO tier (no tier bypassing) and it knows all it decides.

Design-level ``data_links``: extra direct data links into the TSO (e.g. ``["der"]``
for smart-meter data access) counted by the cyber-exposure metric, as read-only links
apart from dispatch links; with ``data_links_direct_only = true`` only from the DER whose
activations reached the TSO directly (NYISO Alternative 2's few large DER).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from market.design.fields import TIERS, amount, check_reservations, fail, instruction_path, step_view, whole_number
from market.design.predictions import PredictionSource, parse_predictions, stated
from market.enums import (
    Buyer,
    ConstraintScope,
    Operator,
    ReservationUse,
    Route,
    RoutePolicy,
    SignalMode,
    Tier,
    View,
)
from market.errors import DesignError
from market.io.gates import parse_gate
from market.io.strict import is_number, parse_toml, unknown_keys

BUYERS = tuple(b.value for b in Buyer)
CONSTRAINT_SCOPES = tuple(c.value for c in ConstraintScope)
SIGNAL_MODES = tuple(m.value for m in SignalMode)
OPERATORS = tuple(o.value for o in Operator)
DIRECT_PATH = (Tier.TSO, Tier.AGGREGATOR, Tier.DER)
DESIGN_KEYS = (
    "name",
    "title",
    "description",
    "report_section",
    "models",
    "data_links",
    "steps",
    "predictions",
    "prediction_notes",
    "prediction_basis",
    "routes",
    "tso_dso_combined",
    "data_links_direct_only",
    "reservation_use",
)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Step:
    """One clearing step of a design (see the module docstring for each field)."""

    name: str
    buyers: tuple[Buyer, ...]
    operator: Operator = Operator.PLATFORM
    per_dso: bool = False
    prequalify: bool = False
    constraints: ConstraintScope = ConstraintScope.ALL
    signals: SignalMode = SignalMode.FULL
    dispatch: dict[Buyer, tuple[Tier, ...]] = field(default_factory=dict)
    observed_by_dso: bool = False
    amber_margin: float = 0.2  # computed lights: amber below this share of a limit left
    dso_override: bool = False  # after this step the DSOs undo its TSO activations that break their limits
    view: View = View.BIDS
    interface_steps: int = 5
    min_aggregation_kw: float = 0.0
    direct_min_mw: float | None = None
    direct_path: tuple[Tier, ...] = DIRECT_PATH
    simultaneous: bool = False
    shares_dso_needs: bool = False  # a joint step: takes nothing that moves a DSO need's area against it
    blind_to_earlier: bool = False  # no information path from the earlier steps reaches it before delivery
    multi_node_route: Route | None = None  # view aggregator: only this route's aggregators opt in
    gate: str | None = None  # when the step decides (market.io.gates); None: at delivery
    reserve: bool = False  # reserves two-part capacity for its buyers at its gate; activates nothing

    @property
    def passes_through_dso(self) -> bool:
        """Whether bids reach this (TSO) step through the DSO: forwarded or aggregated by it."""
        return self.prequalify or self.view is View.INTERFACE

    def path_for(self, buyer: Buyer) -> tuple[Tier, ...]:
        """The tiers an activation bought by ``buyer`` in this step passes, ending at the DER."""
        default = (Tier(buyer.value), Tier.AGGREGATOR, Tier.DER)
        return self.dispatch.get(buyer, default)


@dataclass(frozen=True)
class Design:
    """A coordination design: an ordered list of steps plus what the report says of it."""

    name: str
    title: str
    steps: tuple[Step, ...]
    description: str = ""
    report_section: str = ""
    models: tuple[str, ...] = ()
    data_links: tuple[Tier, ...] = ()
    source: str = ""
    predictions: dict[str, str] = field(default_factory=dict)  # risk -> lower / higher / similar
    prediction_notes: dict[str, str] = field(default_factory=dict)  # risk -> why the engine may differ
    prediction_sources: dict[str, PredictionSource] = field(default_factory=dict)  # risk -> quote or inference
    routes: RoutePolicy = RoutePolicy.AGGREGATORS  # whose route rules: the aggregators' or the design's
    tso_dso_combined: bool = False  # one operator runs transmission and distribution (Japan's TDSO)
    data_links_direct_only: bool = False  # data links only from DER whose activations reached the TSO directly
    reservation_use: ReservationUse = ReservationUse.HOLDER  # who may activate reserved capacity

    @property
    def reserves(self) -> bool:
        """Whether any step reserves capacity (two-part products)."""
        return any(s.reserve for s in self.steps)

    def with_interface_steps(self, bands: int) -> Design:
        """The same design with ``bands`` price bands in every interface-offer step."""
        steps = tuple(replace(s, interface_steps=bands) if s.view is View.INTERFACE else s for s in self.steps)
        return replace(self, steps=steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "report_section": self.report_section,
            "models": list(self.models),
            "data_links": [str(t) for t in self.data_links],
            "predictions": dict(self.predictions),
            "prediction_notes": dict(self.prediction_notes),
            **({"prediction_basis": basis} if (basis := stated(self.prediction_sources)) else {}),
            **({} if self.routes is RoutePolicy.AGGREGATORS else {"routes": str(self.routes)}),
            **({"tso_dso_combined": True} if self.tso_dso_combined else {}),
            **({"data_links_direct_only": True} if self.data_links_direct_only else {}),
            **({"reservation_use": str(self.reservation_use)} if self.reserves else {}),
            "steps": [
                _without_default_gate(
                    {
                        **s.__dict__,
                        "buyers": [str(b) for b in s.buyers],
                        "operator": str(s.operator),
                        "constraints": str(s.constraints),
                        "signals": str(s.signals),
                        "dispatch": {str(k): [str(t) for t in v] for k, v in s.dispatch.items()},
                        "view": str(s.view),
                        "direct_path": [str(t) for t in s.direct_path],
                    }
                )
                for s in self.steps
            ],
        }


FLAGS = ("shares_dso_needs", "blind_to_earlier", "reserve")
NEWER = (*FLAGS, "multi_node_route")  # left out of a manifest where off, as before they existed


def _without_default_gate(step: dict[str, Any]) -> dict[str, Any]:
    """A step's settings without a ``gate`` or a newer flag it does not use (its manifest as before)."""
    return {k: v for k, v in step.items() if not (k == "gate" and v is None) and not (k in NEWER and not v)}


def _operator(raw: dict[str, Any], buyers: tuple[Buyer, ...], where: str) -> Operator:
    """The step's operator as given, else the one its buyers imply (both: a platform)."""
    if "operator" in raw:
        if raw["operator"] not in OPERATORS:
            raise fail(where, f"operator must be one of {OPERATORS}")
        return Operator(raw["operator"])
    if len(buyers) > 1:
        return Operator.PLATFORM
    return Operator.TSO if buyers == (Buyer.TSO,) else Operator.DSO


def parse_design(raw: dict[str, Any], where: str) -> Design:
    """Check and build a :class:`Design` from parsed TOML; every problem names its field."""
    if "name" not in raw:
        raise fail(where, "missing 'name'")
    if not isinstance(raw["name"], str) or not NAME.fullmatch(raw["name"]) or ".." in raw["name"]:
        raise fail(
            where, f"name {raw['name']!r} must be an identifier (letters, digits, '.', '_', '-'); it names folders"
        )
    for key, reason in unknown_keys(raw, DESIGN_KEYS):
        raise fail(where, f"{key}: {reason}")
    for key in ("title", "description", "report_section"):
        if key in raw and not isinstance(raw[key], str):
            raise fail(where, f"{key} must be text")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw or not all(isinstance(s, dict) for s in steps_raw):
        raise fail(where, "needs at least one [[steps]] table")
    steps = []
    for i, s in enumerate(steps_raw):
        w = f"{where} steps[{i}]"
        for key, reason in unknown_keys(s, Step.__dataclass_fields__):
            raise fail(w, f"{key}: {reason}")
        for key in FLAGS + ("per_dso", "prequalify", "observed_by_dso", "dso_override", "simultaneous"):
            if key in s and not isinstance(s[key], bool):
                raise fail(w, f"{key} must be true or false, not {s[key]!r}")
        for key in ("name", "constraints", "signals", "operator", "view"):
            if key in s and not isinstance(s[key], str):
                raise fail(w, f"{key} must be text, not {s[key]!r}")
        margin = s.get("amber_margin", 0.2)
        if not is_number(margin) or not 0 <= margin <= 1:
            raise fail(w, f"amber_margin must be a number in [0, 1], not {margin!r}")
        if not isinstance(s.get("buyers", []), list) or not isinstance(s.get("dispatch", {}), dict):
            raise fail(w, "buyers must be a list and dispatch a table")
        names = tuple(s.get("buyers", ()))
        if not names or any(b not in BUYERS for b in names):
            raise fail(w, f"buyers must be a non-empty subset of {BUYERS}")
        buyers = tuple(Buyer(b) for b in names)
        operator = _operator(s, buyers, w)
        if s.get("per_dso") and buyers != (Buyer.DSO,):
            raise fail(w, "per_dso needs buyers = ['dso']")
        if s.get("constraints", "all") not in CONSTRAINT_SCOPES:
            raise fail(w, f"constraints must be one of {CONSTRAINT_SCOPES}")
        if s.get("signals", "full") not in SIGNAL_MODES:
            raise fail(w, f"signals must be one of {SIGNAL_MODES}")
        dispatch: dict[Buyer, tuple[Tier, ...]] = {}
        for buyer, path in s.get("dispatch", {}).items():
            if buyer not in BUYERS:
                raise fail(w, f"dispatch.{buyer}: buyer must be one of {BUYERS}")
            dispatch[Buyer(buyer)] = instruction_path(path, (buyer, operator.value), w, f"dispatch.{buyer}")
        view = step_view(s, buyers, i, w)
        direct_path = instruction_path(s.get("direct_path", [t.value for t in DIRECT_PATH]), ("tso",), w, "direct_path")
        steps.append(
            Step(
                name=str(s.get("name", f"step{i + 1}")),
                buyers=buyers,
                operator=operator,
                per_dso=bool(s.get("per_dso", False)),
                prequalify=bool(s.get("prequalify", False)),
                constraints=ConstraintScope(s.get("constraints", "all")),
                signals=SignalMode(s.get("signals", "full")),
                dispatch=dispatch,
                observed_by_dso=bool(s.get("observed_by_dso", False)),
                amber_margin=float(margin),
                dso_override=bool(s.get("dso_override", False)),
                view=view,
                interface_steps=whole_number(s, "interface_steps", 5, w),
                min_aggregation_kw=amount(s, "min_aggregation_kw", 0.0, w) or 0.0,
                direct_min_mw=amount(s, "direct_min_mw", None, w),
                direct_path=direct_path,
                simultaneous=bool(s.get("simultaneous", False)),
                shares_dso_needs=bool(s.get("shares_dso_needs", False)),
                blind_to_earlier=bool(s.get("blind_to_earlier", False)),
                multi_node_route=Route(s["multi_node_route"]) if "multi_node_route" in s else None,
                gate=parse_gate(s["gate"], w).text if "gate" in s else None,
                reserve=bool(s.get("reserve", False)),
            )
        )
    check_reservations(steps, where)
    cleared = [b for st in steps if not st.reserve for b in st.buyers]
    for b in Buyer:
        if cleared.count(b) > 1:
            raise fail(where, f"buyer '{b}' is cleared in more than one step")
    if not isinstance(raw.get("data_links", []), list) or not isinstance(raw.get("models", []), list):
        raise fail(where, "data_links and models must be lists")
    link_names = tuple(raw.get("data_links", ()))
    if any(t not in TIERS for t in link_names):
        raise fail(where, f"data_links must name tiers {TIERS}")
    links = tuple(Tier(t) for t in link_names)
    said = parse_predictions(raw, where)
    for flag in ("tso_dso_combined", "data_links_direct_only"):
        if not isinstance(raw.get(flag, False), bool):
            raise fail(where, f"{flag} must be true or false, not {raw[flag]!r}")
    uses = tuple(u.value for u in ReservationUse)
    if raw.get("reservation_use", ReservationUse.HOLDER.value) not in uses:
        raise fail(where, f"reservation_use must be one of {uses}, not {raw.get('reservation_use')!r}")
    policies = tuple(r.value for r in RoutePolicy)
    if raw.get("routes", RoutePolicy.AGGREGATORS.value) not in policies:
        raise fail(where, f"routes must be one of {policies}, not {raw.get('routes')!r}")
    return Design(
        name=str(raw["name"]),
        title=str(raw.get("title", raw["name"])),
        steps=tuple(steps),
        description=str(raw.get("description", "")).strip(),
        report_section=str(raw.get("report_section", "")),
        models=tuple(raw.get("models", ())),
        data_links=links,
        source=where,
        predictions=said.expected,
        prediction_notes=said.notes,
        prediction_sources=said.sources,
        routes=RoutePolicy(raw.get("routes", RoutePolicy.AGGREGATORS.value)),
        tso_dso_combined=raw.get("tso_dso_combined", False),
        data_links_direct_only=raw.get("data_links_direct_only", False),
        reservation_use=ReservationUse(raw.get("reservation_use", ReservationUse.HOLDER.value)),
    )


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("market.design.presets").iterdir() if p.name.endswith(".toml"))


def load_design(name_or_path: str | Path) -> Design:
    """A preset by name (``single``, ``dso-led``, ...) or a design TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as exc:
            raise DesignError(f"{path}: not UTF-8 text") from exc
    elif str(name_or_path) in preset_names():  # presets resolve inside the package only
        text = (resources.files("market.design.presets") / f"{name_or_path}.toml").read_text()
        where = f"preset {name_or_path}"
    else:
        raise DesignError(
            f"unknown design {str(name_or_path)!r}; presets: {', '.join(preset_names())}, or a .toml path"
        )
    try:
        raw = parse_toml(text, where)
    except ValueError as exc:
        raise DesignError(str(exc)) from exc
    return parse_design(raw, where)
