"""The migrations build exactly the schema the models describe, and go down and up again."""

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from medmatch.mpi.database import with_database
from medmatch.mpi.migrate import downgrade, upgrade
from medmatch.mpi.schema import Base


def test_migrations_match_the_models_and_reverse(server_url):
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS mm_migrations")
        conn.execute("CREATE DATABASE mm_migrations")
    url = with_database(plain, "mm_migrations").replace("postgresql://", "postgresql+psycopg://")
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        downgrade(url, "0001")
        downgrade(url, "base")
        upgrade(url)
    finally:
        engine.dispose()


def test_golden_ids_go_past_a_million(uow_factory, engine):
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("SELECT setval('golden_record_number', 999998)"))
    with uow_factory() as uow:
        ids = [uow.golden.create().golden_id for _ in range(3)]
        uow.commit()
    assert ids == ["GR-999999", "GR-1000000", "GR-1000001"]


def test_a_match_result_needs_its_candidate_and_goes_with_it(uow_factory, engine):
    # migration 0006: triggers, not a foreign key, on match_results.candidate_record_id
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from tests.mpi.test_contract import _add, _entry

    with uow_factory() as uow:
        a, b, c = (_add(uow, external_id=x) for x in "abc")
        kept = uow.matches.add_many([_entry(a.id, b.id), _entry(a.id, c.id), _entry(c.id, a.id)])
        uow.commit()
    with uow_factory() as uow, pytest.raises(IntegrityError):
        uow.matches.add_many([_entry(a.id, b.id), _entry(a.id, c.id + 100)])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM source_records WHERE id = :id"), {"id": c.id})
        left = conn.execute(text("SELECT id FROM match_results ORDER BY id")).scalars().all()
    # c's match results went with it, as candidate and as source; a's with b stayed
    assert left == kept[:1]
