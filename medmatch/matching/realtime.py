"""The real-time scorer: one record against a few candidates, in plain Python.

It reads the same model JSON as Splink and reproduces Splink's arithmetic: the prior's match
weight plus, per comparison, the weight of the level reached and the term-frequency
adjustment of that level, turned into a probability. No DuckDB, no SQL per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from medmatch.matching.comparisons import Comparison
from medmatch.matching.model import LevelWeights, MatchModel

Row = Mapping[str, Any]


class LevelHit(NamedTuple):
    """What one comparison contributed: the bar of a match-weight waterfall. (A tuple: the
    scorer makes nine per candidate, a frozen dataclass costs three times as much to build.)"""

    comparison: str
    level: str
    gamma: int
    match_weight: float
    tf_adjustment: float


@dataclass(frozen=True)
class PairScore:
    prior_weight: float
    hits: tuple[LevelHit, ...]
    match_weight: float  # the prior plus every hit's weight and adjustment

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


@dataclass(frozen=True)
class _Step:
    """One level as score() tries it: its predicate, and the hit it yields when no term
    frequency adjusts it (the same object every time: hits are immutable)."""

    matches: Callable[[Row, Row], bool]
    hit: LevelHit
    tf_column: str | None = None  # adjusted by this column's term frequencies
    tf_key: str = ""  # the row's precomputed frequency, when given (`tf_<column>`)
    tf_weight: float = 0.0
    tf_minimum_u: float = 0.0
    log2_tf_base: float = 0.0  # log2 u of the comparison's exact level on the tf column


class RealtimeScorer:
    def __init__(self, model: MatchModel) -> None:
        self.model = model
        self._weights = model.level_weights()
        self._prior = math.log2(model.prior / (1.0 - model.prior))
        self._tf = model.term_frequencies
        self._unseen = model.unseen_frequency
        # per comparison, the levels in the order they are tried, everything a level needs
        # resolved once: this loop runs for every comparison of every candidate of a lookup
        self._plan: list[tuple[_Step, ...]] = [
            self._steps(comparison, weights)
            for comparison, weights in zip(model.comparisons, self._weights, strict=True)
        ]

    @staticmethod
    def _steps(comparison: Comparison, weights: list[LevelWeights]) -> tuple[_Step, ...]:
        # u of the comparison's exact level on its tf column: Splink's tf base
        base = {
            level.column: w.u_probability
            for level, w in zip(comparison.levels, weights, strict=True)
            if getattr(level, "term_frequency", False) and w.u_probability is not None
        }
        steps = []
        for index, (level, w) in enumerate(zip(comparison.levels, weights, strict=True)):
            gamma = comparison.gamma(index)
            hit = LevelHit(comparison.name, w.label, gamma, w.match_weight, 0.0)
            adjusted = index != 0 and not level.is_else_level and w.tf_column is not None
            if not adjusted or w.tf_weight == 0:
                steps.append(_Step(level.matches, hit))
                continue
            assert w.tf_column is not None
            steps.append(
                _Step(
                    level.matches,
                    hit,
                    w.tf_column,
                    f"tf_{w.tf_column}",
                    w.tf_weight,
                    w.tf_minimum_u,
                    math.log2(base[w.tf_column]),
                )
            )
        return tuple(steps)

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

    def _frequency(self, step: _Step, row: Row) -> float | None:
        if step.tf_key in row:
            return row[step.tf_key]  # type: ignore[no-any-return]
        return self.term_frequency(step.tf_column, row.get(step.tf_column))  # type: ignore[arg-type]

    def _tf_adjustment(self, step: _Step, left: Row, right: Row) -> float:
        tl, tr = self._frequency(step, left), self._frequency(step, right)
        if tl is None and tr is None:
            return 0.0
        tl = tr if tl is None else tl
        tr = tl if tr is None else tr
        u_tf = max(tl, tr, step.tf_minimum_u)  # type: ignore[type-var]
        return step.tf_weight * (step.log2_tf_base - math.log2(u_tf))  # type: ignore[arg-type]

    def score(self, left: Row, right: Row) -> PairScore:
        hits = []
        total = 0.0  # hit by hit, then the prior: Splink's sum, to the last bit
        for steps in self._plan:
            # the first level the pair reaches; the else level always does
            for step in steps:  # noqa: B007
                if step.matches(left, right):
                    break
            hit = step.hit
            if step.tf_column is not None:
                hit = LevelHit(
                    hit.comparison,
                    hit.level,
                    hit.gamma,
                    hit.match_weight,
                    self._tf_adjustment(step, left, right),
                )
            total += hit.match_weight + hit.tf_adjustment
            hits.append(hit)
        return PairScore(self._prior, tuple(hits), self._prior + total)

    def score_many(self, record: Row, candidates: Sequence[Row]) -> list[PairScore]:
        return [self.score(record, c) for c in candidates]
