"""The migrations build exactly the schema the models describe, and go down and up again."""

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from medmatch.mpi.database import libpq_url, sqlalchemy_url, with_database
from medmatch.mpi.migrate import downgrade, upgrade
from medmatch.mpi.schema import Base


def test_migrations_match_the_models_and_reverse(server_url):
    plain = libpq_url(server_url)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS mm_migrations")
        conn.execute("CREATE DATABASE mm_migrations")
    url = sqlalchemy_url(with_database(plain, "mm_migrations"))
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
