"""`flexmarket clear` end to end against the fastest reference we could write.

Reference: in a fresh process, read the batch's files with pyarrow into pandas and solve the
same LP (the `single` model of the batch, built beforehand and saved as arrays, untimed)
straight with highspy, with HiGHS's presolve on and off (the faster counts): its own
timing of read and solve, and the wall time of its whole process (interpreter start and
imports included, as flexmarket's is).
flexmarket: the CLI as a user runs it (`flexmarket clear BATCH --out RUN`): load, validate,
build, solve, verify, price, evaluate, write. Wall time of each, and the peak resident
memory of flexmarket's whole process tree (its worker processes included), sampled every
0.2 s.

Usage: ``python tests/benchmarks/end_to_end.py BATCH [BATCH ...] [--repeat N]`` (batches
written by ``flexmarket synth``; the LP must fit in memory as one model for the reference).
``--repeat N``: N rounds per batch, each the reference then flexmarket, one after the other
(this machine's pace drifts by up to 2x within an hour: a ratio is only as good as the two
runs beside each other), then the median and range of the ratios.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

SAVE = r"""
import sys
import numpy as np
from market.io.read import load_batch
from market.clearing.run import step_model
from market.clearing.solvers import stacked
model = step_model(load_batch(sys.argv[1]), "single")
a, lo, hi, _, _ = stacked(model)
fams = list(model.variables.values())
np.savez(sys.argv[2], indptr=a.indptr, indices=a.indices, data=a.data, shape=np.array(a.shape),
         lo=lo, hi=hi, cost=np.concatenate([f.cost for f in fams]),
         lower=np.concatenate([f.lower for f in fams]), upper=np.concatenate([f.upper for f in fams]))
"""

REFERENCE = r"""
import json, sys, time
import numpy as np, pyarrow.parquet as pq, highspy
from pathlib import Path
t0 = time.perf_counter()
frames = {p.stem: pq.read_table(p).to_pandas() for p in sorted(Path(sys.argv[1]).glob("*.parquet"))}
t1 = time.perf_counter()
z = np.load(sys.argv[2])
lp = highspy.HighsLp()
lp.num_row_, lp.num_col_ = (int(v) for v in z["shape"])
lp.col_cost_, lp.col_lower_, lp.col_upper_ = z["cost"], z["lower"], z["upper"]
inf = highspy.kHighsInf
lp.row_lower_ = np.where(np.isinf(z["lo"]), -inf, z["lo"])
lp.row_upper_ = np.where(np.isinf(z["hi"]), inf, z["hi"])
lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = z["indptr"], z["indices"], z["data"]
h = highspy.Highs()
h.setOptionValue("output_flag", False)
h.setOptionValue("presolve", sys.argv[3])
h.passModel(lp)
h.run()
t2 = time.perf_counter()
print(json.dumps({"read_s": t1 - t0, "solve_s": t2 - t1, "objective": h.getInfo().objective_function_value,
                  "status": str(h.getModelStatus())}))
"""


# the console script installed beside this interpreter (in a virtualenv, what `flexmarket`
# runs); not a version manager's shim, which would add its own start-up to flexmarket's time
FLEXMARKET = str(Path(sys.executable).with_name("flexmarket"))
if not Path(FLEXMARKET).is_file():
    FLEXMARKET = shutil.which("flexmarket") or "flexmarket"


def peak_tree_rss(proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc``; the largest sum of RSS over it and its descendants."""
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            continue
        peak = max(peak, rss)
        with contextlib.suppress(subprocess.TimeoutExpired):  # returns as soon as it exits
            proc.wait(timeout=0.2)
    return peak


def _reference(batch: Path, lp: Path, presolve: str) -> dict[str, float]:
    """One reference run in a fresh process: its own read and solve times, and the wall time
    of the whole process (interpreter start and imports included, as for ``flexmarket``)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", REFERENCE, str(batch), str(lp), presolve], check=True, capture_output=True, text=True
    )
    timed = json.loads(out.stdout.strip().splitlines()[-1])  # the last line: HiGHS prints its banner first
    return {**timed, "process_s": time.perf_counter() - t0}


def measure(batch: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        lp = Path(tmp) / "lp.npz"
        subprocess.run([sys.executable, "-c", SAVE, str(batch), str(lp)], check=True)
        refs = [_reference(batch, lp, presolve) for presolve in ("choose", "off")]
        ref = min(refs, key=lambda r: r["read_s"] + r["solve_s"])  # the faster of presolve on and off
        t0 = time.perf_counter()
        proc = subprocess.Popen([FLEXMARKET, "clear", str(batch), "--out", str(Path(tmp) / "run")])
        peak = peak_tree_rss(proc)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"flexmarket clear exited {proc.returncode}")
        manifest = json.loads((Path(tmp) / "run" / "manifest.json").read_text())
    return {
        "reference_presolve_on_s": refs[0]["read_s"] + refs[0]["solve_s"],
        "reference_presolve_off_s": refs[1]["read_s"] + refs[1]["solve_s"],
        "reference_read_s": ref["read_s"],
        "reference_solve_s": ref["solve_s"],
        "reference_s": ref["read_s"] + ref["solve_s"],
        "reference_process_s": ref["process_s"],  # the same, as a process: interpreter and imports too
        "ratio_to_process": wall / ref["process_s"],
        "flexmarket_s": wall,
        "ratio": wall / (ref["read_s"] + ref["solve_s"]),
        "peak_tree_gib": peak / 2**30,
        "timings": manifest.get("timings_s", {}),
    }


def summary(rounds: list[dict[str, float]]) -> dict[str, object]:
    """The ratios of ``rounds`` of one batch: each round's, their median and range."""
    import statistics

    out: dict[str, object] = {"rounds": len(rounds)}
    for key in ("ratio", "ratio_to_process", "flexmarket_s", "reference_s", "peak_tree_gib"):
        values = [r[key] for r in rounds]
        out[key] = {"each": [round(v, 3) for v in values], "median": statistics.median(values),
                    "min": min(values), "max": max(values)}  # fmt: skip
    return out


if __name__ == "__main__":
    args, repeat = sys.argv[1:], 1
    if "--repeat" in args:
        at = args.index("--repeat")
        repeat = int(args[at + 1])
        del args[at : at + 2]
    for arg in args:
        rounds = [measure(Path(arg)) for _ in range(repeat)]
        for r in rounds:
            print(arg, json.dumps(r, indent=1), flush=True)
        if repeat > 1:
            print(arg, json.dumps(summary(rounds), indent=1), flush=True)
