"""Concurrency and failure, on separate connections of a real PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from medmatch.matching import PatientMatcher
from medmatch.mpi.database import libpq_url, make_engine
from medmatch.mpi.services import GoldenRecordService, MatchingService
from medmatch.mpi.unit_of_work import SqlAlchemyUnitOfWork, session_factory
from tests.mpi.test_services import _record


def _race(count, make):
    barrier = threading.Barrier(count)

    def one(i):
        barrier.wait()
        return make(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_sixty_systems_sending_one_new_patient_make_one_golden_record(uow_factory, trained):
    matching = MatchingService(uow_factory, PatientMatcher(trained))
    results = _race(60, lambda i: matching.lookup(_record(f"SYS{i:02d}", f"P{i}")))
    goldens = {r.golden_record_id for r in results}
    assert len(goldens) == 1
    assert sorted(r.decision for r in results).count("new_identity") == 1
    view = GoldenRecordService(uow_factory).get(goldens.pop())
    assert view.source_count == 60 and len(view.source_record_ids) == 60


def test_forty_resends_of_one_record_stay_one_source_record(uow_factory, trained, engine):
    matching = MatchingService(uow_factory, PatientMatcher(trained))
    results = _race(
        40, lambda i: matching.lookup(_record("EHR", "MRN-7", phone=f"617-555-01{i:02d}"))
    )
    assert len({r.source_record_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM source_records")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM golden_records")).scalar_one() == 1


def test_a_connection_killed_mid_merge_leaves_the_database_unchanged(
    uow_factory, trained, engine, database_url
):
    matching = MatchingService(uow_factory, PatientMatcher(trained))
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Elena", date_of_birth="1980-01-01"))

    def snapshot():
        with engine.connect() as conn:
            return [
                conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()
                for table in ("golden_records", "record_links", "link_history", "match_constraints")
            ]

    before = snapshot()
    libpq = libpq_url(database_url)

    class KilledBeforeCommit(SqlAlchemyUnitOfWork):
        def __enter__(self):
            entered = super().__enter__()

            # every statement of the merge has run; the connection dies before the commit
            @event.listens_for(entered.session, "before_commit")
            def kill(session):
                pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                with psycopg.connect(libpq, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

            return entered

    sessions = session_factory(engine)
    factory = lambda: KilledBeforeCommit(sessions)  # noqa: E731

    golden = GoldenRecordService(factory)
    with pytest.raises(DBAPIError):
        golden.merge([a.golden_record_id, b.golden_record_id], actor="clerk")
    assert snapshot() == before
    # and the database still works: the same merge on a healthy connection succeeds
    GoldenRecordService(uow_factory).merge([a.golden_record_id, b.golden_record_id], actor="c")
    assert snapshot() != before


def test_a_pooled_connection_the_server_closed_is_replaced_on_checkout(
    uow_factory, trained, database_url
):
    # no pre-ping round trip: the pool still never hands out a connection the server ended
    engine = make_engine(database_url, pool_size=1)
    matching = MatchingService(
        lambda: SqlAlchemyUnitOfWork(session_factory(engine)), PatientMatcher(trained)
    )
    first = matching.lookup(_record("EHR", "1"))
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    libpq = libpq_url(database_url)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    # the pooled connection is dead now; the next lookup gets a new one and succeeds
    again = matching.lookup(_record("EHR", "2", name_first="Elena", date_of_birth="1980-01-01"))
    assert again.created and again.golden_record_id != first.golden_record_id
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    engine.dispose()
