"""What the API runs on, built once per process: the MPI services, tokens, audit, read
views, the event bus and the batch service."""

from __future__ import annotations

from dataclasses import dataclass

from medmatch.config import Settings, get_settings
from medmatch.mpi.access import AccessAudit, TokenStore
from medmatch.mpi.bootstrap import MPI, bootstrap
from medmatch.mpi.database import database_url, sqlalchemy_url
from medmatch.mpi.views import MpiViews
from medmatch_api.batch import BatchService
from medmatch_api.events import EventBus


def _dagster_instance():  # type: ignore[no-untyped-def]
    import dagster as dg

    from medmatch_pipeline.instance import prepare

    prepare()
    return dg.DagsterInstance.get()


@dataclass
class ApiContext:
    settings: Settings
    mpi: MPI
    tokens: TokenStore
    audit: AccessAudit
    views: MpiViews
    events: EventBus
    batch: BatchService

    @classmethod
    def create(cls, settings: Settings | None = None) -> ApiContext:
        settings = settings or get_settings()
        url = sqlalchemy_url(settings.database_url) if settings.database_url else database_url()
        mpi = bootstrap(settings, url=url)
        events = EventBus(mpi.engine, url.replace("postgresql+psycopg://", "postgresql://"))
        batch = BatchService(settings, mpi.engine, _dagster_instance, events.publish)
        return cls(
            settings=settings,
            mpi=mpi,
            tokens=TokenStore(mpi.engine),
            audit=AccessAudit(mpi.engine),
            views=MpiViews(mpi.engine),
            events=events,
            batch=batch,
        )

    def close(self) -> None:
        self.mpi.engine.dispose()
