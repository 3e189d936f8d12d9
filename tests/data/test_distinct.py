"""map_distinct: the same answers whether the work stays here or goes to worker processes."""

import threading
from functools import partial

import pytest

import medmatch.data.distinct as distinct
import medmatch.parallel as parallel
from medmatch.data import names
from medmatch.data.features import table_features
from medmatch.data.fields import field_normalisers
from medmatch.data.synthetic import generate


def _jobs():
    dates = ["1980-02-30", "03/12/1975", None, "1975-03-12", "not a date", "03/12/1975"]
    people = ["O'Brien", "smith", None, "Smith", "Müller"] * 3
    return {
        "dob": (dates, field_normalisers()["date_of_birth"]),
        "last": (people, names.fold),
        "phone": (
            ["555-0100", "(415) 555-0199", "12", None],
            partial(field_normalisers()["phone"]),
        ),
    }


@pytest.fixture
def pooled(monkeypatch):
    """The pool even when the test session runs a server thread (tests/api): forking here
    is safe, that thread only waits on its socket. Yields the pool's call count."""
    calls = []
    in_pool = distinct._in_workers
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    monkeypatch.setattr(distinct, "_in_workers", lambda *a: calls.append(1) or in_pool(*a))
    return calls


def test_workers_answer_as_the_calling_process_does(pooled):
    here = distinct.map_distinct(_jobs(), workers=1)
    assert distinct.map_distinct(_jobs(), workers=2, min_parallel=0) == here
    assert pooled == [1]
    dob, refused = here["dob"]
    assert dob[2] is None and dob[1] == dob[5] == dob[3]
    assert refused == {"1980-02-30", "not a date"}  # refused: None in the column, reported
    assert here["last"][0][:2] == [names.fold("O'Brien"), names.fold("smith")]
    assert "12" in here["phone"][1]


def test_another_thread_keeps_the_work_here(monkeypatch):
    """A fork copies only the forking thread: with another thread alive, no pool."""
    monkeypatch.setattr(distinct, "_in_workers", lambda *a: pytest.fail("forked beside a thread"))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert distinct.map_distinct(_jobs(), workers=2, min_parallel=0)["last"][1] == set()
    finally:
        stop.set()
        other.join()


def test_table_features_are_the_same_on_every_core(monkeypatch, pooled):
    data = generate(people=400, seed=11)
    serial = table_features(data.demographics, data.medical, workers=1)
    monkeypatch.setattr(distinct, "MIN_PARALLEL", 0)
    parallel = table_features(data.demographics, data.medical, workers=2)
    assert len(pooled) == 3  # the fields, the derived columns, the medical concepts
    assert parallel.frame.equals(serial.frame)
    assert parallel.fields == serial.fields
    assert parallel.warning_counts == serial.warning_counts
    assert [w.record_id for w in parallel.warnings] == [w.record_id for w in serial.warnings]


@pytest.mark.parametrize(
    "values",
    [
        ["b", None, "a", "b", "a", None],  # strings: Arrow finds the distinct values
        [2, None, 1, 2, 1, None],  # anything else: a dict does
    ],
)
def test_every_value_gets_its_distinct_values_answer(values):
    calls = []

    def listed(value):
        calls.append(value)
        return [value, value]  # a list answer stays one list, not spread over the column

    column, refused = distinct.map_distinct({"": (values, listed)}, workers=1)[""]
    assert column == [None if v is None else [v, v] for v in values]
    assert calls == [values[0], values[2]]  # once per distinct value, first seen first
    assert refused == set()
