"""One canonical optimum of a degenerate LP: of all optimal solutions, the one minimising
the model's ``tie_weights`` (see :func:`least_weighted_optimum`)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from market.clearing.ir import LinearModel

LOG = logging.getLogger(__name__)


def splitmix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64, wrapping): a well-spread hash of each value."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def tie_weights(bids: pd.DataFrame, members: np.ndarray) -> dict[str, np.ndarray]:
    """Among equal-cost optima, the one with the least weighted acceptance (``x``) and DSO
    share (``yd``, of the bids at ``members``): each bid's weights in [1, 2) are a fixed
    hash of its ``bid_id`` alone (SipHash with pandas' fixed key, one pass over the ids), so
    a bid weighs the same in the whole step, in any part of it and in any stretch of a
    streamed batch, and no two bids tie (unlike weights from positions, which depend on
    which other bids a model holds)."""
    h = pd.util.hash_array(bids["bid_id"].to_numpy(dtype=object), categorize=False)
    with np.errstate(over="ignore"):
        dso = splitmix64(h[members] ^ np.uint64(0x9E3779B97F4A7C15))  # the DSO share's own weight
    unit = 2.0**-53
    return {
        "x": 1.0 + (h >> np.uint64(11)).astype(float) * unit,
        "yd": 1.0 + (dso >> np.uint64(11)).astype(float) * unit,
    }


TIE_DUAL_TOLERANCE = 1e-7  # |reduced cost| or |row dual| above this: fixed on the optimal face


def tie_weight_vector(model: LinearModel, col: dict[str, slice]) -> np.ndarray:
    """The model's tie weights over its stacked columns (``col``: each family's slice; 0
    where a family has none)."""
    w = np.zeros(sum(f.size for f in model.variables.values()))
    for name, weights in (model.tie_weights or {}).items():
        w[col[name]] = weights
    return w


class Bounds(NamedTuple):
    """An LP's column and row bounds as passed to HiGHS (infinite ones as ``kHighsInf``)."""

    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray


def least_weighted_optimum(
    h: Any, sol: Any, x: np.ndarray, y: np.ndarray, bounds: Bounds, weights: np.ndarray
) -> np.ndarray:
    """Of all optima of the LP just solved, the one minimising ``weights · x``.

    By complementary slackness with the optimal duals found, a solution is optimal exactly
    when every column with a nonzero reduced cost stays at its bound and every row with a
    nonzero dual stays at its activity: those are fixed, the cost is replaced by
    ``weights`` and the simplex continues from the optimal basis (a few pivots along the
    optimal face). The face does not depend on which optimal duals were found, so the
    returned point is the same however the model was split. Skipped when the optimum is
    unique (no column or row at a bound with a zero reduced cost or dual). Prices stay the
    first solve's duals; the cost of the returned point is the optimum's (within the
    solver's tolerance). ``h``: the solved Highs; ``sol``: its solution, whose primal
    values ``x`` and row duals ``y`` the caller has read already; ``bounds``: as passed.
    """
    d, act = np.asarray(sol.col_dual), np.asarray(sol.row_value)
    lo, hi, rlo, rhi = bounds
    free_col = np.abs(d) <= TIE_DUAL_TOLERANCE
    free_row = np.abs(y) <= TIE_DUAL_TOLERANCE
    at_bound = (np.isclose(x, lo, rtol=0, atol=1e-9) | np.isclose(x, hi, rtol=0, atol=1e-9)) & (lo < hi)
    row_at_bound = (np.isclose(act, rlo, rtol=0, atol=1e-9) | np.isclose(act, rhi, rtol=0, atol=1e-9)) & (rlo < rhi)
    if not (free_col & at_bound).any() and not (free_row & row_at_bound).any():
        return x  # no zero-cost direction leaves the optimum: it is the only one
    n_col, n_row = len(x), len(act)
    cols, rows = np.arange(n_col, dtype=np.int32), np.arange(n_row, dtype=np.int32)
    h.changeColsBounds(n_col, cols, np.where(free_col, lo, x), np.where(free_col, hi, x))
    h.changeRowsBounds(n_row, rows, np.where(free_row, rlo, act), np.where(free_row, rhi, act))
    h.changeColsCost(n_col, cols, weights)
    h.run()
    import highspy

    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # not seen on any case; kept visible
        LOG.warning("the optimal face was not re-solved (%s): the first optimum is kept", h.getModelStatus())
        return x
    return np.asarray(h.getSolution().col_value)
