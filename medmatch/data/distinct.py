"""Functions mapped over the distinct values of whole columns, on every core for big tables.

Normalising a table is pure Python per value (names, dates, phones, addresses), once per
distinct value. Past `MIN_PARALLEL` distinct values the work is split into chunks for
forked worker processes (`medmatch.parallel`): about twice as fast on two cores, and the
same answers, since every worker runs the same functions on the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medmatch.errors import InvalidValueError
from medmatch.parallel import available_cores, can_fork, fork_map

Column = list[Any]
MIN_PARALLEL = 50_000  # distinct values: below this, starting workers costs more than it saves
CHUNK = 5_000


def map_distinct(
    jobs: Mapping[str, tuple[Column, Callable[[Any], Any]]],
    *,
    workers: int | None = None,
    min_parallel: int | None = None,
) -> dict[str, tuple[Column, set[Any]]]:
    """For each job `name: (values, fn)`: fn over every distinct non-null value once, as a
    column (None stays None), and the values fn refused (InvalidValueError: None in the
    column). All jobs share one pool of `workers` processes (default: the cores)."""
    found = {name: _distinct(values) for name, (values, _) in jobs.items()}
    distinct = {name: values for name, (values, _) in found.items()}
    workers = workers or available_cores()
    total = sum(map(len, distinct.values()))
    small = total < (MIN_PARALLEL if min_parallel is None else min_parallel)
    if small or not can_fork(workers):
        answers = {name: _apply(jobs[name][1], values) for name, values in distinct.items()}
    else:
        answers = _in_workers(jobs, distinct, workers)
    out = {}
    for name, (values, _) in jobs.items():
        mapped, refused = answers[name]
        out[name] = (_spread(values, distinct[name], mapped, found[name][1]), refused)
    return out


def _distinct(values: Column) -> tuple[list[Any], np.ndarray | None]:
    """The distinct non-null values, first seen first, and for a column of strings each
    value's position among them (None's: one past the last), found by Arrow in C: with a
    dict, finding them and then each value's answer took a quarter of a 100K-record table's
    normalisation, in one process whatever the workers."""
    try:
        array = pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not strings: hashed in Python
        return [v for v in dict.fromkeys(values) if v is not None], None
    unique = pc.drop_null(pc.unique(array))
    positions = pc.fill_null(pc.index_in(array, value_set=unique), len(unique))
    return unique.to_pylist(), positions.to_numpy()


def _spread(
    values: Column, distinct: list[Any], mapped: Column, positions: np.ndarray | None
) -> Column:
    """Each value's answer (None for None), from the answers of the distinct values."""
    if positions is None:
        lookup = dict(zip(distinct, mapped, strict=True))
        return [None if v is None else lookup[v] for v in values]
    answers = np.empty(len(mapped) + 1, dtype=object)  # the last one None: None's answer
    for i, answer in enumerate(mapped):  # one by one: a list answer must stay one object
        answers[i] = answer
    return answers[positions].tolist()  # type: ignore[no-any-return]


def _apply(fn: Callable[[Any], Any], values: Sequence[Any]) -> tuple[Column, set[Any]]:
    mapped, refused = [], set()
    for value in values:
        try:
            mapped.append(fn(value))
        except InvalidValueError:
            mapped.append(None)
            refused.add(value)
    return mapped, refused


def _in_workers(
    jobs: Mapping[str, tuple[Column, Callable[[Any], Any]]],
    distinct: Mapping[str, list[Any]],
    workers: int,
) -> dict[str, tuple[Column, set[Any]]]:
    tasks = [
        (name, start) for name, values in distinct.items() for start in range(0, len(values), CHUNK)
    ]

    def chunk(index: int) -> tuple[Column, set[Any]]:
        name, start = tasks[index]
        return _apply(jobs[name][1], distinct[name][start : start + CHUNK])

    answers: dict[str, tuple[Column, set[Any]]] = {name: ([], set()) for name in distinct}
    for (name, _), (mapped, refused) in zip(
        tasks, fork_map(chunk, len(tasks), workers), strict=True
    ):
        answers[name][0].extend(mapped)
        answers[name][1].update(refused)
    return answers
