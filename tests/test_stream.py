"""Streaming: a batch cleared stretch by stretch of its horizon gives the whole run's tables,
model sizes and metrics, and never cuts where a block or an exclusive group links intervals."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market import clear
from market.clearing.parallel import stream_map
from market.clearing.results import ClearingResult
from market.clearing.stream import cut_points, streamable, stretches, sub_batch
from market.design.spec import load_design
from market.errors import WorkerLostError
from market.io.read import load_batch
from market.io.synth import SynthSpec, synth_batch
from market.testing import bid, make_batch, tso_need

SAMPLE = "data/contested"
# the contested day has integer bids: within a gap, a MILP's optimum may differ per stretch
EXACT = {"mip_rel_gap": 0.0}


def _same_metrics(a: dict[str, object], b: dict[str, object]) -> list[str]:
    """Metric names that differ beyond float summation order (1e-9 relative)."""

    def close(x: object, y: object) -> bool:
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6)
        return x == y

    return [k for k in a if not close(a[k], b.get(k))]


def _assert_same_tables(got: ClearingResult, want: ClearingResult) -> None:
    for name, table in want.tables().items():
        pd.testing.assert_frame_equal(
            got.tables()[name].reset_index(drop=True),
            table.reset_index(drop=True),
            check_dtype=False,
            atol=1e-6,
            obj=name,
        )


@pytest.fixture(scope="module")
def contested():  # type: ignore[no-untyped-def]
    return load_batch(SAMPLE)


@pytest.mark.parametrize("design", ["single", "tso-only", "nyiso-alt1"])
def test_a_streamed_run_is_the_whole_run(contested, design):  # type: ignore[no-untyped-def]
    """Every table equal, every model's size and the run's metrics the same (an LP design,
    a fan-out design whose DSOs have needs in only some stretches, simultaneous steps)."""
    spec = load_design(design)
    whole = clear(contested, spec, stream=False, solver_options=EXACT)
    streamed = clear(contested, spec, stream=True, solver_options=EXACT)
    assert len(stretches(contested)) >= 2
    _assert_same_tables(streamed, whole)
    assert [(s.step, s.part, s.n_variables, s.n_constraints, s.n_integer) for s in streamed.stats] == [
        (s.step, s.part, s.n_variables, s.n_constraints, s.n_integer) for s in whole.stats
    ]
    assert _same_metrics(whole.metrics, streamed.metrics) == []


def test_the_aggregator_view_is_never_streamed(contested):  # type: ignore[no-untyped-def]
    """CAISO multi-node weights each aggregator's nodes over the whole horizon: cut, a
    stretch would see other weights, so such a design is cleared whole."""
    assert not streamable(load_design("california-today"))
    assert streamable(load_design("single"))
    assert clear(contested, "california-today", stream=True).stretches == 1  # asked for, still whole


def test_stretches_are_cut_only_where_no_block_or_group_crosses():
    bids = [bid(f"b{t}", 10, 1, t=t) for t in range(8)]
    bids += [bid("k1", 10, 1, t=1, block="K"), bid("k3", 10, 1, t=3, block="K")]
    bids += [bid("g5", 10, 1, t=5, minq=1, excl="G"), bid("g6", 10, 1, t=6, minq=1, excl="G")]
    b = make_batch(bids, [tso_need(f"T{t}", 1, t=t) for t in range(8)], n_intervals=8)
    # boundary k lies between intervals k-1 and k: 2 and 3 are inside block K, 6 inside group G
    assert cut_points(b).tolist() == [1, 4, 5, 7]
    spans = stretches(b, per_stretch=3, at_least=2)
    assert spans[0][0] == 0 and spans[-1][1] == 8
    assert all(a < z for a, z in spans) and all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    assert {a for a, _ in spans[1:]} <= {1, 4, 5, 7}


def test_a_stretch_holds_its_intervals_only(contested):  # type: ignore[no-untyped-def]
    part = sub_batch(contested, 10, 20)
    cfg = contested.config
    assert part.config.start == cfg.start + 10 * cfg.interval
    assert part.config.end == cfg.start + 20 * cfg.interval
    for name in ("bids", "needs", "signals"):
        ts = part.table(name)["interval_start"]
        assert ts.between(part.config.start, part.config.end, inclusive="left").all()
    every = contested.constraints["interval_start"].isna().sum()
    inside = contested.constraints["interval_start"].between(part.config.start, part.config.end, inclusive="left")
    assert len(part.constraints) == every + int(inside.sum())
    assert part.dso_buyers == contested.dso_buyers  # the whole batch's fan-out, even without needs here
    assert np.array_equal(part.node_areas.to_numpy(), contested.node_areas.to_numpy())


def test_stretches_fan_out_on_a_real_dask_cluster(contested, dask_scheduler):  # type: ignore[no-untyped-def]
    """With a scheduler, the stretches go to its workers (one at a time per worker), with
    the local whole run's tables."""
    options = {"mip_rel_gap": 0.0}
    whole = clear(contested, "dso-led", stream=False, solver_options=options)
    remote = clear(contested, "dso-led", stream=True, scheduler=dask_scheduler, solver_options=options)
    assert remote.stretches == len(stretches(contested)) >= 2
    _assert_same_tables(remote, whole)


