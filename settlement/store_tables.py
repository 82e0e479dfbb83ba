"""The tables of the settlement store (SQLAlchemy Core), an interface settlement desks
query with SQL: ``settlement_runs``, ``statements`` (one row per aggregator, buyer,
period and version), ``statement_lines`` (the lines of each version),
``statement_deltas`` (line changes of version n+1 against version n) and ``findings``.
Columns are documented in ``docs/contract.md``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


runs = sa.Table(
    "settlement_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(64), nullable=False),
    sa.Column("inputs_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("new_versions", sa.Integer, nullable=False),
    sa.Column("manifest", sa.Text, nullable=False),
)


statements_t = sa.Table(
    "statements",
    metadata,
    sa.Column("statement_id", sa.String(200), primary_key=True),
    sa.Column("aggregator_id", sa.String(100), nullable=False),
    sa.Column("buyer_id", sa.String(100), nullable=False),
    sa.Column("period", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("unverifiable_lines", sa.Integer, nullable=False),
    sa.Column("awarded_mwh", sa.Float, nullable=False),
    sa.Column("allocated_mwh", sa.Float, nullable=False),
    sa.Column("shortfall_mwh", sa.Float, nullable=False),
    sa.Column("payment_eur", sa.Float, nullable=False),
    sa.Column("make_whole_eur", sa.Float, nullable=True),  # added in 0.2: NULL in older rows
    sa.Column("penalty_eur", sa.Float, nullable=False),
    sa.Column("net_eur", sa.Float, nullable=False),
    sa.Column("findings", sa.Integer, nullable=False),
    sa.UniqueConstraint("aggregator_id", "buyer_id", "period", "version", name="uq_statement"),
)


LINE_COLS: list[tuple[str, Any]] = [
    ("bid_id", sa.String(200)),
    ("der_id", sa.String(100)),
    ("need_id", sa.String(200)),
    ("service", sa.String(32)),
    ("interval_start", sa.DateTime(timezone=True)),
    ("direction", sa.String(8)),
    ("quantity_mw", sa.Float),
    ("price_eur_mwh", sa.Float),
    ("method", sa.String(40)),
    ("baseline_kwh", sa.Float),
    ("metered_kwh", sa.Float),
    ("delivered_up_mwh", sa.Float),
    ("awarded_mwh", sa.Float),
    ("allocated_mwh", sa.Float),
    ("shortfall_mwh", sa.Float),
    ("payment_eur", sa.Float),
    ("make_whole_eur", sa.Float),
    ("penalty_eur", sa.Float),
    ("net_eur", sa.Float),
    ("status", sa.String(16)),
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
    sa.Column("delta_allocated_mwh", sa.Float),
    sa.Column("delta_shortfall_mwh", sa.Float),
    sa.Column("delta_payment_eur", sa.Float),
    sa.Column("delta_make_whole_eur", sa.Float),
    sa.Column("delta_penalty_eur", sa.Float),
    sa.Column("delta_net_eur", sa.Float),
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
