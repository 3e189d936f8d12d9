"""The hook for the `ai` stage: an adjudicator weighs medical histories of a pair.

Implementations (offline clinical rules, Ollama) come with the AI issue; the matcher already
calls whatever is given here for the pairs it selects. A verdict is evidence: its weight is
added to the Fellegi-Sunter match weight, never a silent override.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from medmatch.config import MatchThresholds
from medmatch.matching.decisions import Decision, MatchType, decide


class Verdict(StrEnum):
    SAME = "same"
    DIFFERENT = "different"
    UNSURE = "unsure"


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
    name: str

    def adjudicate(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> Adjudication | None:
        """Judge a pair of feature rows; None when it cannot (no history, service down)."""
        ...


def worth_asking(adjudicator: Adjudicator, decision: Decision) -> bool:
    """A cheap adjudicator weighs in on every pair; an expensive one only where it can change
    the decision: the review band."""
    return getattr(adjudicator, "cheap", False) or decision is Decision.REVIEW_REQUIRED


def decide_after(
    verdict: Adjudication, probability: float, thresholds: MatchThresholds
) -> tuple[Decision, MatchType]:
    """The decision once a verdict is folded in; an adjudicator that could not answer leaves
    the pair to a human."""
    if verdict.failed:
        return Decision.REVIEW_REQUIRED, MatchType.POSSIBLE
    return decide(probability, thresholds)
