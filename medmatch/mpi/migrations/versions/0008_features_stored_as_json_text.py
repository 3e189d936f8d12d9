"""source_records.features is json (its text as sent), not jsonb.

Why: the feature row is written whole and read whole (the matcher's input: a lookup's
candidates, a batch run's snapshot), never queried inside, compared or indexed. jsonb
parses it into its binary form on every write and prints it back to text on every read;
json only checks it is valid JSON and keeps the text. At 100K records, reading every
feature row with its id added took 0.50-0.54 s as jsonb and 0.18-0.20 s as json (the
batch snapshot), and loading them 0.25 s less. The demographics and medical data stay
jsonb: re-sends compare them (IS DISTINCT FROM), which json cannot.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column(
        "source_records",
        "features",
        type_=postgresql.JSON(astext_type=sa.Text()),
        existing_nullable=False,
        postgresql_using="features::json",
    )


def downgrade() -> None:
    op.alter_column(
        "source_records",
        "features",
        type_=postgresql.JSONB(astext_type=sa.Text()),
        existing_nullable=False,
        postgresql_using="features::jsonb",
    )
