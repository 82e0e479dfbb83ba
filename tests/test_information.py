"""Who knows what, when (contract section 3a), on batches computed by hand.

The EU traffic light (report 3.3): one feeder head (``head``, owned by ``dso1``, limit 2
MW; down activation at ``n1`` adds flow, factor -1) whose actual base flow at 12:00 is
1.5 MW after a PV ramp. The DSO's forecasts of it: 0.0 MW issued 10:00, 1.5 MW issued
11:30. The TSO needs 1.5 MW down at 12:00; ``cheap`` (n1, under the feeder, 10 EUR/MWh)
and ``far`` (n2, no limit, 50 EUR/MWh) offer 2 MW down each. The DSO step decides first,
then the TSO at T-15min (11:45) under the DSO's computed lights, which reach it 10 minutes
after the DSO publishes them.

- lights published hourly: the last one that reached the TSO by 11:45 is 11:00's, made from
  the 10:00 forecast (0.0 MW: 2 MW of room): the TSO takes 1.5 MW of ``cheap``, the feeder
  carries 1.5 + 1.5 = 3 MW, 1 MW over for 15 minutes: 0.25 MWh of violation that the same
  design with perfect information does not have; the DSO (its own newest forecast, 1.5 MW)
  and the TSO (the 10:00 version) decided on different versions of the feeder's state:
  a race, on the 1.5 MW x 0.25 h = 0.375 MWh activated there;
- lights every 5 minutes: the 11:35 light already holds the 11:30 forecast (0.5 MW of room,
  amber): the TSO takes 0.5 MW of ``cheap`` and 1 MW of ``far``: no violation, no race;
- the DSO never hears of the TSO's activation (its path skips the DSO): it expects 1.5 MW on
  its feeder and sees 3.0: an observability error of 1.5 MW.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from market import clear
from market.design.spec import load_design
from market.io.batch import BatchConfig
from market.io.read import batch_from_frames

T = pd.Timestamp("2026-06-01T12:00:00+00:00")

DESIGN = """
name = "eu-lights-in-time"
title = "DSO first, then the TSO under the DSO's computed lights, each at its gate"

[[steps]]
name = "dso-market"
buyers = ["dso"]
per_dso = true
constraints = "own"
signals = "none"
gate = "T-15min"

