"""decide_pairs on every core: the same pairs, hard negatives and tally as in one process."""

import pytest

import medmatch.parallel as parallel
from medmatch.config import get_settings
from medmatch.matching import batch
from medmatch.matching.adjudication import Tally
from medmatch.matching.adjudicators import ClinicalAdjudicator


@pytest.fixture(scope="module")
def scored(features, trained):
    return batch.predict_pairs(features, trained, floor=0.0)


class _Remote(ClinicalAdjudicator):
    """An adjudicator with a connection of its own: never copied into forked workers."""

    forkable = False


def _decide(scored, features, trained, judges, workers=1):
    tally = Tally()
    pairs, cannot = batch.decide_pairs(
        scored, features, trained, get_settings().thresholds, judges, tally, workers=workers
    )
    return pairs, cannot, tally.counts


def test_forked_workers_decide_as_one_process_does(monkeypatch, scored, features, trained):
    judges = (ClinicalAdjudicator(),)
    here = _decide(scored, features, trained, judges)
    forks = []
    fork_map = parallel.fork_map
    monkeypatch.setattr(batch, "MIN_PARALLEL_PAIRS", 0)
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)  # a test server thread
    monkeypatch.setattr(batch, "available_cores", lambda: 3)  # spans of unequal length
    monkeypatch.setattr(batch, "fork_map", lambda *a: forks.append(a[1:]) or fork_map(*a))
    assert _decide(scored, features, trained, judges)[0].equals(here[0])
    assert forks == []  # one worker unless asked for more
    there = _decide(scored, features, trained, judges, workers=3)
    assert forks == [(3, 3)]
    assert there[0].equals(here[0])
    assert there[1] == here[1] and len(here[1]) > 0
    assert there[2] == here[2] and here[2]["ai_offline_asked"] > 0


def test_an_adjudicator_that_is_not_forkable_keeps_the_work_here(
    monkeypatch, scored, features, trained
):
    monkeypatch.setattr(batch, "MIN_PARALLEL_PAIRS", 0)
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    monkeypatch.setattr(batch, "fork_map", lambda *a: pytest.fail("forked a remote adjudicator"))
    pairs, _, counts = _decide(scored, features, trained, (_Remote(),), workers=2)
    assert len(pairs) > 0 and counts["ai_offline_asked"] > 0


def test_unset_workers_fork_on_every_core_only_while_the_run_is_small(
    monkeypatch, scored, features, trained
):
    judges = (ClinicalAdjudicator(),)
    here = _decide(scored, features, trained, judges)
    forks = []
    fork_map = parallel.fork_map
    monkeypatch.setattr(batch, "MIN_PARALLEL_PAIRS", 0)
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    monkeypatch.setattr(batch, "available_cores", lambda: 2)
    monkeypatch.setattr(batch, "fork_map", lambda *a: forks.append(a[1:]) or fork_map(*a))
    assert _decide(scored, features, trained, judges, workers=None)[0].equals(here[0])
    assert forks == [(2, 2)]
    # past the bound, the forked copies would cost too much memory: one process
    monkeypatch.setattr(batch, "AUTO_PARALLEL_MAX_PAIRS", len(scored) - 1)
    assert _decide(scored, features, trained, judges, workers=None)[0].equals(here[0])
    assert forks == [(2, 2)]
