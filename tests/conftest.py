import os
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("COLUMNS", "220")  # wide rich tables in CLI tests

# Same inputs, same outputs: property tests draw the same examples on every run.
settings.register_profile("flexmarket", derandomize=True, database=None)
settings.load_profile("flexmarket")
sys.path.insert(0, str(Path(__file__).parent))

PG_BASE = os.environ.get("FLEXMARKET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["duckdb", "postgres"])
def store_url(request, tmp_path):  # type: ignore[no-untyped-def]
    """A fresh store: a DuckDB file, or a fresh schema on the local PostgreSQL server."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'store.duckdb'}"
        return
    import sqlalchemy as sa

    schema = f"fm_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
