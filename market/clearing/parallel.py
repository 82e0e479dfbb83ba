"""One parallel map for every fan-out: per-DSO steps, designs of a comparison, sweep points.

``parallel_map(fn, common, items)`` returns ``[fn(common, item) for item in items]`` in
order. Locally it runs on Dask threads (HiGHS releases the GIL) or, with
``processes=True``, on a local Dask cluster of single-threaded worker processes; given a
``scheduler`` address it runs on that Dask cluster, with ``common`` scattered once to
every worker. The result is the same whichever way it ran.

``stream_map(fn, common, items)`` is the same on worker processes (a local process pool,
or the cluster) for items too large to hold all at once: each item is made only when a
worker is about to be free, and at most one waits in the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from market.errors import WorkerLostError

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
    import dask

    tasks = [dask.delayed(fn)(common, item) for item in items]
    return list(dask.compute(*tasks, scheduler="threads", num_workers=workers))


def _on_cluster(fn: Callable[[C, T], R], common: C, items: Sequence[T], scheduler: str | None, workers: int) -> list[R]:
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler)
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
) -> list[R]:
    """``fn(common, item)`` for each item, in order, on worker processes (the Dask cluster
    at ``scheduler``, else a local pool of ``workers`` processes), pulling items lazily."""
    if scheduler:
        return _stream_on_cluster(fn, common, items, scheduler)
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # spawned, not forked: a fork would copy the parent's threads' locks (HiGHS, Dask);
    # each worker solves its models' parts in one thread (the workers share the cores)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_thread_each) as pool:
        futures: list[Future[R]] = []
        try:
            for item in items:
                while sum(not f.done() for f in futures) >= workers + 1:
                    wait([f for f in futures if not f.done()], return_when=FIRST_COMPLETED)
                futures.append(pool.submit(fn, common, item))
                del item
            return [f.result() for f in futures]
        except BrokenProcessPool as exc:  # a worker was killed (out of memory, a signal)
            raise WorkerLostError(f"a worker process died before it finished ({exc})") from exc


PART_THREADS = [2]  # threads solving a model's parts (decompose); 1 where processes share the cores


def _one_thread_each() -> None:
    PART_THREADS[0] = 1


def _stream_on_cluster(fn: Callable[[C, T], R], common: C, items: Iterable[T], scheduler: str) -> list[R]:
    from distributed import Client, wait

    client = Client(scheduler)
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
