"""The MPI's tables (SQLAlchemy 2 declarative); Alembic migrations create them.

The six tables of the service architecture keep its column names; the others are what a
real MPI needs besides (each says why). Every enum-like column and every confidence has a
check constraint, and every timestamp carries its time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

GOLDEN_STATUSES = ("active", "merged", "retired")
LINK_TYPES = ("auto_match", "manual_match", "manual_split", "new_identity")
MATCH_TYPES = ("exact", "probable", "possible", "no_match")
DECISIONS = ("auto_match", "review_required", "new_identity")
STAGES = ("rules", "scoring", "ai")
REVIEW_STATUSES = ("pending", "assigned", "resolved")
RESOLUTIONS = ("confirmed_match", "confirmed_non_match", "defer")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
CONSTRAINT_KINDS = ("must_link", "cannot_link")
LINK_ACTIONS = ("lookup", "merge", "split", "undo", "review", "batch")
ROLES = ("source", "reviewer", "operator", "admin")

GOLDEN_NUMBER = Sequence("golden_record_number")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


def _probability(column: str) -> CheckConstraint:
    return CheckConstraint(
        f"{column} IS NULL OR ({column} >= 0 AND {column} <= 1)", name=f"{column}_range"
    )


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SourceRecord(Base):
    """One record as a source system sent it, with its normalised comparison row."""

    __tablename__ = "source_records"
    __table_args__ = (
        # a re-sent record updates its row: one source record per source identity
        UniqueConstraint("source_system", "external_id", name="uq_source_records_source_identity"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    source_system: Mapped[str] = mapped_column(String(100), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(200))
    demographics: Mapped[dict] = mapped_column(JSONB, nullable=False)
    medical_data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    # the scorer's feature row (medmatch.data.features): lookups never re-normalise candidates.
    # json, not jsonb: written and read whole, never queried inside (migration 0008)
    features: Mapped[dict] = mapped_column(JSON, nullable=False)
    received_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class BlockingKey(Base):
    """Why: real-time candidate search is one indexed lookup on the record's key strings."""

    __tablename__ = "blocking_keys"
    __table_args__ = (Index("ix_blocking_keys_source_record_id", "source_record_id"),)

    # an identifier, compared for equality only: in bytes (migration 0007)
    key: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)
    source_record_id: Mapped[int] = mapped_column(
        ForeignKey("source_records.id", ondelete="CASCADE"), primary_key=True
    )


class GoldenRecord(Base):
    __tablename__ = "golden_records"
    __table_args__ = (
        _one_of("status", GOLDEN_STATUSES),
        CheckConstraint(
            "(status = 'merged') = (merged_into IS NOT NULL)", name="merged_points_to_survivor"
        ),
        Index("ix_golden_records_merged_into", "merged_into"),
    )

    golden_id: Mapped[str] = mapped_column(
        String(20),
        primary_key=True,
        # next_golden_id() (migration 0003): GR-000001 ... GR-999999, GR-1000000, ...
        server_default=text("next_golden_id()"),
    )
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="active")
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("golden_records.golden_id"))
    # survivorship's result, rebuilt whenever the record's links change
    demographics: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    medical_data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    source_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # bumped by every change: a writer that read an older version loses (the aggregate)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class RecordLink(Base):
    """Which golden record a source record belongs to: exactly one at a time."""

    __tablename__ = "record_links"
    __table_args__ = (
        _one_of("link_type", LINK_TYPES),
        _probability("confidence"),
        Index("ix_record_links_golden_id", "golden_id"),
    )

    source_record_id: Mapped[int] = mapped_column(
        ForeignKey("source_records.id", ondelete="CASCADE"), primary_key=True
    )
    golden_id: Mapped[str] = mapped_column(ForeignKey("golden_records.golden_id"), nullable=False)
    link_type: Mapped[str] = mapped_column(String(20), nullable=False)
    confidence: Mapped[float | None] = mapped_column(Float)
    match_result_id: Mapped[int | None] = mapped_column(ForeignKey("match_results.id"))
    linked_by: Mapped[str] = mapped_column(String(100), nullable=False, server_default="system")
    linked_at: Mapped[datetime] = _now()


