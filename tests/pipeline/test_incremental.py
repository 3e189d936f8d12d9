"""incremental_match: landing batches as dynamic partitions, matched against the index."""

import dagster as dg
import pytest
from sqlalchemy import text

from medmatch.evaluation import cluster_pairwise
from medmatch_pipeline.resources import Landing
from tests.pipeline.conftest import pipeline_definitions, truth_by_identity


@pytest.fixture
def batches(tmp_path, synthetic):
    folder = tmp_path / "landing"
    folder.mkdir()
    demo, med = synthetic.demographics.head(700), synthetic.medical
    for i, part in enumerate((demo.iloc[:400], demo.iloc[400:])):
        part.to_csv(folder / f"batch{i + 1}_demographics.csv", index=False)
        med[med["record_id"].isin(part["record_id"])].to_csv(
            folder / f"batch{i + 1}_medical.csv", index=False
        )
    return folder


def _links(engine):
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT s.source_system || '/' || s.external_id, l.golden_id FROM record_links l"
                    " JOIN source_records s ON s.id = l.source_record_id"
                )
            ).all()
        )


def _count(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_sensor_partitions_incremental_runs_and_a_full_rerun(
    database_url, tmp_path, batches, uow_factory, engine, synthetic, trained
):
    defs = pipeline_definitions(database_url, batches, tmp_path / "models", trained)
    with dg.instance_for_test() as instance:
        _run(defs, instance, batches, engine, synthetic)


def _run(defs, instance, batches, engine, synthetic):
    sensor = defs.resolve_sensor_def("new_landing_files")
    landing = Landing(directory=str(batches))
    result = sensor(dg.build_sensor_context(instance=instance, resources={"landing": landing}))
    keys = [r.partition_key for r in result.run_requests]
    assert keys == ["batch1_demographics.csv", "batch2_demographics.csv"]
    instance.add_dynamic_partitions("landing_batches", keys)
    quiet = dg.build_sensor_context(
        instance=instance, cursor=result.cursor, resources={"landing": landing}
    )
    assert not sensor(quiet).run_requests  # nothing new since
    job = defs.resolve_job_def("incremental_match")
    for key in keys:
        assert job.execute_in_process(instance=instance, partition_key=key).success
    links = _links(engine)
    assert len(links) == 700
    truth = truth_by_identity(synthetic, synthetic.demographics.head(700))
    assert set(links) == set(truth)
    incremental_f1 = cluster_pairwise(links, truth).f1
    assert incremental_f1 > 0.95
    # the same partition again changes nothing
    results_before = _count(engine, "SELECT count(*) FROM match_results")
    assert job.execute_in_process(instance=instance, partition_key=keys[0]).success
    assert _links(engine) == links
    assert _count(engine, "SELECT count(*) FROM match_results") == results_before
    # a full run over the same data: golden records nearly identical. The documented
    # difference: lookups cluster greedily in arrival order, the full run over all pairs at
    # once, so a few records move; none is renumbered (each cluster keeps its golden id).
    full = defs.resolve_job_def("full_match").execute_in_process(instance=instance)
    assert full.success
    after = _links(engine)
    agreement = cluster_pairwise(after, links).f1
    assert agreement > 0.97
    moved = full.asset_materializations_for_node("golden_records")[0].metadata["links_moved"]
    assert moved.value < len(links) * 0.05
    assert cluster_pairwise(after, truth).f1 >= incremental_f1 - 0.01
    schedule = defs.resolve_schedule_def("incremental_every_15_minutes")
    requested = list(schedule(dg.build_schedule_context(instance=instance)))
    assert sorted(r.partition_key for r in requested) == keys
