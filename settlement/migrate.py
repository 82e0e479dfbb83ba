"""Bringing a store made by an earlier flexmarket up to date, additively: missing columns
are added (old rows keep NULL), floating-point amounts become exact decimals, and the
statements' unique key gains the scenario. Nothing is dropped; every value, version and
id is kept."""

from __future__ import annotations

import sqlalchemy as sa

from settlement.store_tables import ACTUAL, runs, statements_t


def add_missing_columns(conn: sa.Connection, tables: list[sa.Table]) -> None:
    """Additive migration of a store made by an earlier version: columns that version did
    not have are added (nullable; old rows keep NULL). Nothing is dropped or changed."""
    for table in tables:  # column names from an empty select (the DuckDB dialect cannot reflect)
        have = set(conn.execute(sa.text(f"SELECT * FROM {table.name} LIMIT 0")).keys())
        for col in table.columns:
            if col.name not in have:
                conn.execute(
                    sa.text(f"ALTER TABLE {table.name} ADD COLUMN {col.name} {col.type.compile(conn.dialect)}")
                )


def migrate_to_exact_amounts(conn: sa.Connection, tables: list[sa.Table]) -> None:
    """Stores made before 0.3 held amounts as floating point and statements unique per
    (aggregator, buyer, period, version): amounts become ``NUMERIC(18, 6)`` (each stored value
    kept, to its sixth decimal) and the unique key gains the scenario (through the statement
    id; older rows are the ``actual`` scenario). Versions and ids are kept."""
    for table in tables:
        kinds = _column_types(conn, table.name)
        floats = [c.name for c in table.columns if isinstance(c.type, sa.Numeric) and _is_float(kinds.get(c.name, ""))]
        if floats:
            _retype(conn, table, floats)
    if statements_t in tables:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE statements DROP CONSTRAINT IF EXISTS uq_statement"))
        elif _has_unique_key(conn):
            _rebuild_statements(conn)
        conn.execute(sa.update(statements_t).where(statements_t.c.scenario.is_(None)).values(scenario=ACTUAL))
        conn.execute(sa.update(runs).where(runs.c.scenario.is_(None)).values(scenario=ACTUAL))


def needs_migration(conn: sa.Connection, tables: list[sa.Table]) -> str | None:
    """Why a store made by an earlier flexmarket needs migrating, or None if it is current
    (read without writing anything)."""
    for table in tables:
        have = set(conn.execute(sa.text(f"SELECT * FROM {table.name} LIMIT 0")).keys())
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            return f"table {table.name} has no column {missing[0]}"
        kinds = _column_types(conn, table.name)
        floats = [c.name for c in table.columns if isinstance(c.type, sa.Numeric) and _is_float(kinds.get(c.name, ""))]
        if floats:
            return f"{table.name}.{floats[0]} holds floating-point amounts"
    if conn.dialect.name == "duckdb" and _has_unique_key(conn):
        return "statements are unique without their scenario"
    return None


def _column_types(conn: sa.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = :t AND table_schema = current_schema()"
        ),
        {"t": table},
    )
    return {str(n): str(t).upper() for n, t in rows}


def _is_float(kind: str) -> bool:
    return kind.startswith(("FLOAT", "REAL", "DOUBLE"))


def _retype(conn: sa.Connection, table: sa.Table, columns: list[str]) -> None:
    """``ALTER COLUMN ... TYPE NUMERIC(18, 6)`` (DuckDB: with the table's indexes dropped
    and recreated around it, as DuckDB cannot alter an indexed table)."""
    duck = conn.dialect.name == "duckdb"
    if duck:
        for ix in table.indexes:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {ix.name}"))
    for c in columns:
        conn.execute(sa.text(f"ALTER TABLE {table.name} ALTER COLUMN {c} TYPE NUMERIC(18, 6)"))
    if duck:
        for ix in table.indexes:
            cols = ", ".join(c.name for c in ix.columns)
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {ix.name} ON {table.name} ({cols})"))


def _has_unique_key(conn: sa.Connection) -> bool:
    rows = conn.execute(
        sa.text(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'statements' AND constraint_type = 'UNIQUE'"
        )
    )
    return bool(rows.scalar())


def _rebuild_statements(conn: sa.Connection) -> None:
    """DuckDB cannot drop a constraint: copy ``statements`` into a table of the current
    definition and swap it in (same rows, same ids)."""
    cols = ", ".join(c.name for c in statements_t.columns)
    conn.execute(sa.text("ALTER TABLE statements RENAME TO statements_before_0_3"))
    statements_t.create(conn)
    conn.execute(sa.text(f"INSERT INTO statements ({cols}) SELECT {cols} FROM statements_before_0_3"))
    conn.execute(sa.text("DROP TABLE statements_before_0_3"))
