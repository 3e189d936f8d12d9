"""Pairwise and cluster metrics against ground truth (record_id -> person_id)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PairwiseMetrics:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self) | {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def _pairs_in_groups(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def cluster_pairwise(predicted: Mapping[str, str], truth: Mapping[str, str]) -> PairwiseMetrics:
    """Pairwise precision/recall of clusters: a pair is predicted when in one cluster.

    Counted through contingency tables, so it is linear in the number of records.
    """
    ids = [i for i in predicted if i in truth]
    both = Counter((predicted[i], truth[i]) for i in ids)
    tp = _pairs_in_groups(both.values())
    pred_pairs = _pairs_in_groups(Counter(predicted[i] for i in ids).values())
    true_pairs = _pairs_in_groups(Counter(truth[i] for i in ids).values())
    return PairwiseMetrics(tp, pred_pairs - tp, true_pairs - tp)


def pair_list_metrics(
    pairs: Iterable[tuple[str, str]], truth: Mapping[str, str]
) -> PairwiseMetrics:
    """Metrics of a list of predicted matching pairs (not closed under transitivity)."""
    predicted = {tuple(sorted(p)) for p in pairs}
    tp = sum(1 for a, b in predicted if truth.get(a) is not None and truth.get(a) == truth.get(b))
    true_pairs = _pairs_in_groups(Counter(truth.values()).values())
    return PairwiseMetrics(tp, len(predicted) - tp, true_pairs - tp)


def b_cubed(predicted: Mapping[str, str], truth: Mapping[str, str]) -> dict[str, float]:
    """B-cubed precision, recall and F1 (Bagga and Baldwin), averaged over records."""
    ids = [i for i in predicted if i in truth]
    if not ids:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    both = Counter((predicted[i], truth[i]) for i in ids)
    pred_size = Counter(predicted[i] for i in ids)
    true_size = Counter(truth[i] for i in ids)
    precision = sum(n * n / pred_size[c] for (c, _), n in both.items()) / len(ids)
    recall = sum(n * n / true_size[t] for (_, t), n in both.items()) / len(ids)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def threshold_sweep(
    scored_pairs: Sequence[tuple[str, str, float]],
    truth: Mapping[str, str],
    thresholds: Sequence[float] = (0.5, 0.65, 0.8, 0.9, 0.95, 0.99),
) -> list[dict[str, float]]:
    """Pairwise precision/recall/F1 of the pairs at or above each threshold."""
    rows = []
    for t in thresholds:
        m = pair_list_metrics(((a, b) for a, b, p in scored_pairs if p >= t), truth)
        rows.append({"threshold": t} | m.as_dict())
    return rows
