"""The verdict: best and worst per risk against the reference, never on noise, and the
report's predictions checked against the measurement."""

from __future__ import annotations

import pytest

from market import clear
from market.analysis.report import comparison_html
from market.analysis.verdict import RISK_KEYS, identical_dispatch, risk_table, sentences
from market.design.predictions import PREDICTION_RISKS
from market.testing import feeder_case


def test_every_predicted_risk_is_measured():
    assert RISK_KEYS == PREDICTION_RISKS


@pytest.fixture(scope="module")
def runs():  # type: ignore[no-untyped-def]
    b = feeder_case()
    return [clear(b, d) for d in ("tso-only", "single", "uk-fw2-joint", "dso-led", "eu-dso-traffic-light")]


def test_sentences_name_best_and_worst_with_differences_to_todays_model(runs):
    table = risk_table(runs)
    assert set(table["reference"]) == {"tso-only"}
    said = sentences(table)
    violations = next(s for s in said if s.startswith("Network violations"))
    # tso-only overloads the feeder by 2 MWh; the others do not
    assert "worst tso-only (2 MWh" in violations and "-2 MWh, -100% against tso-only" in violations


def test_only_differences_beyond_tolerance_are_coloured(runs):
    html = comparison_html(runs)
    rows = {r.split("</th>")[0]: r for r in html.split("<tr><th>")[1:]}
    same = rows["Make-whole for paradoxically accepted bids"]  # 0 EUR everywhere: never coloured
    assert 'class="best"' not in same and 'class="worst"' not in same
    # tso-only (the reference) overloads the feeder by 2 MWh; the other four do not: green
    violations = rows["Distribution violations"]
    assert violations.count('class="best"') == len(runs) - 1 and 'class="worst"' not in violations


def test_predictions_are_checked_against_the_measured_direction(runs):
    table = risk_table(runs).set_index(["design", "risk"])
    row = table.loc[("dso-led", "tier_bypassing")]
    assert row["expected"] == "lower" and row["verdict"] == "better" and row["agrees"]
    assert table.loc[("tso-only", "violations"), "agrees"] is None  # the reference predicts nothing


def test_designs_that_dispatched_identically_are_named(runs):
    groups = identical_dispatch(runs)
    assert any({"single", "uk-fw2-joint"} <= set(g) for g in groups)
    assert not any("tso-only" in g for g in groups)  # it overloads the feeder: a dispatch of its own


def test_prices_are_coloured_on_the_ordinary_scale_not_voll(runs):
    from market.analysis.figures import price_heatmap

    fig = price_heatmap(runs, voll_eur_mwh=1000.0)
    assert fig.layout.coloraxis.cmax < 500.0  # VoLL-level prices are counted apart, not the scale
    assert "VoLL level" in fig.layout.title.text


def test_structural_metrics_are_labelled_and_kept_apart() -> None:
    """Tier bypassing, observability, latency, cyber exposure and fragmentation are decided by
    a design's wiring: the comparison marks them structural, and the verdict says so after
    the measured risks, naming extremes, never a best design."""
    from market import clear
    from market.analysis.comparison import comparison_table
    from market.analysis.verdict import STRUCTURAL_NOTE, risk_table, sentences
    from market.testing import feeder_case

    batch = feeder_case()
    results = [clear(batch, d) for d in ("single", "tso-only", "dso-led")]
    table = comparison_table(results).set_index(["design", "metric"])
    assert table.loc[("single", "tier_bypassing_mwh"), "kind"] == "structural"
    assert table.loc[("single", "system_cost_eur"), "kind"] == "measured"
    said = sentences(risk_table(results))
    structural = [s for s in said if s.endswith(STRUCTURAL_NOTE)]
    assert structural and all(" best " not in s for s in structural)
    first = next(i for i, s in enumerate(said) if s.endswith(STRUCTURAL_NOTE))
    assert not any(s.endswith(STRUCTURAL_NOTE) for s in said[:first])
    assert all(s.endswith(STRUCTURAL_NOTE) for s in said[first:])
