import gc

import medmatch.parallel as parallel


def _collector_state(_index: int) -> bool:
    return gc.isenabled()


def test_fork_map_leaves_what_was_frozen_frozen_and_the_workers_collector_off():
    kept = [object()]  # tracked by the collector: frozen below, found again if thawed
    gc.freeze()  # as the code location does once its definitions are built (left so)
    assert gc.get_freeze_count() > 0
    assert parallel.fork_map(lambda i: i * i, 5, 2) == [0, 1, 4, 9, 16]
    # a collection in a worker would walk (and copy) the parent's heap
    assert parallel.fork_map(_collector_state, 2, 2) == [False, False]
    # not thawed (full collections skip what stays frozen). Not a count compared: frozen
    # objects that other threads or finalisers free meanwhile leave the count too
    assert not any(o is kept for o in gc.get_objects())
    assert gc.isenabled()


def test_fork_map_forgets_its_task_after_an_error():
    def fails(index: int) -> int:
        raise ValueError(f"task {index}")

    try:
        parallel.fork_map(fails, 2, 2)
    except ValueError as error:
        assert "task" in str(error)
    else:
        raise AssertionError("the worker's error was lost")
    assert parallel._task is None
