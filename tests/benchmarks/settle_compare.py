"""Settlement at scale: flexmarket's settle() against one hand-written DuckDB query.

Generates N DER x 60 days of 15-minute meter data (N x 5,760 rows) with DuckDB, one event
day with four awarded intervals per DER, then times in fresh processes (peak RSS per
process): (a) ``settlement.settle`` with caiso-10-in-10 (findings, allocation, statements,
store in a DuckDB file), (b) a single hand-written CAISO 10-in-10 settlement query over the
same Parquet, as the straightforward query and as the fastest one we could write; the
time ratio is against the faster. Usage: ``python tests/benchmarks/settle_compare.py 1000 10000``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.cases import REFERENCES  # noqa: E402

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
import duckdb
from settlement import settle
from settlement.config import SettleConfig
from tests.benchmarks.cases import reference_settlement
folder, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if path == "flexmarket":
    r = settle(f"{folder}/run", f"{folder}/meter.parquet", SettleConfig(),
               db=f"duckdb:///{folder}/store-{time.time_ns()}.duckdb")
    rows, total = len(r.lines), float(r.lines["net_eur"].sum())
else:
    total, rows = reference_settlement(folder, path)
t1 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"path": path, "seconds": t1 - t0, "peak_mib": peak, "lines": rows,
                  "net_eur": total}))
"""
MAKE = (
    "import sys; sys.path.insert(0, sys.argv[3]); from tests.benchmarks.cases import "
    "make_settle_case; make_settle_case(int(sys.argv[1]), sys.argv[2])"
)


def main(sizes: list[int]) -> None:
    print("| DER | meter rows | path | seconds | meter rows/s | peak MiB | time / fastest reference |")
    print("|---|---|---|---:|---:|---:|---:|")
    for n in sizes:
        with tempfile.TemporaryDirectory(dir="/tmp") as folder:
            subprocess.run([sys.executable, "-c", MAKE, str(n), folder, str(ROOT)], check=True)
            res = {}
            for path in (*REFERENCES, "flexmarket"):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, folder, path, str(ROOT)], capture_output=True, text=True, check=True
                )
                res[path] = json.loads(out.stdout.strip().splitlines()[-1])
            rows = n * 5760
            fastest = min(res[r]["seconds"] for r in REFERENCES)
            for path, r in res.items():
                assert abs(r["net_eur"] - res["flexmarket"]["net_eur"]) < 1e-6 * (1 + abs(r["net_eur"])), res
                print(
                    f"| {n:,} | {rows:,} | {path} | {r['seconds']:.2f} | "
                    f"{rows / r['seconds']:,.0f} | {r['peak_mib']:.0f} | "
                    f"{r['seconds'] / fastest:.2f} |"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    t = time.perf_counter()
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
    print(f"\n(measured in {time.perf_counter() - t:.0f} s)")
