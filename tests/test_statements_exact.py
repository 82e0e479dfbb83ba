"""Statements a settlement desk can run on both stores: exact amounts, one statement per
(scenario, aggregator, buyer, period) across market sessions, counterfactual scenarios
that never touch the actual statements, collision-free ids, and old stores migrated."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from settle_helpers import daily_meter, make_run, write_meter

from market.errors import SettlementInputError
from settlement import settle
from settlement.config import SettleConfig
from settlement.query import list_statements, statement_detail
from settlement.store import make_engine

DAY = "2026-01-15"


def _meter(tmp_path: Path, ders: list[str], drop: float = 0.0) -> Path:
    """60 days of flat 10 kWh per quarter-hour; on the event day ``drop`` kWh less in the evening."""
    frames = [
        daily_meter(d, "2025-11-16", 61, lambda k, s: 10.0 - (drop if k == 60 and s >= 32 else 0.0)) for d in ders
    ]
    return write_meter(pd.concat(frames, ignore_index=True), tmp_path / f"meter-{drop}.parquet")


def _session(tmp_path: Path, name: str, hour: int, price: float = 7.0, agg: str = "A", buyer: str = "tso") -> Path:
    t = f"{DAY}T{hour:02d}:00Z"
    awards = [
        {
            "bid_id": f"{name}-b",
            "der_id": "D1",
            "aggregator_id": agg,
            "buyer_id": buyer,
            "t": t,
            "q": 0.02,
            "price": price,
        }
    ]
    return make_run(tmp_path / name, awards, session=name)


def _raw(url: str, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    engine = sa.create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_two_sessions_of_one_day_make_one_statement_covering_both(tmp_path, store_url):
    meter = _meter(tmp_path, ["D1"], drop=5.0)
    morning, evening = _session(tmp_path, "morning", 8), _session(tmp_path, "evening", 16)
    settle(morning, meter, SettleConfig(), db=store_url)
    settle(evening, meter, SettleConfig(), db=store_url)
    latest = list_statements(store_url)
    assert len(latest) == 1
    st = latest.iloc[0]
    assert st["version"] == 2 and st["sessions"] == 2 and st["lines"] == 2
    assert st["awarded_mwh"] == pytest.approx(2 * 0.02 * 0.25)
    # the second version's deltas are exactly the evening's line
    _, lines, deltas = statement_detail(store_url, st["statement_id"])
    assert set(lines["session_id"]) == {"morning@None/None", "evening@None/None"}
    assert list(deltas["bid_id"]) == ["evening-b"]


def test_correcting_one_sessions_meter_changes_only_its_lines(tmp_path, store_url):
    morning, evening = _session(tmp_path, "morning", 8), _session(tmp_path, "evening", 16)
    first = _meter(tmp_path, ["D1"], drop=5.0)
    settle(morning, first, SettleConfig(), db=store_url)
    settle(evening, first, SettleConfig(), db=store_url)
    corrected = _meter(tmp_path, ["D1"], drop=2.0)  # changes the evening reading only
    new = settle(evening, corrected, SettleConfig(), db=store_url).new_versions
    assert list(new["version"]) == [3]
    _, lines, deltas = statement_detail(store_url, new["statement_id"].iloc[0])
    assert list(deltas["bid_id"]) == ["evening-b"]
    assert len(lines) == 2  # the morning's line is still there


def test_a_counterfactual_scenario_leaves_the_actual_statements_byte_identical(tmp_path, store_url):
    meter = _meter(tmp_path, ["D1"], drop=5.0)
    settle(_session(tmp_path, "morning", 8), meter, SettleConfig(), db=store_url)
    before = [_raw(store_url, f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("statements", "statement_lines")]
    cf = _session(tmp_path, "cf", 8, price=50.0)
    new = settle(cf, meter, SettleConfig(), db=store_url, scenario="counterfactual-dso-led").new_versions
    assert list(new["scenario"]) == ["counterfactual-dso-led"] and list(new["version"]) == [1]
    actual = [
        _raw(
            store_url,
            f"SELECT * FROM {t} WHERE statement_id IN (SELECT statement_id FROM statements "
            "WHERE scenario = 'actual') ORDER BY 1, 2",
        )
        for t in ("statements", "statement_lines")
    ]
    assert actual == before
    assert set(list_statements(store_url)["scenario"]) == {"actual", "counterfactual-dso-led"}
    with pytest.raises(SettlementInputError, match="scenario"):
        settle(cf, meter, SettleConfig(), db=store_url, scenario="no spaces")


def test_statement_is_the_exact_sum_of_its_lines_and_versions_add_up_exactly(tmp_path, store_url):
    meter = _meter(tmp_path, ["D1", "D2"], drop=5.0)
    awards = [
        {
            "bid_id": f"b{i}",
            "der_id": f"D{1 + i % 2}",
            "aggregator_id": "A",
            "t": f"{DAY}T{16 + i // 4}:{15 * (i % 4):02d}Z",
            "q": 0.0173 + i / 997,
            "price": 1234.567891 + i / 7,
        }
        for i in range(12)
    ]
    run = make_run(tmp_path / "run", awards)
    settle(run, meter, SettleConfig(), db=store_url)
    settle(run, _meter(tmp_path, ["D1", "D2"], drop=3.3), SettleConfig(), db=store_url)
    rows = _raw(
        store_url,
        "SELECT s.statement_id, s.net_eur, s.payment_eur, sum(l.net_eur), sum(l.payment_eur) "
        "FROM statements s JOIN statement_lines l USING (statement_id) GROUP BY 1, 2, 3 ORDER BY 1",
    )
    assert len(rows) == 2
    for _, net, pay, line_net, line_pay in rows:
        assert isinstance(net, Decimal) and net == line_net and pay == line_pay
    (v1, net1), (v2, net2) = _raw(store_url, "SELECT version, net_eur FROM statements ORDER BY version")
    (delta,) = _raw(store_url, "SELECT sum(delta_net_eur) FROM statement_deltas")[0:1]
    assert net1 + delta[0] == net2


def test_statement_ids_cannot_collide_whatever_the_ids_hold(tmp_path, store_url):
    meter = _meter(tmp_path, ["D1"], drop=5.0)
    settle(_session(tmp_path, "one", 8, agg="a|b", buyer="tso"), meter, SettleConfig(), db=store_url)
    settle(_session(tmp_path, "two", 9, agg="a", buyer="b|tso"), meter, SettleConfig(), db=store_url)
    ids = list_statements(store_url)["statement_id"]
    assert ids.nunique() == 2 and all(i.startswith("st-") for i in ids)


@pytest.mark.parametrize("bad", ["x" * 101, "nul\x00byte", "tab\there"])
def test_ids_the_store_cannot_hold_verbatim_are_refused_before_anything_is_written(tmp_path, bad):
    run = _session(tmp_path, "s", 8, agg=bad)
    db = tmp_path / "store.duckdb"
    with pytest.raises(SettlementInputError, match="aggregator_id"):
        settle(run, _meter(tmp_path, ["D1"]), SettleConfig(), db=f"duckdb:///{db}")
    assert not db.exists()


def test_an_in_memory_store_is_refused(tmp_path):
    run = _session(tmp_path, "s", 8)
    for url in ("duckdb:///:memory:", "duckdb://"):
        with pytest.raises(SettlementInputError, match="in-memory"):
            settle(run, _meter(tmp_path, ["D1"]), SettleConfig(), db=url)


def test_a_store_from_before_exact_amounts_is_migrated_keeping_values_and_versions(tmp_path, store_url):
    """0.2 stores: amounts as floats (32-bit in DuckDB), statements unique per (aggregator,
    buyer, period, version), no scenarios or sessions."""
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE statements (statement_id VARCHAR(200) PRIMARY KEY, aggregator_id VARCHAR(100) NOT NULL, "
                "buyer_id VARCHAR(100) NOT NULL, period VARCHAR(64) NOT NULL, version INTEGER NOT NULL, "
                "run_id VARCHAR(64) NOT NULL, content_sha256 VARCHAR(64) NOT NULL, lines INTEGER NOT NULL, "
                "unverifiable_lines INTEGER NOT NULL, awarded_mwh REAL NOT NULL, allocated_mwh REAL NOT NULL, "
                "shortfall_mwh REAL NOT NULL, payment_eur REAL NOT NULL, make_whole_eur REAL, "
                "penalty_eur REAL NOT NULL, "
                "net_eur REAL NOT NULL, findings INTEGER NOT NULL, "
                "CONSTRAINT uq_statement UNIQUE (aggregator_id, buyer_id, period, version))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO statements VALUES ('A|tso|2026-01-15..2026-01-15|v1', 'A', 'tso', "
                "'2026-01-15..2026-01-15', 1, "
                "'r', 'h', 1, 0, 0.005, 0.005, 0, -7516.25, 0, 0, -7516.25, 0)"
            )
        )
        conn.execute(sa.text("CREATE TABLE statement_lines (statement_id VARCHAR(200) NOT NULL, net_eur REAL)"))
        conn.execute(sa.text("CREATE INDEX ix_statement_lines_statement_id ON statement_lines (statement_id)"))
        conn.execute(sa.text("INSERT INTO statement_lines VALUES ('A|tso|2026-01-15..2026-01-15|v1', -7516.25)"))
    engine.dispose()
    make_engine(store_url).dispose()
    (row,) = _raw(store_url, "SELECT statement_id, scenario, version, net_eur FROM statements")
    assert row == ("A|tso|2026-01-15..2026-01-15|v1", "actual", 1, Decimal("-7516.250000"))
    assert _raw(store_url, "SELECT net_eur FROM statement_lines") == [(Decimal("-7516.250000"),)]
    # the same aggregator, buyer, period and version in a counterfactual no longer collides
    cf = _session(tmp_path, "cf", 17)
    new = settle(cf, _meter(tmp_path, ["D1"], drop=5.0), SettleConfig(), db=store_url, scenario="cf").new_versions
    assert list(new["version"]) == [1]
