"""The two audit tables, link_history and match_results, without foreign keys to the
records they name; their job_id indexes only over the rows of batch runs.

Why: both are append-only records of decisions. Their foreign keys made them worse as an
audit and slow as tables:
- ON DELETE CASCADE from source_records would erase every comparison and every link change
  of a record the day the record is deleted, which is when that history is asked for;
- each key is a check per inserted row that locks the row it names (FOR KEY SHARE). A lookup
  stores ~25 comparisons at a million records, so it locked ~25 candidate rows that other
  lookups lock too: at 8 concurrent lookups on 1M records the server spent 10.7 ms of CPU per
  lookup with the keys and 6.8 ms without, and its waits on buffer locks went away
  (`benchmarks/README.md`). A first full run writes a million history rows, and EXPLAIN
  ANALYZE put link_history's five checks at ~75% of those inserts.
The writers take every id from rows they read or change in the same transaction. The ids
stay indexed for the reads that use them. job_id is NULL for every lookup: its indexes now
cover batch rows only (`job_id = ...` queries use them as before).
review_queue keeps its keys: an open review item must name records that exist.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEYS = (
    ("link_history", "source_record_id", "source_records", "id", "CASCADE"),
    ("link_history", "old_golden_id", "golden_records", "golden_id", None),
    ("link_history", "new_golden_id", "golden_records", "golden_id", None),
    ("link_history", "match_result_id", "match_results", "id", None),
    ("link_history", "job_id", "batch_jobs", "job_id", None),
    ("match_results", "source_record_id", "source_records", "id", "CASCADE"),
    ("match_results", "candidate_record_id", "source_records", "id", "CASCADE"),
)
JOB_INDEXED = ("link_history", "match_results")


def upgrade() -> None:
    for table, column, remote_table, _, _ in KEYS:
        op.drop_constraint(op.f(f"fk_{table}_{column}_{remote_table}"), table, "foreignkey")
    for table in JOB_INDEXED:
        op.drop_index(op.f(f"ix_{table}_job_id"), table_name=table)
        op.create_index(
            op.f(f"ix_{table}_job_id"),
            table,
            ["job_id"],
            postgresql_where=sa.text("job_id IS NOT NULL"),
        )


def downgrade() -> None:
    for table in JOB_INDEXED:
        op.drop_index(op.f(f"ix_{table}_job_id"), table_name=table)
        op.create_index(op.f(f"ix_{table}_job_id"), table, ["job_id"])
    for table, column, remote_table, remote, ondelete in KEYS:
        op.create_foreign_key(
            op.f(f"fk_{table}_{column}_{remote_table}"),
            table,
            remote_table,
            [column],
            [remote],
            ondelete=ondelete,
        )
