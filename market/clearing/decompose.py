"""Exact decomposition of a model into the parts nothing couples.

Two columns belong to one part when a row holds both (the connected components of the
bipartite row-column graph of every constraint family): intervals not linked by a block or
another inter-temporal row, DSO areas with no shared row, fall apart by themselves. A fixed
column (lower = upper: an integer decision fixed to price a MILP) couples nothing: it is a
constant, moved to the right-hand side of the rows of the parts it does not sit in, so a
MILP's pricing LP falls apart per interval like any LP. The
components are packed into a few parts of similar size (in label order, cut by column
count; deterministic), each part is solved on its own, in parallel, and the values and
marginals are stitched back. As nothing couples the parts, the stitched solution is an
optimum of the whole model and its marginals are the whole model's (a MILP's relative gap
is at most the largest part's). The caller verifies the stitched solution against the whole
model, as after any solve.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from market.clearing.ir import LinearModel, Solution, SolveStatus
from market.clearing.parallel import PART_THREADS, parallel_map

COLUMNS_PER_PART = 25_000  # below this a model is solved whole (the per-solve overhead dominates)
MAX_PARTS = 64


@dataclass(frozen=True)
class Part:
    """One part: its model, and where its columns and rows sit in the whole model."""

    model: LinearModel
    columns: dict[str, np.ndarray]  # family -> indices in the whole model's family
    rows: dict[str, np.ndarray]  # constraint family -> row indices in the whole model's family


def _offsets(model: LinearModel) -> dict[str, int]:
    out, at = {}, 0
    for name, fam in model.variables.items():
        out[name] = at
        at += fam.size
    return out


def fixed_columns(model: LinearModel) -> dict[str, np.ndarray]:
    """Per family, whether each column is fixed (finite lower = upper): a constant."""
    return {n: np.isfinite(f.lower) & (f.lower == f.upper) for n, f in model.variables.items()}


def component_labels(model: LinearModel) -> tuple[int, np.ndarray, dict[str, np.ndarray]]:
    """Number of components, a label per column (families in order) and per row of each
    constraint family. Fixed columns link no rows (each is a component of its own)."""
    offsets = _offsets(model)
    fixed = fixed_columns(model)
    n = model.n_variables
    row_ends, col_ends, at = [], [], 0  # the row-column graph's edges: rows are nodes 0..m-1
    for con in model.constraints.values():
        for var, mat in con.blocks:
            coo = mat.tocoo()
            free = ~fixed[var][coo.col]
            row_ends.append(coo.row[free].astype(np.int64) + at)
            col_ends.append(coo.col[free].astype(np.int64) + offsets[var])
        at += con.size
    m = at
    r = np.concatenate(row_ends) if row_ends else np.zeros(0, dtype=np.int64)
    c = np.concatenate(col_ends) if col_ends else np.zeros(0, dtype=np.int64)
    # one edge per nonzero, row -> column (m + column); undirected, so no transpose is needed
    graph = sp.csr_matrix((np.ones(len(r)), (r, c + m)), shape=(m + n, m + n))
    count, labels = connected_components(graph, directed=False)
    col_labels = labels[m:] if m else labels
    row_labels, at = {}, 0
    for name, con in model.constraints.items():
        row_labels[name] = labels[at : at + con.size]
        at += con.size
    return int(count), col_labels, row_labels


def pack(labels: np.ndarray, count: int, parts: int) -> np.ndarray:
    """Part of each component: components in label order cut into ``parts`` runs of about
    equal column counts (vectorised; deterministic; a component is never cut)."""
    sizes = np.bincount(labels, minlength=count)
    before = np.cumsum(sizes) - sizes
    return np.minimum(parts - 1, (before * parts) // max(int(sizes.sum()), 1)).astype(np.int64)


def split(model: LinearModel, parts: int | None = None) -> list[Part]:
    """The model as independent parts (one part: the model itself)."""
    n = model.n_variables
    wanted = parts if parts is not None else min(MAX_PARTS, n // COLUMNS_PER_PART)
    if wanted <= 1 or n == 0:
        return [_whole(model)]
    count, col_labels, row_labels = component_labels(model)
    if count <= 1:
        return [_whole(model)]
    part_of = pack(col_labels, count, min(wanted, count))
    col_part = part_of[col_labels]
    row_part = {name: part_of[lab] for name, lab in row_labels.items()}
    offsets = _offsets(model)
    constants = {n: np.where(mask, model.variables[n].lower, 0.0) for n, mask in fixed_columns(model).items()}
    constants = {n: c for n, c in constants.items() if c.any()}  # an LP's: none
    out = []
    # only the parts that hold something: a component bigger than its share skips part numbers
    for p in np.unique(np.concatenate([col_part, *row_part.values()])):
        columns = {
            name: np.flatnonzero(col_part[offsets[name] : offsets[name] + fam.size] == p)
            for name, fam in model.variables.items()
        }
        rows = {name: np.flatnonzero(row_part[name] == p) for name in model.constraints}
        out.append(Part(_sub_model(model, columns, rows, constants, f"{model.name}#{p}"), columns, rows))
    return out


def _whole(model: LinearModel) -> Part:
    return Part(
        model,
        {n: np.arange(f.size) for n, f in model.variables.items()},
        {n: np.arange(c.size) for n, c in model.constraints.items()},
    )


def _sub_model(
    model: LinearModel,
    columns: dict[str, np.ndarray],
    rows: dict[str, np.ndarray],
    constants: dict[str, np.ndarray],
    name: str,
) -> LinearModel:
    """The part's columns and rows; the fixed columns of other parts its rows hold
    (``constants``: each fixed column's value, 0 elsewhere, for the families that have one)
    are moved to the right-hand side (nothing else of another part is in its rows)."""
    sub = LinearModel(name=name)
    outside = {}
    for var, fam in model.variables.items():
        idx = columns[var]
        sub.add_variable(var, fam.lower[idx], fam.upper[idx], fam.cost[idx], fam.integer)
        if var in constants:
            outside[var] = constants[var].copy()
            outside[var][idx] = 0.0
    for cname, con in model.constraints.items():
        r = rows[cname]
        in_rows = {var: mat[r] for var, mat in con.blocks}  # each block's rows sliced once
        blocks = {var: in_rows[var][:, columns[var]] for var, _ in con.blocks}
        moved = np.zeros(len(r))
        for var, _ in con.blocks:
            if var in outside:
                moved += in_rows[var] @ outside[var]
        sub.add_constraint(cname, blocks, con.sense, con.rhs[r] - moved)
    if model.start is not None:
        sub.start = {var: model.start[var][columns[var]] for var in model.variables}
    if model.tie_weights is not None:
        sub.tie_weights = {var: w[columns[var]] for var, w in model.tie_weights.items()}
    return sub


def stitch(model: LinearModel, parts: list[Part], solutions: list[Solution]) -> Solution:
    """The whole model's solution from its parts' (values and marginals back in place)."""
    values = {n: np.zeros(f.size) for n, f in model.variables.items()}
    marginals = {n: np.zeros(c.size) for n, c in model.constraints.items()}
    for part, sol in zip(parts, solutions, strict=True):
        for n, idx in part.columns.items():
            if len(idx):
                values[n][idx] = sol.values[n]
        for n, idx in part.rows.items():
            if len(idx) and n in sol.marginals:
                marginals[n][idx] = sol.marginals[n]
    worst = next((s for s in solutions if s.status not in (SolveStatus.OPTIMAL, SolveStatus.LIMIT)), None)
    status = worst.status if worst else max((s.status for s in solutions), key=lambda s: s is SolveStatus.LIMIT)
    return Solution(
        status,
        float(sum(s.objective for s in solutions)),
        values,
        marginals,
        sum(s.build_seconds for s in solutions),
        sum(s.solve_seconds for s in solutions),
        solutions[0].solver,
        "; ".join(s.detail for s in solutions if s.detail),
        max(s.gap for s in solutions),
    )


Solver = Callable[[LinearModel, dict[str, object] | None], Solution]


def solve_in_parts(
    model: LinearModel,
    solver: Solver,
    options: dict[str, object] | None = None,
    parts: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Solution:
    """Solve ``model`` part by part (see the module docstring): in parallel threads, or on
    the Dask cluster at ``scheduler`` when one is given."""
    pieces = split(model, parts)
    if len(pieces) == 1:
        return solver(pieces[0].model, options)
    if scheduler:  # the parts fan out on a Dask cluster
        solutions = parallel_map(_solve_part, (solver, options), pieces, scheduler=scheduler)
        return stitch(model, pieces, solutions)
    # plain threads (HiGHS releases the GIL), so a clear already running on a Dask worker
    # or in a fan-out thread never waits on its own pool
    threads = workers or PART_THREADS[0]
    if threads == 1:
        return stitch(model, pieces, [solver(part.model, options) for part in pieces])
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flexmarket-part") as pool:
        solutions = list(pool.map(lambda part: solver(part.model, options), pieces))
    return stitch(model, pieces, solutions)


def _solve_part(common: tuple[Solver, dict[str, object] | None], part: Part) -> Solution:
    """One part on a Dask worker (a module-level function, so it pickles)."""
    solver, options = common
    return solver(part.model, options)
