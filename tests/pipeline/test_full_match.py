"""The full_match job materialised in-process against a real PostgreSQL."""

from collections import Counter

import dagster as dg
import pytest
from sqlalchemy import text

from medmatch.config import get_settings
from medmatch.evaluation import cluster_pairwise
from medmatch_pipeline.definitions import make_definitions
from tests.pipeline.conftest import land_sample, pipeline_definitions, truth_by_identity


@pytest.fixture
def landed(tmp_path, synthetic):
    """A landing folder with 1,200 generated records (demographics + medical)."""
    return land_sample(tmp_path, synthetic, 1200)[0]


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


def test_full_match_job(
    database_url, tmp_path, landed, uow_factory, engine, synthetic, trained, monkeypatch
):
    # this one retrains: 1,200 records are above MEDMATCH_MIN_RECORDS_TO_TRAIN
    defs = pipeline_definitions(database_url, landed, tmp_path / "models", trained, retrain=True)
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("full_match")
    result = job.execute_in_process(instance=instance)
    assert result.success
    checks = list(result.get_asset_check_evaluations())
    assert checks and all(c.passed for c in checks)
    links = _links(engine)
    assert len(links) == 1200
    truth = truth_by_identity(synthetic, synthetic.demographics.head(1200))
    assert set(links) == set(truth)  # the F1 below compares the same records
    assert cluster_pairwise(links, truth).f1 > 0.97
    # progress events a reader can poll with a cursor
    observations = instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION
    ).records
    stages = {
        r.event_log_entry.dagster_event.asset_observation_data.asset_observation.metadata[
            "stage"
        ].value
        for r in observations
    }
    assert {"source_records", "pairwise_scores", "golden_records"} <= stages
    # an empty MPI is bulk-loaded, and the asset says where the load's time went
    landing = result.asset_materializations_for_node("source_records")[0].metadata
    assert landing["new"].value == 1200
    phases = {"load_normalise_s", "load_copy_source_records_s", "load_indexes_s"}
    assert phases <= set(landing) and all(landing[p].value >= 0 for p in phases)
    # the same files again: nothing changes
    model = result.asset_materializations_for_node("match_model")[0].metadata
    assert model["promoted"].value is True and "level_weights" in model
    again = job.execute_in_process(instance=instance)
    assert again.success and _links(engine) == links
    # the first run's snapshot is its load's own rows; a run over a filled MPI reads it
    read_from = [
        r.asset_materializations_for_node("match_snapshot")[0].metadata["read_from"].value
        for r in (result, again)
    ]
    assert read_from == ["this run's bulk load", "PostgreSQL"]
    materialised = again.asset_materializations_for_node("golden_records")[0]
    assert materialised.metadata["links_moved"].value == 0
    # the cluster bound is the operator's: below the largest cluster, the check fails (and
    # says so; it does not block the run)
    largest = max(Counter(links.values()).values())
    with monkeypatch.context() as patch:
        patch.setenv("MEDMATCH_MAX_CLUSTER_SIZE", str(largest - 1))
        get_settings.cache_clear()
        bounded = job.execute_in_process(instance=instance)
    get_settings.cache_clear()
    (evaluation,) = [
        c for c in bounded.get_asset_check_evaluations() if c.check_name == "no_oversized_cluster"
    ]
    assert bounded.success and not evaluation.passed
    assert evaluation.metadata["largest_cluster"].value == largest
    assert evaluation.metadata["bound"].value == largest - 1


@pytest.mark.parametrize("mode", ["error", "malformed"])
def test_an_ollama_down_or_talking_nonsense_sends_pairs_to_review(
    database_url, tmp_path, landed, uow_factory, engine, monkeypatch, mode, trained
):
    from medmatch.config import get_settings
    from tests.fakes.ollama_server import FakeOllama

    with FakeOllama() as server:
        server.mode = mode
        monkeypatch.setenv("OLLAMA_BASE_URL", server.url)
        monkeypatch.setenv("MEDMATCH_OLLAMA_TIMEOUT_S", "1")
        get_settings.cache_clear()
        try:
            defs = pipeline_definitions(
                database_url, landed, tmp_path / "models", trained, adjudicators="ollama"
            )
            result = defs.resolve_job_def("full_match").execute_in_process(
                instance=dg.DagsterInstance.ephemeral()
            )
        finally:
            get_settings.cache_clear()
        assert result.success and server.requests
    meta = result.asset_materializations_for_node("ai_adjudications")[0].metadata
    assert meta["ai_ollama_failed"].value == meta["ai_ollama_asked"].value > 0
    with engine.connect() as conn:
        failed = (
            conn.execute(
                text(
                    "SELECT decision FROM match_results WHERE explanation LIKE '%AI adjudication failed%'"
                )
            )
            .scalars()
            .all()
        )
    assert failed and set(failed) == {"review_required"}


def test_runs_launched_by_the_daemon_or_the_ui_run_their_steps_in_one_process():
    """Dagster's default executor starts a process per step: 31 s against 8 s for a 10K
    full_match (benchmarks/executor.py). Every job of the code location runs in process."""
    defs = make_definitions()
    for job in ("full_match", "incremental_match"):
        assert defs.resolve_job_def(job).executor_def is dg.in_process_executor
