"""One schema per output table: the run folder (section "A clearing run" of
``docs/contract.md``) and the comparison. Settlement's tables are in
:mod:`settlement.schemas`.

Units are in the column names (``_mw``, ``_mwh``, ``_eur``, ``_eur_mwh``); timestamps
are UTC interval starts; ``direction`` is ``up``/``down`` with the contract's sign
convention. The tests check every run table against these schemas.
"""

from __future__ import annotations

from market.io.schemas import ColumnSpec, Kind, TableSpec

NEED_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("need_id", "str"),
    ("buyer_id", "str"),
    ("service", "str"),
    ("area_id", "str"),
    ("interval_start", "ts"),
    ("direction", "str"),
)  # what identifies a need, first in every table about needs


def columns_of(*columns: tuple[str, Kind] | tuple[str, Kind, bool]) -> tuple[ColumnSpec, ...]:
    """``(name, kind)`` or ``(name, kind, nullable)`` as column specs."""
    return tuple(ColumnSpec(c[0], c[1], nullable=bool(c[2]) if len(c) > 2 else False) for c in columns)


# who sold to whom: the first columns of every table about awarded or held bids
BID_AND_BUYER: tuple[tuple[str, Kind], ...] = (
    ("bid_id", "str"),
    ("der_id", "str"),
    ("aggregator_id", "str"),
    ("dso_id", "str"),
    ("node_id", "str"),
    ("buyer_id", "str"),
    ("service", "str"),
)

AWARDS = TableSpec(
    "awards",
    columns_of(
        *BID_AND_BUYER,
        ("need_id", "str", True),
        ("area_id", "str"),
        ("interval_start", "ts"),
        ("direction", "str"),
        ("quantity_mw", "float"),
        ("bid_price_eur_mwh", "float"),
        ("nominated_baseline_mw", "float", True),
        ("clearing_price_eur_mwh", "float"),
        ("price_eur_mwh", "float"),
        ("pricing", "str"),
        ("energy_mwh", "float"),
        ("cost_eur", "float"),
        ("make_whole_eur", "float"),
        ("step", "str"),
        ("operator", "str"),
        ("operator_id", "str"),
        ("path", "str"),
        ("direct", "bool"),
    )
    # present where the run trades more than energy (market.clearing.assemble.product_columns)
    + (
        ColumnSpec("product", "str", required=False),
        ColumnSpec("reservation_id", "str", required=False, nullable=True),
        ColumnSpec("max_usage_mw", "float", required=False, nullable=True),
        ColumnSpec("availability_price_eur_mw_h", "float", required=False, nullable=True),
    ),
    key=("bid_id", "buyer_id"),
    id_column="bid_id",
)

RESERVATIONS = TableSpec(
    "reservations",
    columns_of(
        ("reservation_id", "str"),
        *BID_AND_BUYER,
        ("need_id", "str", True),
        ("area_id", "str", True),
        ("interval_start", "ts"),
        ("direction", "str"),
        ("reserved_mw", "float"),
        ("activated_mw", "float"),
        ("availability_price_eur_mw_h", "float"),
        ("utilisation_price_eur_mwh", "float"),
        ("availability_cost_eur", "float"),
        ("step", "str"),
        ("operator", "str"),
        ("operator_id", "str"),
    ),
    key=("reservation_id",),
    id_column="reservation_id",
)

PRICES = TableSpec(
    "prices",
    columns_of(
        *NEED_COLUMNS,
        ("energy_eur_mwh", "float"),
        ("congestion_eur_mwh", "float"),
        ("price_eur_mwh", "float"),
    ),
    key=("need_id",),
    id_column="need_id",
)

NODE_PRICES = TableSpec(
    "node_prices",
    columns_of(
        ("node_id", "str"),
        ("interval_start", "ts"),
        ("energy_eur_mwh", "float"),
        ("congestion_eur_mwh", "float"),
        ("price_up_eur_mwh", "float"),
        ("step", "str"),
    ),
    key=("node_id", "interval_start", "step"),
    id_column="node_id",
)

