"""MATPOWER case5 (PJM 5-bus) as a flexmarket batch, with its DC PTDF computed here."""

from __future__ import annotations

import numpy as np

from market.testing import area, bid, make_batch, tso_need

BUSES = "ABCDE"
LOAD_MW = {"B": 300.0, "C": 300.0, "D": 400.0}
GENS = [
    ("alta", "A", 40, 14),
    ("parkcity", "A", 170, 15),
    ("solitude", "C", 520, 30),
    ("sundance", "D", 200, 40),
    ("brighton", "E", 600, 10),
]
# (from, to, reactance p.u., limit MW; 0 = unlimited)
BRANCHES = [
    ("A", "B", 0.0281, 400),
    ("A", "D", 0.0304, 0),
    ("A", "E", 0.0064, 0),
    ("B", "C", 0.0108, 0),
    ("C", "D", 0.0297, 0),
    ("D", "E", 0.0297, 240),
]


def ptdf(ref: str = "D") -> np.ndarray:
    """Branch flow per MW injected at each bus and withdrawn at ``ref``."""
    n, m = len(BUSES), len(BRANCHES)
    idx = {b: i for i, b in enumerate(BUSES)}
    a = np.zeros((m, n))
    for k, (f, t, _, _) in enumerate(BRANCHES):
        a[k, idx[f]], a[k, idx[t]] = 1, -1
    bd = np.diag([1 / x for _, _, x, _ in BRANCHES])
    bbus = a.T @ bd @ a
    keep = [i for i in range(n) if BUSES[i] != ref]
    theta = np.zeros((n, n))
    theta[np.ix_(keep, keep)] = np.linalg.inv(bbus[np.ix_(keep, keep)])
    return bd @ a @ theta


def pjm5_batch():  # type: ignore[no-untyped-def]
    p = ptdf()
    load = np.array([LOAD_MW.get(b, 0.0) for b in BUSES])
    base = p @ (-load)  # flows caused by the loads alone (injections of -load)
    bids = [bid(g, price, q, node=bus) for g, bus, q, price in GENS]
    cons, sens = [], []
    for k, (f, t, _, limit) in enumerate(BRANCHES):
        cid = f"l{BUSES.index(f) + 1}-{BUSES.index(t) + 1}"
        cons.append(
            {
                "constraint_id": cid,
                "owner_id": "tso",
                "interval_start": None,
                "base_flow_mw": float(base[k]),
                "max_flow_mw": float(limit or 1e5),
                "min_flow_mw": -float(limit or 1e5),
            }
        )
        sens += [
            {"constraint_id": cid, "node_id": bus, "factor": float(p[k, i])}
            for i, bus in enumerate(BUSES)
            if abs(p[k, i]) > 1e-12
        ]
    return make_batch(
        bids,
        [tso_need("load", float(load.sum()))],
        constraints=cons,
        sens=sens,
        areas=[area(f"area-{b}", b) for b in BUSES],
        voll=10000,
    )
