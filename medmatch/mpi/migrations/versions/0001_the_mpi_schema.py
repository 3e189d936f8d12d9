"""The MPI schema.

The six tables of the service architecture (source_records, golden_records, record_links,
match_results, review_queue, batch_jobs) with its column names, and what a real MPI needs
besides:

- unique (source_system, external_id): a re-sent record updates its row, never a second
  identity (records without external_id are always new: NULLs are distinct);
- blocking_keys, indexed: real-time candidate search is one index lookup, not a scan;
- link_history: who changed which link, when, why, from which golden record to which and
  from which match result; operation_id groups a merge so it can be undone;
- match_constraints: a reviewer's must-link / cannot-link pairs, respected by later runs;
- adjudication_cache: LLM answers by question content, so nothing is asked twice;
- golden_records.version: bumped by every change (optimistic concurrency on the aggregate);
- match_results.model_version and thresholds: any decision can be explained as it was made;
- review_queue: one open item per pair (partial unique index);
- check constraints on every enum-like column and on confidences; timestamps with time zone.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("golden_record_number")))
    op.create_table(
        "adjudication_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("adjudicator", sa.String(length=40), nullable=False),
        sa.Column("answer", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_adjudication_cache")),
    )
    op.create_table(
        "batch_jobs",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("job_type", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="queued", nullable=False),
        sa.Column("partition_key", sa.String(length=100), nullable=True),
        sa.Column(
            "stats", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_batch_jobs_status_allowed"),
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_batch_jobs")),
    )
    op.create_table(
        "golden_records",
        sa.Column(
            "golden_id",
            sa.String(length=20),
            server_default=sa.text("'GR-' || lpad(nextval('golden_record_number')::text, 6, '0')"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=10), server_default="active", nullable=False),
        sa.Column("merged_into", sa.String(length=20), nullable=True),
        sa.Column(
            "demographics",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "medical_data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("source_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'merged') = (merged_into IS NOT NULL)",
            name=op.f("ck_golden_records_merged_points_to_survivor"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'merged', 'retired')",
            name=op.f("ck_golden_records_status_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["merged_into"],
            ["golden_records.golden_id"],
            name=op.f("fk_golden_records_merged_into_golden_records"),
        ),
        sa.PrimaryKeyConstraint("golden_id", name=op.f("pk_golden_records")),
    )
    op.create_table(
        "source_records",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source_system", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("demographics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "medical_data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("features", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_records")),
        sa.UniqueConstraint(
            "source_system", "external_id", name="uq_source_records_source_identity"
        ),
    )
    op.create_table(
        "blocking_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("source_record_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_record_id"],
            ["source_records.id"],
            name=op.f("fk_blocking_keys_source_record_id_source_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "source_record_id", name=op.f("pk_blocking_keys")),
    )
    op.create_index(
        "ix_blocking_keys_source_record_id", "blocking_keys", ["source_record_id"], unique=False
    )
    op.create_table(
        "match_constraints",
        sa.Column("record_id_1", sa.BigInteger(), nullable=False),
        sa.Column("record_id_2", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('must_link', 'cannot_link')", name=op.f("ck_match_constraints_kind_allowed")
        ),
        sa.CheckConstraint(
            "record_id_1 < record_id_2", name=op.f("ck_match_constraints_pair_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["record_id_1"],
            ["source_records.id"],
            name=op.f("fk_match_constraints_record_id_1_source_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id_2"],
            ["source_records.id"],
            name=op.f("fk_match_constraints_record_id_2_source_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("record_id_1", "record_id_2", name=op.f("pk_match_constraints")),
    )
    op.create_index(
        "ix_match_constraints_record_id_2", "match_constraints", ["record_id_2"], unique=False
    )
    op.create_table(
        "match_results",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source_record_id", sa.BigInteger(), nullable=False),
        sa.Column("candidate_record_id", sa.BigInteger(), nullable=True),
        sa.Column("is_match", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("match_type", sa.String(length=10), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column(
            "evidence", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("explanation", sa.Text(), server_default="", nullable=False),
        sa.Column("medical_similarity", sa.Float(), nullable=True),
        sa.Column("ai_reasoning", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("thresholds", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "decision IN ('auto_match', 'review_required', 'new_identity')",
            name=op.f("ck_match_results_decision_allowed"),
        ),
        sa.CheckConstraint(
            "match_type IN ('exact', 'probable', 'possible', 'no_match')",
            name=op.f("ck_match_results_match_type_allowed"),
        ),
        sa.CheckConstraint(
            "stage IN ('rules', 'scoring', 'ai')", name=op.f("ck_match_results_stage_allowed")
        ),
        sa.CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)",
            name=op.f("ck_match_results_confidence_range"),
        ),
        sa.CheckConstraint(
            "medical_similarity IS NULL OR (medical_similarity >= 0 AND medical_similarity <= 1)",
            name=op.f("ck_match_results_medical_similarity_range"),
        ),
        sa.ForeignKeyConstraint(
            ["candidate_record_id"],
            ["source_records.id"],
            name=op.f("fk_match_results_candidate_record_id_source_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_record_id"],
            ["source_records.id"],
            name=op.f("fk_match_results_source_record_id_source_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_results")),
    )
    op.create_index(
        "ix_match_results_candidate_record_id",
        "match_results",
        ["candidate_record_id"],
        unique=False,
    )
    op.create_index(
        "ix_match_results_source_record_id", "match_results", ["source_record_id"], unique=False
    )
    op.create_table(
        "link_history",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("operation_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("source_record_id", sa.BigInteger(), nullable=True),
        sa.Column("old_golden_id", sa.String(length=20), nullable=True),
        sa.Column("new_golden_id", sa.String(length=20), nullable=True),
        sa.Column("old_status", sa.String(length=10), nullable=True),
        sa.Column("match_result_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "action IN ('lookup', 'merge', 'split', 'undo', 'review')",
            name=op.f("ck_link_history_action_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["match_result_id"],
            ["match_results.id"],
            name=op.f("fk_link_history_match_result_id_match_results"),
        ),
        sa.ForeignKeyConstraint(
            ["new_golden_id"],
            ["golden_records.golden_id"],
            name=op.f("fk_link_history_new_golden_id_golden_records"),
        ),
        sa.ForeignKeyConstraint(
            ["old_golden_id"],
            ["golden_records.golden_id"],
            name=op.f("fk_link_history_old_golden_id_golden_records"),
        ),
        sa.ForeignKeyConstraint(
            ["source_record_id"],
            ["source_records.id"],
            name=op.f("fk_link_history_source_record_id_source_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_history")),
    )
    op.create_index(
        "ix_link_history_new_golden_id", "link_history", ["new_golden_id"], unique=False
    )
    op.create_index(
        "ix_link_history_old_golden_id", "link_history", ["old_golden_id"], unique=False
    )
    op.create_index("ix_link_history_operation_id", "link_history", ["operation_id"], unique=False)
    op.create_table(
        "record_links",
        sa.Column("source_record_id", sa.BigInteger(), nullable=False),
        sa.Column("golden_id", sa.String(length=20), nullable=False),
        sa.Column("link_type", sa.String(length=20), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("match_result_id", sa.BigInteger(), nullable=True),
        sa.Column("linked_by", sa.String(length=100), server_default="system", nullable=False),
        sa.Column(
            "linked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "link_type IN ('auto_match', 'manual_match', 'manual_split', 'new_identity')",
            name=op.f("ck_record_links_link_type_allowed"),
        ),
        sa.CheckConstraint(
            "confidence IS NULL OR (confidence >= 0 AND confidence <= 1)",
            name=op.f("ck_record_links_confidence_range"),
        ),
        sa.ForeignKeyConstraint(
            ["golden_id"],
            ["golden_records.golden_id"],
            name=op.f("fk_record_links_golden_id_golden_records"),
        ),
        sa.ForeignKeyConstraint(
            ["match_result_id"],
            ["match_results.id"],
            name=op.f("fk_record_links_match_result_id_match_results"),
        ),
        sa.ForeignKeyConstraint(
            ["source_record_id"],
            ["source_records.id"],
            name=op.f("fk_record_links_source_record_id_source_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_record_id", name=op.f("pk_record_links")),
    )
    op.create_index("ix_record_links_golden_id", "record_links", ["golden_id"], unique=False)
    op.create_table(
        "review_queue",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("match_result_id", sa.BigInteger(), nullable=True),
        sa.Column("record_id_1", sa.BigInteger(), nullable=False),
        sa.Column("record_id_2", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="5", nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("assigned_to", sa.String(length=100), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("resolver_notes", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN ('confirmed_match', 'confirmed_non_match', "
            "'defer')",
            name=op.f("ck_review_queue_resolution_allowed"),
        ),
        sa.CheckConstraint(
            "status <> 'resolved' OR resolution IN ('confirmed_match', 'confirmed_non_match')",
            name=op.f("ck_review_queue_resolved_is_decided"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'assigned', 'resolved')",
            name=op.f("ck_review_queue_status_allowed"),
        ),
        sa.CheckConstraint(
            "priority BETWEEN 1 AND 10", name=op.f("ck_review_queue_priority_range")
        ),
        sa.CheckConstraint("record_id_1 < record_id_2", name=op.f("ck_review_queue_pair_ordered")),
        sa.ForeignKeyConstraint(
            ["match_result_id"],
            ["match_results.id"],
            name=op.f("fk_review_queue_match_result_id_match_results"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id_1"],
            ["source_records.id"],
            name=op.f("fk_review_queue_record_id_1_source_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id_2"],
            ["source_records.id"],
            name=op.f("fk_review_queue_record_id_2_source_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_queue")),
    )
    op.create_index("ix_review_queue_pending", "review_queue", ["status", "priority"], unique=False)
    op.create_index(
        "uq_review_queue_open_pair",
        "review_queue",
        ["record_id_1", "record_id_2"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_review_queue_open_pair",
        table_name="review_queue",
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.drop_index("ix_review_queue_pending", table_name="review_queue")
    op.drop_table("review_queue")
    op.drop_index("ix_record_links_golden_id", table_name="record_links")
    op.drop_table("record_links")
    op.drop_index("ix_link_history_operation_id", table_name="link_history")
    op.drop_index("ix_link_history_old_golden_id", table_name="link_history")
    op.drop_index("ix_link_history_new_golden_id", table_name="link_history")
    op.drop_table("link_history")
    op.drop_index("ix_match_results_source_record_id", table_name="match_results")
    op.drop_index("ix_match_results_candidate_record_id", table_name="match_results")
    op.drop_table("match_results")
    op.drop_index("ix_match_constraints_record_id_2", table_name="match_constraints")
    op.drop_table("match_constraints")
    op.drop_index("ix_blocking_keys_source_record_id", table_name="blocking_keys")
    op.drop_table("blocking_keys")
    op.drop_table("source_records")
    op.drop_table("golden_records")
    op.drop_table("batch_jobs")
    op.drop_table("adjudication_cache")
    op.execute(sa.schema.DropSequence(sa.Sequence("golden_record_number")))
