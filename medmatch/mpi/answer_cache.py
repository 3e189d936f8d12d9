"""The LLM's answers in PostgreSQL (`adjudication_cache`): every API worker and pipeline run
shares them, so a question is asked once. Each get/put is its own short transaction: an
answer stays valid whatever happens to the lookup that asked it."""

from __future__ import annotations

from collections.abc import Callable

from medmatch.matching.adjudicators.ollama import LLMAnswer
from medmatch.mpi.base import AbstractUnitOfWork


class PostgresAnswerCache:
    def __init__(self, uow_factory: Callable[[], AbstractUnitOfWork], adjudicator: str) -> None:
        self.uow_factory = uow_factory
        self.adjudicator = adjudicator

    def get(self, key: str) -> LLMAnswer | None:
        with self.uow_factory() as uow:
            stored = uow.answers.get(key)
        # a row that no longer validates (an older schema) is asked again, not trusted
        try:
            return LLMAnswer.model_validate(stored) if stored is not None else None
        except ValueError:
            return None

    def put(self, key: str, answer: LLMAnswer) -> None:
        with self.uow_factory() as uow:
            uow.answers.put(key, self.adjudicator, answer.model_dump())
            uow.commit()
