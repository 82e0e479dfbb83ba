"""Allocation: one settlement line per award, delivered energy shared out by priority.

Sign convention: ``delivered_up_mwh = (baseline - metered)``, positive for up (less
consumption / more export). A down award is delivered by a negative value.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from settlement.config import SettleConfig
from settlement.schemas import LINES

LINE_COLUMNS = [c.name for c in LINES.columns if c.name != "session_id"]  # the session: from the run


def penalty_rate(cfg: SettleConfig) -> str:
    """The SQL of the penalty per MWh short: the flat rate, or the factor x the award's price."""
    return f"{cfg.penalty_eur_mwh}" if cfg.penalty_eur_mwh is not None else f"{cfg.penalty_factor} * abs(price_eur_mwh)"


def settlement_lines(con: duckdb.DuckDBPyConnection, cfg: SettleConfig) -> pd.DataFrame:
    """One line per award: baseline, metered, delivered, allocation by priority, money.

    Delivered energy of a DER-interval (with the method of its highest-priority award) goes
    to its awards of the delivered direction in priority order (service, buyer, bid_id),
    never more than awarded. Delivery in the wrong direction adds to the shortfall of the
    awards of the other direction, pro rata to their awarded energy. The award's make-whole
    payment from clearing (paradoxically accepted integer bids) is paid in proportion to
    allocated / awarded energy. ``net = payment + make_whole - penalty`` (EUR).
    """
    rate = penalty_rate(cfg)
    return (
        con.execute(f"""
        WITH ranked AS (
            SELECT a.*, row_number() OVER (PARTITION BY der_id, interval_start
                   ORDER BY service_rank, buyer_id, bid_id) AS prio
            FROM awards_t a WHERE a.product <> 'capped-power'
        ), lead_method AS (
            SELECT der_id, interval_start, method AS der_method FROM ranked WHERE prio = 1
        ), measured AS (
            SELECT r.*, l.der_method, b.base_kwh AS baseline_kwh, m.kwh AS metered_kwh,
                   (b.base_kwh - m.kwh) / 1000.0 AS delivered_up_mwh
            FROM ranked r
            JOIN lead_method l USING (der_id, interval_start)
            LEFT JOIN baselines b ON b.der_id = r.der_id AND b.lday = r.lday
                 AND b.ltod = r.ltod AND b.method = l.der_method
            LEFT JOIN event_meter m ON m.der_id = r.der_id AND m.ts = r.interval_start
        ), alloc AS (
            SELECT *,
                greatest(s * delivered_up_mwh, 0) AS available_mwh,
                greatest(-s * delivered_up_mwh, 0) AS wrong_mwh,
                coalesce(sum(awarded_mwh) OVER (PARTITION BY der_id, interval_start, s
                    ORDER BY prio ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                    AS before_mwh,
                sum(awarded_mwh) OVER (PARTITION BY der_id, interval_start, s) AS side_mwh
            FROM measured
        ), money AS (
            SELECT *,
                least(awarded_mwh, greatest(available_mwh - before_mwh, 0)) AS allocated_mwh
            FROM alloc
        )
        SELECT bid_id, der_id, aggregator_id, buyer_id, service, need_id, interval_start,
               direction, quantity_mw, price_eur_mwh, der_method AS method, baseline_kwh,
               metered_kwh, delivered_up_mwh, awarded_mwh,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL ELSE allocated_mwh END
                   AS allocated_mwh,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE awarded_mwh - allocated_mwh + wrong_mwh * awarded_mwh / side_mwh
                    END AS shortfall_mwh,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE allocated_mwh * price_eur_mwh END AS payment_eur,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE award_make_whole_eur * allocated_mwh / awarded_mwh END AS make_whole_eur,
               CASE WHEN delivered_up_mwh IS NULL THEN NULL
                    ELSE (awarded_mwh - allocated_mwh + wrong_mwh * awarded_mwh / side_mwh)
                         * {rate} END AS penalty_eur,
               CASE WHEN delivered_up_mwh IS NULL THEN 'unverifiable' ELSE 'settled' END
                   AS status
        FROM money
        ORDER BY interval_start, der_id, prio""")
        .df()
        .assign(
            net_eur=lambda d: d["payment_eur"] + d["make_whole_eur"] - d["penalty_eur"],
            product="energy",
            availability_factor=float("nan"),
        )[LINE_COLUMNS]
    )


