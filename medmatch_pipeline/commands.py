"""`medmatch pipeline run|env`: the Dagster pipeline from the command line (and make demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

pipeline_app = typer.Typer(
    help="The Dagster pipeline: run a job, set up the UI.", no_args_is_help=True
)
out = Console()


@pipeline_app.command()
def run(
    landing: Annotated[
        Path | None,
        typer.Option(help="folder of *demographics* (+ *medical*) files [MEDMATCH_LANDING_DIR]"),
    ] = None,
    job: Annotated[str, typer.Option(help="full_match or incremental_match")] = "full_match",
    partition: Annotated[
        str | None, typer.Option(help="incremental_match: the landing batch (a file name)")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="the Dagster run id to use (the API chooses it)")
    ] = None,
    adjudicator: Annotated[str, typer.Option(help="auto, offline, ollama or none")] = "auto",
    start_incremental_schedule: Annotated[
        bool,
        typer.Option(help="turn the 15-minute incremental schedule on in this instance (demo)"),
    ] = False,
) -> None:
    """Run a job on the Dagster instance in DAGSTER_HOME (runs show in the UI)."""
    import dagster as dg

    from medmatch.config import get_settings
    from medmatch.mpi import migrate
    from medmatch.mpi.database import database_url
    from medmatch_pipeline.definitions import make_definitions
    from medmatch_pipeline.instance import prepare
    from medmatch_pipeline.resources import Adjudicators, Landing, MPIDatabase

    home, _ = prepare()
    migrate.upgrade(database_url())
    landing = landing or Path(get_settings().landing_dir)
    defs = make_definitions(
        landing=Landing(directory=str(landing.resolve())),
        adjudicators=Adjudicators(kind=adjudicator),
    )
    with dg.DagsterInstance.get() as instance:
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        if partition is not None:
            instance.add_dynamic_partitions("landing_batches", [partition])
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            run_config=quiet,
            raise_on_error=False,
            run_id=run_id,
            partition_key=partition,
        )
        timings = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0)
            for s in instance.get_run_step_stats(result.run_id)
        }
    if not result.success:
        raise typer.Exit(1)
    with MPIDatabase().engine().connect() as conn:
        counts = _counts(conn, result.run_id)
    table = Table(title=f"{job} run {result.run_id[:8]}", show_header=False)
    for name, value in counts.items():
        table.add_row(name, f"{value:,}")
    for step, seconds in timings.items():
        table.add_row(f"time: {step}", f"{seconds:.2f} s")
    out.print(table)
    if start_incremental_schedule:
        start_schedule(INCREMENTAL_SCHEDULE)
        out.print(f"schedule {INCREMENTAL_SCHEDULE}: on (runs while the UI's daemon runs)")
    out.print(f"Dagster UI on this instance ({home}): make ui, then Runs")


INCREMENTAL_SCHEDULE = "incremental_every_15_minutes"


def start_schedule(name: str) -> None:
    """Turn a schedule on in the instance of DAGSTER_HOME, as `dagster dev -w workspace.yaml`
    names it (the stored state is keyed by the workspace's code location): Dagster's own
    `dagster schedule start` on the repo's workspace.yaml."""
    import subprocess
    import sys

    from medmatch_pipeline.instance import ROOT

    subprocess.run(
        [sys.executable, "-m", "dagster", "schedule", "start", name, "-w", "workspace.yaml"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def _counts(conn, run_id: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    queries = {
        "source records": "SELECT count(*) FROM source_records",
        "golden records (active)": "SELECT count(*) FROM golden_records WHERE status = 'active'",
        "auto-matched pairs (this run)": (
            "SELECT count(*) FROM match_results WHERE job_id = :run AND is_match"
        ),
        "queued for review (open)": "SELECT count(*) FROM review_queue WHERE status <> 'resolved'",
    }
    return {k: int(conn.execute(text(q), {"run": run_id}).scalar_one()) for k, q in queries.items()}


@pipeline_app.command()
def env() -> None:
    """Print the environment `dagster dev -w workspace.yaml` needs for this instance."""
    from medmatch_pipeline.instance import prepare

    home, url = prepare()
    out.print(f"export DAGSTER_HOME={home}", soft_wrap=True)
    out.print(f"export DAGSTER_PG_URL='{url}'", soft_wrap=True)
