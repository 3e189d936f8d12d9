"""One model, two engines: the real-time scorer equals Splink, pair by pair."""

import logging
import random

import pytest

from medmatch.data.features import SPLINK_COLUMNS
from medmatch.matching import RealtimeScorer
from medmatch.matching.batch import predict_pairs
from medmatch.matching.training import splink_input


def test_realtime_equals_splink_score_pairs(trained, features, feature_rows):
    from splink import DuckDBAPI, Linker

    scorer = RealtimeScorer(trained)
    db = DuckDBAPI()
    linker = Linker(
        db.register(splink_input(features)), trained.splink_settings, log_level=logging.ERROR
    )
    rnd = random.Random(5)
    ids = sorted(feature_rows)
    # random pairs plus true duplicates, so every level is exercised
    left_ids = rnd.sample(ids, 30)
    right_ids = rnd.sample(ids, 30)
    records = {
        i: scorer.with_term_frequencies({c: feature_rows[i][c] for c in SPLINK_COLUMNS})
        for i in set(left_ids) | set(right_ids)
    }
    out = linker.inference.score_pairs(
        [records[i] for i in left_ids], [records[i] for i in right_ids]
    ).as_pandas_dataframe()
    assert len(out) == 900
    worst = 0.0
    for a, b, weight, probability in zip(
        out["unique_id_l"],
        out["unique_id_r"],
        out["match_weight"],
        out["match_probability"],
        strict=True,
    ):
        score = scorer.score(records[a], records[b])
        worst = max(worst, abs(score.match_weight - weight), abs(score.probability - probability))
    assert worst < 1e-9


def test_realtime_equals_batch_predict(trained, features, feature_rows):
    scorer = RealtimeScorer(trained)
    predicted = predict_pairs(features, trained, floor=0.0)
    assert len(predicted) > 1000
    levels_seen = set()
    for row in predicted.itertuples():
        score = scorer.score(feature_rows[row.unique_id_l], feature_rows[row.unique_id_r])
        assert score.match_weight == pytest.approx(row.match_weight, abs=1e-9)
        assert score.probability == pytest.approx(row.match_probability, abs=1e-9)
        levels_seen.update((h.comparison, h.level) for h in score.hits)
    assert len(levels_seen) > 30


def test_unseen_values_get_the_singleton_frequency(trained):
    scorer = RealtimeScorer(trained)
    assert scorer.term_frequency("first_name", "zzyzx-unseen") == trained.unseen_frequency
    assert scorer.term_frequency("first_name", None) is None
    assert scorer.term_frequency("email", "x") is None
