"""Statements compiled once for psycopg and run on a session's own psycopg connection.

The real-time lookup runs ~7 short statements per call. Through SQLAlchemy's execution path
each one also paid for a result object and its column metadata, built anew per call for a
textual or DML statement: at 8 concurrent lookups on 2 cores that was about a quarter of the
client's CPU. A `Statement` keeps what SQLAlchemy is good at, building the SQL (the Core
statements of `repositories.py`), and runs the compiled text on the psycopg connection the
session's transaction is on: same connection, same transaction, psycopg's own prepared
statements, rows as plain tuples.

Errors keep SQLAlchemy's shape (`DBAPIError` wrapping psycopg's), as callers and the API's
handlers expect, without the parameters: they may hold patient data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.expression import ClauseElement

from medmatch.mpi.database import json_text

_DIALECT = psycopg_dialect.dialect()


class Statement:
    """One SQL text with named placeholders (`%(name)s`), and the parameters SQLAlchemy would
    have filled in itself: the values of literal binds (`version + 1`) and JSON written out."""

    __slots__ = ("sql", "literals", "json")

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql: str = compiled.string
        self.literals = {
            name: value
            for name, value in compiled.construct_params(_check=False).items()
            if value is not None
        }
        self.json = frozenset(
            name
            for bind, name in compiled.bind_names.items()
            if isinstance(bind.type, sqltypes.JSON)
        )

    def parameters(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        values = self.literals | dict(given or {})
        for name in self.json:
            if values.get(name) is not None:
                values[name] = json_text(values[name])
        return values


def execute(
    session: Session, statement: Statement, params: Mapping[str, Any] | None = None
) -> psycopg.Cursor[Any]:
    """Run `statement` in the session's transaction; the cursor holds its rows."""
    connection = session.connection()
    conn: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    try:
        return conn.execute(statement.sql, statement.parameters(params))  # type: ignore[arg-type]
    except psycopg.Error as exc:
        lost = conn.broken
        if lost:  # as SQLAlchemy would: the pool replaces the connection, never reuses it
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement.sql,
            None,
            exc,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=lost,
        ) from exc
