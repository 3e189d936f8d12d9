"""Request and response bodies: what the API accepts and answers, apart from the library's
and the database's models. Every request body forbids unknown fields and bounds its sizes;
a validation error names the field, never the value."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

GOLDEN_ID = r"^GR-\d{6,12}$"
GoldenId = Annotated[str, Field(pattern=GOLDEN_ID, examples=["GR-000001"])]
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]
JOB_ID = r"^[A-Za-z0-9-]{1,64}$"  # a Dagster run id
Text = Field(None, max_length=200)
_LINE_BREAKS = frozenset("\t\n\r")


def printable(value: str) -> str:
    """Refuse control characters (PostgreSQL cannot store NUL in text; the others have no
    place in a name or a note) and lone surrogates (not encodable as UTF-8)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in _LINE_BREAKS:
            raise ValueError("must not hold control characters")
    return value


PrintableQuery = AfterValidator(printable)


class Strict(BaseModel):
    """A request body: unknown fields refused, every string printable."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                printable(text)
        return value


# -- records -----------------------------------------------------------------------------
class DemographicsIn(Strict):
    """Values as the source system sends them; MedMatch normalises them (names, dates in
    common formats, phones to E.164, ...)."""

    name_first: str | None = Text
    name_middle: str | None = Text
    name_last: str | None = Text
    name_suffix: str | None = Field(None, max_length=20)
    date_of_birth: str | None = Field(None, max_length=40, examples=["1980-03-14"])
    gender: str | None = Field(None, max_length=20)
    phone: str | None = Field(None, max_length=40)
    email: str | None = Text
    address_line: str | None = Text
    city: str | None = Text
    state: str | None = Field(None, max_length=50)
    postal_code: str | None = Field(None, max_length=20)
    ssn: str | None = Field(None, max_length=20)
    mrn: str | None = Field(None, max_length=64)


MedicalTerm = Annotated[str, Field(max_length=200)]


class MedicalIn(Strict):
    conditions: list[MedicalTerm] = Field(default_factory=list, max_length=200)
    medications: list[MedicalTerm] = Field(default_factory=list, max_length=200)


class RecordIn(Strict):
    source_system: str = Field(..., min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="the record's id in the source system; re-sending it updates the record",
    )
    record_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="the source's record id (the architecture's name): external_id if absent",
    )
    demographics: DemographicsIn
    medical_data: MedicalIn = Field(default_factory=MedicalIn)

    @model_validator(mode="after")
    def _record_id_is_external_id(self) -> RecordIn:
        if self.external_id is None and self.record_id is not None:
            self.external_id = self.record_id
        return self


class LookupOut(BaseModel):
    decision: Literal["auto_match", "review_required", "new_identity"]
    source_record_id: int
    golden_record_id: str
    confidence: float
    match_type: str
    stage: str
    explanation: str
    created: bool
    candidates_scored: int
    review_ids: list[int]
    model_version: str


class PatientOut(BaseModel):
    id: int
    source_system: str
    external_id: str | None
    golden_record_id: str | None
    link_type: str | None
    confidence: float | None
    demographics: dict[str, Any]
    medical_data: dict[str, Any]
    received_at: datetime
    updated_at: datetime


class PatientCreated(BaseModel):
    patient: PatientOut
    match: LookupOut


class PatientPage(BaseModel):
    items: list[PatientOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next page; null: last")


# -- matching ----------------------------------------------------------------------------
class BatchIn(Strict):
    job_type: Literal["full_match", "incremental_match"]
    partition: str | None = Field(
        None, min_length=1, max_length=200, description="incremental_match only: a landing batch"
    )

    @model_validator(mode="after")
    def _partition_for_incremental(self) -> BatchIn:
        if self.job_type == "incremental_match" and not self.partition:
            raise ValueError("partition: required for incremental_match")
        if self.job_type == "full_match" and self.partition:
            raise ValueError("partition: only incremental_match takes a partition")
        return self


BatchState = Literal["pending", "running", "completed", "failed"]


class BatchAccepted(BaseModel):
    job_id: str
    status: BatchState


class BatchStatus(BaseModel):
    job_id: str
    job_type: str
    partition: str | None = None
    status: BatchState
    stage: str | None = None
    total_records: int = 0
    processed_records: int = 0
    matched_pairs: int = 0
    error_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class MatchResultOut(BaseModel):
    id: int
    source_record_id: int
    candidate_record_id: int | None
    is_match: bool
    confidence: float
    match_type: str
    decision: str
    stage: str
    explanation: str
    evidence: dict[str, Any]
    medical_similarity: float | None
    ai_reasoning: str | None
    model_version: str
    thresholds: dict[str, Any]
    job_id: str | None
    created_at: datetime


# -- golden records ----------------------------------------------------------------------
class SurvivorValue(BaseModel):
    value: Any
    source_record_ids: list[int]


class GoldenOut(BaseModel):
    golden_id: str
    status: str
    merged_into: str | None
    version: int
    source_count: int
    source_record_ids: list[int]
    demographics: dict[str, SurvivorValue]
    medical_data: dict[str, Any]


class MergeIn(Strict):
    golden_record_ids: list[GoldenId] = Field(..., min_length=2, max_length=50)
    survivor_id: GoldenId | None = Field(None, description="default: the first id survives")
    reason: str = Field("", max_length=2000)
    dry_run: bool = False
    expected_versions: dict[GoldenId, Version] | None = Field(
        None,
        max_length=50,
        description="golden_id -> the version the client read: 409 if one changed since",
    )

    @model_validator(mode="after")
    def _ids(self) -> MergeIn:
        if len(set(self.golden_record_ids)) < 2:
            raise ValueError("golden_record_ids: need two distinct golden records")
        if self.survivor_id and self.survivor_id not in self.golden_record_ids:
            raise ValueError("survivor_id: must be one of golden_record_ids")
        if set(self.expected_versions or ()) - set(self.golden_record_ids):
            raise ValueError("expected_versions: only for golden_record_ids")
        return self


class SplitIn(Strict):
    golden_record_id: GoldenId
    source_record_ids: list[RecordId] = Field(..., min_length=1, max_length=1000)
    reason: str = Field("", max_length=2000)
    dry_run: bool = False
    expected_version: Version | None = Field(
        None, description="the version the client read: 409 if it changed since"
    )


class FieldChangeOut(BaseModel):
    golden_id: str
    field: str
    before: Any
    after: Any


class ChangeOut(BaseModel):
    operation_id: str
    action: str
    dry_run: bool
    golden_ids: list[str]
    records_moved: list[int]
    field_changes: list[FieldChangeOut]
    golden_record: GoldenOut | None = Field(
        None, description="merge: the survivor; split: the new golden record (not on dry runs)"
    )


# -- review ------------------------------------------------------------------------------
class ReviewItemOut(BaseModel):
    id: int
    priority: int
    status: str
    assigned_to: str | None
    resolution: str | None
    resolver_notes: str | None
    created_at: datetime
    left: PatientOut
    right: PatientOut
    match: MatchResultOut | None


class ReviewPage(BaseModel):
    items: list[ReviewItemOut]
    page: int
    size: int


class AssignIn(Strict):
    assigned_to: str = Field(..., min_length=3, max_length=100, pattern=r"^[^\s@]+@[^\s@]+$")


class ResolveIn(Strict):
    resolution: Literal["confirmed_match", "confirmed_non_match", "defer"]
    resolver_notes: str | None = Field(None, max_length=2000)


class ResolvedOut(BaseModel):
    review_id: int
    resolution: str
    status: str
    priority: int
    change: ChangeOut | None = None


# -- health ------------------------------------------------------------------------------
class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["up", "down"]
    dagster: Literal["up", "down"]
    ollama: Literal["up", "down", "not_configured"]
