"""One parallel map for every fan-out: per-DSO steps, designs of a comparison, sweep points.

``parallel_map(fn, common, items)`` returns ``[fn(common, item) for item in items]`` in
order. Locally it runs on Dask threads (HiGHS releases the GIL) or, with
``processes=True``, on a local Dask cluster of single-threaded worker processes; given a
``scheduler`` address it runs on that Dask cluster, with ``common`` scattered once to
every worker. The result is the same whichever way it ran.

``stream_map(fn, common, items)`` is the same on worker processes (a local process pool,
or the cluster) for items too large to hold all at once: each item is made only when a
worker is about to be free, and at most one waits in the queue; when the items are no more
than the workers, the caller's process does one of them itself. ``warm_workers()`` starts
that local pool ahead of time (its workers import the clearing code while the caller loads
the batch); ``stream_map`` then runs on it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from market.errors import SchedulerUnavailableError, WorkerLostError
from market.extras import Extra

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")


def parallel_map(
    fn: Callable[[C, T], R],
    common: C,
    items: Sequence[T],
    *,
    scheduler: str | None = None,
    processes: bool = False,
    workers: int = 2,
) -> list[R]:
    """``fn(common, item)`` for every item, in order (see the module docstring)."""
    if scheduler or processes:
        return _on_cluster(fn, common, items, scheduler, workers)
    if len(items) <= 1:
        return [fn(common, item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flexmarket-part") as pool:
        return list(pool.map(lambda item: fn(common, item), items))


def scheduler_timeout_s() -> float:
    """Seconds to wait for a Dask scheduler's answer (``FLEXMARKET_DASK_TIMEOUT_S``, default 30)."""
    try:
        return max(float(os.environ.get("FLEXMARKET_DASK_TIMEOUT_S", "30")), 0.1)
    except ValueError:
        return 30.0


def connect(scheduler: str) -> Any:
    """A Dask client of the scheduler at ``scheduler``, or :class:`SchedulerUnavailableError`
    when it cannot be reached or does not answer in :func:`scheduler_timeout_s`. The client
    is made in a daemon thread with a hard deadline: a port that accepts the connection and
    never answers the handshake would otherwise hang the command (distributed's own
    ``timeout`` does not cover that wait)."""
    import threading

    from market.extras import require

    require(Extra.DASK, "a Dask scheduler (--scheduler)")
    from distributed import Client

    timeout = scheduler_timeout_s()
    made: list[Any] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            made.append(Client(scheduler, timeout=f"{timeout}s"))
        except BaseException as exc:  # reported below, in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=make, name="flexmarket-dask-connect", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)
    if made:
        return made[0]
    reason = f"{type(failed[0]).__name__}: {failed[0]}" if failed else "no answer to the handshake"
    raise SchedulerUnavailableError(f"Dask scheduler {scheduler} did not answer within {timeout:g} s ({reason})")


