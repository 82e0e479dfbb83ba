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


@pytest.fixture(scope="module")
def dask_scheduler():  # type: ignore[no-untyped-def]
    """A real Dask scheduler and one single-threaded worker process on loopback; yields
    the scheduler's address."""
    import socket
    import subprocess
    import time

    from distributed import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    bindir = Path(sys.executable).parent
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    sched = subprocess.Popen(
        [str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    address = f"tcp://127.0.0.1:{port}"
    worker = subprocess.Popen(
        [str(bindir / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"], **quiet
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as c:
                    if c.scheduler_info()["workers"]:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "scheduler or worker did not come up"
            time.sleep(0.5)
        yield address
    finally:
        for p in (worker, sched):
            p.terminate()
            p.wait(timeout=30)
