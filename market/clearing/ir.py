"""A small container for a linear (mixed-integer) model built family by family.

Each ``define_*`` function of :mod:`market.clearing.formulation` adds one *variable family*
(one vector, bounds as variable bounds) or one *constraint family* (sparse
blocks over variable families, one sense, one right-hand side vector). The same
object is then passed straight to highspy (:func:`solve_highspy`, the default) or
through cvxpy (:func:`to_cvxpy`, one ``cp.Variable`` per family); both solve with
HiGHS, and the differential test holds them to the same tables.

Marginals: ``marginal[row] = d objective / d rhs[row]`` for every sense, so the
sign of a price never depends on how a row was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
import scipy.sparse as sp

Sense = Literal["==", "<=", ">="]
SNAP_MW = 1e-9


@dataclass(frozen=True)
class VarFamily:
    name: str
    lower: np.ndarray
    upper: np.ndarray
    cost: np.ndarray
    integer: bool = False

    @property
    def size(self) -> int:
        return len(self.lower)


@dataclass(frozen=True)
class ConFamily:
    name: str
    blocks: tuple[tuple[str, sp.csr_matrix], ...]
    sense: Sense
    rhs: np.ndarray

    @property
    def size(self) -> int:
        return len(self.rhs)


@dataclass
class LinearModel:
    """Variable and constraint families of one optimisation."""

    name: str = "model"
    variables: dict[str, VarFamily] = field(default_factory=dict)
    constraints: dict[str, ConFamily] = field(default_factory=dict)
    # a MILP's feasible starting point per variable family (HiGHS takes it as its first
    # incumbent), or None
    start: dict[str, np.ndarray] | None = None
    # a second objective over the optimal face (per variable family; families left out weigh
    # 0): of all optimal solutions the solver returns the one that minimises it, so equal-cost
    # alternatives (a degenerate LP) come out the same however the model is split or solved
    tie_weights: dict[str, np.ndarray] | None = None

    def add_variable(
        self, name: str, lower: np.ndarray, upper: np.ndarray, cost: np.ndarray, integer: bool = False
    ) -> None:
        lower, upper, cost = (np.asarray(a, dtype=float) for a in (lower, upper, cost))
        if not (len(lower) == len(upper) == len(cost)):
            raise ValueError(f"variable family {name}: bounds and cost differ in length")
        self.variables[name] = VarFamily(name, lower, upper, cost, integer)

    def add_constraint(self, name: str, blocks: dict[str, sp.spmatrix], sense: Sense, rhs: np.ndarray) -> None:
        rhs = np.asarray(rhs, dtype=float)
        if len(rhs) == 0:
            return
        kept = []
        for var, mat in blocks.items():
            mat = sp.csr_matrix(mat)
            if mat.shape != (len(rhs), self.variables[var].size):
                raise ValueError(f"{name}: block on {var} has shape {mat.shape}")
            if mat.nnz:
                kept.append((var, mat))
        self.constraints[name] = ConFamily(name, tuple(kept), sense, rhs)

    @property
    def n_variables(self) -> int:
        return sum(v.size for v in self.variables.values())

    @property
    def n_constraints(self) -> int:
        return sum(c.size for c in self.constraints.values())

    @property
    def n_integer(self) -> int:
        return sum(v.size for v in self.variables.values() if v.integer)

    def fixed_integers(self, values: dict[str, np.ndarray]) -> LinearModel:
        """The LP with every integer family fixed at ``values`` (for pricing a MILP)."""
        out = LinearModel(self.name + "-fixed", dict(self.variables), dict(self.constraints))
        for name, fam in self.variables.items():
            if fam.integer:
                v = np.round(values[name])
                out.variables[name] = VarFamily(name, v, v, fam.cost, integer=False)
        return out

    def residuals(self, values: dict[str, np.ndarray]) -> dict[str, float]:
        """Worst violation (>= 0) per constraint family and of the variable bounds."""
        worst: dict[str, float] = {}
        for name, fam in self.variables.items():
            x = values[name]
            worst[f"bounds:{name}"] = float(max(np.max(fam.lower - x, initial=0.0), np.max(x - fam.upper, initial=0.0)))
        for name, con in self.constraints.items():
            lhs = self.row_activity(con, values)
            diff = lhs - con.rhs
            if con.sense == "==":
                worst[name] = float(np.max(np.abs(diff), initial=0.0))
            elif con.sense == "<=":
                worst[name] = float(np.max(diff, initial=0.0))
            else:
                worst[name] = float(np.max(-diff, initial=0.0))
        return worst

    def row_activity(self, con: ConFamily, values: dict[str, np.ndarray]) -> np.ndarray:
        lhs = np.zeros(con.size)
        for var, mat in con.blocks:
            lhs += mat @ values[var]
        return lhs

    def objective(self, values: dict[str, np.ndarray]) -> float:
        return float(sum(fam.cost @ values[name] for name, fam in self.variables.items()))


class SolveStatus(StrEnum):
    OPTIMAL = "optimal"
    LIMIT = "limit"  # a MILP stopped at its time limit with a feasible solution (see Solution.gap)
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    FAILED = "failed"


@dataclass
class Solution:
    status: SolveStatus
    objective: float
    values: dict[str, np.ndarray]
    marginals: dict[str, np.ndarray]
    build_seconds: float
    solve_seconds: float
    solver: str
    detail: str = ""
    gap: float = 0.0  # relative MIP gap of the returned solution (0 when proven optimal)


def sparse_block(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float, shape: tuple[int, int]) -> sp.csr_matrix:
    """A sparse block with ``vals`` (or one value) at ``(rows, cols)`` (duplicates summed)."""
    vals = np.broadcast_to(np.asarray(vals, dtype=float), rows.shape)
    return sp.csr_matrix((vals, (rows, cols)), shape=shape)