class MatchResult(Base):
    """Every decided comparison, with its evidence, model version and thresholds (audit)."""

    __tablename__ = "match_results"
    __table_args__ = (
        _one_of("match_type", MATCH_TYPES),
        _one_of("decision", DECISIONS),
        _one_of("stage", STAGES),
        _probability("confidence"),
        _probability("medical_similarity"),
        Index("ix_match_results_source_record_id", "source_record_id"),
        Index("ix_match_results_candidate_record_id", "candidate_record_id"),
        Index("ix_match_results_job_id", "job_id", postgresql_where=text("job_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # no foreign keys on the records (migration 0006): the audit outlives them
    source_record_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    candidate_record_id: Mapped[int | None] = mapped_column(BigInteger)
    is_match: Mapped[bool] = mapped_column(Boolean, nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    match_type: Mapped[str] = mapped_column(String(10), nullable=False)
    decision: Mapped[str] = mapped_column(String(20), nullable=False)
    evidence: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    stage: Mapped[str] = mapped_column(String(10), nullable=False)
    explanation: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    medical_similarity: Mapped[float | None] = mapped_column(Float)
    ai_reasoning: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(40), nullable=False)
    thresholds: Mapped[dict] = mapped_column(JSONB, nullable=False)
    # the batch run that decided it (NULL: a real-time lookup)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("batch_jobs.job_id"))
    created_at: Mapped[datetime] = _now()


class ReviewItem(Base):
    __tablename__ = "review_queue"
    __table_args__ = (
        _one_of("status", REVIEW_STATUSES),
        CheckConstraint(
            "resolution IS NULL OR resolution IN ('confirmed_match', 'confirmed_non_match', "
            "'defer')",
            name="resolution_allowed",
        ),
        CheckConstraint("priority BETWEEN 1 AND 10", name="priority_range"),
        CheckConstraint("record_id_1 < record_id_2", name="pair_ordered"),
        # resolved means decided; a deferred item is back in the queue
        CheckConstraint(
            "status <> 'resolved' OR resolution IN ('confirmed_match', 'confirmed_non_match')",
            name="resolved_is_decided",
        ),
        # one open item per pair: a re-sent record must not queue the same question twice
        Index(
            "uq_review_queue_open_pair",
            "record_id_1",
            "record_id_2",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
        ),
        Index("ix_review_queue_pending", "status", "priority"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    match_result_id: Mapped[int | None] = mapped_column(ForeignKey("match_results.id"))
    record_id_1: Mapped[int] = mapped_column(
        ForeignKey("source_records.id", ondelete="CASCADE"), nullable=False
    )
    record_id_2: Mapped[int] = mapped_column(
        ForeignKey("source_records.id", ondelete="CASCADE"), nullable=False
    )
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default="5")
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="pending")
    assigned_to: Mapped[str | None] = mapped_column(String(100))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(20))
    resolver_notes: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class BatchJob(Base):
    __tablename__ = "batch_jobs"
    __table_args__ = (_one_of("status", JOB_STATUSES),)

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the Dagster run id
    job_type: Mapped[str] = mapped_column(String(40), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="queued")
    partition_key: Mapped[str | None] = mapped_column(String(100))
    stats: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LinkChange(Base):
    """Why: every link change (who, when, why, from which golden record to which) is kept,
    so a golden record can be explained and a merge undone. Append-only, and without
    foreign keys (migration 0006): the history of a record outlives the record."""

    __tablename__ = "link_history"
    __table_args__ = (
        _one_of("action", LINK_ACTIONS),
        Index("ix_link_history_operation_id", "operation_id"),
        Index("ix_link_history_new_golden_id", "new_golden_id"),
        Index("ix_link_history_old_golden_id", "old_golden_id"),
        Index("ix_link_history_job_id", "job_id", postgresql_where=text("job_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # the changes of one merge, split or undo share an operation id (undo replays it backwards)
    operation_id: Mapped[str] = mapped_column(String(40), nullable=False)
    action: Mapped[str] = mapped_column(String(10), nullable=False)
    source_record_id: Mapped[int | None] = mapped_column(BigInteger)
    old_golden_id: Mapped[str | None] = mapped_column(String(20))
    new_golden_id: Mapped[str | None] = mapped_column(String(20))
    old_status: Mapped[str | None] = mapped_column(String(10))
    match_result_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()


class MatchConstraint(Base):
    """Why: a reviewer's must-link or cannot-link is respected by every later run."""

    __tablename__ = "match_constraints"
    __table_args__ = (
        _one_of("kind", CONSTRAINT_KINDS),
        CheckConstraint("record_id_1 < record_id_2", name="pair_ordered"),
        Index("ix_match_constraints_record_id_2", "record_id_2"),
        Index("ix_match_constraints_operation_id", "operation_id"),
    )

    record_id_1: Mapped[int] = mapped_column(
        ForeignKey("source_records.id", ondelete="CASCADE"), primary_key=True
    )
    record_id_2: Mapped[int] = mapped_column(
        ForeignKey("source_records.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # the merge or split that added it (NULL: a reviewer's own decision); undo removes these
    operation_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _now()


class AdjudicationAnswer(Base):
    """Why: an LLM answer costs seconds; keyed by the question's content (model + the two
    histories, hashed), a re-run or a second API worker never asks twice."""

    __tablename__ = "adjudication_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    adjudicator: Mapped[str] = mapped_column(String(40), nullable=False)
    answer: Mapped[dict] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _now()


class ApiToken(Base):
    """Why: every API call but /health carries a bearer token; only its SHA-256 is stored, so
    a leaked table grants nothing, and a revoked token stops working at once."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        _one_of("role", ROLES),
        CheckConstraint("source_system IS NULL OR role = 'source'", name="bound_source_only"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    # a source token bound to one system may submit records only as that system
    source_system: Mapped[str | None] = mapped_column(String(50))
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessAudit(Base):
    """Why: who read which patient's data, and when, must be answerable (HIPAA access
    accounting). Ids only: the audit itself holds no patient data."""

    __tablename__ = "access_audit"
    __table_args__ = (
        Index("ix_access_audit_resource", "resource", "resource_id"),
        Index("ix_access_audit_token_id", "token_id"),
        Index("ix_access_audit_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    resource: Mapped[str] = mapped_column(String(40), nullable=False)
    resource_id: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = _now()
