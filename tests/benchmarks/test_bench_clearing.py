"""pytest-benchmark: clearing per design and size, and the same LP straight to highspy.

Run: ``python -m pytest -o addopts="" tests/benchmarks --benchmark-only``
(the 10^6 model against highspy is in ``tests/benchmarks/compare.py``, which also measures
peak memory; ``tests/benchmarks/end_to_end.py`` measures the whole CLI run and its process
tree's memory against a pyarrow read plus highspy).
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from market import clear
from market.clearing.run import step_model
from market.clearing.solvers import solve_cvxpy, solve_highspy
from market.io.synth import SynthSpec, synth_batch

from .cases import CLEARING_CASES, QUICK


@pytest.fixture(scope="module", params=QUICK)
def case(request):  # type: ignore[no-untyped-def]
    c = CLEARING_CASES[request.param]
    return c, synth_batch(c.spec)


@pytest.mark.parametrize("design", ["single", "dso-led", "tso-only"])
def test_clear_design(benchmark, case, design):
    c, batch = case
    benchmark.group = f"clear {c.name}"
    result = benchmark.pedantic(clear, args=(batch, design), rounds=2, iterations=1)
    assert result.ok


@pytest.mark.parametrize("solve", [solve_cvxpy, solve_highspy], ids=["cvxpy", "highspy"])
def test_single_model(benchmark, case, solve):
    """The `single` model through cvxpy, and the same LP straight to highspy (the default backend)."""
    c, batch = case
    benchmark.group = f"single LP {c.name}"
    model = step_model(batch, "single")
    sol = benchmark.pedantic(solve, args=(model,), rounds=2, iterations=1)
    assert np.isfinite(sol.objective)


@pytest.mark.parametrize("n_der", [500, 2000, 8000])
@pytest.mark.parametrize("design", ["single", "dso-led"])
def test_tso_step_size_under_interface_offers(benchmark, n_der, design):
    """The TSO-side model as the number of DER grows: `single` grows with the DER, the
    layered TSO step (interface offers, 5 bands) with interfaces x intervals x bands only.
    Sizes are recorded in the benchmark's ``extra_info``."""
    batch = synth_batch(SynthSpec(bids=n_der, intervals=4, dsos=8, seed=1))
    benchmark.group = f"TSO step size, {n_der} DER x 4 intervals, 8 DSOs"
    result = benchmark.pedantic(clear, args=(batch, design), rounds=1, iterations=1)
    benchmark.extra_info["tso_variables"] = result.metrics["scalability_tso_variables"]
    benchmark.extra_info["tso_constraints"] = result.metrics["scalability_tso_constraints"]
    assert result.ok


# 10^7 takes about two minutes and 6.5 GiB: measured only when asked for
# (FLEXMARKET_BENCH_1E7=1); tests/benchmarks/end_to_end.py measures memory and the reference.
# The MILP cases (10 % integer DER: all-or-nothing bids, blocks, exclusive groups over the
# day) sit in the group of the LP of the same size, so the table shows the ratio (target 3x).
END_TO_END = [("1e5", 1040, 0.0), ("1e5-milp", 1040, 0.1), ("1e6", 10400, 0.0), ("1e6-milp", 10400, 0.1)] + (
    [("1e7", 104000, 0.0)] if os.environ.get("FLEXMARKET_BENCH_1E7") else []
)


@pytest.mark.parametrize(("name", "bids", "integer_share"), END_TO_END, ids=[n for n, _, _ in END_TO_END])
def test_clear_end_to_end(benchmark, tmp_path, name, bids, integer_share):
    """`flexmarket clear` as a user runs it (a fresh process: load, validate, build, solve,
    verify, price, evaluate, write), on a batch `flexmarket synth` wrote beforehand."""
    batch = tmp_path / "batch"
    synth = ["flexmarket", "synth", "--bids", str(bids), "--intervals", "96", "--out", str(batch)]
    subprocess.run([*synth, "--integer-share", str(integer_share)], check=True)
    benchmark.group = f"flexmarket clear end to end {name.removesuffix('-milp')}"
    runs = iter(range(100))

    def run() -> None:
        out = tmp_path / f"run{next(runs)}"
        subprocess.run(["flexmarket", "clear", str(batch), "--out", str(out)], check=True, capture_output=True)

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert (tmp_path / "run0" / "manifest.json").is_file()


@pytest.fixture(scope="module")
def written_1e6(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("load") / "batch"
    cmd = ["flexmarket", "synth", "--bids", "10400", "--intervals", "96", "--out", str(folder)]
    subprocess.run(cmd, check=True, capture_output=True)
    return folder


def _read_with_pyarrow(folder):  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    return {p.name: pq.read_table(p).to_pandas() for p in sorted(folder.glob("*.parquet"))}


@pytest.mark.parametrize("reader", ["load_batch", "pyarrow"])
def test_load_1e6(benchmark, written_1e6, reader):
    """`load_batch` (read, coerce, every schema, key, reference and domain check, key
    order) at 0.998 M bid-intervals, beside the bare pyarrow read of the same files into
    pandas (target: within 2x)."""
    from market.io.read import load_batch

    benchmark.group = "load 1e6 bid-intervals"
    fn = load_batch if reader == "load_batch" else _read_with_pyarrow
    result = benchmark.pedantic(fn, args=(written_1e6,), rounds=7, iterations=1, warmup_rounds=1)
    assert len(result.bids if reader == "load_batch" else result["bids.parquet"]) == 998_400
