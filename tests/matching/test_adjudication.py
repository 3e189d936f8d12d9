"""Which pairs reach which adjudicator, how the run counts them, how the floor moves."""

import pytest

from medmatch.config import Settings
from medmatch.matching import Adjudication, Decision, PairSet, Verdict
from medmatch.matching.adjudication import (
    Tally,
    choose,
    is_life_event,
    lowest_probability_to_score,
    wants,
)
from medmatch.matching.adjudicators import ClinicalAdjudicator, from_settings
from medmatch.matching.realtime import probability_to_weight, weight_to_probability

HISTORY = {"conditions": ["type_2_diabetes"], "medications": ["metformin"]}
ANN = {"first_name": "ann", "dob": "1980-03-04", "sex": "F", "last_name": "lee"} | HISTORY


class Judge:
    def __init__(self, name, pairs, same=5.0):
        self.name, self.pairs = name, frozenset(pairs)
        self.weights = {Verdict.SAME: same, Verdict.DIFFERENT: -8.0, Verdict.UNSURE: 0.0}

    def adjudicate(self, left, right):
        return Adjudication(Verdict.SAME, 1.0, "same", self.weights[Verdict.SAME], self.name)


def test_a_life_event_keeps_first_name_birth_date_and_sex():
    married = ANN | {"last_name": "park"}
    assert is_life_event(ANN, married)
    assert is_life_event(ANN, ANN | {"address": "9 elm rd"}) is False  # nothing to compare
    assert is_life_event(ANN | {"address": "1 oak st"}, ANN | {"address": "9 elm rd"})
    assert not is_life_event(ANN, married | {"dob": "1980-03-05"})
    assert not is_life_event(ANN | {"sex": None}, married | {"sex": None})
    assert not is_life_event(ANN, ANN)  # nothing changed


def test_each_adjudicator_takes_the_pairs_it_wants_in_order():
    llm = Judge("llm", [PairSet.REVIEW_BAND, PairSet.LIFE_EVENTS])
    offline = Judge("offline", [PairSet.ALL])
    married = ANN | {"last_name": "park"}
    assert choose([llm, offline], Decision.REVIEW_REQUIRED, ANN, ANN) is llm
    assert choose([llm, offline], Decision.NO_MATCH, ANN, married) is llm  # a life event
    assert choose([llm, offline], Decision.AUTO_MATCH, ANN, ANN) is offline
    assert choose([llm], Decision.AUTO_MATCH, ANN, ANN) is None
    # no history on one side: nobody is asked
    assert (
        choose(
            [offline], Decision.REVIEW_REQUIRED, ANN, ANN | {"conditions": [], "medications": []}
        )
        is None
    )
    review_only = Judge("r", [PairSet.REVIEW_BAND])
    assert not wants(review_only, Decision.NO_MATCH, ANN, married)


def test_the_floor_moves_down_by_the_strongest_same_verdict():
    assert lowest_probability_to_score(0.05, []) == 0.05
    lowered = lowest_probability_to_score(0.05, [Judge("a", [], same=3.0), Judge("b", [], 6.0)])
    assert probability_to_weight(0.05) - probability_to_weight(lowered) == pytest.approx(6.0)
    assert weight_to_probability(probability_to_weight(0.3)) == pytest.approx(0.3)
    assert lowest_probability_to_score(0.0, [Judge("a", [])]) == 0.0


def test_tally_counts_asked_failed_and_verdicts():
    judge = Judge("llm", [PairSet.ALL])
    tally = Tally()
    tally.asked(judge, Adjudication(Verdict.SAME, 1.0, "x", 5.0, "llm"))
    tally.asked(judge, Adjudication(Verdict.UNSURE, 0.0, "down", 0.0, "llm", failed=True))
    tally.asked(judge, None)
    stats = tally.stats([judge])
    assert stats["ai_llm_asked"] == 3 and stats["ai_llm_failed"] == 1
    assert stats["ai_llm_same"] == 1 and stats["ai_llm_different"] == 0


def test_adjudicators_from_settings(monkeypatch):
    assert from_settings("none", Settings()) == ()
    (offline,) = from_settings("offline", Settings())
    assert isinstance(offline, ClinicalAdjudicator) and offline.pairs == {PairSet.ALL}
    with pytest.raises(ValueError, match="OLLAMA_BASE_URL"):
        from_settings("ollama", Settings(ollama_base_url=None))
    with pytest.raises(ValueError, match="one of"):
        from_settings("gpt", Settings())
    monkeypatch.setenv("MEDMATCH_ADJUDICATION__LLM_PAIRS", '["review_band"]')
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:9")
    llm, offline = from_settings("ollama", Settings())
    assert llm.name == "ollama" and llm.pairs == {PairSet.REVIEW_BAND}
    assert offline.name == "offline"
    monkeypatch.setenv("MEDMATCH_ADJUDICATION__LLM_PAIRS", '["everything"]')
    with pytest.raises(ValueError):
        Settings()
