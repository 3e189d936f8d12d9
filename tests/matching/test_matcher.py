import pandas as pd
import pytest

from medmatch.config import MatchThresholds
from medmatch.errors import InvalidFieldError
from medmatch.matching import (
    Adjudication,
    Decision,
    MatchType,
    PairSet,
    PatientMatcher,
    Stage,
    Verdict,
    decide,
)
from tests.conftest import lookup_body

ANN = lookup_body(
    record_id="a1",
    name_first="Ann",
    name_last="Lee",
    date_of_birth="1980-03-04",
    gender="F",
    phone="617-555-0123",
    address_line="12 Main Street",
    postal_code="02139",
)


@pytest.fixture(scope="module")
def matcher(trained):
    return PatientMatcher(trained)


def test_match_pair_with_lookup_shaped_dicts(matcher):
    other = lookup_body(
        record_id="b1",
        name_first="Anne",
        name_last="Lee",
        date_of_birth="03/04/1980",
        gender="female",
        phone="(617) 555-0123",
        address_line="12 Main St",
        postal_code="02139",
        source_system="COUNTY_CLINIC",
    )
    result = matcher.match_pair(ANN, other)
    assert result.is_match and result.decision is Decision.AUTO_MATCH
    assert result.match_type is MatchType.PROBABLE and result.stage is Stage.SCORING
    assert result.confidence >= 0.9
    bars = result.evidence["waterfall"]
    assert bars[0]["comparison"] == "prior" and len(bars) == 1 + 8
    assert sum(b["match_weight"] + b.get("tf_adjustment", 0) for b in bars) == pytest.approx(
        result.match_weight, abs=1e-4
    )
    assert "Exact" in result.explanation and result.model_version == matcher.model.version


def test_different_people(matcher):
    bob = lookup_body(
        record_id="c1",
        name_first="Robert",
        name_last="Okafor",
        date_of_birth="1951-10-30",
        gender="M",
        phone="212-555-0199",
        postal_code="10001",
    )
    result = matcher.match_pair(ANN, bob)
    assert not result.is_match and result.decision is Decision.NO_MATCH
    assert result.confidence < 0.01
    assert "differ" in result.explanation


def test_a_pair_below_the_floor_may_come_unexplained(matcher):
    """What a lookup asks of the candidates it neither stores nor shows: the same score and
    decision, without the waterfall and sentence."""
    from medmatch.data.features import record_features
    from medmatch.matching.matcher import as_record

    bob = lookup_body(record_id="c1", name_first="Robert", name_last="Okafor", gender="M")
    left, right = record_features(as_record(ANN)), record_features(as_record(bob))
    full = matcher.match_features(left, right, floor=0.5)
    bare = matcher.match_features(left, right, floor=0.5, explain_below_floor=False)
    assert full.explanation and full.evidence["waterfall"]
    assert bare.explanation == "" and bare.evidence == {}
    assert bare.model_dump(exclude={"explanation", "evidence"}) == full.model_dump(
        exclude={"explanation", "evidence"}
    )
    # at or above the floor, explained all the same
    kept = matcher.match_features(
        left, left | {"unique_id": "x"}, floor=0.5, explain_below_floor=False
    )
    assert kept.explanation and kept.evidence["waterfall"]


def test_rules_decide_and_are_recorded(matcher):
    junior = ANN | {"record_id": "j", "demographics": ANN["demographics"] | {"name_suffix": "Jr"}}
    senior = ANN | {"record_id": "s", "demographics": ANN["demographics"] | {"name_suffix": "Sr"}}
    result = matcher.match_pair(junior, senior)
    assert result.stage is Stage.RULES and result.decision is Decision.NO_MATCH
    assert result.evidence["rules"] == ["different_suffix"]
    assert result.explanation.startswith("Rule different_suffix")
    same = matcher.match_pair(
        ANN | {"external_id": "E1"}, ANN | {"external_id": "E1", "record_id": "z"}
    )
    assert same.match_type is MatchType.EXACT and same.confidence == 1.0


def test_bad_input_names_the_field(matcher):
    with pytest.raises(InvalidFieldError) as info:
        matcher.match_pair(
            ANN, lookup_body(record_id="x", name_last="Lee", date_of_birth="1980-13-45")
        )
    assert info.value.field == "demographics.date_of_birth"


class FixedAdjudicator:
    name = "fixed"
    pairs = frozenset({PairSet.REVIEW_BAND})

    def __init__(self, weight):
        self.weight, self.calls = weight, 0
        self.weights = {Verdict.SAME: weight, Verdict.DIFFERENT: -weight, Verdict.UNSURE: 0.0}

    def adjudicate(self, left, right):
        self.calls += 1
        return Adjudication(
            Verdict.SAME if self.weight > 0 else Verdict.DIFFERENT,
            0.9,
            "Medical history confirms (T2DM)",
            self.weight,
            self.name,
        )


