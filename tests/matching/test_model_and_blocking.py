import json

import pytest

from medmatch.errors import ModelError
from medmatch.matching import BLOCKING_KEYS, MatchModel, key_strings
from medmatch.matching.blocking import shares_a_key, splink_blocking_rules


def test_model_round_trips_through_json(trained, tmp_path):
    path = trained.save(tmp_path / "m.json")
    loaded = MatchModel.load(path)
    assert loaded.version == trained.version
    assert loaded.level_weights() == trained.level_weights()
    assert json.loads(path.read_text())["version"] == trained.version


def test_version_changes_with_parameters(trained):
    data = trained.to_dict()
    data["splink_settings"]["probability_two_random_records_match"] = 0.5
    assert MatchModel.from_dict(data).version != trained.version


def test_trained_model_has_every_parameter(trained):
    for weights in trained.level_weights():
        assert weights[0].label == "null" and weights[0].match_weight == 0.0
    assert trained.metadata["records"] > 3000
    assert set(trained.term_frequencies) == {"first_name", "last_name"}


def test_default_model_ships_and_loads():
    model = MatchModel.default()
    assert model.version.startswith("mm-")
    assert "synthetic" in model.metadata["trained_on"]


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        MatchModel.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        MatchModel.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ModelError, match="format"):
        MatchModel.load(tmp_path / "other.json")


def test_model_from_other_comparisons_is_refused(trained):
    data = trained.to_dict()
    data["splink_settings"]["comparisons"][0]["comparison_levels"][1]["sql_condition"] = "1=1"
    with pytest.raises(ModelError, match="first_name"):
        MatchModel.from_dict(data)
    data["splink_settings"]["comparisons"].pop()
    with pytest.raises(ModelError, match="comparisons"):
        MatchModel.from_dict(data)


def test_model_without_m_is_refused(trained):
    data = trained.to_dict()
    data["splink_settings"]["comparisons"][3]["comparison_levels"][1]["m_probability"] = None
    with pytest.raises(ModelError, match="sex"):
        MatchModel.from_dict(data).level_weights()


def test_blocking_keys_render_for_both_engines():
    row = {
        "last_soundex": "S530",
        "dob": "1980-01-02",
        "first_initial": "j",
        "postal_code": None,
        "phone": "+1617",
        "ssn": None,
        "email": "",
    }
    assert key_strings(row) == [
        "sx_ym:S530|1980-01",
        "sx_md:S530|01-02",
        "sx_yd:S530|1980|02",
        "sx_swap:S530|1980|0102",
        "dob_fi:1980-01-02|j",
        "ph:+1617",
    ]
    rules = splink_blocking_rules()
    assert len(rules) == len(BLOCKING_KEYS)
    assert (
        rules[0] == "l.last_soundex = r.last_soundex AND substr(l.dob, 1, 7) = substr(r.dob, 1, 7)"
    )
    assert "sx_swap:S530|1980|0102" in key_strings(row | {"dob": "1980-02-01"})
    assert shares_a_key(row, row | {"dob": None})
    assert not shares_a_key(row, {"first_name": "ann"})


def test_blocking_finds_the_true_pairs(synthetic, feature_rows):
    truth = synthetic.truth.groupby("person_id")["record_id"].apply(list)
    pairs = found = 0
    for records in truth:
        for i, a in enumerate(records):
            for b in records[i + 1 :]:
                pairs += 1
                found += shares_a_key(feature_rows[a], feature_rows[b])
    assert found / pairs > 0.985


def test_labelled_pairs_refine_m(features, synthetic):
    from medmatch.matching.training import train_model

    truth = synthetic.truth.groupby("person_id")["record_id"].apply(sorted)
    labels = [(ids[0], ids[1]) for ids in truth if len(ids) > 1][:400]
    model = train_model(features, labels=labels, seed=3, max_pairs_u=2e5)
    assert model.metadata["labelled_pairs"] == 400
    unlabelled = train_model(features, seed=3, max_pairs_u=2e5)
    assert model.version != unlabelled.version
    exact_dob = model.level_weights()[2][1]
    assert exact_dob.label == "exact" and exact_dob.match_weight > 5


def test_splink_blocking_and_key_strings_find_the_same_pairs(features, feature_rows):
    """The two renderings of the blocking keys agree: Splink's blocked pairs are exactly the
    pairs that share a key string."""
    import logging
    from collections import defaultdict

    from splink import DuckDBAPI, Linker

    from medmatch.matching.model import base_settings
    from medmatch.matching.training import splink_input

    linker = Linker(
        DuckDBAPI().register(splink_input(features)), base_settings(), log_level=logging.ERROR
    )
    blocked = linker.inference.compute_blocked_pairs_for_predict().as_pandas_dataframe()
    splink_pairs = (
        {tuple(sorted(p)) for p in zip(blocked["join_key_l"], blocked["join_key_r"], strict=True)}
        if "join_key_l" in blocked
        else {
            tuple(sorted(p))
            for p in zip(blocked["unique_id_l"], blocked["unique_id_r"], strict=True)
        }
    )
    index = defaultdict(set)
    for rid, row in feature_rows.items():
        for key in key_strings(row):
            index[key].add(rid)
    python_pairs = {
        tuple(sorted((a, b))) for ids in index.values() for a in ids for b in ids if a < b
    }
    assert len(python_pairs) > 1000
    assert splink_pairs == python_pairs


def test_mutable_disagreements_are_bounded_and_stable_ones_are_not(trained):
    from medmatch.matching.training import (
        DEFAULT_MUTABLE_MAX_BITS,
        bound_mutable_disagreement,
    )

    assert trained.metadata["mutable_max_bits"] == DEFAULT_MUTABLE_MAX_BITS
    for comparison, weights in zip(trained.comparisons, trained.level_weights(), strict=True):
        worst = min(w.match_weight for w in weights)
        if comparison.mutable:
            assert worst >= -DEFAULT_MUTABLE_MAX_BITS - 1e-9, comparison.name
    # the stable contradictions keep their full weight: a birth date that disagrees
    assert min(w.match_weight for w in trained.level_weights()[2]) < -DEFAULT_MUTABLE_MAX_BITS
    assert any(name.startswith("last_name/") for name in trained.metadata["bounded_levels"])
    settings = trained.to_dict()["splink_settings"]
    assert bound_mutable_disagreement(settings, trained.comparisons, None) == []
    assert bound_mutable_disagreement(settings, trained.comparisons, 4.0) == []  # already within
    bounded = bound_mutable_disagreement(settings, trained.comparisons, 0.5)
    assert "phone/all other" in bounded and not any(b.startswith("dob/") for b in bounded)
