"""Data-quality findings of a settlement run, each with a machine code (``kind``).

A finding never stops settlement: lines it affects are settled as ``unverifiable``
(no meter reading) or with what is there, and the finding says so.
"""

from __future__ import annotations

from enum import StrEnum

import duckdb
import pandas as pd

from settlement.baselines import METHODS
from settlement.schemas import FINDINGS


class QualityFinding(StrEnum):
    """The ``kind`` of a settlement finding (its machine code)."""

    NO_METER_DATA = "no_meter_data"  # an awarded DER has no readings in the window
    DUPLICATE_READING = "duplicate_reading"  # repeated readings of one interval
    METER_GAP = "meter_gap"  # a DER-day with fewer usable readings than intervals
    DST_DAY = "dst_day"  # a clock-change day (slots matched by local clock time)
    INSUFFICIENT_HISTORY = "insufficient_history"  # fewer eligible baseline days than wanted
    MISSING_EVENT_READING = "missing_event_reading"  # an awarded interval without a reading
    ADJUSTMENT_NOT_POSITIVE = "adjustment_not_positive"  # window baseline <= 0: factor 1
    ADJUSTMENT_WINDOW_INCOMPLETE = "adjustment_window_incomplete"  # readings missing in the window
    LOW_USAGE_FILTER_SKIPPED = "low_usage_filter_skipped"  # NYISO 25 % filter, net exporter
    NO_CONTROL_GROUP = "no_control_group"  # control-group baseline without a control meter


class Severity(StrEnum):
    """How much a finding matters: ``error`` lines are unverifiable or voided."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


FINDING_COLUMNS = [c.name for c in FINDINGS.columns]


def quality_findings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Data-quality findings as rows: kind, severity, der_id, day, interval, detail."""
    mins = " ".join(f"WHEN '{n}' THEN {m.pool_size_sql('t.day_type')}" for n, m in METHODS.items())
    window_slots = "CAST(3 * 3600 / extract(epoch FROM interval_len()) AS BIGINT)"
    return con.execute(f"""
        SELECT '{QualityFinding.NO_METER_DATA}' AS kind, '{Severity.ERROR}' AS severity, der_id, NULL::DATE AS day,
               NULL::TIMESTAMPTZ AS interval_start,
               'awarded DER has no meter data in the settlement window' AS detail
        FROM (SELECT DISTINCT der_id FROM awards_t)
        WHERE der_id NOT IN (SELECT der_id FROM day_counts)
        UNION ALL
        SELECT '{QualityFinding.DUPLICATE_READING}',
               CASE WHEN kwh_min <> kwh_max THEN '{Severity.ERROR}' ELSE '{Severity.INFO}' END,
               der_id, lday, ts,
               CASE WHEN kwh_min <> kwh_max THEN printf('%d conflicting readings (%.3f..%.3f kWh); '
                    || 'interval not usable', n_readings, kwh_min, kwh_max)
                    ELSE printf('%d identical readings collapsed', n_readings) END
        FROM dupes
        UNION ALL
        SELECT '{QualityFinding.METER_GAP}', '{Severity.WARNING}', der_id, lday, NULL,
               printf('%d of %d intervals metered', usable, slots)
        FROM day_counts WHERE usable < slots
        UNION ALL
        SELECT '{QualityFinding.DST_DAY}', '{Severity.INFO}', NULL, lday, NULL,
               printf('day has %d intervals (clock change); slots matched by local clock time',
                      slots)
        FROM day_info WHERE slots <> 1440 // (extract(epoch FROM interval_len()) / 60)
        UNION ALL
        SELECT '{QualityFinding.INSUFFICIENT_HISTORY}',
               CASE WHEN b.n_days IS NULL THEN '{Severity.ERROR}' ELSE '{Severity.WARNING}' END, t.der_id, t.lday, NULL,
               printf('%s: %d eligible day(s), %d wanted', m.method, coalesce(b.n_days, 0),
                      CASE m.method {mins} ELSE 0 END)
        FROM targets t
        JOIN (SELECT DISTINCT der_id, lday, method FROM awards_t) m USING (der_id, lday)
        LEFT JOIN (SELECT der_id, lday, method, max(n_days) AS n_days FROM baselines
                   GROUP BY ALL) b USING (der_id, lday, method)
        WHERE coalesce(b.n_days, 0) < CASE m.method {mins} ELSE 0 END
        UNION ALL
        SELECT '{QualityFinding.ADJUSTMENT_NOT_POSITIVE}', '{Severity.WARNING}', der_id, lday, NULL,
               printf('%s: baseline energy %.3f kWh in the adjustment window is not positive (net export): '
                      || 'factor 1', method, adj_base_kwh)
        FROM (SELECT DISTINCT method, der_id, lday, adj_base_kwh FROM baselines
              WHERE method = 'caiso-10-in-10' AND adj_base_kwh <= 0)
        UNION ALL
        SELECT '{QualityFinding.ADJUSTMENT_WINDOW_INCOMPLETE}', '{Severity.WARNING}', der_id, lday, NULL,
               printf('%s: %d of %d readings in the adjustment window (3 h ending 1 h before the first '
                      || 'award); adjusted on those', method, adj_readings, {window_slots})
        FROM (SELECT DISTINCT method, der_id, lday, adj_readings FROM baselines
              WHERE adj_readings IS NOT NULL AND adj_readings < {window_slots})
        UNION ALL
        SELECT '{QualityFinding.LOW_USAGE_FILTER_SKIPPED}', '{Severity.INFO}', der_id, lday, NULL,
               method || ': the pool''s mean event-window energy is not positive (net exporter): '
               || 'the 25 % low-usage filter is not applied; the highest days by window energy are kept'
        FROM (SELECT DISTINCT method, der_id, lday FROM baselines WHERE exporter)
        UNION ALL
        SELECT '{QualityFinding.NO_CONTROL_GROUP}', '{Severity.WARNING}', der_id, lday, NULL,
               'control-group: no non-dispatched meter on the event day or the baseline days: '
               || 'the day-matching baseline is used without the control group''s change'
        FROM (SELECT DISTINCT der_id, lday FROM baselines WHERE method = 'control-group' AND adj_add_kwh IS NULL)
        UNION ALL
        SELECT '{QualityFinding.MISSING_EVENT_READING}', '{Severity.ERROR}', a.der_id, a.lday, a.interval_start,
               'no usable meter reading for an awarded interval'
        FROM (SELECT DISTINCT der_id, lday, interval_start FROM awards_t) a
        LEFT JOIN event_meter m ON m.der_id = a.der_id AND m.ts = a.interval_start
        WHERE m.kwh IS NULL AND a.der_id IN (SELECT der_id FROM day_counts)
        ORDER BY kind, der_id, day, interval_start, detail""").df()
