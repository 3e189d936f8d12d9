"""API tokens (hashed, revocable, with a role) and the access audit.

Why: every API call but /health needs a bearer token whose role says what it may do; only
the token's SHA-256 is stored. Every read of patient data through the API is written to
access_audit (who, what, when; ids only), so access to a patient's record can be accounted
for.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("source_system", sa.String(50), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('source', 'reviewer', 'operator', 'admin')",
            name=op.f("ck_api_tokens_role_allowed"),
        ),
        sa.CheckConstraint(
            "source_system IS NULL OR role = 'source'", name=op.f("ck_api_tokens_bound_source_only")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "access_audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("resource", sa.String(40), nullable=False),
        sa.Column("resource_id", sa.String(100), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_access_audit_token_id_api_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_audit")),
    )
    op.create_index("ix_access_audit_resource", "access_audit", ["resource", "resource_id"])
    op.create_index("ix_access_audit_token_id", "access_audit", ["token_id"])
    op.create_index("ix_access_audit_created_at", "access_audit", ["created_at"])


def downgrade() -> None:
    op.drop_table("access_audit")
    op.drop_table("api_tokens")
