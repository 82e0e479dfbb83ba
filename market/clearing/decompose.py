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
model, as after any solve. Each constraint block is permuted once so that every part's rows
and columns are consecutive; a part's block is then a slice of it (no per-part search).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from market.clearing.ir import ConFamily, LinearModel, Solution, SolveStatus
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
    fixed = fixed_columns(model)
    n = model.n_variables
    families = []  # each constraint family's rows over all columns, as its blocks are (CSR)
    for con in model.constraints.values():
        blocks = dict(con.blocks)
        row = []
        for var, fam in model.variables.items():
            mat = blocks.get(var, sp.csr_matrix((con.size, fam.size)))
            if fixed[var].any():
                indptr, indices, data = _kept(mat.indptr, mat.indices, mat.data, ~fixed[var][mat.indices])
                mat = sp.csr_matrix((data, indices, indptr), shape=mat.shape)
            row.append(mat)
        families.append(sp.hstack(row, format="csr") if row else sp.csr_matrix((con.size, 0)))
    a = sp.vstack(families, format="csr") if families else sp.csr_matrix((0, n))
    m = a.shape[0]
    # the row-column graph: rows are nodes 0..m-1, columns m..m+n-1 (no edges of their own);
    # one edge per nonzero, row -> column; undirected, so no transpose is needed
    indptr = np.concatenate([a.indptr, np.full(n, a.indptr[-1])])
    graph = sp.csr_matrix((np.ones(a.nnz), a.indices + m, indptr), shape=(m + n, m + n))
    count, labels = connected_components(graph, directed=False)
    col_labels = labels[m:] if m else labels
    row_labels, at = {}, 0
    for name, con in model.constraints.items():
        row_labels[name] = labels[at : at + con.size]
        at += con.size
    return int(count), col_labels, row_labels


def _kept(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A CSR matrix's arrays with only the stored entries where ``keep`` (one flag per entry)."""
    before = np.concatenate([[0], np.cumsum(keep)])  # entries kept before each entry
    return before[indptr], indices[keep], data[keep]


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
    # only the parts that hold something: a component bigger than its share skips part numbers
    present = np.unique(np.concatenate([part_of[col_labels], *(part_of[lab] for lab in row_labels.values())]))
    offsets = _offsets(model)
    cols = {
        name: _Grouping.of(part_of[col_labels[offsets[name] : offsets[name] + fam.size]], present)
        for name, fam in model.variables.items()
    }
    rows = {name: _Grouping.of(part_of[lab], present) for name, lab in row_labels.items()}
    ordered = {
        cname: {var: _permuted(mat, rows[cname].order, cols[var].order) for var, mat in con.blocks}
        for cname, con in model.constraints.items()
    }
    constants = {n: np.where(mask, model.variables[n].lower, 0.0) for n, mask in fixed_columns(model).items()}
    constants = {n: c for n, c in constants.items() if c.any()}  # an LP's: none
    return [_part(model, k, p, cols, rows, ordered, constants) for k, p in enumerate(present.tolist())]


def _part(
    model: LinearModel,
    k: int,
    p: int,
    cols: dict[str, _Grouping],
    rows: dict[str, _Grouping],
    ordered: dict[str, dict[str, sp.csr_matrix]],
    constants: dict[str, np.ndarray],
) -> Part:
    """The ``k``-th present part (part number ``p``): its columns and rows, its blocks taken
    from the part-ordered matrices (``ordered``), and the fixed columns of other parts its
    rows hold moved to the right-hand side."""
    columns = {name: g.members(k) for name, g in cols.items()}
    part_rows = {name: g.members(k) for name, g in rows.items()}
    sub = LinearModel(name=f"{model.name}#{p}")
    for var, fam in model.variables.items():
        idx = columns[var]
        sub.add_variable(var, fam.lower[idx], fam.upper[idx], fam.cost[idx], fam.integer)
    for cname, con in model.constraints.items():
        r = part_rows[cname]
        blocks = {
            var: _diagonal_block(ordered[cname][var], rows[cname].span(k), cols[var].span(k)) for var, _ in con.blocks
        }
        sub.add_constraint(cname, blocks, con.sense, con.rhs[r] - _moved(con, r, columns, constants))
    if model.start is not None:
        sub.start = {var: model.start[var][columns[var]] for var in model.variables}
    if model.tie_weights is not None:
        sub.tie_weights = {var: w[columns[var]] for var, w in model.tie_weights.items()}
    return Part(sub, columns, part_rows)


@dataclass(frozen=True)
class _Grouping:
    """The indices of one family (columns or rows) grouped by part: ``order`` lists them
    part by part (ascending within each), the ``k``-th present part at ``[start[k], end[k])``."""

    order: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @staticmethod
    def of(part: np.ndarray, present: np.ndarray) -> _Grouping:
        order = np.argsort(part, kind="stable")
        sorted_part = part[order]
        return _Grouping(
            order, np.searchsorted(sorted_part, present, "left"), np.searchsorted(sorted_part, present, "right")
        )

    def span(self, k: int) -> tuple[int, int]:
        return int(self.start[k]), int(self.end[k])

    def members(self, k: int) -> np.ndarray:
        return self.order[self.start[k] : self.end[k]]


def _permuted(mat: sp.csr_matrix, row_order: np.ndarray, col_order: np.ndarray) -> sp.csr_matrix:
    """``mat[row_order][:, col_order]`` (rows and columns grouped by part) in one pass: the
    rows taken in order, each column index renamed (entries within a row left unsorted)."""
    rows = mat[row_order]
    renamed = np.empty(len(col_order), dtype=np.int64)
    renamed[col_order] = np.arange(len(col_order))
    return sp.csr_matrix((rows.data, renamed[rows.indices], rows.indptr), shape=rows.shape)


def _diagonal_block(ordered: sp.csr_matrix, rows: tuple[int, int], cols: tuple[int, int]) -> sp.csr_matrix:
    """A part's block: its rows of the part-ordered matrix, restricted to its columns. Nothing
    of another part sits in its rows except fixed columns, which are dropped here (their
    values move to the right-hand side: :func:`_moved`)."""
    (r0, r1), (c0, c1) = rows, cols
    lo, hi = ordered.indptr[r0], ordered.indptr[r1]
    indptr, indices, data = ordered.indptr[r0 : r1 + 1] - lo, ordered.indices[lo:hi], ordered.data[lo:hi]
    inside = (indices >= c0) & (indices < c1)
    if not inside.all():  # fixed columns of other parts: dropped
        indptr, indices, data = _kept(indptr, indices, data, inside)
    return sp.csr_matrix((data, indices - c0, indptr), shape=(r1 - r0, c1 - c0))


def _moved(
    con: ConFamily, rows: np.ndarray, columns: dict[str, np.ndarray], constants: dict[str, np.ndarray]
) -> np.ndarray | float:
    """What the fixed columns of other parts (``constants``: each fixed column's value, 0
    elsewhere, for the families that have one) add to the part's ``rows``: moved to the
    right-hand side (nothing else of another part is in its rows)."""
    moved: np.ndarray | float = 0.0
    for var, mat in con.blocks:
        if var in constants:
            outside = constants[var].copy()
            outside[columns[var]] = 0.0
            moved = moved + mat[rows] @ outside
    return moved


def _whole(model: LinearModel) -> Part:
    return Part(
        model,
        {n: np.arange(f.size) for n, f in model.variables.items()},
        {n: np.arange(c.size) for n, c in model.constraints.items()},
    )


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
