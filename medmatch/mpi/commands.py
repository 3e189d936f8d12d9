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
    from medmatch.mpi.database import database_url, libpq_url

    out.print(libpq_url(database_url()), soft_wrap=True)


@db_app.command()
def upgrade(revision: str = typer.Argument("head", help="Alembic revision")) -> None:
    """Create or migrate the MPI schema (Alembic)."""
    from medmatch.mpi import migrate
    from medmatch.mpi.database import database_url

    migrate.upgrade(database_url(), revision)
    out.print(f"schema at {revision}")


token_app = typer.Typer(help="API tokens: create, revoke, list.", no_args_is_help=True)


def _tokens():  # type: ignore[no-untyped-def]
    from medmatch.mpi import migrate
    from medmatch.mpi.access import TokenStore
    from medmatch.mpi.database import database_url, make_engine

    url = database_url()
    migrate.upgrade(url)
    return TokenStore(make_engine(url))


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., help="source, reviewer, operator or admin"),
    name: str = typer.Option(..., help="who or what holds the token (unique)"),
    source_system: str | None = typer.Option(None, help="bind a source token to one source system"),
) -> None:
    """Create a token; it is printed once, alone on the last line."""
    from medmatch.errors import MedMatchError

    try:
        token_id, secret = _tokens().create(name, role, source_system)
    except MedMatchError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    err.print(f"token {token_id} ({role}) for {name}: store it now, it is not shown again")
    print(secret)  # noqa: T201 - the one line a script reads


@token_app.command("revoke")
def token_revoke(name: str = typer.Argument(..., help="the token's name")) -> None:
    """Revoke a token at once."""
    from medmatch.errors import MedMatchError

    try:
        _tokens().revoke(name)
    except MedMatchError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    out.print(f"revoked {name}")


@token_app.command("list")
def token_list() -> None:
    """Tokens by name and role (never the secrets: they are not stored)."""
    for info in _tokens().list():
        state = "revoked" if info.revoked else "live"
        bound = f" as {info.source_system}" if info.source_system else ""
        typer.echo(f"{info.id}\t{info.name}\t{info.role}{bound}\t{state}")
