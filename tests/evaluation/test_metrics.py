import pandas as pd
import pytest

from medmatch.evaluation import b_cubed, cluster_pairwise, evaluate, threshold_sweep
from medmatch.evaluation.metrics import pair_list_metrics

TRUTH = {"1": "p", "2": "p", "3": "p", "4": "q", "5": "r"}


def test_cluster_pairwise_counts():
    m = cluster_pairwise({"1": "a", "2": "a", "3": "b", "4": "b", "5": "c"}, TRUTH)
    assert (m.true_positives, m.false_positives, m.false_negatives) == (1, 1, 2)
    assert m.precision == 0.5 and m.recall == pytest.approx(1 / 3)
    assert m.f1 == pytest.approx(0.4)


def test_perfect_and_empty():
    assert cluster_pairwise(TRUTH, TRUTH).f1 == 1.0
    assert b_cubed(TRUTH, TRUTH) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert b_cubed({}, TRUTH)["f1"] == 1.0
    singletons = {k: k for k in TRUTH}
    m = cluster_pairwise(singletons, TRUTH)
    assert m.precision == 1.0 and m.recall == 0.0 and m.f1 == 0.0


def test_b_cubed_known_value():
    b = b_cubed({"1": "a", "2": "a", "3": "b", "4": "b", "5": "c"}, TRUTH)
    # precision: (1+1+.5+.5+1)/5 ; recall: (2/3+2/3+1/3+1+1)/5
    assert b["precision"] == pytest.approx(0.8)
    assert b["recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 2) / 5)


def test_threshold_sweep_and_pair_lists():
    scored = [("1", "2", 0.99), ("2", "3", 0.7), ("4", "5", 0.8)]
    rows = threshold_sweep(scored, TRUTH, thresholds=(0.5, 0.9))
    assert rows[0]["true_positives"] == 2 and rows[0]["false_positives"] == 1
    assert rows[1]["true_positives"] == 1 and rows[1]["precision"] == 1.0
    assert pair_list_metrics([("2", "1"), ("1", "2")], TRUTH).true_positives == 1


def test_report_counts_wrongly_merged_relatives():
    truth = pd.DataFrame(
        {
            "record_id": ["1", "2", "3", "4"],
            "person_id": ["p", "q", "r", "s"],
            "family_id": ["F", "F", "G", "G"],
            "relation": ["twin", "twin", "father", "son"],
        }
    )
    clusters = pd.DataFrame({"record_id": ["1", "2", "3", "4"], "cluster_id": ["1", "1", "3", "4"]})
    pairs = pd.DataFrame({"record_id_1": ["1"], "record_id_2": ["2"], "confidence": [0.95]})
    report = evaluate(pairs, clusters, truth)
    assert report.hard_cases == {
        "twins": {"families": 1, "wrongly_merged": 1},
        "father_son": {"families": 1, "wrongly_merged": 0},
    }
    assert report.as_dict()["cluster_pairwise"]["false_positives"] == 1
