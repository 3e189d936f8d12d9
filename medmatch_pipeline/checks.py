"""Asset checks that fail loudly when the MPI's invariants break."""

import dagster as dg

from medmatch.config import get_settings
from medmatch_pipeline.assets import golden_records, match_results
from medmatch_pipeline.resources import MPIDatabase


@dg.asset_check(
    asset=golden_records,
    blocking=True,
    description="Every source record is linked to exactly one active golden record.",
)
def every_record_linked_to_one_active_golden(database: MPIDatabase) -> dg.AssetCheckResult:
    # record_links' primary key is the source record: at most one link each
    bad = database.scalar(
        "SELECT count(*) FROM source_records s LEFT JOIN record_links l"
        " ON l.source_record_id = s.id LEFT JOIN golden_records g ON g.golden_id = l.golden_id"
        " WHERE g.golden_id IS NULL OR g.status <> 'active'",
    )
    return dg.AssetCheckResult(passed=bad == 0, metadata={"records_not_linked_to_active": bad})


@dg.asset_check(
    asset=golden_records,
    blocking=True,
    description="No active golden record without source records.",
)
def no_golden_without_sources(database: MPIDatabase) -> dg.AssetCheckResult:
    empty = database.scalar(
        "SELECT count(*) FROM golden_records g WHERE g.status = 'active' AND NOT EXISTS"
        " (SELECT 1 FROM record_links l WHERE l.golden_id = g.golden_id)",
    )
    return dg.AssetCheckResult(passed=empty == 0, metadata={"empty_active_golden": empty})


@dg.asset_check(
    asset=golden_records,
    description="No golden record holds more records than MEDMATCH_MAX_CLUSTER_SIZE (default 50).",
)
def no_oversized_cluster(database: MPIDatabase) -> dg.AssetCheckResult:
    bound = get_settings().max_cluster_size
    biggest = database.scalar(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM record_links"
        " GROUP BY golden_id) sizes",
    )
    return dg.AssetCheckResult(
        passed=biggest <= bound,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"largest_cluster": biggest, "bound": bound},
    )


@dg.asset_check(asset=match_results, description="Confidences within 0..1.")
def confidences_in_range(database: MPIDatabase) -> dg.AssetCheckResult:
    bad = database.scalar(
        "SELECT count(*) FROM match_results WHERE confidence < 0 OR confidence > 1"
        " OR medical_similarity < 0 OR medical_similarity > 1",
    )
    return dg.AssetCheckResult(passed=bad == 0, metadata={"out_of_range": bad})


CHECKS = [
    every_record_linked_to_one_active_golden,
    no_golden_without_sources,
    no_oversized_cluster,
    confidences_in_range,
]
