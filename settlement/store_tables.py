"""The tables of the settlement store (SQLAlchemy Core), an interface settlement desks
query with SQL: ``settlement_runs``, ``statements`` (one row per scenario, aggregator,
buyer, period and version), ``statement_lines`` (the lines of each version, each naming
the market session it came from), ``statement_deltas`` (line changes of version n+1
against version n) and ``findings``. Columns are documented in ``docs/contract.md``.

Amounts (EUR, MWh, MW, kWh, EUR/MWh) are exact decimals, ``NUMERIC(18, 6)`` in both
stores: a statement is the exact sum of its lines and v(n) + deltas = v(n+1) exactly.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()
AMOUNT = sa.Numeric(18, 6)  # exact to 1e-6 (EUR, MWh, ...), |value| < 1e12
ACTUAL = "actual"  # the scenario of real settlement; counterfactuals are settled into others


runs = sa.Table(
    "settlement_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(64), nullable=False),
    sa.Column("inputs_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("new_versions", sa.Integer, nullable=False),
    sa.Column("manifest", sa.Text, nullable=False),
    sa.Column("scenario", sa.String(100), nullable=True),  # added in 0.3: NULL in older rows = actual
    sa.Column("run_type", sa.String(20), nullable=True),  # initial | recalculation | correction (NULL: older)
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("session_id", sa.String(300), nullable=True),  # the market session (clearing run) settled
)


statements_t = sa.Table(
    "statements",
    metadata,
    sa.Column("statement_id", sa.String(200), primary_key=True),  # unique per scenario, key, period, version
    sa.Column("aggregator_id", sa.String(100), nullable=False),
    sa.Column("buyer_id", sa.String(100), nullable=False),
    sa.Column("period", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("unverifiable_lines", sa.Integer, nullable=False),
    sa.Column("awarded_mwh", AMOUNT, nullable=False),
    sa.Column("allocated_mwh", AMOUNT, nullable=False),
    sa.Column("shortfall_mwh", AMOUNT, nullable=False),
    sa.Column("payment_eur", AMOUNT, nullable=False),
    sa.Column("make_whole_eur", AMOUNT, nullable=True),  # added in 0.2: NULL in older rows
    sa.Column("penalty_eur", AMOUNT, nullable=False),
    sa.Column("net_eur", AMOUNT, nullable=False),
    sa.Column("findings", sa.Integer, nullable=False),
    sa.Column("scenario", sa.String(100), nullable=True),  # added in 0.3: NULL in older rows = actual
    sa.Column("sessions", sa.Integer, nullable=True),  # added in 0.3: market sessions its lines come from
)


LINE_COLS: list[tuple[str, Any]] = [
    ("bid_id", sa.String(200)),
    ("der_id", sa.String(100)),
    ("need_id", sa.String(200)),
    ("service", sa.String(32)),
    ("interval_start", sa.DateTime(timezone=True)),
    ("direction", sa.String(8)),
    ("quantity_mw", AMOUNT),
    ("price_eur_mwh", AMOUNT),
    ("method", sa.String(40)),
    ("baseline_kwh", AMOUNT),
    ("metered_kwh", AMOUNT),
    ("delivered_up_mwh", AMOUNT),
    ("awarded_mwh", AMOUNT),
    ("allocated_mwh", AMOUNT),
    ("shortfall_mwh", AMOUNT),
    ("payment_eur", AMOUNT),
    ("make_whole_eur", AMOUNT),
    ("penalty_eur", AMOUNT),
    ("net_eur", AMOUNT),
    ("status", sa.String(16)),
    ("session_id", sa.String(200)),  # added in 0.3: the market session (clearing run) of the line
    ("product", sa.String(20)),  # energy | availability (NULL in older rows = energy)
    ("availability_factor", AMOUNT),  # availability lines: delivered / requested on call (<= 1)
]


lines_t = sa.Table(
    "statement_lines",
    metadata,
    sa.Column("statement_id", sa.String(200), nullable=False, index=True),
    *[sa.Column(n, t) for n, t in LINE_COLS],
)


deltas_t = sa.Table(
    "statement_deltas",
    metadata,
    sa.Column("statement_id", sa.String(200), nullable=False, index=True),
    sa.Column("previous_statement_id", sa.String(200), nullable=False),
    sa.Column("bid_id", sa.String(200)),
    sa.Column("interval_start", sa.DateTime(timezone=True)),
    sa.Column("delta_allocated_mwh", AMOUNT),
    sa.Column("delta_shortfall_mwh", AMOUNT),
    sa.Column("delta_payment_eur", AMOUNT),
    sa.Column("delta_make_whole_eur", AMOUNT),
    sa.Column("delta_penalty_eur", AMOUNT),
    sa.Column("delta_net_eur", AMOUNT),
)


findings_t = sa.Table(
    "findings",
    metadata,
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(40)),
    sa.Column("severity", sa.String(10)),
    sa.Column("der_id", sa.String(100)),
    sa.Column("day", sa.Date),
    sa.Column("interval_start", sa.DateTime(timezone=True)),
    sa.Column("detail", sa.Text),
)


disputes_t = sa.Table(
    "statement_disputes",
    metadata,
    sa.Column("dispute_id", sa.String(64), primary_key=True),
    sa.Column("statement_id", sa.String(200), nullable=False, index=True),
    sa.Column("raised_by", sa.String(200), nullable=False),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("resolved_by", sa.String(200), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolution", sa.String(20), nullable=True),  # new_version | decision
    sa.Column("resolution_reason", sa.Text, nullable=True),
    sa.Column("resolved_by_statement_id", sa.String(200), nullable=True),
)
