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


def test_unset_workers_fork_on_every_core(monkeypatch, scored, features, trained):
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


@pytest.mark.parametrize("judges", [(), (ClinicalAdjudicator(),)], ids=["rules", "adjudicated"])
def test_feature_rows_are_read_a_chunk_at_a_time(monkeypatch, scored, features, trained, judges):
    """A worker holds one chunk's feature rows, not its whole span's: the same decisions,
    read in pieces no larger than a chunk's records."""
    here = _decide(scored, features, trained, judges)
    chunk = len(scored) // 4 + 1
    read = []
    feature_rows = batch.feature_rows
    monkeypatch.setattr(batch, "DECIDE_CHUNK", chunk)
    monkeypatch.setattr(
        batch, "feature_rows", lambda f, ids: read.append(ids) or feature_rows(f, ids)
    )
    there = _decide(scored, features, trained, judges)
    assert there[0].equals(here[0]) and there[1] == here[1] and there[2] == here[2]
    chunks = read[:-1]  # the last read is for the pairs sent twice, scored or not
    assert len(chunks) == 4 and all(0 < len(ids) <= 2 * chunk for ids in chunks)
    if judges:  # an adjudicator may be asked about any pair: every pair's records are read
        everyone = set(scored["unique_id_l"]) | set(scored["unique_id_r"])
        assert set().union(*chunks) == everyone
    else:  # only the pairs a rule may fire on
        candidates = scored[scored["rule_candidate"]]
        assert set(candidates["unique_id_l"]) <= set().union(*chunks)
        assert len(set().union(*chunks)) < len(
            set(scored["unique_id_l"]) | set(scored["unique_id_r"])
        )
