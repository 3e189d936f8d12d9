"""The collector pause of bulk work: off inside, back as it was after, whatever happens."""

import gc

import pytest

from medmatch.collector import collector_paused


def test_the_collector_is_off_inside_and_back_on_after_even_on_error():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # a paused function calling another
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause does not end the outer one
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("bulk work failed")
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_caller_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_paused_functions_run_with_the_collector_off():
    seen = []

    @collector_paused()
    def bulk() -> None:
        seen.append(gc.isenabled())

    bulk()
    bulk()
    assert seen == [False, False] and gc.isenabled()
