"""Statements run on the session's psycopg connection: SQLAlchemy's error shapes, no
parameters in messages, a lost connection replaced, JSON and literal binds filled in."""

import psycopg
import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, IntegrityError

from medmatch.mpi import schema as t
from medmatch.mpi.domain import Link
from medmatch.mpi.statements import Statement, execute
from medmatch.mpi.unit_of_work import session_factory


def test_json_and_literal_binds_are_filled_in(engine):
    golden = t.GoldenRecord.__table__
    statement = Statement(
        select(
            bindparam("doc", type_=JSONB)["name"].astext,
            golden.c.version + 1,  # a literal bind: SQLAlchemy's own value
        ).where(golden.c.golden_id == bindparam("golden_id"))
    )
    assert statement.json == {"doc"} and 1 in statement.literals.values()
    with session_factory(engine)() as session:
        session.execute(text("INSERT INTO golden_records (golden_id, version) VALUES ('GR-X', 4)"))
        rows = execute(session, statement, {"doc": {"name": "Ann"}, "golden_id": "GR-X"})
        assert rows.fetchall() == [("Ann", 5)]
        session.rollback()


def test_errors_keep_sqlalchemys_shape_without_the_parameters(uow_factory):
    with uow_factory() as uow:
        record, _ = uow.records.upsert("A", "secret-id", {"name_last": "Garcia"}, {}, {})
        with pytest.raises(IntegrityError) as caught:  # no such golden record
            uow.golden.set_link(Link(record.id, "GR-404", "manual_match", 1.0))
        assert isinstance(caught.value.orig, psycopg.errors.ForeignKeyViolation)
        # the server's own detail names the key; the statement's parameters are not listed
        assert "[parameters" not in str(caught.value) and "manual_match" not in str(caught.value)
        uow.rollback()


def test_a_lost_connection_is_replaced(engine, uow_factory):
    with uow_factory() as uow:
        pid = execute(uow.session, Statement(text("SELECT pg_backend_pid()"))).fetchone()[0]
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as caught:
            uow.records.get(1)
        assert caught.value.connection_invalidated
    with uow_factory() as uow:  # the pool hands out a live connection
        assert uow.records.get(1) is None
