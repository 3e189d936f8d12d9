"""`medmatch db ...`: the MPI's PostgreSQL (embedded unless DATABASE_URL is set)."""

from __future__ import annotations

import typer
from rich.console import Console

db_app = typer.Typer(help="The MPI's PostgreSQL: start, stop, url, upgrade.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _settings():  # type: ignore[no-untyped-def]
    from medmatch.config import get_settings

    return get_settings()


@db_app.command()
def start() -> None:
    """Start the embedded PostgreSQL in MEDMATCH_PG_DATA_DIR (reused if running)."""
    from medmatch.mpi.database import start_embedded

    settings = _settings()
    if settings.database_url:
        err.print("DATABASE_URL is set: MedMatch uses that server, nothing to start")
        return
    url = start_embedded(settings.pg_data_dir)
    out.print(f"PostgreSQL running in {settings.pg_data_dir}: {url}")


@db_app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL."""
    from medmatch.mpi.database import stop_embedded

    settings = _settings()
    stopped = stop_embedded(settings.pg_data_dir)
    out.print("stopped" if stopped else f"no embedded PostgreSQL running in {settings.pg_data_dir}")


@db_app.command()
def url() -> None:
    """Print the database URL (starting the embedded server if need be)."""
    from medmatch.mpi.database import database_url

    out.print(database_url().replace("postgresql+psycopg://", "postgresql://"), soft_wrap=True)


@db_app.command()
def upgrade(revision: str = typer.Argument("head", help="Alembic revision")) -> None:
    """Create or migrate the MPI schema (Alembic)."""
    from medmatch.mpi import migrate
    from medmatch.mpi.database import database_url

    migrate.upgrade(database_url(), revision)
    out.print(f"schema at {revision}")
