"""The outcome of comparing two records, with everything needed to explain it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from medmatch.matching.decisions import Decision, MatchType, Stage


class MatchResult(BaseModel):
    record_id_1: str
    record_id_2: str
    is_match: bool
    confidence: float = Field(ge=0.0, le=1.0)
    decision: Decision
    match_type: MatchType
    stage: Stage
    match_weight: float
    explanation: str
    evidence: dict[str, Any]
    medical_similarity: float | None = None
    ai_reasoning: str | None = None
    model_version: str
