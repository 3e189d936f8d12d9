"""The pipeline's assets: landing files -> source records -> blocking keys -> model ->
pairwise scores -> AI adjudications -> match results -> golden records.

Each asset is a thin step over `medmatch.mpi.batch_run` and reports what it did as
metadata. Progress (total_records, processed_records, matched_pairs, stage) is logged as
AssetObservation events on the running asset: a reader (the API's job status) polls them
from the Dagster event log with a cursor.
"""

import time
from typing import Any

import dagster as dg
import pandas as pd

from medmatch import io
from medmatch.config import get_settings
from medmatch.matching import MatchModel
from medmatch.matching.realtime import RealtimeScorer
from medmatch.mpi import batch_run
from medmatch.mpi.ingest import land
from medmatch_pipeline.resources import Adjudicators, Landing, ModelStore, MPIDatabase

GROUP = "matching"
# On every job that writes the MPI. The instance (dagster.yaml) runs one such run at a time:
# two runs planned from the same snapshot would each create golden records for the same
# clusters, and the later one would move the links away from the earlier one's.
MPI_WRITER_TAG = "medmatch/mpi-writer"
MPI_WRITER = {MPI_WRITER_TAG: "batch"}
# The snapshot a bulk load has just written, by run id: match_snapshot takes it from here
# instead of reading the same rows back (the steps run in one process, the code location's
# executor). A run that starts at match_snapshot, or another process, reads PostgreSQL.
_LOADED: dict[str, batch_run.Snapshot] = {}


def progress(
    context: dg.AssetExecutionContext,
    stage: str,
    total_records: int,
    processed_records: int,
    matched_pairs: int = 0,
) -> None:
    context.log_event(
        dg.AssetObservation(
            asset_key=context.asset_key,
            metadata={
                "stage": stage,
                "total_records": total_records,
                "processed_records": processed_records,
                "matched_pairs": matched_pairs,
            },
        )
    )


