"""One run that writes the MPI at a time: two runs planned from the same snapshot would each
create golden records for the same clusters, and the later would strip the earlier's links."""

from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.run_coordinator import QueuedRunCoordinator

from medmatch_pipeline.assets import MPI_WRITER_TAG
from medmatch_pipeline.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("instance_file", ["dagster.yaml", "docker/dagster.yaml"])
def test_the_queue_runs_one_mpi_writer_at_a_time(instance_file):
    settings = yaml.safe_load((ROOT / instance_file).read_text())["run_coordinator"]
    assert settings["class"] == "QueuedRunCoordinator"
    checked = process_config(QueuedRunCoordinator.config_type(), settings.get("config", {}))
    assert checked.success, checked.errors
    coordinator = QueuedRunCoordinator(**checked.value)
    limits = coordinator.get_run_queue_config().tag_concurrency_limits
    assert [limit for limit in limits if limit["key"] == MPI_WRITER_TAG] == [
        {"key": MPI_WRITER_TAG, "limit": 1}
    ]


@pytest.mark.parametrize("job", ["full_match", "incremental_match"])
def test_every_job_that_writes_the_mpi_carries_the_tag(job):
    assert MPI_WRITER_TAG in defs.resolve_job_def(job).tags
