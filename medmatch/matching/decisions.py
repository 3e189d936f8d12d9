"""Decision types and the thresholds that turn a probability into a decision (DESIGN.md)."""

from __future__ import annotations

from enum import StrEnum

from medmatch.config import MatchThresholds


class Decision(StrEnum):
    """What to do with a pair."""

    AUTO_MATCH = "auto_match"
    REVIEW_REQUIRED = "review_required"
    NO_MATCH = "no_match"


class MatchType(StrEnum):
    EXACT = "exact"
    PROBABLE = "probable"
    POSSIBLE = "possible"
    NO_MATCH = "no_match"


class Stage(StrEnum):
    """Which stage decided: a deterministic rule, the model's score, or the AI's evidence."""

    RULES = "rules"
    SCORING = "scoring"
    AI = "ai"


def decide(probability: float, thresholds: MatchThresholds) -> tuple[Decision, MatchType]:
    if probability >= thresholds.auto_match:
        return Decision.AUTO_MATCH, MatchType.PROBABLE
    if probability >= thresholds.review:
        return Decision.REVIEW_REQUIRED, MatchType.POSSIBLE
    return Decision.NO_MATCH, MatchType.NO_MATCH
