"""Dagster resources: the MPI's database, the adjudicators, the model store, the landing zone.

Each reads MedMatch's settings (environment) unless configured: the same PostgreSQL, Ollama
and thresholds as the API.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg
from sqlalchemy import Engine

from medmatch.config import get_settings
from medmatch.matching import MatchModel
from medmatch.matching.adjudication import Adjudicator


@cache
def _engine(url: str | None) -> Engine:
    from medmatch.mpi.database import make_engine

    return make_engine(url)


class MPIDatabase(dg.ConfigurableResource):
    """PostgreSQL of the MPI; empty url: DATABASE_URL, else the embedded server."""

    url: str = ""

    def engine(self) -> Engine:
        return _engine(self.url or None)

    def scalar(self, sql: str) -> int:
        """One number from the MPI (a count for metadata or a check)."""
        from sqlalchemy import text

        with self.engine().connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())

    def uow_factory(self):  # type: ignore[no-untyped-def]
        from medmatch.mpi.unit_of_work import SqlAlchemyUnitOfWork, session_factory

        sessions = session_factory(self.engine())
        return lambda: SqlAlchemyUnitOfWork(sessions)


class Adjudicators(dg.ConfigurableResource):
    """offline, ollama or none; 'auto': ollama when OLLAMA_BASE_URL is set, else offline."""

    kind: str = "auto"

    def build(self, database: MPIDatabase) -> tuple[Adjudicator, ...]:
        from medmatch.mpi.bootstrap import adjudicators

        settings = get_settings()
        kind = self.kind
        if kind == "auto":
            kind = "ollama" if settings.ollama_base_url else "offline"
        return adjudicators(kind, settings, database.uow_factory())


class ModelStore(dg.ConfigurableResource):
    """Versioned model JSON files; `current.json` is the promoted one."""

    directory: str = ".medmatch/models"
    # False: every run uses the promoted model (or the shipped one) and never retrains
    retrain: bool = True

    def current(self) -> MatchModel | None:
        path = Path(self.directory) / "current.json"
        return MatchModel.load(path) if path.exists() else None

    def save(self, model: MatchModel, *, promote: bool) -> Path:
        folder = Path(self.directory)
        path = model.save(folder / f"{model.version}.json")
        if promote:
            model.save(folder / "current.json")
        return path


class Landing(dg.ConfigurableResource):
    """The folder where source systems drop CSV or Parquet files: `*demographics*` files,
    each with an optional `*medical*` twin (same name, 'medical' for 'demographics')."""

    directory: str = ".medmatch/landing"

    def files(self) -> list[Path]:
        folder = Path(self.directory)
        if not folder.exists():
            return []
        found = [p for p in folder.iterdir() if p.suffix in (".csv", ".parquet")]
        return sorted(p for p in found if "demographics" in p.name)

    def medical_for(self, path: Path) -> Path | None:
        twin = path.with_name(path.name.replace("demographics", "medical"))
        return twin if twin != path and twin.exists() else None
