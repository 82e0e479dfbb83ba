"""Scalability measured from the models' sizes over a DER and DSO-count sweep (Table 1:
"Ability of system's processes and technology design to work well for very large
quantities of DER resources"), every operator's largest model, the iDSO's included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market.analysis.scaling import growth, scaling_table
from market.cli.app import app


@pytest.fixture(scope="module")
def grown():  # type: ignore[no-untyped-def]
    table = scaling_table(["single", "dso-led", "aemo-three-way-idso"], [100, 400, 1600], [2, 4])
    return growth(table).set_index(["design", "operator"])


def test_the_marketplace_grows_with_every_der_where_the_layered_tso_does_not(grown):  # type: ignore[no-untyped-def]
    assert grown.loc[("single", "platform"), "growth_with_der"] > 0.8
    assert abs(grown.loc[("dso-led", "tso"), "growth_with_der"]) < 0.3  # interfaces, not DER
    assert grown.loc[("dso-led", "tso"), "growth_with_dsos"] > 0.3  # one more interface per DSO
    # the layering moves the DER to the DSOs: each DSO's model grows with its own DER
    assert grown.loc[("dso-led", "dso"), "growth_with_der"] > 0.8
    assert grown.loc[("dso-led", "dso"), "growth_with_dsos"] < -0.5  # more DSOs: each smaller


def test_the_idsos_one_market_across_networks_grows_with_every_der_whatever_the_dsos(grown):  # type: ignore[no-untyped-def]
    assert grown.loc[("aemo-three-way-idso", "idso"), "growth_with_der"] > 0.8
    assert abs(grown.loc[("aemo-three-way-idso", "idso"), "growth_with_dsos"]) < 0.1


def test_the_command_writes_its_tables_and_refuses_a_bad_grid(tmp_path: Path) -> None:
    out = tmp_path / "scaling"
    args = ["scaling", "--bids", "50,200", "--dsos", "2", "--designs", "single,dso-led", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {"manifest.json", "scaling.parquet", "growth.parquet"}
    one = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "one"), "--json", "--bids", "50"])
    doc = json.loads(one.stdout)  # strict JSON: a slope of one point is null, never NaN
    assert one.exit_code == 0 and doc["growth"][0]["growth_with_der"] is None
    for bad in (["--bids", "1,x"], ["--bids", "3", "--dsos", "5"], ["--bids", ",".join(["10"] * 51)]):
        res = CliRunner().invoke(app, ["scaling", *bad, "--out", str(tmp_path / "bad")])
        assert res.exit_code == 2, (bad, res.output)
        assert not (tmp_path / "bad").exists()
