"""Reviewer constraints name the merge or split that added them.

Why: undoing a merge or split must remove the must-link / cannot-link pairs that operation
added and nothing else; a reviewer's own earlier decision on the same records must survive
the undo.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("match_constraints", sa.Column("operation_id", sa.String(40), nullable=True))
    op.create_index(
        op.f("ix_match_constraints_operation_id"), "match_constraints", ["operation_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_match_constraints_operation_id"), table_name="match_constraints")
    op.drop_column("match_constraints", "operation_id")
