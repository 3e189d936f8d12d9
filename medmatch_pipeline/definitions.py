"""The code location: one Definitions with the assets, checks, jobs, schedules and sensor.

full_match re-matches everything (nightly schedule); incremental_match matches one landing
batch against the index (a sensor on the landing folder, a 15-minute schedule). All are off
by default; an operator turns them on in the UI (`make ui`). The demo instance has the
incremental schedule on (`medmatch pipeline run --start-incremental-schedule`, as make demo).
"""

import gc
from typing import Any

import dagster as dg

from medmatch.config import get_settings
from medmatch_pipeline.assets import ASSETS, MPI_WRITER
from medmatch_pipeline.checks import CHECKS
from medmatch_pipeline.incremental import (
    incremental_every_15_minutes,
    incremental_match,
    landing_batch_matches,
    new_landing_files,
)
from medmatch_pipeline.resources import Adjudicators, Landing, ModelStore, MPIDatabase
from medmatch_pipeline.run_memory import run_memory_io_manager

full_match = dg.define_asset_job(
    "full_match",
    selection=dg.AssetSelection.assets(*ASSETS),
    description="Land new files and re-match every record of the MPI.",
    tags=MPI_WRITER,
)

nightly_full_match = dg.ScheduleDefinition(
    name="nightly_full_match",
    job=full_match,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,  # an operator turns it on
)


def make_definitions(**resources: Any) -> dg.Definitions:
    """The code location; tests and the demo pass their own resources (an io_manager too)."""
    settings = get_settings()  # MEDMATCH_MODELS_DIR, MEDMATCH_LANDING_DIR: UI and CLI agree
    defaults: dict[str, Any] = {
        # steps hand their outputs (patient data) over in memory, never to Dagster's storage
        "io_manager": run_memory_io_manager,
        "database": MPIDatabase(),
        "adjudicators": Adjudicators(),
        "models": ModelStore(directory=settings.models_dir),
        "landing": Landing(directory=settings.landing_dir),
    }
    return dg.Definitions(
        assets=[*ASSETS, landing_batch_matches],
        asset_checks=CHECKS,
        jobs=[full_match, incremental_match],
        schedules=[nightly_full_match, incremental_every_15_minutes],
        sensors=[new_landing_files],
        resources=defaults | resources,
        # Every step in the run worker's process, not one process per step (Dagster's
        # default): the graph is a chain, so steps never ran side by side, and each step
        # process re-imported the code and reloaded its inputs. A 10K full_match launched
        # as a run took 32.2 s that way and 8.7 s in process (benchmarks/executor.py). The
        # cores are used inside the steps (forked workers, DuckDB's threads).
        executor=dg.in_process_executor,
    )


defs = make_definitions()

# The code location lives as long as its process (webserver, daemon, run worker). Its
# objects, ours and our libraries' (Dagster alone makes hundreds of thousands), never die:
# frozen, the collector's full passes skip them. A 10K full_match run was ~1 s faster, and
# its process exited ~1.5 s sooner (the last collections at exit walked them all). Forked
# workers also leave the frozen objects' pages shared.
gc.freeze()
