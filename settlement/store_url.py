"""Which store URLs can hold statements (shared by the writer and the readers).

A store is a DuckDB database file or a PostgreSQL database. Refused, as bad input
(:class:`~market.errors.SettlementInputError`, exit 2): text that is no SQLAlchemy URL,
another backend (SQLite, ...), an in-memory DuckDB (it keeps nothing), and an existing file
that is not a DuckDB database (a Parquet or CSV file given by mistake is never touched).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from market.errors import SettlementInputError

DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
STORE_BACKENDS = ("duckdb", "postgresql")


def store_file(url: str) -> Path | None:
    """The database file of a DuckDB store URL (None for PostgreSQL or a URL that is none)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "duckdb" or str(parsed.database or ":memory:").startswith(":memory"):
        return None
    return Path(str(parsed.database))


def check_store_url(url: str) -> sa.engine.URL:
    """The parsed URL of a store that can keep statements, or a named refusal (exit 2)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise SettlementInputError(
            f"store URL {url!r} is not a SQLAlchemy URL (e.g. duckdb:///store.duckdb or postgresql://user@host/db)"
        ) from exc
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend not in STORE_BACKENDS:
        raise SettlementInputError(
            f"store URL {shown}: the store is a DuckDB file or a PostgreSQL database, not {backend}"
        )
    database = str(parsed.database or "")
    if backend == "duckdb" and (
        database in ("", ":memory:") or database.startswith(":memory") or "memory" in parsed.query
    ):
        raise SettlementInputError(f"store URL {shown} is an in-memory database: it holds no statements")
    path = store_file(url)
    if path is not None and path.exists() and not is_duckdb_file(path):
        raise SettlementInputError(f"store {path} exists and is not a DuckDB database file; nothing written")
    return parsed


def is_duckdb_file(path: Path) -> bool:
    """True if ``path`` is a regular file with DuckDB's header."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return path.is_file() and head[8:12] == DUCKDB_MAGIC
