"""Evaluation against ground truth: pairwise and cluster metrics, reports."""

from medmatch.evaluation.metrics import PairwiseMetrics, b_cubed, cluster_pairwise, threshold_sweep
from medmatch.evaluation.report import EvaluationReport, evaluate

__all__ = [
    "EvaluationReport",
    "PairwiseMetrics",
    "b_cubed",
    "cluster_pairwise",
    "evaluate",
    "threshold_sweep",
]
