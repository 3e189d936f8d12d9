"""The MPI's values, as repositories hand them to services: plain dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class StoredRecord:
    id: int
    source_system: str
    external_id: str | None
    demographics: dict[str, Any]
    medical_data: dict[str, Any]
    features: dict[str, Any]  # the scorer's feature row; unique_id is str(id)
    golden_id: str | None = None
    received_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Candidate:
    """A stored record as the real-time lookup scores it: its feature row and identity."""

    id: int
    features: dict[str, Any]  # unique_id is str(id)
    golden_id: str | None = None


@dataclass
class Golden:
    golden_id: str
    status: str = "active"
    merged_into: str | None = None
    demographics: dict[str, Any] = field(default_factory=dict)
    medical_data: dict[str, Any] = field(default_factory=dict)
    source_count: int = 0
    version: int = 1


@dataclass
class Link:
    source_record_id: int
    golden_id: str
    link_type: str
    confidence: float | None = None
    match_result_id: int | None = None
    linked_by: str = "system"


@dataclass
class MatchEntry:
    source_record_id: int
    candidate_record_id: int | None
    is_match: bool
    confidence: float
    match_type: str
    decision: str
    stage: str
    explanation: str
    evidence: dict[str, Any]
    model_version: str
    thresholds: dict[str, float]
    medical_similarity: float | None = None
    ai_reasoning: str | None = None
    id: int | None = None


# what a match result stores, besides its id (both adapters write exactly these)
MATCH_ENTRY_FIELDS = tuple(f for f in MatchEntry.__dataclass_fields__ if f != "id")


@dataclass
class Review:
    id: int
    record_id_1: int
    record_id_2: int
    priority: int
    status: str
    match_result_id: int | None = None
    assigned_to: str | None = None
    resolution: str | None = None
    resolver_notes: str | None = None
    resolved_by: str | None = None
    created_at: datetime | None = None


@dataclass
class Change:
    """One link change: what `link_history` keeps."""

    operation_id: str
    action: str
    actor: str
    source_record_id: int | None = None
    old_golden_id: str | None = None
    new_golden_id: str | None = None
    old_status: str | None = None
    match_result_id: int | None = None
    reason: str = ""
    created_at: datetime | None = None


def ordered(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)
