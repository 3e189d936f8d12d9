"""The PostgreSQL unit of work: one session, one transaction, the repositories over it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Self

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from medmatch.mpi import repositories as repo
from medmatch.mpi.base import AbstractUnitOfWork
from medmatch.mpi.statements import Statement, execute

# transaction-scoped advisory locks in one statement, taken in one order (sorted in the
# subquery, before the locking function runs) so two writers cannot deadlock
_LOCK = Statement(
    text(
        "SELECT pg_advisory_xact_lock(h) FROM (SELECT hashtextextended(n, 0) AS h"
        " FROM unnest(CAST(:names AS text[])) AS n ORDER BY 1) AS ordered"
    )
)


def session_factory(engine: Engine) -> Callable[[], Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    def __init__(self, factory: Callable[[], Session]) -> None:
        self.factory = factory

    def __enter__(self) -> Self:
        self.session = self.factory()
        self.records = repo.SqlSourceRecords(self.session)
        self.golden = repo.SqlGoldenRecords(self.session)
        self.matches = repo.SqlMatches(self.session)
        self.reviews = repo.SqlReviews(self.session)
        self.answers = repo.SqlAnswers(self.session)
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def lock(self, names: Iterable[str]) -> None:
        hashes = sorted(set(names))
        if hashes:
            execute(self.session, _LOCK, {"names": hashes})