[[steps]]
name = "tso-market"
buyers = ["tso"]
constraints = "transmission"
signals = "computed"
amber_margin = 0.0
gate = "T-15min"
"""


def _batch(publish_every_s: float, relay_s: float = 600.0):  # type: ignore[no-untyped-def]
    cfg = BatchConfig(
        "eu-lights",
        T,
        T + pd.Timedelta(minutes=15),
        15,
        voll_eur_mwh=1000.0,
        relay_s={"dso": relay_s},
        publish_every_s={"dso": publish_every_s},
    )
    bids = pd.DataFrame(
        [
            {"bid_id": "cheap", "aggregator_id": "a", "der_id": "d1", "dso_id": "dso1", "node_id": "n1",
             "interval_start": T, "direction": "down", "quantity_mw": 2.0, "price_eur_mwh": 10.0},
            {"bid_id": "far", "aggregator_id": "a", "der_id": "d2", "dso_id": "dso1", "node_id": "n2",
             "interval_start": T, "direction": "down", "quantity_mw": 2.0, "price_eur_mwh": 50.0},
        ]
    )  # fmt: skip
    needs = pd.DataFrame(
        [{"need_id": "N", "buyer_id": "tso", "service": "tso_balancing", "area_id": "system", "interval_start": T,
          "direction": "down", "quantity_mw": 1.5}]
    )  # fmt: skip
    areas = pd.DataFrame({"area_id": ["f1", "f2"], "node_id": ["n1", "n2"], "dso_id": "dso1"})
    cons = pd.DataFrame(
        [{"constraint_id": "head", "owner_id": "dso1", "interval_start": T, "base_flow_mw": 1.5,
          "max_flow_mw": 2.0, "min_flow_mw": -2.0}]
    )  # fmt: skip
    sens = pd.DataFrame({"constraint_id": ["head"], "node_id": ["n1"], "factor": [-1.0]})
    forecasts = pd.DataFrame(
        {
            "quantity": "base_flow",
            "key": "head",
            "interval_start": T,
            "issued_at": [T - pd.Timedelta(hours=2), T - pd.Timedelta(minutes=30)],
            "value": [0.0, 1.5],
        }
    )
    return batch_from_frames(
        cfg, bids=bids, needs=needs, node_areas=areas, constraints=cons, sensitivities=sens, forecasts=forecasts
    )


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("d") / "eu.toml"
    path.write_text(DESIGN)
    return load_design(path)


def _mw(r, bid: str) -> float:  # type: ignore[no-untyped-def]
    return float(r.awards.loc[r.awards["bid_id"] == bid, "quantity_mw"].sum())


def test_hourly_lights_let_the_tso_overload_the_feeder_after_a_pv_ramp(design) -> None:  # type: ignore[no-untyped-def]
    r = clear(_batch(3600.0), design, "pay-as-clear")
    assert _mw(r, "cheap") == pytest.approx(1.5) and _mw(r, "far") == pytest.approx(0.0)
    m = r.metrics
    assert m["distribution_violation_mwh"] == pytest.approx(0.25)
    assert m["information_violation_mwh"] == pytest.approx(0.25)
    assert m["race_conflict_mwh"] == pytest.approx(0.375)
    assert m["cost_of_information_eur"] > 0
    assert m["information_age_s_max"] == pytest.approx(6300.0)  # decided at 11:45 on the 10:00 forecast


def test_lights_every_five_minutes_keep_it_within_its_limit(design) -> None:  # type: ignore[no-untyped-def]
    r = clear(_batch(300.0), design, "pay-as-clear")
    assert _mw(r, "cheap") == pytest.approx(0.5) and _mw(r, "far") == pytest.approx(1.0)
    m = r.metrics
    assert m["distribution_violation_mwh"] == pytest.approx(0.0)
    assert m["information_violation_mwh"] == pytest.approx(0.0)
    assert m["race_conflict_mwh"] == pytest.approx(0.0)
    assert m["cost_of_information_eur"] == pytest.approx(0.0)


def test_a_dso_that_never_hears_of_the_tsos_activation_misjudges_its_flow(design) -> None:  # type: ignore[no-untyped-def]
    m = clear(_batch(3600.0), design, "pay-as-clear").metrics
    assert m["observability_error_by_dso"] == {"dso1": pytest.approx(1.5)}
    assert m["observability_error_mw"] == pytest.approx(1.5)


def test_without_forecasts_and_gates_nothing_moves(tmp_path: Path) -> None:
    """An uninformed batch clears exactly as before gates existed: the same tables and the
    same metrics (no information metric is added)."""
    from market.testing import feeder_case

    batch = feeder_case()
    r = clear(batch, "eu-dso-traffic-light", "pay-as-clear")
    assert not any(k.startswith(("information_", "race_", "cost_of_information")) for k in r.metrics)
    again = clear(batch, "eu-dso-traffic-light", "pay-as-clear")
    pd.testing.assert_frame_equal(r.awards, again.awards)


def test_a_bad_gate_and_a_bad_forecast_are_refused_by_name(tmp_path: Path) -> None:
    from market.errors import BatchValidationError, DesignError

    path = tmp_path / "bad.toml"
    path.write_text(DESIGN.replace('gate = "T-15min"', 'gate = "soon"', 1))
    with pytest.raises(DesignError, match="gate 'soon'"):
        load_design(path)
    batch = _batch(3600.0)
    for quantity, says in (("demand", "quantity"), ("need", "unknown key: not in needs")):
        bad = batch.forecasts.assign(quantity=quantity)
        with pytest.raises(BatchValidationError, match=says):
            batch_from_frames(
                batch.config, **{n: batch.table(n) for n in ("bids", "needs", "node_areas", "constraints")},
                sensitivities=batch.sensitivities, forecasts=bad,
            )  # fmt: skip


def _ramp_batch(relay: dict[str, float], publish: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    """A fast PV ramp on a DSO feeder (limit 2 MW, actual base 1.5 MW at 12:00): forecast 0.0
    MW issued 11:30, 1.5 MW issued 11:40. The TSO needs 1.5 MW down; ``cheap`` sits under
    the feeder (down adds flow), ``far`` does not."""
    b = _batch(3600.0)
    forecasts = b.forecasts.assign(issued_at=[T - pd.Timedelta(minutes=30), T - pd.Timedelta(minutes=20)])
    cfg = BatchConfig("ramp", T, T + pd.Timedelta(minutes=15), 15, voll_eur_mwh=1000.0, relay_s=relay,
                      publish_every_s=publish or {})  # fmt: skip
    tables = {n: b.table(n) for n in ("bids", "needs", "node_areas", "constraints", "sensitivities")}
    return batch_from_frames(cfg, **tables, forecasts=forecasts)


TSO_STEP = """
name = "{name}"
[[steps]]
name = "tso-market"
buyers = ["tso"]
constraints = "all"
signals = "none"
gate = "T-15min"
dispatch.tso = {path}
"""


def _design(tmp_path: Path, name: str, path: str):  # type: ignore[no-untyped-def]
    file = tmp_path / f"{name}.toml"
    file.write_text(TSO_STEP.format(name=name, path=path))
    return load_design(file)


def test_a_coordinator_tier_makes_the_state_older_and_costs_a_violation(tmp_path: Path) -> None:
    """Japan's aggregator coordinator (3.6: "a cascading latency issue that would limit fast
    action"): with a 15-minute relay, the TSO deciding at 11:45 holds the 11:30 forecast (0.0
    MW: room for 2 MW) instead of the 11:40 one: it overloads the feeder by 1 MW for 15
    minutes; without the coordinator it sees the ramp and stays within the limit."""
    batch = _ramp_batch({"coordinator": 900.0})
    with_c = clear(batch, _design(tmp_path, "with-coordinator", '["tso", "coordinator", "aggregator", "der"]'))
    without = clear(batch, _design(tmp_path, "without", '["tso", "aggregator", "der"]'))
    assert with_c.metrics["information_age_s_max"] == pytest.approx(900.0)  # 11:45 - 11:30
    assert without.metrics["information_age_s_max"] == pytest.approx(300.0)  # 11:45 - 11:40
    assert with_c.metrics["information_violation_mwh"] == pytest.approx(0.25)
    assert without.metrics["information_violation_mwh"] == pytest.approx(0.0)


SEQUENTIAL = """
name = "sequential"
[[steps]]
name = "{first}-market"
buyers = ["{first}"]
{first_extra}
gate = "{first_gate}"
[[steps]]
name = "{second}-market"
buyers = ["{second}"]
{second_extra}
gate = "T-15min"
"""

SIMULTANEOUS = """
name = "simultaneous"
[[steps]]
name = "tso-market"
buyers = ["tso"]
constraints = "{cons}"
signals = "none"
gate = "T-15min"
[[steps]]
name = "dso-market"
buyers = ["dso"]
per_dso = true
constraints = "own"
simultaneous = true
gate = "T-15min"
"""
TSO_EXTRA = 'constraints = "{cons}"\nsignals = "none"'
DSO_EXTRA = 'per_dso = true\nconstraints = "own"'


def _two_markets(case: str):  # type: ignore[no-untyped-def]
    """One feeder (actual base 0.5 MW; down at ``n1`` adds flow); the TSO's down offers ``td``
    and ``dn`` (10 and 20 EUR/MWh, 1 MW each) and ``far`` (n2, 60); the DSO's up offer ``up``
    (n1, 30, 1 MW).
    ``relay``: the TSO needs 1 MW down (``td``, ``dn`` at n2) and the DSO 1 MW of up-relief in
    ``f1``; the DSO's market clears first and its results reach the TSO after 1 minute.
    ``stale``: the TSO needs 2 MW down, no DSO need; the feeder's limit is 1.8 MW and the
    TSO's market sees it; the base was forecast 0.0 MW at 10:50 and 0.5 MW at 11:42."""
    from market.testing import area, bid, constraint, dso_need, make_batch, tso_need

    where = "n2" if case == "relay" else "n1"
    bids = [
        bid("td", 10, 1.0, node=where, direction="down", minutes=15, services="tso_balancing"),
        bid("dn", 20, 1.0, node=where, direction="down", minutes=15, services="tso_balancing"),
        bid("far", 60, 2.0, node="n2", direction="down", minutes=15, services="tso_balancing"),
        bid("up", 30, 1.0, node="n1", direction="up", minutes=15, services="dso_congestion"),
    ]
    needs = [tso_need("N", 1.0 if case == "relay" else 2.0, "down", minutes=15)]
    if case == "relay":
        needs.append(dso_need("D", "f1", 1.0, "up", minutes=15))
    batch = make_batch(
        bids,
        needs,
        areas=[area("f1", "n1"), area("f2", "n2")],
        constraints=[constraint("head", base=0.5, max_mw=1.8 if case == "stale" else 10.0, minutes=15)],
        sens=[{"constraint_id": "head", "node_id": "n1", "factor": -1.0}],
        minutes=15,
    )
    if case == "relay":
        return batch.with_config(relay_s={"dso": 60.0})
    start = batch.config.start
    forecasts = pd.DataFrame(
        {
            "quantity": "base_flow",
            "key": "head",
            "interval_start": start,
            "issued_at": [start - pd.Timedelta(minutes=70), start - pd.Timedelta(minutes=18)],
            "value": [0.0, 0.5],
        }
    )
    return batch.replace(forecasts=forecasts)


