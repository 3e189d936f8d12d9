"""A real PostgreSQL for the MPI tests: DATABASE_URL when set, else one embedded server per
test session, a fresh migrated database per test module, emptied before each test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from medmatch.mpi.database import (
    libpq_url,
    make_engine,
    sqlalchemy_url,
    start_embedded,
    stop_embedded,
    with_database,
)
from medmatch.mpi.migrate import upgrade
from medmatch.mpi.unit_of_work import SqlAlchemyUnitOfWork, session_factory

TABLES = (
    "adjudication_cache, batch_jobs, blocking_keys, link_history, match_constraints, "
    "review_queue, record_links, match_results, golden_records, source_records"
)


@pytest.fixture(scope="session")
def server_url() -> str:
    """A libpq URL of a server we may create databases on."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    # outside pytest's temp folders: another pytest run may rotate those away
    home = Path(tempfile.mkdtemp(prefix="medmatch-pg-"))
    data = home / "data"
    yield start_embedded(data)
    stop_embedded(data)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def database_url(server_url):
    name = f"mm_test_{uuid.uuid4().hex[:10]}"
    plain = libpq_url(server_url)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(with_database(plain, name))
    upgrade(url)
    yield url
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def engine(database_url):
    engine = make_engine(database_url, pool_size=20)
    yield engine
    engine.dispose()


@pytest.fixture
def uow_factory(engine):
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        conn.execute(text("ALTER SEQUENCE golden_record_number RESTART"))
    factory = session_factory(engine)
    return lambda: SqlAlchemyUnitOfWork(factory)
