"""The `ai` stage: adjudicators weigh the medical histories of a pair.

A verdict is evidence: its weight (log2 m/u, estimated on labelled pairs) is added to the
Fellegi-Sunter match weight, never a silent override. Each adjudicator says which pairs it
wants (`PairSet`): the offline one is cheap and weighs in on every candidate pair with two
histories; the LLM only sees pairs whose decision it could change. Given several, the first
that wants a pair answers it (`choose`), so an LLM in front of the offline adjudicator takes
the hard pairs and leaves the rest.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from medmatch.config import MatchThresholds
from medmatch.matching.decisions import Decision, MatchType, decide
from medmatch.matching.realtime import probability_to_weight, weight_to_probability

Row = Mapping[str, Any]


class Verdict(StrEnum):
    SAME = "same"
    DIFFERENT = "different"
    UNSURE = "unsure"


class PairSet(StrEnum):
    """Which pairs an adjudicator is asked about."""

    ALL = "all"  # every candidate pair with a history on both sides
    REVIEW_BAND = "review_band"  # pairs the model sends to review
    LIFE_EVENTS = "life_events"  # same person after a marriage or a move? (`is_life_event`)


@dataclass(frozen=True)
class Adjudication:
    verdict: Verdict
    medical_similarity: float
    reasoning: str
    # log2 Bayes factor of this verdict (its own m/u); 0 means no evidence either way.
    match_weight: float = 0.0
    adjudicator: str = ""
    # the adjudicator could not answer (down, slow, nonsense): the pair goes to a human
    failed: bool = False


@runtime_checkable
class Adjudicator(Protocol):
    """A judge of pairs. One that also sets `forkable = True` computes in-process only, with
    no connection or thread, so a batch may run copies of it in forked workers."""

    name: str
    pairs: frozenset[PairSet]
    weights: Mapping[Verdict, float]

    def adjudicate(self, left: Row, right: Row) -> Adjudication | None:
        """Judge a pair of feature rows; None when it cannot (no history on one side)."""
        ...


def has_history(row: Row) -> bool:
    return bool(row.get("conditions") or row.get("medications"))


def _differ(left: Row, right: Row, column: str) -> bool:
    a, b = left.get(column), right.get(column)
    return a is not None and b is not None and a != b


def is_life_event(left: Row, right: Row) -> bool:
    """The same first name, birth date and sex, but another surname, address or phone: one
    person after a marriage or a move, or two people that only the history can tell apart."""
    for column in ("first_name", "dob", "sex"):
        if left.get(column) is None or left.get(column) != right.get(column):
            return False
    return any(_differ(left, right, c) for c in ("last_name", "address", "phone"))


def wants(adjudicator: Adjudicator, decision: Decision, left: Row, right: Row) -> bool:
    pairs = adjudicator.pairs
    return (
        PairSet.ALL in pairs
        or (PairSet.REVIEW_BAND in pairs and decision is Decision.REVIEW_REQUIRED)
        or (PairSet.LIFE_EVENTS in pairs and is_life_event(left, right))
    )


def choose(
    adjudicators: Sequence[Adjudicator], decision: Decision, left: Row, right: Row
) -> Adjudicator | None:
    """The first adjudicator that wants this pair; none for a pair without two histories."""
    if not (has_history(left) and has_history(right)):
        return None
    return next((a for a in adjudicators if wants(a, decision, left, right)), None)


def lowest_probability_to_score(floor: float, adjudicators: Sequence[Adjudicator]) -> float:
    """Pairs below `floor` that the strongest 'same' verdict could lift to it must be scored."""
    best = max((max(a.weights.values(), default=0.0) for a in adjudicators), default=0.0)
    if best <= 0 or floor <= 0:
        return floor
    return weight_to_probability(probability_to_weight(floor) - best)


def decide_after(
    verdict: Adjudication, probability: float, thresholds: MatchThresholds
) -> tuple[Decision, MatchType]:
    """The decision once a verdict is folded in; an adjudicator that could not answer leaves
    the pair to a human."""
    if verdict.failed:
        return Decision.REVIEW_REQUIRED, MatchType.POSSIBLE
    return decide(probability, thresholds)


class Tally:
    """How many pairs reached each adjudicator, and what came back: for the run report."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def asked(self, adjudicator: Adjudicator, answer: Adjudication | None) -> None:
        self.counts[f"ai_{adjudicator.name}_asked"] += 1
        if answer is None:
            return
        if answer.failed:
            self.counts[f"ai_{adjudicator.name}_failed"] += 1
        else:
            self.counts[f"ai_{adjudicator.name}_{answer.verdict.value}"] += 1

    def stats(self, adjudicators: Sequence[Adjudicator]) -> dict[str, int]:
        keys = [f"ai_{a.name}_{k}" for a in adjudicators for k in ("asked", "failed", *Verdict)]
        return {k: self.counts.get(k, 0) for k in keys}


def estimate_verdict_weights(
    adjudicator: Adjudicator,
    pairs: Iterable[tuple[Row, Row, bool]],
    smoothing: float = 1.0,
) -> dict[Verdict, float]:
    """m and u of each verdict from labelled pairs (left, right, is_match): log2(m/u).

    Works for any adjudicator: point it at a real Ollama and a labelled sample to calibrate
    the LLM's verdicts. Failed answers and pairs it cannot judge are left out."""
    matches: Counter[Verdict] = Counter()
    non_matches: Counter[Verdict] = Counter()
    for left, right, is_match in pairs:
        answer = adjudicator.adjudicate(left, right)
        if answer is None or answer.failed:
            continue
        (matches if is_match else non_matches)[answer.verdict] += 1
    total_m = sum(matches.values()) + smoothing * len(Verdict)
    total_u = sum(non_matches.values()) + smoothing * len(Verdict)
    weights = {}
    for verdict in Verdict:
        m = (matches[verdict] + smoothing) / total_m
        u = (non_matches[verdict] + smoothing) / total_u
        weights[verdict] = 0.0 if verdict is Verdict.UNSURE else round(math.log2(m / u), 3)
    return weights