@pytest.mark.parametrize(("case", "worse"), [("relay", "simultaneous"), ("stale", "sequential")])
def test_simultaneous_blind_markets_against_sequential_markets(tmp_path: Path, case: str, worse: str) -> None:
    """NYISO Alternative 1 (3.5: separate markets acting at once: "neither entity has an
    accurate picture") against the TSO's market first, its results relayed to the DSO.
    ``relay``: the DSO buys 1 MW up for its feeder. Blind to it, the TSO buys 1 MW down for
    its need: the system moves by 0, not -1 (0.25 MWh of imbalance); clearing after the DSO,
    with its results a minute later, the TSO counts the DSO's MW and buys 2 MW down.
    ``stale``: sequential markets cascade, so the TSO's clears earlier (T-60min, on the 10:50
    forecast: room for 1.8 MW at n1, actual 0.5 + 1.8 = 2.3: 0.125 MWh over); at T-15min it
    holds the 11:42 forecast (room 1.3 MW) and stays within the limit. The data decide."""
    cons = "transmission" if case == "relay" else "all"
    tso_extra, dso_extra = TSO_EXTRA.format(cons=cons), DSO_EXTRA
    if case == "relay":  # the DSO's market first
        order = {"first": "dso", "second": "tso", "first_extra": dso_extra, "second_extra": tso_extra}
        gate = "T-20min"
    else:  # the TSO's market first, so it clears earlier
        order = {"first": "tso", "second": "dso", "first_extra": tso_extra, "second_extra": dso_extra}
        gate = "T-60min"
    seq_file, sim_file = tmp_path / "seq.toml", tmp_path / "sim.toml"
    seq_file.write_text(SEQUENTIAL.format(first_gate=gate, **order))
    sim_file.write_text(SIMULTANEOUS.format(cons=cons))
    batch = _two_markets(case)
    seq = clear(batch, load_design(seq_file)).metrics
    sim = clear(batch, load_design(sim_file)).metrics
    metric = "imbalance_mwh" if case == "relay" else "distribution_violation_mwh"
    v = {"sequential": seq[metric], "simultaneous": sim[metric]}
    other = "sequential" if worse == "simultaneous" else "simultaneous"
    assert v[worse] > v[other] + 1e-9, v
    assert v[other] == pytest.approx(0.0), v