def test_adjudicator_is_evidence_in_the_review_band(trained):
    wide = MatchThresholds(auto_match=0.999999, review=0.0)
    judge = FixedAdjudicator(40.0)
    matcher = PatientMatcher(trained, thresholds=wide, adjudicator=judge)
    history = {"conditions": ["T2DM"], "medications": ["metformin"]}
    ann = lookup_body(
        record_id="a1",
        name_first="Ann",
        name_last="Lee",
        date_of_birth="1980-03-04",
        medical_data=history,
    )
    other = lookup_body(
        record_id="m",
        name_first="Ann",
        name_last="Lee",
        date_of_birth="1980-03-04",
        medical_data=history,
    )
    # without a history on both sides there is nothing to adjudicate
    assert matcher.match_pair(ANN, other).stage is Stage.SCORING and judge.calls == 0
    result = matcher.match_pair(ann, other)
    assert judge.calls == 1
    assert result.stage is Stage.AI and result.ai_reasoning.startswith("Medical history")
    assert result.evidence["waterfall"][-1]["comparison"] == "ai"
    assert result.decision is Decision.AUTO_MATCH
    # outside the review band the adjudicator is not asked
    narrow = PatientMatcher(
        trained, thresholds=MatchThresholds(auto_match=0.5, review=0.5), adjudicator=judge
    )
    narrow.match_pair(ann, other)
    assert judge.calls == 1


def test_decide_follows_the_table():
    t = MatchThresholds()
    assert decide(0.95, t) == (Decision.AUTO_MATCH, MatchType.PROBABLE)
    assert decide(0.90, t) == (Decision.AUTO_MATCH, MatchType.PROBABLE)
    assert decide(0.7, t) == (Decision.REVIEW_REQUIRED, MatchType.POSSIBLE)
    assert decide(0.64, t) == (Decision.NO_MATCH, MatchType.NO_MATCH)
    with pytest.raises(ValueError):
        MatchThresholds(auto_match=0.5, review=0.8)


def test_dedupe_and_link_tables(trained, synthetic):
    matcher = PatientMatcher(trained)
    demo = synthetic.demographics.head(600)
    result = matcher.dedupe(demo, synthetic.medical)
    assert sorted(result.clusters["record_id"]) == sorted(demo["record_id"])
    assert result.stats["records"] == 600 and result.stats["auto_match"] > 0
    left, right = demo.iloc[:300], demo.iloc[300:]
    linked = matcher.link(left, right)
    crosses = linked.pairs["record_id_1"].isin(left["record_id"]) != linked.pairs[
        "record_id_2"
    ].isin(left["record_id"])
    assert crosses.all() and len(linked.pairs) > 0
    with pytest.raises(ValueError, match="unique"):
        matcher.link(left, left)


def test_clusters_never_join_a_hard_negative(trained, synthetic):
    matcher = PatientMatcher(trained)
    result = matcher.dedupe(synthetic.demographics, synthetic.medical)
    cluster_of = dict(zip(result.clusters["record_id"], result.clusters["cluster_id"], strict=True))
    negatives = result.pairs[
        (result.pairs["stage"] == "rules") & (result.pairs["decision"] == "no_match")
    ]
    assert len(negatives) > 10
    for a, b in zip(negatives["record_id_1"], negatives["record_id_2"], strict=True):
        assert cluster_of[a] != cluster_of[b]
    assert set(result.pairs["decision"]) <= {"auto_match", "review_required", "no_match"}


def test_same_source_record_sent_twice_is_matched_by_rule(trained):
    rows = pd.DataFrame(
        {
            "record_id": ["1", "2", "3"],
            "source_system": ["A", "A", "B"],
            "external_id": ["X", "X", "Y"],
            "name_first": ["Ann", "Zed", "Bo"],
            "name_last": ["Lee", "Quill", "Ng"],
        }
    )
    result = PatientMatcher(trained).dedupe(rows)
    exact = result.pairs[result.pairs["match_type"] == "exact"]
    assert list(zip(exact["record_id_1"], exact["record_id_2"], strict=True)) == [("1", "2")]
    assert result.clusters.set_index("record_id")["cluster_id"].to_dict() == {
        "1": "1",
        "2": "1",
        "3": "3",
    }


def test_a_pair_below_the_floor_is_decided_without_rules_or_adjudicator(trained):
    from medmatch.data.features import record_features
    from medmatch.matching.matcher import as_record

    judge = FixedAdjudicator(1.0)
    judge.pairs = frozenset({PairSet.ALL})
    matcher = PatientMatcher(trained, adjudicator=judge)
    history = {"conditions": ["T2DM"]}

    def features(**demo):
        return record_features(as_record(lookup_body(medical_data=history, **demo)))

    ann = features(record_id="a", name_first="Ann", name_last="Lee", date_of_birth="1980-03-04")
    # a hard negative (another given name and birth date), scored below the floor
    other = features(record_id="o", name_first="Zoe", name_last="Lee", date_of_birth="1955-11-23")
    decided = matcher.match_features(ann, other)
    assert decided.stage is Stage.RULES and judge.calls == 0
    floor = matcher.thresholds.pair_floor
    cheap = matcher.match_features(ann, other, floor=floor)
    assert cheap.confidence < floor and cheap.stage is Stage.SCORING and judge.calls == 0
    assert cheap.decision is decided.decision is Decision.NO_MATCH
    # a re-send is still decided by its rule, however it scores
    resent = features(record_id="r", external_id="42", name_first="Zed", name_last="Quo")
    exact = matcher.match_features(ann | {"external_id": "42"}, resent, floor=floor)
    assert exact.stage is Stage.RULES and exact.decision is Decision.AUTO_MATCH
    assert matcher.match_features(ann, resent).confidence < floor
