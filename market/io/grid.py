"""Network tables from the grids analysts have: a pandapower net (a JSON file, a
pandapower.networks case such as ``pandapower:case30``, or a SimBench code) or a PyPSA
network (a ``.nc``/``.h5`` file).

The PTDF comes from pandapower itself (``makePTDF`` on the net's DC model), slack
referenced: ``factor`` is the flow change on a branch (MW, in its from->to direction)
per MW injected at a bus and taken out at the slack. Branch limits are the DC model's
``RATE_A`` (MVA, used as MW). Base flows are ``PTDF @ injection`` for the injection the
caller gives (MW per bus, positive = into the grid), by default the net's own loads and
generation from a DC power flow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from market.enums import TSO_ID
from market.errors import NetworkError


@dataclass(frozen=True)
class GridTables:
    """A net's branches as ``constraints``/``sensitivities`` rows and its buses as nodes."""

    constraints: pd.DataFrame  # constraint_id, owner_id, interval_start, base_flow_mw, max/min_flow_mw
    sensitivities: pd.DataFrame  # constraint_id, node_id, factor
    node_ids: pd.Index  # one per pandapower bus index, in net.bus order
    ptdf: np.ndarray  # branches x buses (net.bus order), MW per MW
    voltage_kv: np.ndarray  # highest nominal voltage of each branch


def node_ids_of(net: Any) -> pd.Index:
    """Bus names where they are unique and present, else the bus index as text."""
    bus = net.bus
    names = bus["name"]
    if names.notna().all() and names.astype(str).is_unique:
        return pd.Index(names.astype(str).to_numpy(), name="node_id")
    return pd.Index(bus.index.astype(str), name="node_id")


def run_dc(net: Any) -> None:
    """pandapower's DC power flow, its failures as :class:`NetworkError` (no slack, an
    island, a singular network: pandapower raises many kinds)."""
    import pandapower as pp

    if not len(net.bus):
        raise NetworkError("the grid has no buses")
    line = net.line[net.line["in_service"].astype(bool)]
    zero = line.index[(line["x_ohm_per_km"] * line["length_km"]).abs() < 1e-12]
    if len(zero):
        raise NetworkError(
            f"{len(zero)} line(s) in service have zero reactance (first: line {zero[0]}): the DC model cannot "
            "split flow over them; give them a small reactance or replace them by a bus-bus switch"
        )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            pp.rundcpp(net)
        except NetworkError:
            raise
        except Exception as exc:
            raise NetworkError(f"pandapower's DC power flow failed: {type(exc).__name__}: {exc}") from exc


def net_injection_mw(net: Any) -> np.ndarray:
    """MW injected per bus (net.bus order) by the net's loads, static and voltage-controlled
    generators, storage and external grids after a DC power flow (positive = into the grid)."""

    run_dc(net)
    bus = net.bus
    return -net.res_bus.loc[bus.index, "p_mw"].to_numpy()


def pandapower_tables(
    net: Any,
    injection_mw: np.ndarray | None = None,
    *,
    dso_id: str = "dso1",
    tso_min_kv: float = 110.0,
    min_abs_factor: float = 1e-9,
) -> GridTables:
    """Constraints, PTDF sensitivities and node ids of ``net``.

    Branches whose highest nominal voltage is at least ``tso_min_kv`` are owned by the TSO,
    the others by ``dso_id``. Constraint ids are the branch names where unique, else
    ``line:<index>`` / ``trafo:<index>``. Factors smaller than ``min_abs_factor`` are left out.
    """
    from pandapower.pypower.idx_brch import RATE_A

    run_dc(net)
    ppc = net._ppc
    h = _ptdf_in_service(ppc)
    bus = net.bus
    lookup = net._pd2ppc_lookups
    ptdf = h[:, lookup["bus"][bus.index.to_numpy()]]
    ids, kv = _branch_ids_and_kv(net, lookup["branch"])
    nodes = node_ids_of(net)
    inj = net_injection_mw(net) if injection_mw is None else np.asarray(injection_mw, dtype=float)
    rate = ppc["branch"][:, RATE_A].real
    rate = np.where(rate > 0, rate, np.inf)  # RATE_A = 0 means unlimited in MATPOWER
    constraints = pd.DataFrame(
        {
            "constraint_id": ids,
            "owner_id": np.where(kv >= tso_min_kv, TSO_ID, dso_id),
            "interval_start": pd.Series([pd.NaT] * len(ids), dtype="datetime64[ns, UTC]"),
            "base_flow_mw": ptdf @ inj,
            "max_flow_mw": rate,
            "min_flow_mw": -rate,
        }
    )
    rows, cols = np.nonzero(np.abs(ptdf) >= min_abs_factor)
    sensitivities = pd.DataFrame(
        {"constraint_id": np.asarray(ids)[rows], "node_id": nodes.to_numpy()[cols], "factor": ptdf[rows, cols]}
    )
    return GridTables(constraints, sensitivities, nodes, ptdf, kv)


