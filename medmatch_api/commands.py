"""`medmatch serve`: the API under uvicorn, on the MPI's database (migrated first)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str | None, typer.Option(help="[MEDMATCH_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="[MEDMATCH_API_PORT]")] = None,
    workers: Annotated[int | None, typer.Option(help="processes [MEDMATCH_API_WORKERS]")] = None,
) -> None:
    """Serve the REST and WebSocket API (docs at /docs)."""
    import uvicorn

    from medmatch.config import get_settings
    from medmatch.mpi import migrate
    from medmatch.mpi.database import database_url
    from medmatch.mpi.prewarm import prewarm
    from medmatch_api.logs import log_config
    from medmatch_pipeline.instance import prepare

    settings = get_settings()
    url = database_url()
    migrate.upgrade(url)
    if settings.api_prewarm:
        warmed = prewarm(url)
        if warmed is not None:
            typer.echo(
                f"PostgreSQL's buffers: {warmed.blocks:,} blocks of the lookup's tables read in"
                f" {warmed.seconds} s (at most {warmed.budget:,})",
                err=True,
            )
    prepare()  # DAGSTER_HOME and DAGSTER_PG_URL, inherited by every worker and run
    uvicorn.run(
        "medmatch_api.main:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        log_level="info",
        log_config=log_config(),
        access_log=True,
    )
