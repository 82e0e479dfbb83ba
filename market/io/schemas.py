"""One schema per input table (docs/contract.md, "A batch" and the meter table).

Each table is described once, as a :class:`TableSpec`: its columns with units in
their names, which are required, their kinds, the value checks, the natural key
and the foreign keys. :func:`pandera_schema` turns a spec into a lazy pandera
``DataFrameSchema`` so every bad cell of a table is reported at once.

Sign convention (everywhere): ``up`` = more injection / less consumption,
``down`` = the opposite. Power in MW, prices in EUR/MWh, timestamps UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from market.enums import Direction, Route, Service, SignalState
from market.io.strict import blank_text, per_unique_mask

if TYPE_CHECKING:  # pandera (with pydantic and typeguard, 0.2 s) only where a schema is checked
    import pandera.pandas as pa

Kind = Literal["str", "float", "ts", "int", "bool", "date"]

DIRECTIONS = tuple(d.value for d in Direction)
SERVICES = tuple(s.value for s in Service)
SIGNAL_STATES = tuple(s.value for s in SignalState)
ROUTES = tuple(r.value for r in Route)


@dataclass(frozen=True)
class CheckSpec:
    """A value check of a column, made a ``pandera.Check`` by :func:`pandera_schema`:
    ``test`` gives a boolean Series (True where the value passes)."""

    test: Callable[[pd.Series], pd.Series]
    error: str
    name: str | None = None
    ignore_na: bool = True

    def as_pandera(self) -> pa.Check:
        import pandera.pandas as pa

        return pa.Check(self.test, error=self.error, name=self.name, ignore_na=self.ignore_na)


@dataclass(frozen=True)
class ColumnSpec:
    """A column: name (with unit suffix), kind, whether it must be present and non-null."""

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = False
    checks: tuple[CheckSpec, ...] = ()
    default: object = None  # filled in when an optional column is absent


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of this table must appear in ``ref_columns`` of ``ref_table``."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    when: tuple[str, str] | None = None  # (column, value): only rows where column == value


@dataclass(frozen=True)
class TableSpec:
    """A table of the contract: its columns in order, natural key and references."""

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    id_column: str | None
    required_table: bool = True
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    def column(self, name: str) -> ColumnSpec:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


PRICE_LIMIT_EUR_MWH = 1e6  # |price| above this is refused as absurd (physical bounds of the contract)
MW_LIMIT = 1e5  # |power| above this (100 GW) is refused
FACTOR_LIMIT = 1e3  # a sensitivity (MW of flow per MW injected) above this is refused
KWH_LIMIT = 1e8  # a meter reading above this per interval is refused


def _finite(limit: float) -> CheckSpec:
    """Finite and within ``±limit``: a huge value is a typo, not a market."""
    return CheckSpec(
        lambda s: np.isfinite(s.astype(float)) & (np.abs(s.astype(float)) <= limit),
        error=f"must be a finite number within ±{limit:g}",
    )


def _positive() -> CheckSpec:
    return CheckSpec(lambda s: s > 0, error="must be > 0")


def _non_negative() -> CheckSpec:
    return CheckSpec(lambda s: s >= 0, error="must be >= 0")


def _text_check(ok: Callable[[object], bool], error: str) -> CheckSpec:
    """A check of a text column, decided once per distinct value; a missing value passes
    (the not-null check reports it). ``ignore_na=False``: pandera's own missing-value
    scans (two per check, per object) are not needed."""
    return CheckSpec(
        lambda s: pd.Series(per_unique_mask(s, lambda v: v is None or ok(v)), index=s.index),
        error=error,
        ignore_na=False,
    )


def _one_of(values: tuple[str, ...]) -> CheckSpec:
    return _text_check(lambda v: v in values, f"must be one of {', '.join(values)}")


def _services_ok(v: object) -> bool:
    tokens = [t.strip() for t in str(v).split(";") if t.strip()]
    return bool(tokens) and all(t in SERVICES for t in tokens)


NON_EMPTY = "non_empty"


def _non_empty() -> CheckSpec:
    return CheckSpec(
        lambda s: pd.Series(~blank_text(s), index=s.index) | s.isna(), error="must not be empty", name=NON_EMPTY
    )


def _id(name: str, required: bool = True, nullable: bool = False) -> ColumnSpec:
    checks = () if nullable else (_non_empty(),)
    return ColumnSpec(name, "str", required=required, nullable=nullable, checks=checks)


BIDS = TableSpec(
    name="bids",
    columns=(
        _id("bid_id"),
        _id("aggregator_id"),
        _id("der_id"),
        _id("dso_id"),
        _id("node_id"),
        ColumnSpec("interval_start", "ts"),
        ColumnSpec("direction", "str", checks=(_one_of(DIRECTIONS),)),
        ColumnSpec("quantity_mw", "float", checks=(_finite(MW_LIMIT), _positive())),
        ColumnSpec(
            "min_quantity_mw",
            "float",
            required=False,
            checks=(_finite(MW_LIMIT), _non_negative()),
            default=0.0,
        ),
        ColumnSpec("price_eur_mwh", "float", checks=(_finite(PRICE_LIMIT_EUR_MWH),)),
        _id("block_id", required=False, nullable=True),
        _id("exclusive_group", required=False, nullable=True),
        ColumnSpec(
            "nominated_baseline_mw",
            "float",
            required=False,
            nullable=True,
            checks=(_finite(MW_LIMIT),),
        ),
        ColumnSpec(
            "services",
            "str",
            required=False,
            nullable=True,
            checks=(_text_check(_services_ok, "must be ';'-separated tso_balancing/dso_congestion"),),
        ),
        ColumnSpec(  # a two-part offer: the price of holding 1 MW available for 1 hour if reserved
            "availability_price_eur_mw_h",
            "float",
            required=False,
            nullable=True,
            checks=(_finite(PRICE_LIMIT_EUR_MWH), _non_negative()),
        ),
        ColumnSpec("submitted_at", "ts", required=False, nullable=True),  # checked against the gate closures
        ColumnSpec(  # capped power (MaxUsage): the consumption ceiling at the connection point
            "max_usage_mw", "float", required=False, nullable=True, checks=(_finite(MW_LIMIT), _non_negative())
        ),
    ),
    key=("bid_id",),
    id_column="bid_id",
    foreign_keys=(ForeignKey(("node_id",), "node_areas", ("node_id",)),),
)

NEEDS = TableSpec(
    name="needs",
    columns=(
        _id("need_id"),
        _id("buyer_id"),
        ColumnSpec("service", "str", checks=(_one_of(SERVICES),)),
        _id("area_id"),
        ColumnSpec("interval_start", "ts"),
        ColumnSpec("direction", "str", checks=(_one_of(DIRECTIONS),)),
        ColumnSpec("quantity_mw", "float", checks=(_finite(MW_LIMIT), _positive())),
        ColumnSpec("max_price_eur_mwh", "float", required=False, nullable=True, checks=(_finite(PRICE_LIMIT_EUR_MWH),)),
    ),
    key=("need_id",),
    id_column="need_id",
    required_table=True,
)

NODE_AREAS = TableSpec(
    name="node_areas",
    columns=(_id("area_id"), _id("node_id"), _id("dso_id")),
    key=("area_id", "node_id"),
    id_column=None,
)

CONSTRAINTS = TableSpec(
    name="constraints",
    columns=(
        _id("constraint_id"),
        _id("owner_id"),
        ColumnSpec("interval_start", "ts", nullable=True),
        ColumnSpec("base_flow_mw", "float", checks=(_finite(MW_LIMIT),)),
        ColumnSpec("max_flow_mw", "float", checks=(_finite(MW_LIMIT),)),
        ColumnSpec("min_flow_mw", "float", checks=(_finite(MW_LIMIT),)),
    ),
    key=("constraint_id", "interval_start"),
    id_column="constraint_id",
    required_table=False,
)

SENSITIVITIES = TableSpec(
    name="sensitivities",
    columns=(
        _id("constraint_id"),
        _id("node_id"),
        ColumnSpec("factor", "float", checks=(_finite(FACTOR_LIMIT),)),
    ),
    key=("constraint_id", "node_id"),
    id_column="constraint_id",
    required_table=False,
    foreign_keys=(
        ForeignKey(("constraint_id",), "constraints", ("constraint_id",)),
        ForeignKey(("node_id",), "node_areas", ("node_id",)),
    ),
)

SIGNALS = TableSpec(
    name="signals",
    columns=(
        _id("dso_id"),
        _id("area_id"),
        ColumnSpec("interval_start", "ts"),
        ColumnSpec("state", "str", checks=(_one_of(SIGNAL_STATES),)),
        ColumnSpec(
            "headroom_up_mw",
            "float",
            required=False,
            nullable=True,
            checks=(_finite(MW_LIMIT), _non_negative()),
        ),
        ColumnSpec(
            "headroom_down_mw",
            "float",
            required=False,
            nullable=True,
            checks=(_finite(MW_LIMIT), _non_negative()),
        ),
    ),
    key=("area_id", "interval_start"),
    id_column="area_id",
    required_table=False,
    foreign_keys=(ForeignKey(("dso_id", "area_id"), "node_areas", ("dso_id", "area_id")),),
)

AGGREGATORS = TableSpec(
    name="aggregators",
    columns=(_id("aggregator_id"), ColumnSpec("route", "str", checks=(_one_of(ROUTES),))),
    key=("aggregator_id",),
    id_column="aggregator_id",
    required_table=False,
    foreign_keys=(ForeignKey(("aggregator_id",), "bids", ("aggregator_id",)),),
)

# base_flow: a constraint's flow (key constraint_id); need: a need's MW (key need_id, read by
# reservation steps); der_available: the MW a bid's DER will have (key bid_id, read by reservation steps)
FORECAST_QUANTITIES = ("base_flow", "need", "der_available")

FORECASTS = TableSpec(
    name="forecasts",
    columns=(
        ColumnSpec("quantity", "str", checks=(_one_of(FORECAST_QUANTITIES),)),
        _id("key"),
        ColumnSpec("interval_start", "ts"),
        ColumnSpec("issued_at", "ts"),
        ColumnSpec("value", "float", checks=(_finite(MW_LIMIT),)),
    ),
    key=("quantity", "key", "interval_start", "issued_at"),
    id_column="key",
    required_table=False,
    foreign_keys=(
        ForeignKey(("key",), "constraints", ("constraint_id",), when=("quantity", "base_flow")),
        ForeignKey(("key",), "needs", ("need_id",), when=("quantity", "need")),
        ForeignKey(("key",), "bids", ("bid_id",), when=("quantity", "der_available")),
    ),
)

METER = TableSpec(
    name="meter",
    columns=(
        _id("der_id"),
        ColumnSpec("interval_start", "ts"),
        ColumnSpec("consumption_kwh", "float", checks=(_finite(KWH_LIMIT),)),
    ),
    key=("der_id", "interval_start"),
    id_column="der_id",
)

BATCH_TABLES: tuple[TableSpec, ...] = (
    BIDS,
    NEEDS,
    NODE_AREAS,
    CONSTRAINTS,
    SENSITIVITIES,
    SIGNALS,
    AGGREGATORS,
    FORECASTS,
)
TABLES: dict[str, TableSpec] = {t.name: t for t in (*BATCH_TABLES, METER)}

_PANDERA_DTYPE: dict[str, object] = {
    "str": object,
    "float": float,
    "ts": None,
    "int": "int64",
    "bool": bool,
    "date": None,
}


def pandera_schema(
    spec: TableSpec,
    *,
    coerced: bool = False,
    unique: bool = True,
    complete: frozenset[str] = frozenset(),
    empty: frozenset[str] = frozenset(),
) -> pa.DataFrameSchema:
    """A lazy pandera schema for one table.

    ``coerced``: the frame came through :mod:`market.io.coerce`, which already turned blank
    text into missing values (so the not-null check reports them, and the blank-text checks
    are left out). ``unique=False`` leaves out the key's uniqueness check, for a caller that
    has established it already; ``complete`` names columns known to hold no missing value
    (their not-null check, a per-object scan of a text column, is left out); ``empty`` names
    columns known to hold no value at all (their value checks have nothing to check; a
    required one still fails its not-null check).
    """
    import pandera.pandas as pa

    columns = {
        c.name: pa.Column(
            _PANDERA_DTYPE[c.kind],
            checks=[]
            if c.name in empty
            else [ch.as_pandera() for ch in c.checks if not (coerced and ch.name == NON_EMPTY)],
            nullable=c.nullable or c.name in complete,
            required=c.required,
            coerce=False,
        )
        for c in spec.columns
    }
    return pa.DataFrameSchema(columns, unique=list(spec.key) if unique else None, strict=False, name=spec.name)