def test_forecasts_make_by_hand(tmp_path: Path) -> None:
    """Two days of one constraint, hourly: base 10 + hour on day 1 and 20 + hour on day 2.
    For 02:00 on day 2: the same-time-previous-day forecast is 12 (issued 12:00 on day 1);
    persistence 60 minutes ahead is issued at 01:00 from the last interval ended by then
    (00:00-01:00: 20); 15 minutes ahead is issued at 01:45 from the same interval (20)."""
    from typer.testing import CliRunner

    from market.cli.app import app
    from market.io.forecasts import make_forecasts
    from market.io.write import write_batch
    from market.testing import bid, constraint, make_batch, tso_need

    start = pd.Timestamp("2026-01-05T00:00:00+00:00")
    rows = [
        {**constraint("c", base=(10 if k < 24 else 20) + k % 24, max_mw=100.0), "interval_start": start
         + pd.Timedelta(hours=k)}
        for k in range(48)
    ]  # fmt: skip
    batch = make_batch(
        [bid("b", 10, 1.0, node="n1")],
        [tso_need("N", 1.0)],
        constraints=rows,
        sens=[{"constraint_id": "c", "node_id": "n1", "factor": 1.0}],
        n_intervals=48,
    )
    made = make_forecasts(batch, lead_minutes=(15, 60))
    f = made[made["quantity"] == "base_flow"].set_index(["interval_start", "issued_at"])["value"]
    at = start + pd.Timedelta(hours=26)
    assert f[(at, start + pd.Timedelta(hours=12))] == pytest.approx(12.0)
    assert f[(at, at - pd.Timedelta(minutes=60))] == pytest.approx(20.0)
    assert f[(at, at - pd.Timedelta(minutes=15))] == pytest.approx(20.0)
    assert not any(f.index.get_level_values("interval_start") < start + pd.Timedelta(hours=1))  # nothing earlier known
    folder = tmp_path / "b"
    write_batch(batch, folder)
    res = CliRunner().invoke(app, ["forecasts", "make", str(folder), "--out", str(tmp_path / "bf"), "--json"])
    assert res.exit_code == 0, res.output
    again = CliRunner().invoke(app, ["forecasts", "make", str(folder), "--out", str(tmp_path / "bf2")])
    assert again.exit_code == 0
    a = pd.read_parquet(tmp_path / "bf" / "forecasts.parquet")
    b = pd.read_parquet(tmp_path / "bf2" / "forecasts.parquet")
    pd.testing.assert_frame_equal(a, b)  # deterministic
    assert CliRunner().invoke(app, ["forecasts", "make", str(folder), "--out", str(folder)]).exit_code == 2