def availability_lines(con: duckdb.DuckDBPyConnection, energy: pd.DataFrame, hours: float) -> pd.DataFrame:
    """One line per availability award (``reservations_t``): reserved MW x hours x its
    ``availability_price_eur_mw_h``, scaled by the reservation's **availability factor** =
    delivered / requested over the energy lines that called it (allocated / awarded MWh of
    its settled activations, measured against the baseline; at most 1; 1 when it was never
    called). A reservation whose activations are all unverifiable (no meter data) is
    unverifiable too: nothing is paid without a measurement."""
    con.register(
        "energy_lines", energy[["bid_id", "buyer_id", "interval_start", "status", "awarded_mwh", "allocated_mwh"]]
    )
    try:
        out = con.execute(f"""
            WITH calls AS (
                SELECT a.reservation_id, count(*) AS n,
                       sum(CASE WHEN l.status = 'settled' THEN l.awarded_mwh END) AS requested,
                       sum(CASE WHEN l.status = 'settled' THEN l.allocated_mwh END) AS delivered
                FROM energy_lines l
                JOIN awards_t a ON a.bid_id = l.bid_id AND a.buyer_id = l.buyer_id
                                AND a.interval_start = l.interval_start
                WHERE a.reservation_id IS NOT NULL
                GROUP BY a.reservation_id
            ), factors AS (
                SELECT r.*, CASE WHEN c.n IS NULL THEN 1.0
                                 WHEN c.requested IS NULL OR c.requested <= 0 THEN NULL
                                 ELSE least(c.delivered / c.requested, 1.0) END AS factor
                FROM reservations_t r LEFT JOIN calls c USING (reservation_id)
            )
            SELECT bid_id, der_id, aggregator_id, buyer_id, service, need_id, interval_start, direction,
                   quantity_mw, price_eur_mwh, 'availability' AS method, NULL::DOUBLE AS baseline_kwh,
                   NULL::DOUBLE AS metered_kwh, NULL::DOUBLE AS delivered_up_mwh, 0.0 AS awarded_mwh,
                   0.0 AS allocated_mwh, 0.0 AS shortfall_mwh,
                   availability_price_eur_mw_h * quantity_mw * {hours} * factor AS payment_eur,
                   CASE WHEN factor IS NULL THEN NULL ELSE 0.0 END AS make_whole_eur,
                   CASE WHEN factor IS NULL THEN NULL ELSE 0.0 END AS penalty_eur,
                   CASE WHEN factor IS NULL THEN 'unverifiable' ELSE 'settled' END AS status,
                   'availability' AS product, factor AS availability_factor
            FROM factors ORDER BY interval_start, der_id, bid_id""").df()
    finally:
        con.unregister("energy_lines")
    out["net_eur"] = out["payment_eur"] + out["make_whole_eur"] - out["penalty_eur"]
    return out[LINE_COLUMNS]


def capped_power_lines(con: duckdb.DuckDBPyConnection, cfg: SettleConfig, hours: float) -> pd.DataFrame:
    """One line per capped-power (MaxUsage) award, verified on the meter against its cap, not
    a baseline: the relief bought (``awarded_mwh``) counts as delivered while the metered
    consumption stays at or under ``max_usage_mw``; every MWh consumed above the cap is
    short (at most the award). ``baseline_kwh`` holds the cap's energy, ``delivered_up_mwh``
    how far under it the meter stayed (negative: over). No meter reading: unverifiable."""
    rate = penalty_rate(cfg)
    out = con.execute(f"""
        WITH measured AS (
            SELECT a.*, a.max_usage_mw * 1000 * {hours} AS cap_kwh, m.kwh AS metered_kwh
            FROM awards_t a LEFT JOIN event_meter m ON m.der_id = a.der_id AND m.ts = a.interval_start
            WHERE a.product = 'capped-power'
        ), alloc AS (
            SELECT *, (cap_kwh - metered_kwh) / 1000.0 AS under_mwh,
                   least(awarded_mwh, greatest(awarded_mwh + (cap_kwh - metered_kwh) / 1000.0, 0)) AS got_mwh
            FROM measured
        )
        SELECT bid_id, der_id, aggregator_id, buyer_id, service, need_id, interval_start, direction,
               quantity_mw, price_eur_mwh, 'capped-power' AS method, cap_kwh AS baseline_kwh, metered_kwh,
               under_mwh AS delivered_up_mwh, awarded_mwh, got_mwh AS allocated_mwh,
               awarded_mwh - got_mwh AS shortfall_mwh, got_mwh * price_eur_mwh AS payment_eur,
               CASE WHEN metered_kwh IS NULL THEN NULL
                    ELSE award_make_whole_eur * got_mwh / awarded_mwh END AS make_whole_eur,
               (awarded_mwh - got_mwh) * {rate} AS penalty_eur,
               CASE WHEN metered_kwh IS NULL THEN 'unverifiable' ELSE 'settled' END AS status,
               'capped-power' AS product, NULL::DOUBLE AS availability_factor
        FROM alloc ORDER BY interval_start, der_id, bid_id""").df()
    out["net_eur"] = out["payment_eur"] + out["make_whole_eur"] - out["penalty_eur"]
    return out[LINE_COLUMNS]
