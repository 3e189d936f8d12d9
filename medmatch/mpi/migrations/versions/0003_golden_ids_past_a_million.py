"""Golden ids past GR-999999, and an index for merged_into.

Why: `lpad(n, 6, '0')` truncates a longer number ('1000000' -> '100000'), so the millionth
golden record would collide with the 100,000th. `next_golden_id()` pads to at least six
digits and calls nextval once. Why the index: every delete or merge that touches a golden
record checks the self-reference merged_into; without an index that scans the whole table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_DEFAULT = "'GR-' || lpad(nextval('golden_record_number')::text, 6, '0')"


def upgrade() -> None:
    op.execute(
        "CREATE FUNCTION next_golden_id() RETURNS text LANGUAGE sql VOLATILE AS $$"
        " SELECT 'GR-' || lpad(n::text, greatest(6, length(n::text)), '0')"
        " FROM (SELECT nextval('golden_record_number') AS n) AS next $$"
    )
    op.alter_column("golden_records", "golden_id", server_default=sa.text("next_golden_id()"))
    op.create_index(op.f("ix_golden_records_merged_into"), "golden_records", ["merged_into"])


def downgrade() -> None:
    op.drop_index(op.f("ix_golden_records_merged_into"), table_name="golden_records")
    op.alter_column("golden_records", "golden_id", server_default=sa.text(OLD_DEFAULT))
    op.execute("DROP FUNCTION next_golden_id()")
