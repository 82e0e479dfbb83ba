"""Gate closures per product and the two-part / capped-power columns of ``bids``: a late bid
or baseline, or an inconsistent offer, is refused with its row, column and code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from market.errors import BatchValidationError, FindingCode
from market.io.read import load_batch
from market.testing import bid, forecast_row, make_batch, tso_need

# delivery of the test batches: 2026-01-05 00:00 UTC (interval 0)
CLOSURES = {"availability": "D-1 10:00", "energy": "H-2", "nominated_baseline": "D-1 12:00"}


def refused(**kwargs: object) -> list[tuple[str, int | None, str | None, FindingCode]]:
    with pytest.raises(BatchValidationError) as info:
        make_batch(**kwargs)  # type: ignore[arg-type]
    return [(f.table, f.row, f.column, f.code) for f in info.value.findings]


def test_bids_before_their_gates_are_accepted() -> None:
    batch = make_batch(
        bids=[
            bid("two-part", 50.0, 1.0, availability=3.0, submitted_at="2026-01-04T09:59Z"),
            bid("energy", 60.0, 1.0, submitted_at="2026-01-04T21:59Z"),
        ],
        needs=[tso_need("t1", 1.0)],
        gate_closures=CLOSURES,
    )
    assert len(batch.bids) == 2


def test_a_two_part_bid_after_the_availability_gate_is_refused() -> None:
    """10:30 the day before: inside the energy gate (22:00), after availability's (10:00)."""
    found = refused(
        bids=[bid("ok", 50.0, 1.0, submitted_at="2026-01-04T09:00Z"),
              bid("late", 50.0, 1.0, availability=3.0, submitted_at="2026-01-04T10:30Z")],
        needs=[tso_need("t1", 1.0)],
        gate_closures=CLOSURES,
    )  # fmt: skip
    assert found == [("bids", 1, "submitted_at", FindingCode.GATE_CLOSED)]


def test_an_energy_bid_after_its_gate_names_the_gate() -> None:
    with pytest.raises(
        BatchValidationError, match=r"energy bid submitted after its gate closure H-2 \(2026-01-04T22:00"
    ):
        make_batch(
            bids=[bid("late", 50.0, 1.0, submitted_at="2026-01-04T22:30Z")],
            needs=[tso_need("t1", 1.0)],
            gate_closures=CLOSURES,
        )


def test_a_late_nominated_baseline_is_its_own_error() -> None:
    row = bid("nom", 50.0, 1.0, submitted_at="2026-01-04T13:00Z") | {"nominated_baseline_mw": 2.0}
    found = refused(bids=[row], needs=[tso_need("t1", 1.0)], gate_closures=CLOSURES)
    assert found == [("bids", 0, "submitted_at", FindingCode.NOMINATION_LATE)]


def test_closures_need_submission_times() -> None:
    found = refused(bids=[bid("b", 50.0, 1.0)], needs=[tso_need("t1", 1.0)], gate_closures=CLOSURES)
    assert found == [("bids", None, "submitted_at", FindingCode.MISSING_COLUMN)]


def test_batch_toml_gate_closures_are_checked(tmp_path: Path) -> None:
    """An unknown product and a gate that does not parse, both named, nothing read."""
    (tmp_path / "batch.toml").write_text(
        'start = "2026-01-05T00:00:00+00:00"\nend = "2026-01-05T01:00:00+00:00"\ninterval_minutes = 60\n'
        '[gate_closures]\nenergy = "H-2"\nreserve = "D-1 10:00"\navailability = "yesterday"\n'
    )
    pd.DataFrame([bid("b", 50.0, 1.0)]).to_csv(tmp_path / "bids.csv", index=False)
    with pytest.raises(BatchValidationError) as info:
        load_batch(tmp_path)
    found = {(f.column, f.code) for f in info.value.findings}
    assert ("gate_closures.reserve", FindingCode.UNKNOWN_KEY) in found
    assert ("gate_closures.availability", FindingCode.INVALID_VALUE) in found


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (bid("neg", 50.0, 1.0, availability=-1.0), "availability_price_eur_mw_h"),
        (bid("capped-down", 50.0, 1.0, max_usage=2.0, direction="down", services="dso_congestion"), "direction"),
        (bid("capped-tso", 50.0, 1.0, max_usage=2.0), "services"),
        (bid("capped-2part", 50.0, 1.0, max_usage=2.0, services="dso_congestion", availability=1.0),
         "availability_price_eur_mw_h"),
    ],
)  # fmt: skip
def test_inconsistent_offers_are_refused(row: dict[str, object], column: str) -> None:
    found = refused(bids=[row], needs=[tso_need("t1", 1.0)])
    assert [(f[1], f[2]) for f in found] == [(0, column)]


def test_forecasts_of_unknown_needs_or_bids_are_refused() -> None:
    found = refused(
        bids=[bid("A", 50.0, 1.0)],
        needs=[tso_need("t1", 1.0)],
        forecasts=[forecast_row("need", "t9", 1.0), forecast_row("der_available", "Z", 1.0),
                   forecast_row("der_available", "A", 1.0)],
    )  # fmt: skip
    assert found == [
        ("forecasts", 0, "key", FindingCode.UNKNOWN_REFERENCE),
        ("forecasts", 1, "key", FindingCode.UNKNOWN_REFERENCE),
    ]


def test_negative_need_and_availability_forecasts_are_refused() -> None:
    found = refused(
        bids=[bid("A", 50.0, 1.0)],
        needs=[tso_need("t1", 1.0)],
        forecasts=[forecast_row("need", "t1", -1.0), forecast_row("der_available", "A", -0.5)],
    )
    assert found == [
        ("forecasts", 0, "value", FindingCode.INVALID_VALUE),
        ("forecasts", 1, "value", FindingCode.INVALID_VALUE),
    ]


def test_a_forecast_for_another_interval_than_its_bid_or_need_is_refused() -> None:
    found = refused(
        bids=[bid("A", 50.0, 1.0)],
        needs=[tso_need("t1", 1.0)],
        forecasts=[forecast_row("need", "t1", 1.0, t=1), forecast_row("der_available", "A", 1.0, t=1)],
        n_intervals=2,
    )
    assert found == [
        ("forecasts", 0, "interval_start", FindingCode.INCONSISTENT),
        ("forecasts", 1, "interval_start", FindingCode.INCONSISTENT),
    ]
