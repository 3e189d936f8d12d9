"""The composition root: one place that wires settings, engine, unit of work, matcher,
adjudicators and services. The API, the pipeline and the benchmarks all start here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from medmatch.config import Settings, get_settings
from medmatch.matching import MatchModel, PatientMatcher
from medmatch.matching.adjudication import Adjudicator
from medmatch.mpi.base import AbstractUnitOfWork
from medmatch.mpi.database import make_engine
from medmatch.mpi.services import GoldenRecordService, MatchingService, ReviewService
from medmatch.mpi.unit_of_work import SqlAlchemyUnitOfWork, session_factory


@dataclass
class MPI:
    engine: Engine
    uow_factory: Callable[[], AbstractUnitOfWork]
    matcher: PatientMatcher
    matching: MatchingService
    golden: GoldenRecordService
    review: ReviewService


def adjudicators(
    kind: str, settings: Settings, uow_factory: Callable[[], AbstractUnitOfWork]
) -> tuple[Adjudicator, ...]:
    """`adjudicators.from_settings`, with the LLM's answers cached in PostgreSQL."""
    from medmatch.matching.adjudicators import from_settings

    chosen = from_settings(kind, settings)
    for judge in chosen:
        if judge.name == "ollama":
            from medmatch.mpi.answer_cache import PostgresAnswerCache

            judge.cache = PostgresAnswerCache(uow_factory, judge.name)  # type: ignore[attr-defined]
    return chosen


def bootstrap(
    settings: Settings | None = None,
    *,
    url: str | None = None,
    model: MatchModel | None = None,
    adjudicator: str | None = None,
) -> MPI:
    """adjudicator: offline (default), ollama (when OLLAMA_BASE_URL is set, by default) or none."""
    settings = settings or get_settings()
    engine = make_engine(url)
    sessions = session_factory(engine)

    def uow_factory() -> AbstractUnitOfWork:
        return SqlAlchemyUnitOfWork(sessions)

    kind = adjudicator or ("ollama" if settings.ollama_base_url else "offline")
    matcher = PatientMatcher(
        model, thresholds=settings.thresholds, adjudicator=adjudicators(kind, settings, uow_factory)
    )
    return MPI(
        engine=engine,
        uow_factory=uow_factory,
        matcher=matcher,
        matching=MatchingService(uow_factory, matcher, settings),
        golden=GoldenRecordService(uow_factory, settings.source_trust),
        review=ReviewService(uow_factory, settings.source_trust),
    )
