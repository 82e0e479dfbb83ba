"""The contested sample (data/contested, made by data/make_contested.py from SimBench) is
what the issue asked for, and the designs disagree on it as the report argues."""

from __future__ import annotations

from pathlib import Path

import pytest

from market import clear, load_batch

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def batch():  # type: ignore[no-untyped-def]
    return load_batch(DATA / "contested")


def test_the_sample_is_contested(batch):
    h = batch.config.interval_hours
    assert len(batch.dsos) >= 3
    cons = batch.constraints
    heads = cons.loc[cons["owner_id"] != "tso", "constraint_id"].unique()
    assert len(heads) >= 20  # feeders with a DSO-owned head limit
    interfaces = cons.loc[cons["owner_id"] == "tso", "constraint_id"].unique()
    assert len(interfaces) >= 1 and batch.sensitivities["constraint_id"].isin(interfaces).any()
    needs = batch.needs
    tso = needs.loc[needs["buyer_id"] == "tso", "quantity_mw"].sum() * h
    dso = needs.loc[needs["buyer_id"] != "tso", "quantity_mw"].sum() * h
    assert 0.5 <= dso / tso <= 2.0  # DSO needs comparable to the TSO's
    both = needs.assign(kind=needs["buyer_id"].eq("tso")).groupby(["interval_start", "kind"])["direction"].first()
    flipped = both.unstack().dropna()
    assert (flipped[True] != flipped[False]).any()  # some DSO needs against the TSO's direction
    routes = set(batch.aggregators["route"])
    assert routes == {"via-dso", "tso-direct", "both"}
    spans = batch.bids.groupby("aggregator_id")["dso_id"].nunique()
    assert (spans >= 2).all()  # aggregators span DSOs


def test_the_designs_disagree_as_the_report_argues(batch):
    runs = {
        d: clear(batch, d).metrics
        for d in ("single", "tso-only", "dso-led", "california-future", "eu-dso-traffic-light")
    }
    costs = {d: m["system_cost_eur"] for d, m in runs.items()}
    assert len({round(c) for c in costs.values()}) == len(costs)  # five designs, five outcomes
    assert costs["single"] < costs["tso-only"]  # the joint market beats today's model
    assert runs["california-future"]["hidden_coupling_undone_mwh"] > 0  # the direct route couples, hidden
    assert runs["single"]["hidden_coupling_undone_mwh"] == 0
    assert runs["dso-led"]["scalability_tso_variables"] * 2 < runs["single"]["scalability_tso_variables"]
    assert runs["eu-dso-traffic-light"]["tier_bypassing_mw"] == 0 < runs["tso-only"]["tier_bypassing_mw"]
    # the TSO-owned T-D interface limit matters: some design leaves it violated, by different amounts
    assert len({round(m["transmission_violation_mwh"], 3) for m in runs.values()}) > 1


# Where the measurement on the contested day differs from what the report predicts for a
# design (against today's TSO-centric model); each is explained in the design's
# prediction_notes (shown in the report) and in the docs (docs/guide.md).
DISAGREEMENTS = {
    ("single", "tier_bypassing"),
    ("single", "hidden_coupling"),
    ("japan-tdso-coordinator", "hidden_coupling"),
    ("japan-tdso-coordinator", "latency"),
    ("nyiso-alt1", "latency"),
    ("california-future", "cyber"),
}


def test_every_prediction_of_the_report_holds_or_is_explained(batch):
    """Seed claims: for every principle of Table 1 and every design the report speaks of,
    the measured ordering against today's model is the predicted one, except where the
    design says why not."""
    from market.analysis.verdict import risk_table
    from market.design.spec import preset_names

    table = risk_table([clear(batch, d) for d in preset_names()])
    judged = table[table["agrees"].notna()]
    differ = judged[~judged["agrees"].astype(bool)]
    assert set(zip(differ["design"], differ["risk"], strict=True)) == DISAGREEMENTS
    assert (differ["note"].str.len() > 20).all()
    assert len(judged) - len(differ) >= 47  # the rest agree
    # every prediction of a preset says its basis: the report's sentence or a reasoning from it
    assert set(judged["basis"]) <= {"quote", "inference"}
    readme = (DATA.parent / "docs" / "guide.md").read_text()
    for design, risk in DISAGREEMENTS:
        assert f"`{design}` {risk.replace('_', ' ')}" in readme, (design, risk)