def _on_cluster(fn: Callable[[C, T], R], common: C, items: Sequence[T], scheduler: str | None, workers: int) -> list[R]:
    from market.extras import require

    require(Extra.DASK, "a Dask cluster (--scheduler, or sweep's local cluster)")
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = connect(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        shared = client.scatter(common, broadcast=True)
        futures = [client.submit(fn, shared, item, pure=False) for item in items]
        return list(client.gather(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def stream_map(
    fn: Callable[[C, T], R],
    common: C,
    items: Iterable[T],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    count: int | None = None,
    handed_off: Callable[[], None] | None = None,
) -> list[R]:
    """``fn(common, item)`` for each item, in order, on worker processes (the Dask cluster
    at ``scheduler``, else a local pool of ``workers`` processes), pulling items lazily.

    Locally, when ``count`` says the items number no more than ``workers``, the caller's
    process does the first item itself while ``count - 1`` workers do the others (see
    :func:`local_workers`): one item fewer is pickled to a worker and back.
    ``handed_off()`` is called once every item but the caller's own is with a worker (or
    before any item is made, when the caller does none)."""
    handed = once(handed_off)
    in_pool = local_workers(count, workers)
    own = in_pool < workers and not scheduler
    if not own:
        handed()
    if scheduler:
        return _stream_on_cluster(fn, common, items, scheduler)
    warm = [entry for entry in WARM_POOLS if entry[1] >= in_pool]
    if warm:  # used once
        result = _stream_on_pool(warm[0][0], fn, common, items, in_pool, own, handed)
        _stop(warm[0][0])
        WARM_POOLS.remove(warm[0])
        return result
    with _process_pool(in_pool) as pool:
        result = _stream_on_pool(pool, fn, common, items, in_pool, own, handed)
        _stop(pool)
        return result


def once(fn: Callable[[], None] | None) -> Callable[[], None]:
    """``fn`` run on the first call only (nothing for None)."""
    done = [False]

    def call() -> None:
        if not done[0] and fn is not None:
            done[0] = True
            fn()

    return call


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` once every item is back: its idle workers are terminated at once, so
    that their memory is free before the caller stacks and writes the results (at 10^7:
    1.6 GiB of 8) and none is left behind however soon this process exits (a worker of a
    pool shut down without waiting blocks on its queue for good if the caller exits before
    the pool's thread has told it to stop)."""
    _terminate(pool)


def local_workers(count: int | None, workers: int = 2) -> int:
    """Worker processes a local :func:`stream_map` of ``count`` items starts: ``workers``,
    or ``count - 1`` (at least one) when the caller can do one item itself."""
    if count is None or count > workers:
        return workers
    return max(1, count - 1)


@contextlib.contextmanager
def _process_pool(workers: int, preload: tuple[str, ...] = ()) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes, started now, each importing ``preload``.

    Spawned, not forked: a fork would copy the parent's threads' locks (HiGHS, Dask); each
    worker solves its models' parts in one thread (the workers share the cores). The workers
    ignore Ctrl-C (no traceback of theirs reaches the terminal): the parent handles it, and
    on any error or interrupt stops them at once instead of waiting for their work."""
    import multiprocessing
    import signal
    import threading

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_thread_each)
    main = threading.current_thread() is threading.main_thread()
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # inherited by the spawned
    try:
        for _ in range(workers):
            pool.submit(_preload, preload)  # spawns every worker now
    finally:
        if main:
            signal.signal(signal.SIGINT, saved)
    try:
        yield pool
    except BaseException:
        _terminate(pool)
        raise
    # done with: stopped (a stream_map stops it as it sees fit first); its idle workers exit
    # on their own while the caller goes on
    pool.shutdown(wait=False, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool``'s workers now, whatever they are doing, and wait until they are gone."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _stream_on_pool(
    pool: ProcessPoolExecutor,
    fn: Callable[[C, T], R],
    common: C,
    items: Iterable[T],
    workers: int,
    own: bool,
    handed: Callable[[], None],
) -> list[R]:
    """``own``: the caller does the first item, after handing the others to the pool and
    calling ``handed()``."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    futures: list[Future[R]] = []
    iterator = iter(items)
    mine = list(itertools.islice(iterator, 1 if own else 0))
    try:
        for item in iterator:
            while sum(not f.done() for f in futures) >= workers + 1:
                wait([f for f in futures if not f.done()], return_when=FIRST_COMPLETED)
            if own:  # pickled here, before this process starts its own item, rather than by the
                # pool's feeder thread while it works on it (the two would share the GIL)
                futures.append(pool.submit(_unpickled, fn, common, pickle.dumps(item, protocol=5)))
            else:
                futures.append(pool.submit(fn, common, item))
            del item
        handed()
        here = [one_thread_for_parts(fn, common, item) for item in mine]
        return here + [f.result() for f in futures]
    except BrokenProcessPool as exc:  # a worker was killed (out of memory, a signal)
        raise WorkerLostError(
            f"a worker process died before it finished ({exc}); if this is a Python script that calls "
            'clear() or compare(), put that call under `if __name__ == "__main__":` (the workers are '
            "spawned processes that import the script)"
        ) from exc


def _unpickled(fn: Callable[[C, T], R], common: C, item: bytes) -> R:
    return fn(common, pickle.loads(item))


WARM_POOLS: list[tuple[ProcessPoolExecutor, int]] = []  # started by warm_workers, used by stream_map


@contextlib.contextmanager
def warm_workers(workers: int = 2, preload: tuple[str, ...] = ()) -> Iterator[None]:
    """Start ``stream_map``'s local pool now: its ``workers`` processes spawn and import the
    modules named in ``preload`` while the caller goes on (loading a large batch); stopped by
    the first ``stream_map`` that uses it once its work is back, or else on exit."""
    with _process_pool(workers, preload) as pool:
        WARM_POOLS.append((pool, workers))
        try:
            yield
        finally:
            if (pool, workers) in WARM_POOLS:  # not used by a stream_map (which stops it)
                WARM_POOLS.remove((pool, workers))


def _preload(modules: tuple[str, ...]) -> None:
    """Import what the worker's work will need, and silence HiGHS's banner, ahead of it."""
    import importlib

    from market.clearing.solvers import silence_highs_banner

    for name in modules:
        importlib.import_module(name)
    silence_highs_banner()


PART_THREADS = [2]  # threads solving a model's parts (decompose); 1 where processes share the cores


def _one_thread_each() -> None:
    PART_THREADS[0] = 1


def one_thread_for_parts(fn: Callable[[C, T], R], common: C, item: T) -> R:
    """``fn(common, item)`` in this process with one thread for a model's parts, as a
    worker's (the workers have the other cores)."""
    saved = PART_THREADS[0]
    PART_THREADS[0] = 1
    try:
        return fn(common, item)
    finally:
        PART_THREADS[0] = saved


def _stream_on_cluster(fn: Callable[[C, T], R], common: C, items: Iterable[T], scheduler: str) -> list[R]:
    from distributed import wait

    client = connect(scheduler)
    try:
        slots = max(1, len(client.scheduler_info()["workers"])) + 1
        shared = client.scatter(common, broadcast=True)
        futures: list = []
        for item in items:
            while sum(not f.done() for f in futures) >= slots:
                wait([f for f in futures if not f.done()], return_when="FIRST_COMPLETED")
            [data] = client.scatter([item])
            futures.append(client.submit(fn, shared, data, pure=False))
            del data, item
        results = []
        for f in futures:  # in order; each result released once collected
            results.append(f.result())
            f.release()
        return results
    finally:
        client.close()
