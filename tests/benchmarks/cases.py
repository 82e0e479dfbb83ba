"""Registry of benchmark cases over problem sizes (bids per interval x intervals)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from market.io.synth import SynthSpec


@dataclass(frozen=True)
class Case:
    name: str
    spec: SynthSpec

    @property
    def bid_intervals(self) -> int:
        return self.spec.bids * self.spec.intervals


CLEARING_CASES = {
    c.name: c
    for c in (
        Case("1e4", SynthSpec(bids=104, intervals=96, dsos=4, seed=0)),
        Case("1e5", SynthSpec(bids=1040, intervals=96, dsos=4, seed=0)),
        Case("1e5-milp10", SynthSpec(bids=1040, intervals=96, dsos=4, seed=0, integer_share=0.1)),
        Case("1e6", SynthSpec(bids=10400, intervals=96, dsos=4, seed=0, feeders=200)),
    )
}
QUICK = ("1e4", "1e5", "1e5-milp10")


# Settlement: N DER x 60 days of 15-minute meter data (N x 5,760 rows), one event day with
# four awarded intervals per DER.
SETTLE_CASES = {"1k-der": 1_000, "10k-der": 10_000}


def make_settle_case(n_der: int, folder: str | Path) -> Path:
    """Write ``meter.parquet`` and a clearing run (``run/``) for ``n_der`` DER into folder."""
    import duckdb

    folder = Path(folder)
    (folder / "run").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""COPY (
      SELECT 'der' || lpad(d::VARCHAR, 6, '0') AS der_id,
             TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_minutes(15 * i) AS interval_start,
             round(20 + 10 * sin(2 * pi() * (i % 96) / 96 + d) + (hash(d * 100003 + i) % 1000) / 500.0,
                   3) AS consumption_kwh
      FROM range({n_der}) r(d), range(5760) s(i)
    ) TO '{folder}/meter.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
    con.execute(f"""COPY (
      SELECT 'b' || d || '-' || k AS bid_id, 'der' || lpad(d::VARCHAR, 6, '0') AS der_id,
             'agg' || (d % 20) AS aggregator_id, 'dso1' AS dso_id, 'n' || d AS node_id,
             'tso' AS buyer_id, 'tso_balancing' AS service, NULL::VARCHAR AS need_id,
             'system' AS area_id,
             TIMESTAMPTZ '2026-02-26 17:00:00+00' + to_minutes(15 * k) AS interval_start,
             'up' AS direction, 0.004 AS quantity_mw, 80.0 AS bid_price_eur_mwh,
             80.0 AS price_eur_mwh, NULL::DOUBLE AS nominated_baseline_mw, 'pay-as-bid' AS pricing
      FROM range({n_der}) r(d), range(4) s(k)
    ) TO '{folder}/run/awards.parquet' (FORMAT parquet)""")
    con.close()
    digest = hashlib.sha256((folder / "run" / "awards.parquet").read_bytes()).hexdigest()
    manifest = {"batch": {"interval_minutes": 15, "name": f"bench-{n_der}"}, "design": {"name": "bench"}}
    manifest |= {"pricing": "pay-as-bid", "output_sha256": {"awards.parquet": digest}}  # as clear writes it
    (folder / "run" / "manifest.json").write_text(json.dumps(manifest))
    return folder


# References: one hand-written CAISO 10-in-10 settlement query (net EUR, line count). The
# first is the straightforward query the settlement issue measured; the second is the
# fastest we could write (integer day arithmetic, the meter window materialised once).
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


REFERENCE_SQL_TUNED = """
WITH a AS (SELECT *, epoch_ns(interval_start) // 1000000000 // 86400 AS day,
                  (epoch_ns(interval_start) // 1000000000 % 86400) // 900 AS tod
           FROM read_parquet('{folder}/run/awards.parquet')),
ev AS (SELECT der_id, day, min(interval_start) AS first_ts FROM a GROUP BY ALL),
m AS MATERIALIZED (
      SELECT der_id, interval_start AS ts, consumption_kwh AS kwh,
             epoch_ns(interval_start) // 1000000000 // 86400 AS day,
             (epoch_ns(interval_start) // 1000000000 % 86400) // 900 AS tod
      FROM read_parquet('{folder}/meter.parquet')
      WHERE interval_start >= (SELECT min(first_ts) FROM ev) - INTERVAL 46 DAY
        AND interval_start < (SELECT max(first_ts) FROM ev) + INTERVAL 1 DAY),
days AS (SELECT DISTINCT der_id, day FROM m WHERE (day + 3) % 7 < 5),
pick AS (SELECT * FROM (SELECT e.der_id, e.day AS target, d.day,
            row_number() OVER (PARTITION BY e.der_id, e.day ORDER BY d.day DESC) AS k
         FROM ev e JOIN days d ON d.der_id = e.der_id AND d.day < e.day
              AND d.day >= e.day - 45) WHERE k <= 10),
base AS (SELECT p.der_id, p.target AS day, m.tod, avg(m.kwh) AS b
         FROM pick p JOIN m ON m.der_id = p.der_id AND m.day = p.day GROUP BY ALL),
evm AS (SELECT m.* FROM m SEMI JOIN ev ON ev.der_id = m.der_id AND ev.day = m.day),
adj AS (SELECT e.der_id, e.day,
            least(greatest(sum(m.kwh) / sum(b.b), 0.8), 1.2) AS f
        FROM ev e JOIN evm m ON m.der_id = e.der_id AND m.day = e.day
             AND m.ts >= e.first_ts - INTERVAL 4 HOUR AND m.ts < e.first_ts - INTERVAL 1 HOUR
        JOIN base b ON b.der_id = e.der_id AND b.day = e.day AND b.tod = m.tod GROUP BY ALL),
lines AS (SELECT a.bid_id, (b.b * j.f - m.kwh) / 1000 AS delivered, a.quantity_mw * 0.25 AS q,
                 a.price_eur_mwh AS p
          FROM a JOIN base b ON b.der_id = a.der_id AND b.day = a.day AND b.tod = a.tod
          JOIN adj j ON j.der_id = a.der_id AND j.day = a.day
          JOIN evm m ON m.der_id = a.der_id AND m.ts = a.interval_start)
SELECT sum(least(q, greatest(delivered, 0)) * p
           - (q - least(q, greatest(delivered, 0)) + greatest(-delivered, 0)) * p),
       count(*)
FROM lines
"""
REFERENCES = {"reference": REFERENCE_SQL, "reference-tuned": REFERENCE_SQL_TUNED}


def reference_settlement(folder: str | Path, name: str = "reference-tuned") -> tuple[float, int]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET threads=2")
    con.execute("SET enable_progress_bar = false")
    row = con.execute(REFERENCES[name].replace("{folder}", str(folder))).fetchone()
    con.close()
    assert row is not None
    return float(row[0]), int(row[1])
