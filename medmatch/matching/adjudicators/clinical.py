"""The offline adjudicator: compares two medical histories through the clinical vocabulary.

Conditions, drugs (generic or brand) and the conditions drugs imply are mapped to concepts
(`medmatch.data.clinical`); the histories' overlap gives a medical similarity and a verdict.
Its weight in the match is the log2 Bayes factor of that verdict, estimated on labelled or
synthetic pairs (`adjudication.estimate_verdict_weights`), never a silent override.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from medmatch.data.clinical import implied_conditions, vocabulary
from medmatch.matching.adjudication import Adjudication, PairSet, Verdict

# log2(m/u) of each verdict, estimated with `estimate_verdict_weights` on synthetic pairs
# (python benchmarks/adjudication.py --calibrate); "unsure" carries no evidence.
DEFAULT_WEIGHTS: dict[Verdict, float] = {
    Verdict.SAME: 6.9,
    Verdict.DIFFERENT: -9.1,
    Verdict.UNSURE: 0.0,
}
SAME_AT_LEAST = 0.5


def _history(row: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    conditions = frozenset(row.get("conditions") or ())
    drugs = frozenset(row.get("medications") or ())
    return conditions, drugs


def _label(concept: str) -> str:
    """A short clinical label: the first abbreviation the vocabulary lists ('T2DM', 'HTN')."""
    vocab = vocabulary()
    names = vocab.condition_names.get(concept) or vocab.drug_names.get(concept) or (concept,)
    short = next((n for n in names if len(n) <= 5 and " " not in n), None)
    return short.upper() if short else names[0]


class ClinicalAdjudicator:
    name = "offline"
    forkable = True  # pure and local: a batch may run it in forked workers (batch.decide_pairs)

    def __init__(
        self,
        weights: Mapping[Verdict, float] | None = None,
        pairs: Iterable[PairSet] = (PairSet.ALL,),  # cheap: every pair with two histories
    ) -> None:
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        self.pairs = frozenset(PairSet(p) for p in pairs)

    def judge(
        self, left: Mapping[str, Any], right: Mapping[str, Any]
    ) -> tuple[Verdict, float, str] | None:
        lc, ld = _history(left)
        rc, rd = _history(right)
        if not (lc or ld) or not (rc or rd):
            return None
        lall = lc | ld | implied_conditions(ld)
        rall = rc | rd | implied_conditions(rd)
        shared = lall & rall
        similarity = len(shared) / len(lall | rall)
        if not shared:
            names = ", ".join(sorted({_label(c) for c in lall})[:3])
            others = ", ".join(sorted({_label(c) for c in rall})[:3])
            return Verdict.DIFFERENT, 0.0, f"Medical histories conflict ({names} vs {others})"
        labels = ", ".join(sorted({_label(c) for c in shared})[:4])
        if similarity >= SAME_AT_LEAST:
            return Verdict.SAME, similarity, f"Medical history confirms ({labels})"
        return Verdict.UNSURE, similarity, f"Medical histories overlap in part ({labels})"

    def adjudicate(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> Adjudication | None:
        judged = self.judge(left, right)
        if judged is None:
            return None
        verdict, similarity, reasoning = judged
        return Adjudication(verdict, similarity, reasoning, self.weights[verdict], self.name)
