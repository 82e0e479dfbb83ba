"""`flexmarket network import`: the imported tables predict pandapower's own DC power flow
(base case and +1 MW at a bus) on MATPOWER case30 (as a pandapower JSON file) and on a
SimBench grid, with base flows per interval from its profiles."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from market.cli import app
from market.io.grid import node_ids_of

pytestmark = pytest.mark.filterwarnings("ignore")


def _dc_flows(net: object) -> pd.Series:
    import pandapower as pp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net)
    lines = net.res_line["p_from_mw"].set_axis([f"line:{i}" for i in net.line.index])  # type: ignore[attr-defined]
    if net.line["name"].notna().all() and net.line["name"].astype(str).is_unique:  # type: ignore[attr-defined]
        lines.index = net.line["name"].astype(str)  # type: ignore[attr-defined]
    trafos = net.res_trafo["p_hv_mw"]  # type: ignore[attr-defined]
    names = net.trafo["name"]  # type: ignore[attr-defined]
    ok = names.notna().all() and names.astype(str).is_unique
    trafos = trafos.set_axis(names.astype(str) if ok else [f"trafo:{i}" for i in net.trafo.index])  # type: ignore[attr-defined]
    return pd.concat([lines, trafos])


def _import(source: str, out: object, *extra: str) -> dict[str, pd.DataFrame]:
    res = CliRunner().invoke(app, ["network", "import", source, "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return {t: pd.read_parquet(f"{out}/{t}.parquet") for t in ("constraints", "sensitivities", "node_areas")}


def _predict(tables: dict[str, pd.DataFrame], injection: pd.Series) -> pd.Series:
    """Flows the imported tables predict for an extra injection (MW per node) on the base."""
    sens = tables["sensitivities"].merge(injection.rename("mw"), left_on="node_id", right_index=True)
    delta = (sens["factor"] * sens["mw"]).groupby(sens["constraint_id"]).sum()
    base = tables["constraints"].set_index("constraint_id")["base_flow_mw"]
    return base + delta.reindex(base.index).fillna(0.0)


def test_case30_json_reproduces_pandapower_dc_flows(tmp_path):  # type: ignore[no-untyped-def]
    import pandapower as pp
    import pandapower.networks as pn

    net = pn.case30()
    pp.to_json(net, str(tmp_path / "case30.json"))
    tables = _import(str(tmp_path / "case30.json"), tmp_path / "batch", "--tso-min-kv", "0")
    assert set(tables["constraints"]["owner_id"]) == {"tso"}
    base = _dc_flows(net)
    predicted = _predict(tables, pd.Series(dtype=float))
    assert np.abs(predicted - base.reindex(predicted.index)).max() < 1e-4
    # +1 MW injected at a load's bus (its load 1 MW lower), out at the slack: pandapower's
    # DC flow of the changed net
    bus = net.load["bus"].iloc[3]
    net.load.loc[net.load.index[3], "p_mw"] -= 1.0
    moved = _dc_flows(net)
    node = node_ids_of(net)[net.bus.index.get_loc(bus)]
    predicted = _predict(tables, pd.Series({node: 1.0}))
    assert np.abs(predicted - moved.reindex(predicted.index)).max() < 1e-4


def test_simbench_grid_with_profile_base_flows(tmp_path):  # type: ignore[no-untyped-def]
    start = "2016-12-01T07:00:00+00:00"
    tables = _import("1-MV-rural--0-sw", tmp_path / "b", "--start", start, "--intervals", "4", "--dso", "dso-rural")
    cons = tables["constraints"]
    assert cons["interval_start"].nunique() == 4 and set(cons["owner_id"]) == {"tso", "dso-rural"}
    assert set(tables["node_areas"]["dso_id"]) == {"dso-rural"}
    # the first interval's base flows equal pandapower's DC flow with the profiles' values set in
    import simbench as sb

    net = sb.get_simbench_net("1-MV-rural--0-sw")
    prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    local = pd.to_datetime(net.profiles["load"]["time"], format="%d.%m.%Y %H:%M")
    times = local.dt.tz_localize("Europe/Berlin", ambiguous="infer").dt.tz_convert("UTC")
    row = int(np.flatnonzero(times == pd.Timestamp(start))[0])
    for element in ("load", "sgen", "storage"):
        if (element, "p_mw") in prof and len(getattr(net, element)):
            getattr(net, element)["p_mw"] = prof[(element, "p_mw")].iloc[row].reindex(getattr(net, element).index)
    first = cons[cons["interval_start"] == pd.Timestamp(start)].set_index("constraint_id")["base_flow_mw"]
    assert np.abs(first - _dc_flows(net).reindex(first.index)).max() < 1e-4


def test_bad_sources_are_named_errors(tmp_path):  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(app, ["network", "import", "no-such-grid", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "SimBench code" in res.output and not (tmp_path / "x").exists()
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "constraints.parquet").write_bytes(b"mine")
    res = CliRunner().invoke(app, ["network", "import", "pandapower:case30", "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and (tmp_path / "y" / "constraints.parquet").read_bytes() == b"mine"


def test_pypsa_network_reproduces_pypsa_linear_power_flow(tmp_path):  # type: ignore[no-untyped-def]
    import pypsa

    n = pypsa.Network()
    for i, kv in enumerate((220.0, 220.0, 220.0, 20.0)):
        n.add("Bus", f"b{i}", v_nom=kv)
    n.add("Line", "l01", bus0="b0", bus1="b1", x=10.0, r=1.0, s_nom=300.0)
    n.add("Line", "l12", bus0="b1", bus1="b2", x=20.0, r=1.0, s_nom=300.0)
    n.add("Line", "l02", bus0="b0", bus1="b2", x=10.0, r=1.0, s_nom=100.0)
    n.add("Transformer", "t23", bus0="b2", bus1="b3", x=0.1, r=0.01, s_nom=50.0, model="t")
    n.add("Generator", "g0", bus="b0", p_set=120.0)
    n.add("Load", "d2", bus="b2", p_set=80.0)
    n.add("Load", "d3", bus="b3", p_set=40.0)
    n.export_to_netcdf(str(tmp_path / "grid.nc"))
    tables = _import(str(tmp_path / "grid.nc"), tmp_path / "batch", "--dso", "dso-x")
    cons = tables["constraints"].set_index("constraint_id")
    assert cons.loc["t23", "owner_id"] == "tso" and cons.loc["l01", "max_flow_mw"] == 300.0
    n.lpf()
    reference = pd.concat([n.lines_t.p0.iloc[0], n.transformers_t.p0.iloc[0]])
    assert np.abs(cons["base_flow_mw"] - reference.reindex(cons.index)).max() < 1e-4
    # +1 MW at b3 (its load 1 MW lower): PyPSA's flow again
    n.loads.loc["d3", "p_set"] = 39.0
    n.lpf()
    moved = pd.concat([n.lines_t.p0.iloc[0], n.transformers_t.p0.iloc[0]])
    predicted = _predict(tables, pd.Series({"b3": 1.0}))
    assert np.abs(predicted - moved.reindex(predicted.index)).max() < 1e-4


def test_ac_base_flows_are_pandapowers_ac_power_flow(tmp_path):  # type: ignore[no-untyped-def]
    import pandapower as pp
    import pandapower.networks as pn

    tables = _import("pandapower:case30", tmp_path / "ac", "--ac")
    net = pn.case30()
    pp.runpp(net)
    cons = tables["constraints"].set_index("constraint_id")["base_flow_mw"]
    ac = pd.Series(net.res_line["p_from_mw"].to_numpy(), index=node_line_ids(net))
    assert np.abs(cons - ac.reindex(cons.index)).max() < 1e-9


def node_line_ids(net):  # type: ignore[no-untyped-def]
    names = net.line["name"]
    return (
        names.astype(str)
        if names.notna().all() and names.astype(str).is_unique
        else [f"line:{i}" for i in net.line.index]
    )
