"""Portfolio-level M&V (``level = "portfolio"``): baseline the registered resource, not
each meter, as CAISO PDR, NYISO and USEF programmes do.

A resource is an aggregator's DER in one DSO's network (``<aggregator>/<dso>``), or what
the meter data's optional ``resource_id`` column names. Its meter reading per interval is
the sum of its members' readings (the DER of the run's awards in it), and exists only where
every member has one usable reading (a member's conflicting duplicates void the interval).
The settlement stages then run unchanged with the resource in place of the DER: the
resource's baseline and delivery, allocated to its awards in priority order. The lines
name each award's own DER again afterwards; their ``baseline_kwh`` and ``metered_kwh`` are
the resource's, and findings name the resource.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from market.errors import SettlementInputError
from settlement.connection import parquet_columns, sql_path
from settlement.inputs import validate_meter


def create_resource_map(con: duckdb.DuckDBPyConnection, meter_path: Path, awards_path: Path | None) -> None:
    """``resource_of(der_id, resource_id)``: the meter data's ``resource_id`` where it has
    one, else ``<aggregator>/<dso>`` of the DER's awards; refuses a DER in two resources."""
    meter = sql_path(meter_path)
    has_resource = "resource_id" in parquet_columns(con, meter_path, "meter data")
    if has_resource:
        clash = con.execute(
            f"SELECT der_id FROM read_parquet({meter}) GROUP BY der_id HAVING count(DISTINCT resource_id) > 1 LIMIT 5"
        ).fetchall()
        if clash:
            raise SettlementInputError(
                f"{meter_path}: resource_id must be one per DER; {[r[0] for r in clash]} have several"
            )
    if awards_path is None:
        if not has_resource:
            raise SettlementInputError(f"{meter_path}: portfolio level needs a resource_id column or a clearing run")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE resource_of AS
            SELECT DISTINCT der_id, resource_id FROM read_parquet({meter}) WHERE resource_id IS NOT NULL""")
        return
    awards = sql_path(awards_path)
    own = f"LEFT JOIN (SELECT DISTINCT der_id, resource_id FROM read_parquet({meter})) m USING (der_id)"
    resource = (
        "coalesce(m.resource_id, a.aggregator_id || '/' || a.dso_id)"
        if has_resource
        else ("a.aggregator_id || '/' || a.dso_id")
    )
    con.execute(f"""CREATE OR REPLACE TEMP TABLE resource_of AS
        SELECT DISTINCT a.der_id, {resource} AS resource_id
        FROM read_parquet({awards}) a {own if has_resource else ""}""")
    split = con.execute("SELECT der_id FROM resource_of GROUP BY der_id HAVING count(*) > 1 LIMIT 5").fetchall()
    if split:
        raise SettlementInputError(
            f"{awards_path}: level = 'portfolio' needs each DER in one resource; {[r[0] for r in split]} "
            "are offered by several aggregators or sit in several DSOs: give resource_id in the meter data"
        )


def aggregate_meter(con: duckdb.DuckDBPyConnection, meter_path: Path, out: Path) -> Path:
    """The summed meter data of each resource of ``resource_of`` (``der_id`` = the resource),
    where every member has one usable reading (conflicting duplicates void the interval)."""
    con.execute(f"""
        COPY (
            WITH readings AS (
                SELECT der_id, interval_start,
                       CASE WHEN count(DISTINCT consumption_kwh) = 1 THEN any_value(consumption_kwh) END AS kwh
                FROM read_parquet({sql_path(meter_path)}) WHERE der_id IN (SELECT der_id FROM resource_of)
                GROUP BY der_id, interval_start
            ), members AS (SELECT resource_id, count(*) AS n FROM resource_of GROUP BY resource_id)
            SELECT r.resource_id AS der_id, x.interval_start, sum(x.kwh) AS consumption_kwh
            FROM readings x JOIN resource_of r USING (der_id) JOIN members m USING (resource_id)
            GROUP BY r.resource_id, x.interval_start, m.n
            HAVING count(x.kwh) = m.n
            ORDER BY 1, 2
        ) TO {sql_path(out)} (FORMAT parquet)""")
    return out


def portfolio_inputs(
    con: duckdb.DuckDBPyConnection, awards_path: Path, meter_path: Path, minutes: int, folder: Path
) -> tuple[Path, Path, pd.DataFrame]:
    """Awards and meter data at resource level, written into ``folder``; and the map
    (bid_id, buyer_id) -> der_id to name each line's DER again."""
    validate_meter(con, meter_path, minutes)  # every member reading is checked as at DER level
    create_resource_map(con, meter_path, awards_path)
    awards = sql_path(awards_path)
    # (a reserving run has an availability row and an activation per bid and buyer: one DER)
    der_of = con.execute(f"SELECT DISTINCT bid_id, buyer_id, der_id FROM read_parquet({awards})").df()
    p_awards = folder / "awards.parquet"
    con.execute(f"""
        COPY (SELECT a.* REPLACE (r.resource_id AS der_id)
              FROM read_parquet({awards}) a JOIN resource_of r USING (der_id))
        TO {sql_path(p_awards)} (FORMAT parquet)""")
    p_meter = aggregate_meter(con, meter_path, folder / "meter.parquet")
    con.execute("DROP TABLE resource_of")
    return p_awards, p_meter, der_of


def name_ders(lines: pd.DataFrame, der_of: pd.DataFrame) -> pd.DataFrame:
    """Each line's own DER (the stages saw its resource in its place)."""
    # (several lines per bid and buyer where the run trades products: availability and energy)
    named = lines.drop(columns="der_id").merge(der_of, on=["bid_id", "buyer_id"], how="left", validate="many_to_one")
    return named[list(lines.columns)]
