"""pytest-benchmark: ``settle()`` per size, and hand-written DuckDB queries (references).

Run: ``python -m pytest -o addopts="" tests/benchmarks --benchmark-only``. Both paths
compute the caiso-10-in-10 settlement of the same Parquet (the references: a
straightforward query and the fastest we could write); ``settle()`` also validates the
meter file, reports findings, allocates, builds statements and stores them (a fresh DuckDB
store file per round). Peak memory per process: ``tests/benchmarks/settle_compare.py``.
"""

from __future__ import annotations

import itertools

import pytest

from settlement import settle
from settlement.config import SettleConfig

from .cases import REFERENCES, SETTLE_CASES, make_settle_case, reference_settlement


@pytest.fixture(scope="module", params=list(SETTLE_CASES))
def settle_case(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    n_der = SETTLE_CASES[request.param]
    folder = make_settle_case(n_der, tmp_path_factory.mktemp(request.param))
    return request.param, folder, reference_settlement(folder)


def test_settle(benchmark, settle_case):
    name, folder, (ref_net_eur, ref_lines) = settle_case
    benchmark.group = f"settle {name}"
    stores = (f"duckdb:///{folder}/store-{i}.duckdb" for i in itertools.count())
    result = benchmark.pedantic(
        lambda: settle(folder / "run", folder / "meter.parquet", SettleConfig(), db=next(stores)),
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert len(result.lines) == ref_lines
    assert result.lines["net_eur"].sum() == pytest.approx(ref_net_eur, rel=1e-9)


@pytest.mark.parametrize("reference", list(REFERENCES))
def test_reference_query(benchmark, settle_case, reference):
    name, folder, (ref_net_eur, ref_lines) = settle_case
    benchmark.group = f"settle {name}"
    net_eur, lines = benchmark.pedantic(
        reference_settlement, args=(folder, reference), rounds=3, iterations=1, warmup_rounds=1
    )
    assert (net_eur, lines) == (pytest.approx(ref_net_eur, rel=1e-12), ref_lines)
