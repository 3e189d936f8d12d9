"""The real-time scorer: one record against a few candidates, in plain Python.

It reads the same model JSON as Splink and reproduces Splink's arithmetic: the prior's match
weight plus, per comparison, the weight of the level reached and the term-frequency
adjustment of that level, turned into a probability. No DuckDB, no SQL per call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from medmatch.matching.model import LevelWeights, MatchModel


@dataclass(frozen=True)
class LevelHit:
    """What one comparison contributed: the bar of a match-weight waterfall."""

    comparison: str
    level: str
    gamma: int
    match_weight: float
    tf_adjustment: float

    @property
    def total(self) -> float:
        return self.match_weight + self.tf_adjustment


@dataclass(frozen=True)
class PairScore:
    prior_weight: float
    hits: tuple[LevelHit, ...]

    @cached_property  # computed once: the hits never change
    def match_weight(self) -> float:
        return self.prior_weight + sum(h.total for h in self.hits)

    @property
    def probability(self) -> float:
        return weight_to_probability(self.match_weight)


def weight_to_probability(weight: float) -> float:
    # The same numerically stable form as Splink's SQL.
    if weight >= 0:
        return 1.0 / (1.0 + 2.0 ** (-weight))
    return 2.0**weight / (1.0 + 2.0**weight)


def probability_to_weight(probability: float) -> float:
    if probability >= 1.0:
        return math.inf
    return math.log2(probability / (1.0 - probability))


class RealtimeScorer:
    def __init__(self, model: MatchModel) -> None:
        self.model = model
        self._weights = model.level_weights()
        self._prior = math.log2(model.prior / (1.0 - model.prior))
        self._tf = model.term_frequencies
        self._unseen = model.unseen_frequency
        # u of each comparison's exact level on its tf column (Splink's tf base).
        self._tf_base: list[dict[str, float]] = []
        for comparison, weights in zip(model.comparisons, self._weights, strict=True):
            base = {}
            for level, w in zip(comparison.levels, weights, strict=True):
                if getattr(level, "term_frequency", False) and w.u_probability is not None:
                    base[level.column] = w.u_probability
            self._tf_base.append(base)
        # per comparison, what score() reads: name, levels, their weights, the tf bases
        self._plan = [
            (comparison.name, comparison.levels, weights, base)
            for comparison, weights, base in zip(
                model.comparisons, self._weights, self._tf_base, strict=True
            )
        ]

    def term_frequency(self, column: str, value: Any) -> float | None:
        if value is None:
            return None
        table = self._tf.get(column)
        if table is None:
            return None
        return table.get(value, self._unseen)

    def with_term_frequencies(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row plus its `tf_<column>` values, as Splink's score_pairs accepts them."""
        out = dict(row)
        for column in self._tf:
            out[f"tf_{column}"] = self.term_frequency(column, row.get(column))
        return out

    def _tf_adjustment(
        self,
        w: LevelWeights,
        base: dict[str, float],
        left: Mapping[str, Any],
        right: Mapping[str, Any],
    ) -> float:
        if w.tf_column is None or w.tf_weight == 0:
            return 0.0
        tl = left.get(f"tf_{w.tf_column}", self.term_frequency(w.tf_column, left.get(w.tf_column)))
        tr = right.get(
            f"tf_{w.tf_column}", self.term_frequency(w.tf_column, right.get(w.tf_column))
        )
        if tl is None and tr is None:
            return 0.0
        tl = tr if tl is None else tl
        tr = tl if tr is None else tr
        u_tf = max(tl, tr, w.tf_minimum_u)
        return w.tf_weight * (math.log2(base[w.tf_column]) - math.log2(u_tf))

    def score(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> PairScore:
        hits = []
        for name, levels, weights, base in self._plan:
            # the first level the pair reaches (Comparison.level_index, inlined: it runs for
            # every comparison of every candidate of a lookup); the else level always does
            for index, level in enumerate(levels):  # noqa: B007
                if level.matches(left, right):
                    break
            w = weights[index]
            adjustment = (
                0.0
                if index == 0 or level.is_else_level
                else self._tf_adjustment(w, base, left, right)
            )
            gamma = -1 if index == 0 else len(levels) - 1 - index
            hits.append(LevelHit(name, w.label, gamma, w.match_weight, adjustment))
        return PairScore(self._prior, tuple(hits))

    def score_many(
        self, record: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]
    ) -> list[PairScore]:
        return [self.score(record, c) for c in candidates]