UNMET = TableSpec(
    "unmet",
    columns_of(
        *NEED_COLUMNS,
        ("quantity_mw", "float"),
        ("unmet_mw", "float"),
        ("unmet_mwh", "float"),
    ),
    key=("need_id",),
    id_column="need_id",
)

FLOWS = TableSpec(
    "flows",
    columns_of(
        ("constraint_id", "str"),
        ("owner_id", "str"),
        ("interval_start", "ts"),
        ("base_flow_mw", "float"),
        ("flow_mw", "float"),
        ("min_flow_mw", "float"),
        ("max_flow_mw", "float"),
        ("limit_mw", "float", True),
        ("violation_mw", "float"),
        ("violation_mwh", "float"),
    ),
    key=("constraint_id", "interval_start"),
    id_column="constraint_id",
)

IMBALANCE = TableSpec(
    "imbalance",
    columns_of(
        ("interval_start", "ts"),
        ("net_activation_mw", "float"),
        ("tso_need_served_mw", "float"),
        ("imbalance_mw", "float"),
    ),
    key=("interval_start",),
    id_column=None,
)

RUN_NEEDS = TableSpec(
    "needs",
    columns_of(
        *NEED_COLUMNS,
        ("quantity_mw", "float"),
        ("max_price_eur_mwh", "float", True),
        ("served_mw", "float"),
        ("unmet_mw", "float"),
        ("cleared", "bool"),
    ),
    key=("need_id",),
    id_column="need_id",
)

LIQUIDITY = TableSpec(
    "liquidity",
    columns_of(("step", "str"), ("buyer_id", "str"), ("bids", "int"), ("offered_mw", "float")),
    key=("step", "buyer_id"),
    id_column=None,
)

DSO_DELIVERY = TableSpec(
    "dso_delivery",
    columns_of(
        ("need_id", "str"),
        ("buyer_id", "str"),
        ("area_id", "str"),
        ("interval_start", "ts"),
        ("direction", "str"),
        ("quantity_mw", "float"),
        ("bought_mw", "float"),
        ("area_net_mw", "float"),
        ("delivered_mw", "float"),
        ("shortfall_mw", "float"),
        ("undone_mw", "float"),
    ),
    key=("need_id",),
    id_column="need_id",
)

SIGNAL_BREACHES = TableSpec(
    "signal_breaches",
    columns_of(
        ("area_id", "str"),
        ("interval_start", "ts"),
        ("state", "str"),
        ("direction", "str"),
        ("tso_mw", "float"),
        ("headroom_mw", "float"),
        ("breach_mw", "float"),
    ),
    key=("area_id", "interval_start", "direction"),
    id_column="area_id",
)

CONFLICTS = TableSpec(
    "conflicts",
    columns_of(
        ("level", "str"),
        ("id", "str"),
        ("interval_start", "ts"),
        ("up_mw", "float"),
        ("down_mw", "float"),
        ("conflict_mw", "float"),
        ("operators", "str"),
    ),
    key=("level", "id", "interval_start"),
    id_column="id",
)

BLIND_VIOLATIONS = TableSpec(
    "blind_violations",
    columns_of(
        ("constraint_id", "str"),
        ("owner_id", "str"),
        ("interval_start", "ts"),
        ("violation_mw", "float"),
        ("blind_push_mw", "float"),
        ("blind_mw", "float"),
    ),
    key=("constraint_id", "interval_start"),
    id_column="constraint_id",
)

RUN_TABLES: tuple[TableSpec, ...] = (
    AWARDS,
    PRICES,
    NODE_PRICES,
    UNMET,
    FLOWS,
    IMBALANCE,
    RUN_NEEDS,
    LIQUIDITY,
    DSO_DELIVERY,
    SIGNAL_BREACHES,
    CONFLICTS,
    BLIND_VIOLATIONS,
)
OPTIONAL_RUN_TABLES: tuple[TableSpec, ...] = (RESERVATIONS,)  # written where the design reserves

COMPARISON = TableSpec(
    "comparison",
    columns_of(
        ("design", "str"), ("metric", "str"), ("value", "float"), ("unit", "str"), ("pricing", "str"), ("kind", "str")
    ),
    key=("design", "metric"),
    id_column="design",
)
