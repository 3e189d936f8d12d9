"""What the API runs on, built once per process: the MPI services, tokens, audit, read
views, the event bus and the batch service."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from medmatch.config import Settings, get_settings
from medmatch.matching import MatchModel, PatientMatcher
from medmatch.mpi.access import AccessAudit, TokenStore, VerifiedTokens
from medmatch.mpi.bootstrap import MPI, bootstrap
from medmatch.mpi.database import database_url, libpq_url, sqlalchemy_url
from medmatch.mpi.services import MatchingService
from medmatch.mpi.views import MpiViews
from medmatch_api.batch import BatchService
from medmatch_api.events import EventBus


def _dagster_instance():  # type: ignore[no-untyped-def]
    import dagster as dg

    from medmatch_pipeline.instance import prepare

    prepare()
    return dg.DagsterInstance.get()


class PromotedModel:
    """Lookups score with the model the pipeline promoted (`models_dir/current.json`, else
    the shipped one) and switch to a newly promoted one on the next request: one model,
    two engines. Each request takes one service, so a switch never mixes two models."""

    def __init__(self, mpi: MPI, settings: Settings) -> None:
        self.mpi, self.settings = mpi, settings
        self.path = Path(settings.models_dir) / "current.json"
        self._stamp: float | None = None
        self._service = mpi.matching
        self._lock = threading.Lock()

    def service(self) -> MatchingService:
        stamp = self.path.stat().st_mtime if self.path.exists() else None
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    model = MatchModel.load(self.path) if stamp is not None else None
                    matcher = PatientMatcher(
                        model,
                        thresholds=self.settings.thresholds,
                        adjudicator=self.mpi.matcher.adjudicators,
                    )
                    self._service = MatchingService(self.mpi.uow_factory, matcher, self.settings)
                    self._stamp = stamp
        return self._service


@dataclass
class ApiContext:
    settings: Settings
    mpi: MPI
    tokens: VerifiedTokens
    audit: AccessAudit
    views: MpiViews
    events: EventBus
    batch: BatchService
    model: PromotedModel

    @classmethod
    def create(cls, settings: Settings | None = None) -> ApiContext:
        settings = settings or get_settings()
        url = sqlalchemy_url(settings.database_url) if settings.database_url else database_url()
        mpi = bootstrap(settings, url=url)
        tokens = VerifiedTokens(TokenStore(mpi.engine), settings.api_token_cache_s)
        events = EventBus(libpq_url(url), tokens.forget)
        batch = BatchService(settings, mpi.engine, _dagster_instance, events.publish)
        return cls(
            settings=settings,
            mpi=mpi,
            tokens=tokens,
            audit=AccessAudit(mpi.engine),
            views=MpiViews(mpi.engine),
            events=events,
            batch=batch,
            model=PromotedModel(mpi, settings),
        )

    @property
    def matching(self) -> MatchingService:
        return self.model.service()

    def close(self) -> None:
        self.batch.close()
        self.mpi.engine.dispose()
