from medmatch.matching.clustering import cluster
from medmatch.matching.explain import sentence, waterfall
from medmatch.matching.realtime import LevelHit, weight_to_probability
from medmatch.matching.rules import RuleHit, RuleKind


def test_every_record_in_exactly_one_cluster():
    labels = cluster(["a", "b", "c", "d"], [("a", "b", 0.99), ("b", "c", 0.95)])
    assert labels == {"a": "a", "b": "a", "c": "a", "d": "d"}


def test_cannot_link_is_never_crossed_even_transitively():
    edges = [("a", "b", 0.99), ("c", "d", 0.98), ("b", "c", 0.95), ("a", "e", 0.9)]
    labels = cluster(list("abcde"), edges, cannot_link=[("a", "d")])
    assert labels["a"] == labels["b"] == labels["e"]
    assert labels["c"] == labels["d"] != labels["a"]


def test_sentence_and_waterfall():
    hits = [
        LevelHit("first_name", "exact", 4, 7.0, 1.0),
        LevelHit("dob", "exact", 4, 9.0, 0.0),
        LevelHit("phone", "all other", 0, -3.0, 0.0),
        LevelHit("email", "null", -1, 0.0, 0.0),
        LevelHit("last_name", "jaro-winkler >= 0.92", 3, 5.0, 0.0),
    ]
    assert (
        sentence(hits)
        == "Exact first name and DOB match; surname jaro-winkler >= 0.92; phone differs"
    )
    rule = RuleHit("twins", RuleKind.HARD_NEGATIVE, "twins")
    assert sentence(hits[3:4], rule) == "Rule twins: twins. No comparable fields"
    bars = waterfall(-13.0, hits)
    assert sum(b["match_weight"] + b.get("tf_adjustment", 0) for b in bars) == 6.0


def test_probability_is_stable_at_extremes():
    assert weight_to_probability(0) == 0.5
    assert weight_to_probability(3000) == 1.0
    assert weight_to_probability(-3000) == 0.0
