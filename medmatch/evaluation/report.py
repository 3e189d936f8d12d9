"""An evaluation report: cluster F1, B-cubed, a threshold sweep, and the hard cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from medmatch.evaluation.metrics import b_cubed, cluster_pairwise, threshold_sweep


@dataclass
class EvaluationReport:
    cluster: dict[str, float]
    b_cubed: dict[str, float]
    sweep: list[dict[str, float]]
    hard_cases: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster_pairwise": self.cluster,
            "b_cubed": self.b_cubed,
            "threshold_sweep": self.sweep,
            "hard_cases": self.hard_cases,
        }


def hard_case_merges(clusters: dict[str, str], truth: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Relatives (twins, father and son) that ended in one cluster: each is an error."""
    out: dict[str, dict[str, int]] = {}
    fam = truth.dropna(subset=["family_id"])
    for relation_set, name in (({"twin"}, "twins"), ({"father", "son"}, "father_son")):
        sub = fam[fam["relation"].isin(relation_set)]
        families = 0
        merged = 0
        for _, group in sub.groupby("family_id"):
            people = group.groupby("person_id")["record_id"].apply(list)
            if len(people) < 2:
                continue
            families += 1
            cl = [{clusters.get(r) for r in recs} for recs in people]
            if any(a & b for i, a in enumerate(cl) for b in cl[i + 1 :]):
                merged += 1
        out[name] = {"families": families, "wrongly_merged": merged}
    return out


def evaluate(pairs: pd.DataFrame, clusters: pd.DataFrame, truth: pd.DataFrame) -> EvaluationReport:
    truth_map = dict(
        zip(truth["record_id"].astype(str), truth["person_id"].astype(str), strict=True)
    )
    cluster_map = dict(
        zip(clusters["record_id"].astype(str), clusters["cluster_id"].astype(str), strict=True)
    )
    scored = list(
        zip(
            pairs["record_id_1"].astype(str),
            pairs["record_id_2"].astype(str),
            pairs["confidence"].astype(float),
            strict=True,
        )
    )
    return EvaluationReport(
        cluster=cluster_pairwise(cluster_map, truth_map).as_dict(),
        b_cubed=b_cubed(cluster_map, truth_map),
        sweep=threshold_sweep(scored, truth_map),
        hard_cases=hard_case_merges(cluster_map, truth) if "family_id" in truth else {},
    )
