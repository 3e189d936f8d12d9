"""Batch runs in the audit trail.

Why: a full or incremental pipeline run decides thousands of pairs and moves links; each
match result and each link change it makes names the run (`job_id`, the Dagster run id in
`batch_jobs`), and link_history gets the action 'batch', so an operator can tell what a run
changed and an incremental run can be told from a real-time lookup.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_ACTIONS = "action IN ('lookup', 'merge', 'split', 'undo', 'review')"
NEW_ACTIONS = "action IN ('lookup', 'merge', 'split', 'undo', 'review', 'batch')"


def upgrade() -> None:
    for table in ("match_results", "link_history"):
        op.add_column(table, sa.Column("job_id", sa.String(length=64), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_{table}_job_id_batch_jobs"), table, "batch_jobs", ["job_id"], ["job_id"]
        )
        op.create_index(op.f(f"ix_{table}_job_id"), table, ["job_id"])
    op.drop_constraint(op.f("ck_link_history_action_allowed"), "link_history", type_="check")
    op.create_check_constraint(op.f("ck_link_history_action_allowed"), "link_history", NEW_ACTIONS)


def downgrade() -> None:
    op.execute("DELETE FROM link_history WHERE action = 'batch'")
    op.drop_constraint(op.f("ck_link_history_action_allowed"), "link_history", type_="check")
    op.create_check_constraint(op.f("ck_link_history_action_allowed"), "link_history", OLD_ACTIONS)
    for table in ("match_results", "link_history"):
        op.drop_index(op.f(f"ix_{table}_job_id"), table_name=table)
        op.drop_constraint(op.f(f"fk_{table}_job_id_batch_jobs"), table, type_="foreignkey")
        op.drop_column(table, "job_id")
