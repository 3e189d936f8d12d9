"""Incremental matching: one landing file = one partition (dynamic partitions).

Why dynamic partitions per landing batch, not time windows on received_at: a batch is what
a source system delivers and what an operator re-runs or backfills ("the LAB file of
Tuesday"); a file re-sent under the same name is the same partition, and re-running it is a
no-op because every record is a re-send. Each record of the batch goes through the real-time
lookup (`MatchingService`), i.e. it is matched against the existing index with the same model,
rules, reviewer constraints and adjudicators, and linked, queued or given a new identity.
"""

from pathlib import Path

import dagster as dg

from medmatch import io
from medmatch.config import get_settings
from medmatch.matching import PatientMatcher
from medmatch.mpi.ingest import ingest
from medmatch.mpi.services import MatchingService
from medmatch_pipeline.assets import MPI_WRITER, progress
from medmatch_pipeline.resources import Adjudicators, Landing, ModelStore, MPIDatabase

landing_batches = dg.DynamicPartitionsDefinition(name="landing_batches")


@dg.asset(
    group_name="incremental",
    partitions_def=landing_batches,
    description="One landing file's records matched against the existing MPI.",
)
def landing_batch_matches(
    context: dg.AssetExecutionContext,
    landing: Landing,
    database: MPIDatabase,
    adjudicators: Adjudicators,
    models: ModelStore,
) -> dg.MaterializeResult:
    path = Path(landing.directory) / context.partition_key
    demographics, _ = io.read_demographics(path)
    medical_path = landing.medical_for(path)
    medical = io.read_medical(medical_path)[0] if medical_path else None
    settings = get_settings()
    matcher = PatientMatcher(
        models.current(), thresholds=settings.thresholds, adjudicator=adjudicators.build(database)
    )
    matching = MatchingService(database.uow_factory(), matcher, settings)
    total = len(demographics)
    summary = ingest(
        matching,
        demographics,
        medical,
        phone_region=settings.default_phone_region,
        progress=lambda done, _: (
            progress(context, "landing_batch_matches", total, done)
            if done % 500 == 0 or done == total
            else None
        ),
    )
    return dg.MaterializeResult(
        metadata={
            **{k: v for k, v in summary.model_dump().items() if not isinstance(v, dict)},
            "decisions": dg.MetadataValue.json(summary.decisions),
            "model_version": matcher.model.version,
        }
    )


incremental_match = dg.define_asset_job(
    "incremental_match",
    selection=dg.AssetSelection.assets(landing_batch_matches),
    partitions_def=landing_batches,
    description="Match one landing batch against the existing index.",
    tags=MPI_WRITER,
)


@dg.sensor(
    job=incremental_match,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def new_landing_files(context: dg.SensorEvaluationContext, landing: Landing) -> dg.SensorResult:
    """New or changed landing files become partitions and get an incremental run each."""
    known = set(context.instance.get_dynamic_partitions(landing_batches.name))
    seen = dict(item.split("=", 1) for item in (context.cursor or "").split("|") if item)
    added, requests = [], []
    for path in landing.files():
        stamp = str(path.stat().st_mtime_ns)
        if seen.get(path.name) == stamp:
            continue
        seen[path.name] = stamp
        if path.name not in known:
            added.append(path.name)
        requests.append(dg.RunRequest(partition_key=path.name, run_key=f"{path.name}@{stamp}"))
    if not requests:
        return dg.SensorResult(skip_reason="no new landing file")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[landing_batches.build_add_request(added)] if added else [],
        cursor="|".join(f"{k}={v}" for k, v in sorted(seen.items())),
    )


@dg.schedule(
    job=incremental_match,
    cron_schedule="*/15 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def incremental_every_15_minutes(context: dg.ScheduleEvaluationContext):  # type: ignore[no-untyped-def]
    """Re-run every known landing batch: unchanged records are no-ops, changed ones re-match."""
    for key in context.instance.get_dynamic_partitions(landing_batches.name):
        yield dg.RunRequest(partition_key=key, run_key=None)