def _die(common: object, item: object) -> None:
    os._exit(9)  # a worker killed mid-stretch (as the kernel does when memory runs out)


def test_a_worker_that_dies_is_a_named_error_not_a_traceback():
    with pytest.raises(WorkerLostError, match="worker process died") as caught:
        stream_map(_die, None, iter([1, 2]), workers=1)
    assert 'if __name__ == "__main__":' in str(caught.value)  # the usual cause in a script, named


def test_a_warm_pool_serves_one_stream_and_stops_once_its_work_is_back():
    """The workers started while a batch loads are stopped as soon as the stretches are
    back (their memory is then free while the results are stacked and written); a later
    stream in the same context gets a pool of its own."""
    import operator

    from market.clearing import parallel

    with parallel.warm_workers(2):
        ((pool, _),) = parallel.WARM_POOLS
        processes = list((pool._processes or {}).values())
        assert processes
        assert parallel.stream_map(operator.add, 10, iter(range(5)), workers=2) == [10, 11, 12, 13, 14]
        assert parallel.WARM_POOLS == []
        assert not any(p.is_alive() for p in processes)
        assert parallel.stream_map(operator.add, 1, iter(range(3)), workers=2) == [1, 2, 3]


def _pid_and_threads(common: object, item: int) -> tuple[int, int, int]:
    from market.clearing import parallel

    return item, os.getpid(), parallel.PART_THREADS[0]


def test_items_that_fit_the_workers_leave_one_to_the_caller():
    """Two stretches on two cores: this process clears the first (with one thread for its
    parts, as a worker) while one worker clears the second; no second worker is started,
    and none of this process's settings change."""
    from market.clearing import parallel

    assert parallel.local_workers(2, 2) == 1 and parallel.local_workers(3, 2) == 2
    assert parallel.local_workers(None, 2) == 2 and parallel.local_workers(1, 2) == 1
    here = os.getpid()
    with parallel.warm_workers(parallel.local_workers(2, 2)):
        ((pool, size),) = parallel.WARM_POOLS
        assert size == 1
        out = parallel.stream_map(_pid_and_threads, None, iter([7, 8]), workers=2, count=2)
    assert [item for item, _, _ in out] == [7, 8]
    assert out[0][1:] == (here, 1) and out[1][1] != here
    assert parallel.PART_THREADS[0] == 2
    many = parallel.stream_map(_pid_and_threads, None, iter([1, 2, 3]), workers=2, count=3)
    assert [item for item, _, _ in many] == [1, 2, 3] and all(pid != here for _, pid, _ in many)