@dg.asset(group_name=GROUP, description="Landing files stored idempotently in PostgreSQL.")
def source_records(
    context: dg.AssetExecutionContext, landing: Landing, database: MPIDatabase
) -> dg.MaterializeResult:
    started = time.perf_counter()
    totals: dict[str, int] = {"files": 0, "new": 0, "updated": 0, "rejected": 0}
    load_s: dict[str, float] = {}  # the bulk load's phases (normalise, copy_*, indexes, ...)
    files = landing.files()
    written: batch_run.Snapshot | None = None  # what a bulk load wrote, when nothing followed
    for i, path in enumerate(files):
        demographics, _ = io.read_demographics(path)
        medical_path = landing.medical_for(path)
        medical = io.read_medical(medical_path)[0] if medical_path else None
        if database.scalar("SELECT count(*) FROM source_records") == 0:
            # an empty MPI: the COPY-based bulk load, without a golden record per record:
            # golden_records gives each cluster its own (until then the records are unlinked)
            from medmatch.mpi.bulk import load_records

            loaded = load_records(
                database.engine(), demographics, medical, identities=False, features=True
            )
            written = batch_run.snapshot_of_load(loaded.pop("features"))
            counts = {"new": loaded["records"], "updated": 0, "rejected": loaded["rejected"]}
            for phase, seconds in loaded["timings"].items():
                load_s[f"load_{phase}"] = load_s.get(f"load_{phase}", 0.0) + seconds
        else:
            written = None  # the files after the load change the MPI: read it back
            counts = land(
                database.uow_factory(),
                demographics,
                medical,
                phone_region=get_settings().default_phone_region,
            )
        totals["files"] += 1
        for key in ("new", "updated", "rejected"):
            totals[key] += counts[key]
        progress(context, "source_records", len(files), i + 1)
    _LOADED.clear()  # one at most: a run that failed after its load leaves no more
    if written is not None:
        _LOADED[context.run_id] = written
    stored = database.scalar("SELECT count(*) FROM source_records")
    return dg.MaterializeResult(
        metadata={
            **totals,
            **load_s,
            "records_stored": stored,
            "time_s": time.perf_counter() - started,
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[source_records],
    description="Blocking-key index of every source record (real-time candidate search).",
)
def blocking_keys(database: MPIDatabase) -> dg.MaterializeResult:
    rows = database.scalar("SELECT count(*) FROM blocking_keys")
    missing = database.scalar(
        "SELECT count(*) FROM source_records s WHERE NOT EXISTS"
        " (SELECT 1 FROM blocking_keys k WHERE k.source_record_id = s.id)",
    )
    return dg.MaterializeResult(metadata={"key_rows": rows, "records_without_keys": missing})


@dg.asset(
    group_name=GROUP,
    deps=[blocking_keys],
    description="The records as the matcher sees them (feature rows), read in bulk.",
)
def match_snapshot(
    context: dg.AssetExecutionContext, database: MPIDatabase
) -> dg.Output[batch_run.Snapshot]:
    snapshot = _LOADED.pop(context.run_id, None)
    source = "this run's bulk load" if snapshot is not None else "PostgreSQL"
    if snapshot is None:
        snapshot = batch_run.read_snapshot(database.engine())
    return dg.Output(
        snapshot,
        metadata={
            "read_from": source,
            "records": len(snapshot.features),
            "linked": len(snapshot.golden_of),
            "must_link": len(snapshot.must_link),
            "cannot_link": len(snapshot.cannot_link),
        },
    )


def _labelled(database: MPIDatabase) -> list[tuple[str, str, bool]]:
    from medmatch.mpi.services import ReviewService

    pairs = ReviewService(database.uow_factory()).labelled_pairs()
    return [(str(a), str(b), same) for a, b, same in pairs]


def _accuracy(model: MatchModel, features: pd.DataFrame, labels, threshold: float) -> float:  # type: ignore[no-untyped-def]
    rows = features.set_index("unique_id", drop=False)
    scorer = RealtimeScorer(model)
    right = 0
    for a, b, same in labels:
        probability = scorer.score(rows.loc[a].to_dict(), rows.loc[b].to_dict()).probability
        right += (probability >= threshold) == same
    return right / len(labels)


@dg.asset(
    group_name=GROUP,
    description="The Splink model: trained on the records, refined by "
    "reviewer labels, promoted only when no worse than the current one on those labels.",
)
def match_model(
    context: dg.AssetExecutionContext,
    match_snapshot: batch_run.Snapshot,
    models: ModelStore,
    database: MPIDatabase,
) -> dg.Output[MatchModel]:
    from medmatch.matching.training import train_model

    settings = get_settings()
    features = match_snapshot.features
    current = models.current() or MatchModel.default()
    if not models.retrain or len(features) < settings.min_records_to_train:
        context.log.info("no retraining (too few records, or retrain off): the model stays")
        return dg.Output(current, metadata={"version": current.version, "trained": False})
    labels = _labelled(database)
    known = set(features["unique_id"].astype(str))
    labels = [p for p in labels if p[0] in known and p[1] in known]
    matches = [(a, b) for a, b, same in labels if same]
    candidate = train_model(features, labels=matches or None)
    threshold = settings.thresholds.auto_match
    comparison: dict[str, Any] = {"labelled_pairs": len(labels)}
    promote = True
    if labels:
        comparison["current_accuracy"] = _accuracy(current, features, labels, threshold)
        comparison["candidate_accuracy"] = _accuracy(candidate, features, labels, threshold)
        promote = comparison["candidate_accuracy"] >= comparison["current_accuracy"]
    chosen = candidate if promote else current
    models.save(candidate, promote=promote)
    weights = {
        comp.name: {w.label: round(w.match_weight, 2) for w in ws}
        for comp, ws in zip(chosen.comparisons, chosen.level_weights(), strict=True)
    }
    return dg.Output(
        chosen,
        metadata={
            "version": chosen.version,
            "candidate_version": candidate.version,
            "promoted": promote,
            "prior": chosen.prior,
            "comparison": dg.MetadataValue.json(comparison),
            "level_weights": dg.MetadataValue.json(weights),
        },
    )


@dg.asset(group_name=GROUP, description="Splink predict on DuckDB over the blocked pairs.")
def pairwise_scores(
    context: dg.AssetExecutionContext,
    match_snapshot: batch_run.Snapshot,
    match_model: MatchModel,
    adjudicators: Adjudicators,
    database: MPIDatabase,
) -> dg.Output[pd.DataFrame]:
    from medmatch.matching.adjudication import lowest_probability_to_score
    from medmatch.matching.batch import predict_pairs

    thresholds = get_settings().thresholds
    floor = lowest_probability_to_score(thresholds.pair_floor, adjudicators.build(database))
    n = len(match_snapshot.features)
    progress(context, "pairwise_scores", n, 0)
    predicted = predict_pairs(match_snapshot.features, match_model, floor)
    progress(context, "pairwise_scores", n, n, len(predicted))
    return dg.Output(predicted, metadata={"pairs": len(predicted), "floor": floor})


@dg.asset(
    group_name=GROUP,
    description="Rules, the adjudicators (offline, or Ollama when "
    "configured) on the pairs they choose, thresholds and reviewer decisions.",
)
def ai_adjudications(
    context: dg.AssetExecutionContext,
    match_snapshot: batch_run.Snapshot,
    match_model: MatchModel,
    pairwise_scores: pd.DataFrame,
    adjudicators: Adjudicators,
    database: MPIDatabase,
) -> dg.Output[batch_run.Scored]:
    from medmatch.matching.adjudication import Tally
    from medmatch.matching.batch import decide_pairs

    thresholds = get_settings().thresholds
    judges = adjudicators.build(database)
    tally = Tally()
    pairs, cannot = decide_pairs(
        pairwise_scores,
        match_snapshot.features,
        match_model,
        thresholds,
        judges,
        tally,
        workers=get_settings().batch_decide_workers,
    )
    scored = batch_run.constrain(match_snapshot, pairs, cannot, tally.stats(judges))
    progress(
        context,
        "ai_adjudications",
        len(match_snapshot.features),
        len(match_snapshot.features),
        scored.stats["auto_match"],
    )
    return dg.Output(scored, metadata=dict(scored.stats))


@dg.asset(group_name=GROUP, description="Every decided pair of the run, for audit.")
def match_results(
    context: dg.AssetExecutionContext,
    ai_adjudications: batch_run.Scored,
    match_model: MatchModel,
    database: MPIDatabase,
) -> dg.MaterializeResult:
    written = batch_run.write_match_results(
        database.engine(),
        context.run_id,
        ai_adjudications,
        match_model,
        get_settings().thresholds,
    )
    return dg.MaterializeResult(metadata={"rows_written": written})


@dg.asset(
    group_name=GROUP,
    deps=[match_results],
    description="Clusters + survivorship -> "
    "golden_records and record_links; the review band -> review_queue.",
)
def golden_records(
    context: dg.AssetExecutionContext,
    match_snapshot: batch_run.Snapshot,
    ai_adjudications: batch_run.Scored,
    database: MPIDatabase,
) -> dg.MaterializeResult:
    settings = get_settings()
    started = time.perf_counter()
    labels = batch_run.clusters_of(match_snapshot, ai_adjudications)
    clustered = time.perf_counter()
    plan = batch_run.plan_golden(match_snapshot.golden_of, labels)
    planned = time.perf_counter()
    n = len(match_snapshot.features)
    written = batch_run.write_golden(
        database.engine(),
        context.run_id,
        match_snapshot,
        plan,
        settings.thresholds,
        trust=settings.source_trust,
        progress=lambda stage, done, total: progress(context, stage, n, done),
    )
    active = database.scalar("SELECT count(*) FROM golden_records WHERE status = 'active'")
    return dg.MaterializeResult(
        metadata={
            **written,
            "cluster_s": round(clustered - started, 3),
            "plan_s": round(planned - clustered, 3),
            "active_golden_records": active,
        }
    )


ASSETS = [
    source_records,
    blocking_keys,
    match_snapshot,
    match_model,
    pairwise_scores,
    ai_adjudications,
    match_results,
    golden_records,
]
