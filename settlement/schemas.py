"""One schema per settlement output table (section "Settlement" of ``docs/contract.md``).

Money in EUR, energy in MWh (meter readings and baselines in kWh), timestamps UTC interval
starts, ``day`` a local calendar day of the settlement timezone. Sign: ``delivered_up_mwh``
= baseline - metered, positive for up delivery.
"""

from __future__ import annotations

from market.io.outputs import columns_of
from market.io.schemas import TableSpec

LINES = TableSpec(
    "lines",
    columns_of(
        ("bid_id", "str"),
        ("der_id", "str"),
        ("aggregator_id", "str"),
        ("buyer_id", "str"),
        ("service", "str"),
        ("need_id", "str", True),
        ("interval_start", "ts"),
        ("direction", "str"),
        ("quantity_mw", "float"),
        ("price_eur_mwh", "float"),
        ("method", "str"),
        ("baseline_kwh", "float", True),
        ("metered_kwh", "float", True),
        ("delivered_up_mwh", "float", True),
        ("awarded_mwh", "float"),
        ("allocated_mwh", "float", True),
        ("shortfall_mwh", "float", True),
        ("payment_eur", "float", True),
        ("make_whole_eur", "float", True),
        ("penalty_eur", "float", True),
        ("net_eur", "float", True),
        ("status", "str"),
        ("product", "str"),
        ("availability_factor", "float", True),
        ("session_id", "str"),
    ),
    key=("bid_id", "buyer_id", "product"),
    id_column="bid_id",
)

STATEMENT_TOTALS = columns_of(
    ("aggregator_id", "str"),
    ("buyer_id", "str"),
    ("period", "str"),
    ("lines", "int"),
    ("unverifiable_lines", "int"),
    ("awarded_mwh", "float"),
    ("allocated_mwh", "float"),
    ("shortfall_mwh", "float"),
    ("payment_eur", "float"),
    ("make_whole_eur", "float"),
    ("penalty_eur", "float"),
    ("net_eur", "float"),
)

STATEMENTS = TableSpec(
    "statements",
    STATEMENT_TOTALS + columns_of(("statement_id", "str"), ("version", "int")),
    key=("aggregator_id", "buyer_id", "period"),
    id_column="statement_id",
)

FINDINGS = TableSpec(
    "findings",
    columns_of(
        ("kind", "str"),
        ("severity", "str"),
        ("der_id", "str", True),
        ("day", "date", True),
        ("interval_start", "ts", True),
        ("detail", "str"),
    ),
    key=(),
    id_column=None,
)

NEW_VERSIONS = TableSpec(
    "new_versions",
    STATEMENT_TOTALS
    + columns_of(
        ("statement_id", "str"),
        ("scenario", "str"),
        ("sessions", "int"),
        ("version", "int"),
        ("run_id", "str"),
        ("content_sha256", "str"),
        ("findings", "int"),
    ),
    key=("statement_id", "version"),
    id_column="statement_id",
)

DELTAS = TableSpec(
    "deltas",
    columns_of(
        ("statement_id", "str"),
        ("previous_statement_id", "str"),
        ("bid_id", "str"),
        ("interval_start", "ts"),
        ("delta_allocated_mwh", "float"),
        ("delta_shortfall_mwh", "float"),
        ("delta_payment_eur", "float"),
        ("delta_make_whole_eur", "float"),
        ("delta_penalty_eur", "float"),
        ("delta_net_eur", "float"),
    ),
    key=("statement_id", "bid_id", "interval_start"),
    id_column=None,
)

SETTLEMENT_TABLES: tuple[TableSpec, ...] = (LINES, STATEMENTS, FINDINGS, NEW_VERSIONS, DELTAS)