@pytest.mark.parametrize("name", ["sample", "contested", "synth-empty-tables"])
def test_a_batch_pickles_through_arrow_and_comes_back_equal(name):
    """A stretch travels to its worker as Arrow tables: every table comes back equal, with
    the same dtypes, index and missing values (empty optional tables included)."""
    import pickle

    from market.io.batch import TABLE_NAMES

    if name == "synth-empty-tables":
        batch = synth_batch(SynthSpec(bids=30, intervals=4, dsos=2, seed=2))
        batch = batch.replace(signals=batch.signals.iloc[:0], aggregators=batch.aggregators.iloc[:0])
    else:
        batch = load_batch(Path(__file__).parent.parent / "data" / name)
    back = pickle.loads(pickle.dumps(batch))
    for table in TABLE_NAMES:
        pd.testing.assert_frame_equal(back.table(table), batch.table(table), check_exact=True)
    assert (back.config, back.file_hashes, back.buying_dsos) == (batch.config, batch.file_hashes, batch.buying_dsos)


EVENTS: list[str] = []  # in this process only (a worker appends to its own copy)


def _ran(common: None, item: int) -> int:
    EVENTS.append(f"ran {item} here")
    return item


def test_the_callers_item_waits_for_handed_off_which_runs_once_the_others_are_with_a_worker():
    """``handed_off`` (a two-stretch clear's deferred checks) runs after the worker's item
    was submitted and before the caller starts its own; with no item of the caller's, first."""
    from market.clearing import parallel

    events = EVENTS
    events.clear()

    def items():  # type: ignore[no-untyped-def]
        for i in (1, 2):
            events.append(f"made {i}")
            yield i

    out = parallel.stream_map(_ran, None, items(), workers=2, count=2, handed_off=lambda: events.append("checks"))
    assert out == [1, 2]
    assert events == ["made 1", "made 2", "checks", "ran 1 here"]
    events.clear()
    many = parallel.stream_map(_ran, None, items(), workers=2, count=3, handed_off=lambda: events.append("checks"))
    assert many == [1, 2] and events == ["checks", "made 1", "made 2"]


def test_an_items_own_stream_leaves_no_worker_behind():
    """A stream whose first item the caller does itself stops its worker once every item
    is back (a worker left to exit on its own would block for good if this process exited
    first)."""
    import operator

    from market.clearing import parallel

    with parallel.warm_workers(1):
        ((pool, _),) = parallel.WARM_POOLS
        processes = list((pool._processes or {}).values())
        assert parallel.stream_map(operator.add, 10, iter(range(2)), workers=2, count=2) == [10, 11]
        assert processes and not any(p.is_alive() for p in processes)


def test_a_clear_refused_before_its_worker_is_done_leaves_no_process(tmp_path):  # type: ignore[no-untyped-def]
    """`flexmarket clear` of a two-stretch book under an unknown design exits 2 while its
    warm worker pool (started before the batch is read) may still start: no process of it
    is left behind."""
    import subprocess
    import sys

    import psutil

    from market.io.write import write_batch

    book = tmp_path / "book"
    write_batch(synth_batch(SynthSpec(bids=5300, intervals=96, dsos=2, seed=3)), book)  # 508,800 bid-intervals
    flexmarket = Path(sys.executable).with_name("flexmarket")
    proc = subprocess.Popen([str(flexmarket), "clear", str(book), "--design", "nope", "--out", str(tmp_path / "run")])
    seen: set[int] = set()
    while proc.poll() is None:
        try:
            seen |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
    assert proc.wait() == 2 and seen  # its worker (and multiprocessing's resource tracker) were there
    left = [psutil.Process(pid) for pid in seen if psutil.pid_exists(pid)]
    # the tracker leaves once every process that shares its pipe is gone: a moment, not a minute
    _, alive = psutil.wait_procs(left, timeout=60)
    assert alive == [], [p.cmdline() for p in alive]
    assert not (tmp_path / "run").exists()