def _ptdf_in_service(ppc: dict[str, Any]) -> np.ndarray:
    """PTDF (branches x buses of ``ppc``, slack referenced) of the energised part of the
    grid: out-of-service branches (open switches of a ring) and isolated buses get 0."""
    from pandapower.pypower.idx_brch import BR_STATUS, F_BUS, T_BUS
    from pandapower.pypower.idx_bus import BUS_I, BUS_TYPE, NONE, REF
    from pandapower.pypower.makePTDF import makePTDF

    bus, branch = ppc["bus"], ppc["branch"]
    on = bus[:, BUS_TYPE] != NONE
    new_of = np.full(len(bus), -1)
    new_of[on] = np.arange(on.sum())
    f, to = branch[:, F_BUS].real.astype(int), branch[:, T_BUS].real.astype(int)
    live = (branch[:, BR_STATUS].real > 0) & on[f] & on[to]
    sub_bus = bus[on].copy()
    sub_bus[:, BUS_I] = np.arange(on.sum())
    sub_branch = branch[live].copy()
    sub_branch[:, F_BUS], sub_branch[:, T_BUS] = new_of[f[live]], new_of[to[live]]
    refs = np.flatnonzero(sub_bus[:, BUS_TYPE] == REF)
    if not len(refs):
        raise NetworkError("the grid has no slack bus (an ext_grid or a slack gen): its PTDF is not defined")
    check_ptdf_size(len(branch), len(bus))
    from pandapower.pypower.idx_brch import BR_X

    zero = np.flatnonzero(np.abs(sub_branch[:, BR_X].real) < 1e-12)
    if len(zero):
        raise NetworkError(
            f"{len(zero)} energised branch(es) have zero reactance "
            f"(e.g. ppc branch {int(np.flatnonzero(live)[zero[0]])}): the DC model cannot split flow over them; "
            "give them a small reactance or merge their buses"
        )
    with np.errstate(all="ignore"):
        try:
            part = makePTDF(ppc["baseMVA"], sub_bus, sub_branch, int(refs[0]))
        except (np.linalg.LinAlgError, ValueError, RuntimeError) as exc:
            raise NetworkError(f"the grid's PTDF cannot be computed ({exc})") from exc
    if not np.isfinite(part).all():
        raise NetworkError("the grid's PTDF is not finite (an island without a slack, or a singular network)")
    h = np.zeros((len(branch), len(bus)))
    h[np.ix_(np.flatnonzero(live), np.flatnonzero(on))] = part
    return h


MAX_PTDF_ENTRIES = 50_000_000  # a dense branches x buses PTDF of 400 MB: about 7,000 branches x 7,000 buses


def check_ptdf_size(branches: int, buses: int) -> None:
    """Refuse, before it is built, a dense PTDF larger than :data:`MAX_PTDF_ENTRIES`."""
    if branches * buses > MAX_PTDF_ENTRIES:
        raise NetworkError(
            f"the grid has {branches:,} branches x {buses:,} buses: "
            f"a dense PTDF of {branches * buses * 8 / 1e9:.1f} GB (at most {MAX_PTDF_ENTRIES:,} entries); "
            "import a smaller part of it (one voltage level or subnet)"
        )


def _branch_ids_and_kv(net: Any, ranges: dict[str, tuple[int, int]]) -> tuple[list[str], np.ndarray]:
    ids: list[str] = []
    kv: list[float] = []
    vn = net.bus["vn_kv"]
    for kind in ("line", "trafo"):
        if kind not in ranges:
            continue
        table = getattr(net, kind)
        names = table["name"]
        unique = names.notna().all() and names.astype(str).is_unique
        ids += list(names.astype(str)) if unique else [f"{kind}:{i}" for i in table.index]
        if kind == "line":
            kv += list(np.maximum(vn.loc[table["from_bus"]].to_numpy(), vn.loc[table["to_bus"]].to_numpy()))
        else:
            kv += list(table["vn_hv_kv"].to_numpy())
    return ids, np.asarray(kv, dtype=float)


