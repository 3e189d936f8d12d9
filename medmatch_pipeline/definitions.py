"""The code location: one Definitions with the assets, checks, jobs, schedules and sensor."""

import dagster as dg

from medmatch_pipeline.assets import ASSETS
from medmatch_pipeline.checks import CHECKS
from medmatch_pipeline.resources import Adjudicators, Landing, ModelStore, MPIDatabase

full_match = dg.define_asset_job(
    "full_match",
    selection=dg.AssetSelection.assets(*ASSETS),
    description="Land new files and re-match every record of the MPI.",
)

nightly_full_match = dg.ScheduleDefinition(
    name="nightly_full_match",
    job=full_match,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,  # an operator turns it on
)


@dg.sensor(
    job=full_match, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED
)
def new_landing_files(context: dg.SensorEvaluationContext, landing: Landing):  # type: ignore[no-untyped-def]
    """A run when landing files appear or change (the cursor is the newest file seen)."""
    files = landing.files()
    stamps = sorted(f"{p.stat().st_mtime_ns}:{p.name}" for p in files)
    newest = stamps[-1] if stamps else ""
    if not newest or newest <= (context.cursor or ""):
        return dg.SkipReason("no new landing file")
    context.update_cursor(newest)
    return dg.RunRequest(run_key=newest)


def make_definitions(**resources: dg.ConfigurableResource) -> dg.Definitions:
    """The code location; tests and the demo pass their own resources."""
    defaults: dict[str, dg.ConfigurableResource] = {
        "database": MPIDatabase(),
        "adjudicators": Adjudicators(),
        "models": ModelStore(),
        "landing": Landing(),
    }
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[full_match],
        schedules=[nightly_full_match],
        sensors=[new_landing_files],
        resources=defaults | resources,
    )


defs = make_definitions()
