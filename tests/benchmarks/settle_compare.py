"""Settlement at scale: flexmarket's settle() against one hand-written DuckDB query.

Generates N DER x 60 days of 15-minute meter data (N x 5,760 rows) with DuckDB, one event
day with four awarded intervals per DER, then times in fresh processes (peak RSS per
process): (a) ``settlement.settle`` with caiso-10-in-10 (findings, allocation, statements,
store in a DuckDB file), (b) a single hand-written CAISO 10-in-10 settlement query over the
same Parquet. Usage: ``python tests/benchmarks/settle_compare.py 1000 10000``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GEN = r"""
import duckdb, sys, json
n, folder = int(sys.argv[1]), sys.argv[2]
con = duckdb.connect(); con.execute("SET TimeZone='UTC'")
con.execute(f'''COPY (
  SELECT 'der' || lpad(d::VARCHAR, 6, '0') AS der_id,
         TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_minutes(15 * i) AS interval_start,
         round(20 + 10 * sin(2 * pi() * (i % 96) / 96 + d) + (hash(d * 100003 + i) % 1000) / 500.0,
               3) AS consumption_kwh
  FROM range({n}) r(d), range(5760) s(i)
) TO '{folder}/meter.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000000)''')
con.execute(f'''COPY (
  SELECT 'b' || d || '-' || k AS bid_id, 'der' || lpad(d::VARCHAR, 6, '0') AS der_id,
         'agg' || (d % 20) AS aggregator_id, 'dso1' AS dso_id, 'n' || d AS node_id,
         'tso' AS buyer_id, 'tso_balancing' AS service, NULL::VARCHAR AS need_id,
         'system' AS area_id,
         TIMESTAMPTZ '2026-02-26 17:00:00+00' + to_minutes(15 * k) AS interval_start,
         'up' AS direction, 0.004 AS quantity_mw, 80.0 AS bid_price_eur_mwh,
         80.0 AS price_eur_mwh, NULL::DOUBLE AS nominated_baseline_mw, 'pay-as-bid' AS pricing
  FROM range({n}) r(d), range(4) s(k)
) TO '{folder}/run/awards.parquet' (FORMAT parquet)''')
"""

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
import duckdb
from settlement import settle
from settlement.config import SettleConfig
folder, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if path == "flexmarket":
    r = settle(f"{folder}/run", f"{folder}/meter.parquet", SettleConfig(),
               db=f"duckdb:///{folder}/store-{time.time_ns()}.duckdb")
    rows, total = len(r.lines), float(r.lines["net_eur"].sum())
else:
    con = duckdb.connect(); con.execute("SET TimeZone='UTC'"); con.execute("SET threads=2")
    total, rows = con.execute(open(sys.argv[4]).read().replace("{folder}", folder)).fetchone()
t1 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"path": path, "seconds": t1 - t0, "peak_mib": peak, "lines": rows,
                  "net_eur": total}))
"""

REFERENCE_SQL = """
WITH a AS (SELECT *, CAST(interval_start AS DATE) AS day,
                  (hour(interval_start) * 60 + minute(interval_start)) // 15 AS tod
           FROM read_parquet('{folder}/run/awards.parquet')),
ev AS (SELECT der_id, day, min(interval_start) AS first_ts FROM a GROUP BY ALL),
m AS (SELECT der_id, interval_start AS ts, consumption_kwh AS kwh, CAST(interval_start AS DATE) AS day,
             (hour(interval_start) * 60 + minute(interval_start)) // 15 AS tod
      FROM read_parquet('{folder}/meter.parquet')
      WHERE interval_start >= (SELECT min(first_ts) FROM ev) - INTERVAL 46 DAY
        AND interval_start < (SELECT max(first_ts) FROM ev) + INTERVAL 1 DAY),
days AS (SELECT DISTINCT der_id, day FROM m WHERE isodow(day) <= 5),
pick AS (SELECT * FROM (SELECT e.der_id, e.day AS target, d.day,
            row_number() OVER (PARTITION BY e.der_id, e.day ORDER BY d.day DESC) AS k
         FROM ev e JOIN days d ON d.der_id = e.der_id AND d.day < e.day
              AND d.day >= e.day - INTERVAL 45 DAY) WHERE k <= 10),
base AS (SELECT p.der_id, p.target AS day, m.tod, avg(m.kwh) AS b
         FROM pick p JOIN m ON m.der_id = p.der_id AND m.day = p.day GROUP BY ALL),
adj AS (SELECT e.der_id, e.day,
            least(greatest(sum(m.kwh) / sum(b.b), 0.8), 1.2) AS f
        FROM ev e JOIN m ON m.der_id = e.der_id AND m.day = e.day
             AND m.ts >= e.first_ts - INTERVAL 4 HOUR AND m.ts < e.first_ts - INTERVAL 1 HOUR
        JOIN base b ON b.der_id = e.der_id AND b.day = e.day AND b.tod = m.tod GROUP BY ALL),
lines AS (SELECT a.bid_id, (b.b * j.f - m.kwh) / 1000 AS delivered, a.quantity_mw * 0.25 AS q,
                 a.price_eur_mwh AS p
          FROM a JOIN base b ON b.der_id = a.der_id AND b.day = a.day AND b.tod = a.tod
          JOIN adj j ON j.der_id = a.der_id AND j.day = a.day
          JOIN m ON m.der_id = a.der_id AND m.ts = a.interval_start)
SELECT sum(least(q, greatest(delivered, 0)) * p
           - (q - least(q, greatest(delivered, 0)) + greatest(-delivered, 0)) * p),
       count(*)
FROM lines
"""


def main(sizes: list[int]) -> None:
    print("| DER | meter rows | path | seconds | meter rows/s | peak MiB | time ratio |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        with tempfile.TemporaryDirectory(dir="/tmp") as folder:
            Path(folder, "run").mkdir()
            Path(folder, "run", "manifest.json").write_text(json.dumps(
                {"batch": {"interval_minutes": 15}, "design": {"name": "bench"},
                 "pricing": "pay-as-bid"}))
            subprocess.run([sys.executable, "-c", GEN, str(n), folder], check=True)
            sql = Path(folder, "ref.sql")
            sql.write_text(REFERENCE_SQL)
            res = {}
            for path in ("reference", "flexmarket"):
                out = subprocess.run([sys.executable, "-c", CHILD, folder, path, str(ROOT),
                                      str(sql)], capture_output=True, text=True, check=True)
                res[path] = json.loads(out.stdout.strip().splitlines()[-1])
            rows = n * 5760
            assert abs(res["reference"]["net_eur"] - res["flexmarket"]["net_eur"]) < 1e-6 * (
                1 + abs(res["reference"]["net_eur"])), res
            for path in ("reference", "flexmarket"):
                r = res[path]
                print(f"| {n:,} | {rows:,} | {path} | {r['seconds']:.2f} | "
                      f"{rows / r['seconds']:,.0f} | {r['peak_mib']:.0f} | "
                      f"{r['seconds'] / res['reference']['seconds']:.2f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    t = time.perf_counter()
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
    print(f"\n(measured in {time.perf_counter() - t:.0f} s)")
