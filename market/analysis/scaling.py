"""How each operator's largest optimisation grows with the number of DER and of DSOs.

The report's scalability principle (Table 1: "Ability of system's processes and
technology design to work well for very large quantities of DER resources") is measured,
not labelled: deterministic synthetic batches (:mod:`market.io.synth`) of every size in a
grid of DER counts and DSO counts are cleared under every design, and for each operator
kind (the TSO, a platform, each DSO, an iDSO) the variables of its largest model are read
from the run. The growth of each is the slope of log(variables) against log(DER), at the
largest DSO count, and against log(DSOs), at the largest DER count: about 1 where a model
grows with every DER, about 0 where it does not (a layered TSO's model grows with the
interfaces, not with the DER behind them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from market.clearing.run import clear
from market.design.spec import Design, load_design
from market.errors import BatchError
from market.io.synth import SynthSpec, synth_batch

MAX_POINTS = 50
MAX_BIDS = 200_000


def check_grid(bids: Sequence[int], dsos: Sequence[int]) -> None:
    """Refuse a grid that is empty, too large, or not of whole numbers in range (named)."""
    if not bids or not dsos or len(bids) * len(dsos) > MAX_POINTS:
        raise BatchError(f"scaling: give 1 to {MAX_POINTS} points (DER counts x DSO counts)")
    if not all(2 <= b <= MAX_BIDS for b in bids) or not all(1 <= d <= 200 for d in dsos):
        raise BatchError(f"scaling: DER counts in [2, {MAX_BIDS}], DSO counts in [1, 200]")
    if any(d > b for b in bids for d in dsos):
        raise BatchError("scaling: every DSO needs a DER: each DSO count at most each DER count")


def scaling_table(
    designs: Sequence[str | Design], bids: Sequence[int], dsos: Sequence[int], intervals: int = 4, seed: int = 0
) -> pd.DataFrame:
    """One row per design, DER count, DSO count and operator kind: the variables and
    constraints of that operator's largest model."""
    check_grid(bids, dsos)
    loaded = [d if isinstance(d, Design) else load_design(d) for d in designs]
    rows = []
    for n_bids in sorted(set(bids)):
        for n_dsos in sorted(set(dsos)):
            batch = synth_batch(SynthSpec(bids=n_bids, intervals=intervals, dsos=n_dsos, seed=seed))
            for design in loaded:
                result = clear(batch, design, metrics=False)
                steps = {s.name: s for s in design.steps}
                for st in result.stats:
                    rows.append(
                        {
                            "design": design.name,
                            "der": n_bids,
                            "dsos": n_dsos,
                            "operator": st.operator or steps[st.step].operator.value,
                            "variables": st.n_variables,
                            "constraints": st.n_constraints,
                        }
                    )
    table = pd.DataFrame(rows)
    keys = ["design", "der", "dsos", "operator"]
    return table.groupby(keys, as_index=False)[["variables", "constraints"]].max().sort_values(keys, ignore_index=True)


def growth(table: pd.DataFrame) -> pd.DataFrame:
    """Per design and operator: the log-log slope of its largest model's variables against
    the DER count (at the largest DSO count) and against the DSO count (at the largest DER
    count); NaN where the grid has one point on that axis."""
    rows = []
    for (design, operator), t in table.groupby(["design", "operator"], sort=True):
        by_der = t[t["dsos"] == t["dsos"].max()]
        by_dsos = t[t["der"] == t["der"].max()]
        rows.append(
            {
                "design": design,
                "operator": operator,
                "variables_at_largest": int(t.loc[(t["der"] == t["der"].max()), "variables"].max()),
                "growth_with_der": _slope(by_der["der"], by_der["variables"]),
                "growth_with_dsos": _slope(by_dsos["dsos"], by_dsos["variables"]),
            }
        )
    return pd.DataFrame(rows)


def _slope(x: pd.Series, y: pd.Series) -> float:
    ok = (x > 0) & (y > 0)
    if ok.sum() < 2 or x[ok].nunique() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok].to_numpy(float)), np.log(y[ok].to_numpy(float)), 1)[0])
