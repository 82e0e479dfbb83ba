"""A batch of two stretches cleared by this process and by a worker that the command line
starts before it reads the batch (``flexmarket clear``): the worker reads the files itself
and clears the second stretch while this process imports, reads, checks and clears the
first, so nothing is pickled to it.

The worker cuts the batch exactly as this process will (:mod:`market.clearing.stream`,
deterministic) and says what it read; its stretch is used only if both hold. The
function that clears one stretch is passed in (``clear_one``: :mod:`market.clearing.run`'s),
so this module does not import the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from market.clearing.parallel import Ahead, one_thread_for_parts
from market.clearing.results import ClearingResult
from market.clearing.sizing import AHEAD_FIRST_SHARE
from market.clearing.stream import LINKS, streamable, stretches, stretches_of, sub_batch
from market.design.spec import Design, load_design
from market.enums import Pricing
from market.errors import BatchError
from market.io.batch import Batch
from market.io.read import bids_outline, load_batch_later, read_config

Common = tuple[Design, Pricing, dict[str, Any] | None]
ClearOne = Callable[[Common, Batch], ClearingResult]
log = logging.getLogger("flexmarket")


@dataclass(frozen=True)
class SecondStretch:
    """What :func:`second_stretch` returns: the stretches it cut the batch into, the SHA-256
    of each file it read, and the second stretch's result."""

    spans: list[tuple[int, int]]
    file_hashes: dict[str, str]
    result: ClearingResult


def second_stretch(
    folder: Path, design: str, pricing: Pricing, options: dict[str, Any] | None, clear_one: ClearOne
) -> SecondStretch | None:
    """On the worker: read the batch at ``folder`` (its checks are the caller's), cut it as
    the caller will and clear the second stretch with ``clear_one``. None where the design
    does not stream or the batch does not cut in two."""
    spec = load_design(design)
    if not streamable(spec):
        return None
    spans, batch = _second_stretch_of(folder)
    if len(spans) != 2 or batch is None:
        return None
    part = sub_batch(batch, *spans[1])
    hashes = dict(batch.file_hashes)
    del batch
    return SecondStretch(spans, hashes, clear_one((spec, pricing, options), part))


def _second_stretch_of(folder: Path) -> tuple[list[tuple[int, int]], Batch | None]:
    """The stretches of the batch at ``folder`` and, if they are two, a Batch holding at
    least the second: where the bids' Parquet allows, the stretches are cut from three of
    their columns and only the second stretch's bids are read (half the work of reading
    them all), else the whole batch is read and cut."""
    config, _ = read_config(folder)
    outline = bids_outline(folder, LINKS)
    if outline is None:
        batch, _checks = load_batch_later(folder)
        return stretches(batch, first_share=AHEAD_FIRST_SHARE), batch
    starts, links = outline
    spans = stretches_of(len(config.intervals), config.slot_of(starts), links, first_share=AHEAD_FIRST_SHARE)
    if len(spans) != 2:
        return spans, None
    first, end = spans[1]
    between = (config.start + first * config.interval, config.start + end * config.interval)
    batch, _checks = load_batch_later(folder, bids_between=between)
    return spans, batch


def with_second_ahead(
    batch: Batch,
    spans: list[tuple[int, int]],
    common: Common,
    ahead: Ahead[SecondStretch | None],
    checked: Callable[[], None],
    clear_one: ClearOne,
) -> list[ClearingResult]:
    """The first of two stretches cleared here while ``ahead`` clears the second from the
    same files; that one is cleared here too if the worker cut or read something else (the
    files changed in between: refused)."""
    own = sub_batch(batch, *spans[0])
    checked()
    first = one_thread_for_parts(clear_one, common, own)
    theirs = ahead.result()
    if theirs is not None and theirs.file_hashes != dict(batch.file_hashes):
        changed = sorted(k for k in {*theirs.file_hashes, *batch.file_hashes}
                         if theirs.file_hashes.get(k) != batch.file_hashes.get(k))  # fmt: skip
        raise BatchError(f"{batch.source}: {', '.join(changed)} changed while the batch was cleared; run it again")
    if theirs is None or theirs.spans != spans or theirs.result.design != common[0]:
        log.info("the worker cleared something else: the second stretch is cleared here")
        return [first, clear_one(common, sub_batch(batch, *spans[1]))]
    return [first, theirs.result]
