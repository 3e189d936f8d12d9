"""The IO manager of the pipeline: a step's output goes to the steps that read it in memory,
within the run that made it, and nowhere else.

What passes between the steps (the records' feature rows, their scored and decided pairs)
is patient data. Dagster's default IO manager pickled every output to its storage folder
(`storage/<asset>` under the instance's base directory, the `dagster-storage` volume under
Docker), where the last run's copy of every patient's demographics stayed outside
PostgreSQL's access control (writing and reading those pickles, timed directly, took about
0.3 s of a 100K-record run). The runs execute in one process (the code location's in-process
executor), so memory is enough.

What it costs: a run that starts at a step whose inputs another run made (the UI's
"re-execute from failure", or a selection of one in-memory asset) fails with a message
saying so. Every job is safe to re-run whole: a full run is idempotent and a partition run
changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

import dagster as dg


class RunMemoryIOManager(dg.IOManager):
    """Outputs by (run, step, output); each is let go after its last reader in the run."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, ...], Any] = {}
        self._readers: dict[tuple[str, ...], int] = {}

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        readers = _readers(context)
        if readers:  # an output no step of this run reads is not kept
            key = tuple(context.get_identifier())
            self._values[key], self._readers[key] = obj, readers

    def load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        assert upstream is not None  # an input without an upstream output never gets here
        key = tuple(upstream.get_identifier())
        if key not in self._values:
            name = upstream.asset_key.to_user_string() if upstream.has_asset_key else upstream.name
            raise dg.Failure(
                f"{name} is kept in memory only within the run that makes it (it holds patient"
                " data, which is never written outside PostgreSQL): materialize it together"
                " with the assets that read it, or run the whole job again (re-running is safe)"
            )
        value = self._values[key]
        self._readers[key] -= 1
        if self._readers[key] <= 0:  # its last reader has it: the run holds no other copy
            del self._values[key], self._readers[key]
        return value


def _readers(context: dg.OutputContext) -> int:
    """How many inputs of this run's steps read the output."""
    plan = context.step_context.execution_plan
    produced = (context.step_key, context.name, context.mapping_key)
    return sum(
        (handle.step_key, handle.output_name, handle.mapping_key) == produced
        for step in plan.get_steps_to_execute_in_topo_order()
        for step_input in step.step_inputs
        for handle in step_input.get_step_output_handle_dependencies()
    )


@dg.io_manager(description="Step outputs in memory, within their run only (patient data).")
def run_memory_io_manager(_: dg.InitResourceContext) -> RunMemoryIOManager:
    return RunMemoryIOManager()
