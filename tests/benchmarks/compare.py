"""Time and peak memory of the `single` model: cvxpy+HiGHS against highspy directly.

Each measurement runs in a fresh process (peak RSS is per process). Prints a Markdown
table for the README. Usage: ``python tests/benchmarks/compare.py [case ...]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.benchmarks.cases import CLEARING_CASES  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, ".")
from tests.benchmarks.cases import CLEARING_CASES
from market.io.synth import synth_batch
from market.clearing.run import step_model
from market.clearing.solvers import solve_cvxpy, solve_highspy
import cvxpy, highspy  # both libraries loaded before timing starts
case, path = sys.argv[1], sys.argv[2]
batch = synth_batch(CLEARING_CASES[case].spec)
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
model = step_model(batch, "single")
t1 = time.perf_counter()
sol = (solve_cvxpy if path == "cvxpy" else solve_highspy)(model)
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": case, "path": path, "model_s": t1 - t0,
                  "pass_s": sol.build_seconds, "solve_s": sol.solve_seconds,
                  "total_s": t2 - t0, "objective": sol.objective,
                  "peak_mib": peak / 1024, "batch_mib": base_rss / 1024,
                  "variables": model.n_variables, "constraints": model.n_constraints,
                  "integers": model.n_integer}))
"""


def run(case: str, path: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-c", CHILD, case, path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(cases: list[str]) -> None:
    print(
        "| case | bid-intervals | vars | rows | path | model build s | solve s (incl. "
        "canonicalisation) | total s | ratio | peak MiB | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        ref = run(case, "highspy")
        cvx = run(case, "cvxpy")
        assert abs(ref["objective"] - cvx["objective"]) <= 1e-6 * (1 + abs(ref["objective"]))
        for r in (ref, cvx):
            print(
                f"| {case} | {CLEARING_CASES[case].bid_intervals:,} "
                f"| {r['variables']:,} | {r['constraints']:,} | {r['path']} "
                f"| {r['model_s']:.2f} | {r['pass_s'] + r['solve_s']:.2f} | {r['total_s']:.2f} "
                f"| {r['total_s'] / ref['total_s']:.2f} | {r['peak_mib']:.0f} "
                f"| {r['peak_mib'] / ref['peak_mib']:.2f} |"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    t = time.perf_counter()
    main(sys.argv[1:] or ["1e4", "1e5", "1e5-milp10", "1e6"])
    print(f"\n(measured in {time.perf_counter() - t:.0f} s)")
