"""One parallel map for every fan-out: per-DSO steps, designs of a comparison, sweep points.

``parallel_map(fn, common, items)`` returns ``[fn(common, item) for item in items]`` in
order. Locally it runs on Dask threads (HiGHS releases the GIL) or, with
``processes=True``, on a local Dask cluster of single-threaded worker processes; given a
``scheduler`` address it runs on that Dask cluster, with ``common`` scattered once to
every worker. The result is the same whichever way it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

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
