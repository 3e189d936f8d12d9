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
        "birth_year": "1980",
        "dob": "1980-01-02",
        "first_initial": "j",
        "postal_code": None,
        "first_name": "john",
        "last_name": "smith",
        "phone": "+1617",
        "ssn": None,
        "email": "",
    }
    assert key_strings(row) == [
        "sx_by:S530|1980",
        "dob_fi:1980-01-02|j",
        "fn_ln:john|smith",
        "ph:+1617",
    ]
    rules = splink_blocking_rules()
    assert len(rules) == len(BLOCKING_KEYS)
    assert rules[0] == "l.last_soundex = r.last_soundex AND l.birth_year = r.birth_year"
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
    assert found / pairs > 0.99
