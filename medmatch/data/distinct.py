"""Functions mapped over the distinct values of whole columns, on every core for big tables.

Normalising a table is pure Python per value (names, dates, phones, addresses), once per
distinct value. Past `MIN_PARALLEL` distinct values the work is split into chunks for a
pool of forked worker processes: about twice as fast on two cores, and the same answers,
since every worker runs the same functions on the same values. Forked, not spawned: a
spawned worker re-imports the caller's main module (a script without a `__main__` guard
would run again). A fork copies only the forking thread, so it is used only when no other
Python thread runs (a lock one of them held would stay locked in the child): the CLI, the
bulk load and Dagster's steps qualify; elsewhere the work stays in the calling thread.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from medmatch.errors import InvalidValueError

Column = list[Any]
MIN_PARALLEL = 50_000  # distinct values: below this, starting workers costs more than it saves
CHUNK = 5_000


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_distinct(
    jobs: Mapping[str, tuple[Column, Callable[[Any], Any]]],
    *,
    workers: int | None = None,
    min_parallel: int | None = None,
) -> dict[str, tuple[Column, set[Any]]]:
    """For each job `name: (values, fn)`: fn over every distinct non-null value once, as a
    column (None stays None), and the values fn refused (InvalidValueError: None in the
    column). All jobs share one pool of `workers` processes (default: the cores)."""
    distinct = {
        name: [v for v in dict.fromkeys(values) if v is not None]
        for name, (values, _) in jobs.items()
    }
    workers = workers or available_cores()
    total = sum(map(len, distinct.values()))
    small = total < (MIN_PARALLEL if min_parallel is None else min_parallel)
    if workers < 2 or small or threading.active_count() > 1:
        answers = {name: _apply(jobs[name][1], values) for name, values in distinct.items()}
    else:
        answers = _in_pool(jobs, distinct, workers)
    out = {}
    for name, (values, _) in jobs.items():
        mapped, refused = answers[name]
        lookup = dict(zip(distinct[name], mapped, strict=True))
        out[name] = ([None if v is None else lookup[v] for v in values], refused)
    return out


def _apply(fn: Callable[[Any], Any], values: Sequence[Any]) -> tuple[Column, set[Any]]:
    mapped, refused = [], set()
    for value in values:
        try:
            mapped.append(fn(value))
        except InvalidValueError:
            mapped.append(None)
            refused.add(value)
    return mapped, refused


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _in_pool(
    jobs: Mapping[str, tuple[Column, Callable[[Any], Any]]],
    distinct: Mapping[str, list[Any]],
    workers: int,
) -> dict[str, tuple[Column, set[Any]]]:
    # frozen: the children's garbage collector leaves the parent's objects (and so their
    # pages) alone instead of copying a heap of a million records into each child
    gc.freeze()
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return _gather(pool, jobs, distinct)
    finally:
        gc.unfreeze()


def _gather(
    pool: ProcessPoolExecutor,
    jobs: Mapping[str, tuple[Column, Callable[[Any], Any]]],
    distinct: Mapping[str, list[Any]],
) -> dict[str, tuple[Column, set[Any]]]:
    futures = {
        name: [pool.submit(_apply, jobs[name][1], chunk) for chunk in _chunks(values, CHUNK)]
        for name, values in distinct.items()
    }
    answers = {}
    for name, parts in futures.items():
        mapped: Column = []
        refused: set[Any] = set()
        for part in parts:
            chunk_mapped, chunk_refused = part.result()
            mapped += chunk_mapped
            refused |= chunk_refused
        answers[name] = (mapped, refused)
    return answers
