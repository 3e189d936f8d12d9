import pytest

from medmatch.matching import PatientMatcher, Stage, Verdict
from medmatch.matching.adjudication import estimate_verdict_weights
from medmatch.matching.adjudicators import ClinicalAdjudicator
from medmatch.matching.adjudicators.clinical import DEFAULT_WEIGHTS
from tests.conftest import lookup_body


def _row(conditions=(), medications=()):
    return {"conditions": list(conditions), "medications": list(medications)}


def test_same_history_written_differently_confirms():
    judge = ClinicalAdjudicator()
    verdict = judge.adjudicate(
        _row(["type_2_diabetes", "hypertension"]), _row(["hypertension"], ["metformin"])
    )
    assert verdict.verdict is Verdict.SAME
    assert verdict.reasoning == "Medical history confirms (HTN, T2DM)"
    assert verdict.match_weight == DEFAULT_WEIGHTS[Verdict.SAME] > 0
    assert 0.5 <= verdict.medical_similarity <= 1.0


def test_conflicting_and_partial_histories():
    judge = ClinicalAdjudicator()
    conflict = judge.adjudicate(_row(["asthma"]), _row(["type_1_diabetes"]))
    assert conflict.verdict is Verdict.DIFFERENT and conflict.match_weight < 0
    assert conflict.reasoning.startswith("Medical histories conflict")
    partial = judge.adjudicate(
        _row(["asthma", "gerd", "migraine"]), _row(["asthma", "hiv", "gout"])
    )
    assert partial.verdict is Verdict.UNSURE and partial.match_weight == 0
    assert judge.adjudicate(_row(), _row(["asthma"])) is None


def test_verdict_weights_are_estimated_from_labelled_pairs():
    judge = ClinicalAdjudicator()
    same, other = _row(["asthma"]), _row(["gout"])
    pairs = (
        [(same, same, True)] * 50
        + [(same, other, True)] * 2
        + [(same, other, False)] * 50
        + [(same, same, False)] * 2
    )
    weights = estimate_verdict_weights(judge, pairs)
    assert weights[Verdict.SAME] > 3 and weights[Verdict.DIFFERENT] < -3
    assert weights[Verdict.UNSURE] == 0.0


def test_offline_adjudicator_in_match_pair(trained):
    matcher = PatientMatcher(trained, adjudicator=ClinicalAdjudicator())
    a = lookup_body(
        record_id="1",
        name_first="Ann",
        name_last="Lee",
        date_of_birth="1980-03-04",
        medical_data={"conditions": "T2DM; HTN"},
    )
    b = lookup_body(
        record_id="2",
        name_first="Ann",
        name_last="Lee",
        date_of_birth="1980-03-04",
        medical_data={"conditions": "type 2 diabetes mellitus", "medications": "Zestril"},
    )
    result = matcher.match_pair(a, b)
    assert result.stage is Stage.AI
    assert result.ai_reasoning.startswith("Medical history confirms")
    plain = PatientMatcher(trained).match_pair(a, b)
    assert result.confidence > plain.confidence
    assert result.match_weight == pytest.approx(plain.match_weight + DEFAULT_WEIGHTS[Verdict.SAME])


def test_offline_adjudicator_in_batch(trained, synthetic):
    with_ai = PatientMatcher(trained, adjudicator=ClinicalAdjudicator()).dedupe(
        synthetic.demographics, synthetic.medical
    )
    ai_pairs = with_ai.pairs[with_ai.pairs["stage"] == "ai"]
    assert len(ai_pairs) > 100
    assert ai_pairs["explanation"].str.contains("Medical histor").all()
    assert (with_ai.pairs["confidence"] >= 0.05).all()
