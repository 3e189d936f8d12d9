import random

from medmatch.matching.clustering import _ConstrainedUnionFind, cluster
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


def _everything_constrained(ids, edges, cannot_link):
    """The constrained union-find over every edge: what cluster() must equal."""
    uf = _ConstrainedUnionFind()
    for a, b in cannot_link:
        uf.forbid(a, b)
    for a, b, _ in sorted(edges, key=lambda e: -e[2]):
        uf.union(a, b)
    label = {root: min(members) for root, members in uf.members.items()}
    return {i: label.get(uf.find(i), i) for i in ids}


def test_only_components_with_a_cannot_link_need_the_constraints():
    rnd = random.Random(7)
    for trial in range(300):
        ids = [f"r{i:03d}" for i in range(rnd.randint(2, 60))]
        edges = [
            (rnd.choice(ids), rnd.choice(ids), rnd.choice([0.9, 0.95, 0.99, rnd.random()]))
            for _ in range(rnd.randint(0, 90))
        ]
        cannot = [(rnd.choice(ids), rnd.choice(ids)) for _ in range(rnd.randint(0, 6))]
        cannot = [(a, b) for a, b in cannot if a != b]
        expected = _everything_constrained(ids, edges, cannot)
        assert cluster(ids, edges, iter(cannot)) == expected, trial


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