SIMBENCH_TZ = "Europe/Berlin"  # SimBench profile times are German local time (2016)


def load_pandapower(source: str) -> Any:
    """A pandapower net from a JSON file, ``pandapower:<case>`` or a SimBench code."""
    import pandapower as pp

    path = Path(source)
    if path.suffix == ".json":
        if not path.is_file():
            raise NetworkError(f"{source}: file not found")
        check_pandapower_json(path)
        try:
            return pp.from_json(str(path))
        except Exception as exc:  # pandapower raises many kinds for a bad file
            raise NetworkError(f"{source}: not a pandapower net ({exc})") from exc
    if source.startswith("pandapower:"):
        import pandapower.networks as pn

        name = source.split(":", 1)[1]
        if not hasattr(pn, name):
            raise NetworkError(f"{source}: pandapower.networks has no {name!r}")
        return getattr(pn, name)()
    import simbench as sb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sb.get_simbench_net(source)
    except Exception as exc:
        raise NetworkError(
            f"{source!r} is neither a pandapower .json file, pandapower:<case>, nor a SimBench code ({exc})"
        ) from exc


# what a pandapower JSON file may ask its decoder to build: (module, class); nothing else is
# imported or called (a crafted file could otherwise name any installed module or function)
ALLOWED_JSON_CLASSES = {
    ("pandapower.auxiliary", "pandapowerNet"),
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.series", "Series"),
}
MAX_GRID_JSON_BYTES = 500_000_000


def check_pandapower_json(path: Path) -> None:
    """Refuse (:class:`NetworkError`) a pandapower JSON file that names a class outside
    :data:`ALLOWED_JSON_CLASSES`, or whose embedded table is not JSON text (pandas would
    read a path or URL there: a crafted net could pull any local file into the output)."""
    import json

    if path.stat().st_size > MAX_GRID_JSON_BYTES:
        raise NetworkError(f"{path}: larger than {MAX_GRID_JSON_BYTES:,} bytes")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise NetworkError(f"{path}: not a JSON file ({type(exc).__name__})") from exc
    stack: list[Any] = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        if "_module" in item or "_class" in item:
            kind = (str(item.get("_module")), str(item.get("_class")))
            if kind not in ALLOWED_JSON_CLASSES:
                raise NetworkError(
                    f"{path}: names {kind[0]}.{kind[1]}, which a grid file may not (only pandapower's own)"
                )
            body = item.get("_object")
            if kind[1] in ("DataFrame", "Series") and not (isinstance(body, str) and body.lstrip()[:1] in ("{", "[")):
                raise NetworkError(f"{path}: a {kind[1]} whose content is not JSON text (a path or URL is never read)")
        stack.extend(item.values())


def simbench_injections(net: Any, start: pd.Timestamp, intervals: int, minutes: int) -> np.ndarray:
    """Net injection per interval and bus (intervals x buses, MW, positive = into the grid)
    from the SimBench profiles of ``net``, for ``intervals`` intervals from ``start`` (UTC)."""
    import simbench as sb

    if minutes != 15:
        raise NetworkError("SimBench profiles are 15-minute values: use interval_minutes = 15")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    local = pd.to_datetime(net.profiles["load"]["time"], format="%d.%m.%Y %H:%M")
    times = pd.DatetimeIndex(local.dt.tz_localize(SIMBENCH_TZ, ambiguous="infer").dt.tz_convert("UTC"))
    wanted = start + pd.Timedelta(minutes=minutes) * np.arange(intervals)
    rows = times.get_indexer(wanted)
    if (rows < 0).any():
        raise NetworkError(f"the SimBench profiles do not cover {wanted[rows < 0][0].isoformat()}")
    pos = pd.Series(np.arange(len(net.bus)), index=net.bus.index)
    inj = np.zeros((intervals, len(net.bus)))
    for element, sign in (("load", -1.0), ("storage", -1.0), ("sgen", 1.0), ("gen", 1.0)):
        key = (element, "p_mw")
        table = getattr(net, element)
        if key not in prof or not len(table):
            continue
        values = prof[key].iloc[rows].reindex(columns=table.index).fillna(0.0).to_numpy()
        live = table["in_service"].to_numpy(dtype=bool)
        cols = pos[table["bus"]].to_numpy()
        np.add.at(inj.T, cols[live], sign * values[:, live].T)
    return inj


