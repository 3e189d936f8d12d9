"""Step outputs stay in the run's memory: no patient data in Dagster's storage."""

from pathlib import Path

import dagster as dg
import pytest

from medmatch_pipeline.run_memory import RunMemoryIOManager
from tests.pipeline.conftest import land_sample, pipeline_definitions


@pytest.fixture
def landed(tmp_path, synthetic):
    return land_sample(tmp_path, synthetic, 300, medical=False)


def _files_holding(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {n}" for n in needles if n.encode() in data]
    return found


def test_a_full_run_writes_no_patient_data_to_dagster_storage(
    database_url, tmp_path, landed, trained
):
    folder, demo = landed
    defs = pipeline_definitions(database_url, folder, tmp_path / "models", trained, retrain=True)
    home = tmp_path / "dagster"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = defs.resolve_job_def("full_match").execute_in_process(instance=instance)
        assert result.success
        # external ids are in every step's data (feature rows, pairs) and in no metadata
        ids = [e for e in demo["external_id"].dropna().astype(str) if len(e) >= 6][:50]
        assert ids
        assert _files_holding(home, ids) == []
        # a selection of golden_records alone (a re-execution from it, too) fails on its
        # first input, saying why and what to do
        later = defs.resolve_job_def("full_match").execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("golden_records")],
            raise_on_error=False,
        )
    assert not later.success
    failure = next(e for e in later.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert "is kept in memory only within the run that makes it" in message
    assert "run the whole job again" in message


def test_each_output_is_let_go_after_its_last_reader():
    memory = RunMemoryIOManager()
    seen: dict[str, int] = {}

    @dg.asset
    def numbers() -> list[int]:
        return [1, 2, 3]

    @dg.asset
    def total(numbers: list[int]) -> int:
        seen["held while a reader is left"] = len(memory._values)
        return sum(numbers)

    @dg.asset
    def largest(numbers: list[int], total: int) -> int:
        return max(numbers) + total

    @dg.asset
    def unread(largest: int) -> int:
        return largest

    result = dg.materialize([numbers, total, largest, unread], resources={"io_manager": memory})
    assert result.success
    assert result.output_for_node("largest") == 9
    assert seen["held while a reader is left"] == 1  # numbers, which largest reads later
    assert memory._values == {} and memory._readers == {}  # unread was never kept
