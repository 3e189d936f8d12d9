"""A failed run's error_message says where it failed and the exception's class, never the
exception's message: a database error may quote the patient row it refused."""

from __future__ import annotations

import dagster as dg

from medmatch.config import Settings
from medmatch_api.batch import BatchService
from tests.mpi.conftest import database_url, engine, server_url  # noqa: F401

PATIENT = "Maria Garcia, born 1980-03-14"


@dg.op
def write_golden_records() -> None:
    raise ValueError(f"duplicate key value violates unique constraint: Key (name)=({PATIENT})")


@dg.job
def failing_job() -> None:
    write_golden_records()


def test_a_failed_runs_error_names_the_step_and_class_only(engine):  # noqa: F811
    with dg.DagsterInstance.ephemeral() as instance:
        result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        batch = BatchService(Settings(), engine, lambda: instance)
        status = batch.status(result.run_id)
    assert status.status == "failed"
    assert status.error_message.startswith("write_golden_records: ValueError")
    assert "Maria" not in status.error_message and "1980" not in status.error_message