def ac_branch_flows(net: Any) -> np.ndarray:
    """Active power (MW) into each line's from side and each transformer's HV side after
    pandapower's AC power flow, in the order of :func:`pandapower_tables`."""
    import pandapower as pp

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(net)
    except Exception as exc:  # pandapower raises its own LoadflowNotConverged and others
        raise NetworkError(f"the AC power flow did not converge ({exc})") from exc
    trafo = net.res_trafo["p_hv_mw"].to_numpy() if len(net.trafo) else np.zeros(0)
    return np.concatenate([net.res_line["p_from_mw"].to_numpy(), trafo])


def node_areas_of(net: Any, dso_id: str) -> pd.DataFrame:
    """One row per bus: its node id, its area (the bus's SimBench ``subnet`` or pandapower
    ``zone`` where given, else ``grid``) and the DSO."""
    bus = net.bus
    area = pd.Series("grid", index=bus.index)
    for column in ("subnet", "zone"):
        if column in bus and bus[column].notna().any():
            area = bus[column].astype(object).where(bus[column].notna(), "grid").astype(str)
            break
    return pd.DataFrame({"area_id": area.to_numpy(), "node_id": node_ids_of(net).to_numpy(), "dso_id": dso_id})


def network_batch_tables(
    net: Any,
    *,
    dso_id: str = "dso1",
    tso_min_kv: float = 110.0,
    start: pd.Timestamp | None = None,
    intervals: int = 0,
    minutes: int = 15,
    ac: bool = False,
) -> dict[str, pd.DataFrame]:
    """``constraints``, ``sensitivities`` and ``node_areas`` of a batch for ``net``: base flows
    per interval from its profiles when ``start`` and ``intervals`` are given (SimBench),
    else one every-interval row per branch from a DC power flow of its own loads and
    generation (``ac``: from pandapower's AC power flow instead: active power at each
    branch's from/HV side, losses included, so not exactly the PTDF's linear model)."""
    grid = pandapower_tables(net, dso_id=dso_id, tso_min_kv=tso_min_kv)
    constraints = grid.constraints
    if ac:
        if start is not None:
            raise NetworkError("AC base flows are for the net's own state: leave out --start/--intervals")
        constraints = constraints.assign(base_flow_mw=ac_branch_flows(net))
    if start is not None and intervals > 0:
        flows = simbench_injections(net, start, intervals, minutes) @ grid.ptdf.T  # intervals x branches
        times = start + pd.Timedelta(minutes=minutes) * np.arange(intervals)
        constraints = pd.DataFrame(
            {
                "constraint_id": np.tile(grid.constraints["constraint_id"].to_numpy(), intervals),
                "owner_id": np.tile(grid.constraints["owner_id"].to_numpy(), intervals),
                "interval_start": np.repeat(times, len(grid.constraints)),
                "base_flow_mw": flows.reshape(-1),
                "max_flow_mw": np.tile(grid.constraints["max_flow_mw"].to_numpy(), intervals),
                "min_flow_mw": np.tile(grid.constraints["min_flow_mw"].to_numpy(), intervals),
            }
        )
    limited = np.isfinite(constraints["max_flow_mw"].to_numpy())
    constraints = constraints[limited].reset_index(drop=True)
    sens = grid.sensitivities[grid.sensitivities["constraint_id"].isin(constraints["constraint_id"])]
    return {
        "constraints": constraints,
        "sensitivities": sens.reset_index(drop=True),
        "node_areas": node_areas_of(net, dso_id),
    }


def load_network_tables(
    source: str,
    *,
    dso_id: str = "dso1",
    tso_min_kv: float = 110.0,
    start: pd.Timestamp | None = None,
    intervals: int = 0,
    minutes: int = 15,
    ac: bool = False,
) -> dict[str, pd.DataFrame]:
    """The network tables of a grid model named by ``source`` (see :func:`load_pandapower`;
    ``.nc``/``.h5`` files are PyPSA networks)."""
    if Path(source).suffix in (".nc", ".h5"):
        from market.io.pypsa_grid import pypsa_batch_tables

        return pypsa_batch_tables(source, dso_id=dso_id, tso_min_kv=tso_min_kv)
    net = load_pandapower(source)
    return network_batch_tables(
        net, dso_id=dso_id, tso_min_kv=tso_min_kv, start=start, intervals=intervals, minutes=minutes, ac=ac
    )
