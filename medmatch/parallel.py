"""Pure-Python work on every core, by forked worker processes.

Forked, not spawned: a spawned worker re-imports the caller's main module (a script without
a `__main__` guard would run again), and a forked one inherits the caller's data instead of
receiving it pickled; only each task's answer travels back. A fork copies only the forking
thread, so it is used only when no other Python thread runs (a lock one of them held would
stay locked in the child): the CLI, the bulk load and Dagster's step processes qualify;
elsewhere (the API's threads, for instance) the work stays in the calling thread.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_task: Callable[[int], object] | None = None  # what the forked workers run, inherited


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def can_fork(workers: int) -> bool:
    return workers >= 2 and threading.active_count() == 1


def fork_map(task: Callable[[int], T], count: int, workers: int) -> list[T]:
    """[task(0), ..., task(count - 1)], by `workers` forked processes; `task` and all it
    reads are inherited by the workers, not pickled. Call it only when can_fork()."""
    global _task
    _task = task
    fork = multiprocessing.get_context("fork")
    try:
        # the workers' collector off: a collection there would walk (and so copy the pages
        # of) the parent's heap of a million records. Not gc.freeze() in the parent: the
        # gc.unfreeze() after it also thawed what the code location had frozen for good
        # (definitions.py), and every full collection of the run, and the interpreter's
        # exit, walked Dagster's objects again (1.1-1.3 s at exit at 100K records)
        with ProcessPoolExecutor(workers, mp_context=fork, initializer=gc.disable) as pool:
            return list(pool.map(_run, range(count)))  # type: ignore[arg-type]
    finally:
        _task = None


def _run(index: int) -> object:
    assert _task is not None, "fork_map's task runs in its forked workers only"
    return _task(index)
