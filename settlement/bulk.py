"""Inserting a frame into a store table inside the current transaction, exactly (amounts
as decimal text) and without a round trip per row."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from settlement.money import decimal_text


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = df.astype(object).where(df.notna(), None).to_dict("records")
    for r in out:
        for k, v in r.items():
            if isinstance(v, pd.Timestamp):
                r[k] = v.to_pydatetime()
            elif isinstance(v, np.generic):
                r[k] = v.item()
    return out


def bulk_insert(conn: sa.Connection, table: sa.Table, df: pd.DataFrame) -> None:
    """Insert a frame inside the current transaction without a round trip per row: DuckDB
    reads it as a relation, PostgreSQL (psycopg 3) takes it through ``COPY ... FROM STDIN``;
    other databases get one executemany."""
    cols = [c.name for c in table.columns]
    amounts = [c.name for c in table.columns if isinstance(c.type, sa.Numeric)]
    df = df[cols].assign(**{c: decimal_text(df[c].astype("float64")) for c in amounts})  # exact text
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "duckdb":
        raw.register("_fm_bulk", df)
        select = ", ".join(f"CAST({c} AS DECIMAL(18, 6))" if c in amounts else c for c in cols)
        try:
            raw.execute(f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {select} FROM _fm_bulk")
        finally:
            raw.unregister("_fm_bulk")
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        # CSV written by pandas in C: floats in shortest round-trip form, timestamps with
        # their UTC offset, missing values as unquoted empty fields (NULL in CSV COPY)
        text = df.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f%z")
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(text)
        return
    records = _records(df)
    for r in records:
        for c in amounts:
            r[c] = None if r[c] is None else Decimal(r[c])
    conn.execute(table.insert(), records)