def test_needs_and_availability_are_forecast_from_the_day_before() -> None:
    """Day-ahead, same time previous day, issued 12:00 the day before: the TSO needed 2 MW up
    at 01:00 on day 1, so its 3 MW need at 01:00 on day 2 is forecast 2 MW; its need at 02:00
    on day 2 had none the day before: forecast 0. DER d offered 4 MW at 01:00 on day 1: its
    6 MW bid at 01:00 on day 2 is forecast to have 4 MW; the day-1 bid has no forecast."""
    from market.io.forecasts import make_forecasts
    from market.testing import bid, make_batch, ts, tso_need

    batch = make_batch(
        [bid("d1", 10.0, 4.0, t=1, der="d"), bid("d2", 10.0, 6.0, t=25, der="d")],
        [tso_need("n1", 2.0, t=1), tso_need("n2", 3.0, t=25), tso_need("n3", 1.0, t=26)],
        n_intervals=48,
    )
    f = make_forecasts(batch).set_index(["quantity", "key"])
    assert f.loc[("need", "n2"), "value"] == pytest.approx(2.0)
    assert f.loc[("need", "n3"), "value"] == 0.0 and f.loc[("need", "n1"), "value"] == 0.0
    assert f.loc[("der_available", "d2"), "value"] == pytest.approx(4.0)
    assert ("der_available", "d1") not in f.index
    assert f.loc[("need", "n2"), "issued_at"] == pd.Timestamp("2026-01-05T12:00Z")
    assert f.loc[("der_available", "d2"), "interval_start"] == ts(25)
