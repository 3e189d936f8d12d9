"""match_results.candidate_record_id: checked by a trigger, no longer a foreign key.

Why: a foreign key check locks the referenced row (SELECT ... FOR KEY SHARE). A lookup stores
one match result per candidate (~25 at a million records), so it locked ~25 source_records
rows: each lock dirties the candidate's heap page, and the first change of a page after a
checkpoint writes the whole page to the WAL that the commit waits for. Measured on ~200K
records right after a CHECKPOINT (300 lookups, ~9 candidates each): 146.7 and 142.3 KB of
WAL per lookup with the foreign key, 97.4 KB without it.

What stays: a match result naming a candidate that does not exist is still refused (an
AFTER INSERT statement trigger over the inserted rows, SQLSTATE 23503 like a foreign key),
and deleting a source record still deletes the match results naming it as candidate (an
AFTER DELETE statement trigger, in place of ON DELETE CASCADE; source_record_id keeps its
foreign key). What is lost: the check takes no lock, so a candidate deleted by another
transaction between the check and the commit would leave a match result naming it. MedMatch
never deletes source records; a deletion by hand is the one way to get there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FK = "fk_match_results_candidate_record_id_source_records"


def upgrade() -> None:
    op.drop_constraint(FK, "match_results", type_="foreignkey")
    op.execute(
        """
        CREATE FUNCTION match_results_candidates_exist() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (
                SELECT FROM added a
                WHERE a.candidate_record_id IS NOT NULL
                  AND NOT EXISTS (SELECT FROM source_records s WHERE s.id = a.candidate_record_id)
            ) THEN
                RAISE foreign_key_violation USING
                    MESSAGE = 'match_results.candidate_record_id names no source record';
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER match_results_candidates_exist AFTER INSERT ON match_results"
        " REFERENCING NEW TABLE AS added FOR EACH STATEMENT"
        " EXECUTE FUNCTION match_results_candidates_exist()"
    )
    op.execute(
        """
        CREATE FUNCTION match_results_drop_deleted_candidates() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM match_results m USING gone g WHERE m.candidate_record_id = g.id;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER match_results_drop_deleted_candidates AFTER DELETE ON source_records"
        " REFERENCING OLD TABLE AS gone FOR EACH STATEMENT"
        " EXECUTE FUNCTION match_results_drop_deleted_candidates()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER match_results_drop_deleted_candidates ON source_records")
    op.execute("DROP FUNCTION match_results_drop_deleted_candidates()")
    op.execute("DROP TRIGGER match_results_candidates_exist ON match_results")
    op.execute("DROP FUNCTION match_results_candidates_exist()")
    op.create_foreign_key(
        FK,
        "match_results",
        "source_records",
        ["candidate_record_id"],
        ["id"],
        ondelete="CASCADE",
    )
