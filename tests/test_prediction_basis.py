"""Each prediction says its basis: the report's sentence, quoted with its section, or an
inference from it; the first screen and the season show the basis beside each prediction
and count agreement by basis; a risk the report says nothing of is "not in report"."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market import clear
from market.analysis.report import verdict_html
from market.analysis.verdict import agreement_tally, risk_table
from market.cli.app import app
from market.design.predictions import Basis
from market.design.spec import load_design, parse_design, preset_names
from market.errors import DesignError
from market.io.write import write_batch
from market.testing import feeder_case


@pytest.mark.parametrize("name", preset_names())
def test_every_prediction_of_every_preset_has_a_quote_or_an_inference(name: str) -> None:
    design = load_design(name)
    assert set(design.prediction_sources) == set(design.predictions)
    for risk, source in design.prediction_sources.items():
        assert source.basis in (Basis.QUOTE, Basis.INFERENCE), (name, risk)
        assert len(source.text) > 30, (name, risk)
        if source.basis is Basis.QUOTE:
            assert source.section and source.section[0].isdigit(), (name, risk)
            assert source.cite().startswith("“") and f"({source.section})" in source.cite()


def _raw(**extra: object) -> dict[str, object]:
    raw = tomllib.loads((resources.files("market.design.presets") / "single.toml").read_text())
    raw.pop("prediction_basis")
    raw.update(extra)
    return raw


@pytest.mark.parametrize(
    ("basis", "message"),
    [
        ({"cost": {"basis": "hearsay", "text": "x" * 40}}, "basis must be one of"),
        ({"cost": {"basis": "quote", "text": "the marketplace is cheaper, said no one"}}, "needs the report section"),
        ({"cost": {"basis": "inference", "text": "  "}}, "text must be"),
        ({"cost": {"basis": "inference", "text": "why", "page": 3}}, "must be a table with"),
        ({"latency": {"basis": "inference", "text": "a reason"}}, "no prediction for 'latency'"),
        ("quote", "prediction_basis must be a table"),
    ],
)
def test_a_bad_basis_is_refused_naming_the_risk(basis: object, message: str) -> None:
    with pytest.raises(DesignError, match=message):
        parse_design(_raw(prediction_basis=basis), "mine.toml")


def test_a_users_prediction_without_a_basis_is_shown_as_unstated() -> None:
    mine = parse_design(_raw(name="mine"), "mine.toml")
    assert {s.basis for s in mine.prediction_sources.values()} == {Basis.UNSTATED}
    runs = [clear(feeder_case(), "tso-only"), clear(feeder_case(), mine), clear(feeder_case(), "dso-led")]
    table = risk_table(runs).set_index(["design", "risk"])
    assert table.loc[("mine", "cost"), "basis"] == "unstated"
    assert table.loc[("dso-led", "tier_bypassing"), "basis"] == "quote"
    assert table.loc[("dso-led", "fragmentation"), "basis"] == "not-in-report"
    assert table.loc[("tso-only", "cost"), "basis"] == ""  # the reference predicts nothing
    tally = agreement_tally(risk_table(runs))
    assert tally.startswith("quote: ") and "inference: " in tally and "unstated: " in tally


def test_the_first_screen_shows_each_basis_and_cites_the_sentence() -> None:
    runs = [clear(feeder_case(), d) for d in ("tso-only", "dso-led", "single")]
    page = verdict_html(runs)
    assert "report: lower <small>(quote)</small>" in page
    assert "not in report" in page
    assert "makes good use of layered decomposition" in page  # dso-led's quoted sentence, in a title
    assert "quote: " in page and "inference: " in page  # the tally split by basis


def test_the_seasons_report_shows_each_prediction_with_its_basis_and_citation(tmp_path: Path) -> None:
    days = tmp_path / "days"
    for day in ("2026-01-05", "2026-01-06"):
        write_batch(feeder_case(), days / day)
    out = tmp_path / "season"
    res = CliRunner().invoke(app, ["season", str(days), "--designs", "tso-only,dso-led", "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert "(quote)" in page and "holds on" in page and "not in report" in page
    assert "Because of the layering and use of the Total DSO approach" in page  # the citation listed
    assert "quote, structural:" in page  # the tally split by basis and kind
