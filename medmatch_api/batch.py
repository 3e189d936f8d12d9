"""BatchService: launches the pipeline's Dagster jobs and reads their state back from Dagster.

Dagster is the source of truth: a batch job's id is its Dagster run id, its status is the
run's status, its progress is the AssetObservation events the pipeline's assets log
(`medmatch_pipeline.assets.progress`). `batch_jobs` mirrors the status for SQL readers.

Two launchers (`MEDMATCH_BATCH_LAUNCHER`):
- `local` (default): the API starts `medmatch pipeline run --run-id ...` in a subprocess on
  the same Dagster instance; no daemon or webserver needed, the run shows in the UI.
- `queue`: the run is submitted to the Dagster webserver (GraphQL); the daemon's
  QueuedRunCoordinator launches it on a code server (the Docker deployment).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Engine, text

from medmatch.config import Settings
from medmatch.errors import InvalidFieldError, MedMatchError, NotFoundError
from medmatch_api.schemas import BatchStatus

log = logging.getLogger(__name__)

JOB_STAGES = {
    "full_match": (
        "source_records",
        "blocking_keys",
        "match_snapshot",
        "match_model",
        "pairwise_scores",
        "ai_adjudications",
        "match_results",
        "golden_records",
    ),
    "incremental_match": ("landing_batch_matches",),
}
PARTITIONS = "landing_batches"
TERMINAL = ("completed", "failed")
# the batch_jobs mirror speaks the pipeline's words
MIRROR = {"pending": "queued", "running": "running", "completed": "succeeded", "failed": "failed"}
WATCH_S = 1.0


def _state(run_status: str) -> str:
    if run_status in ("SUCCESS",):
        return "completed"
    if run_status in ("FAILURE", "CANCELED"):
        return "failed"
    if run_status in ("STARTED", "CANCELING"):
        return "running"
    return "pending"  # QUEUED, NOT_STARTED, STARTING, MANAGED


@dataclass
class Progress:
    """One progress event of a run, as the pipeline logged it."""

    stage: str
    total_records: int
    processed_records: int
    matched_pairs: int


def run_progress(job_type: str, event: Progress) -> int:
    """The run's progress in records: every stage is an equal share of the run, so the
    count only grows across stages and reaches total_records when the last stage ends."""
    stages = JOB_STAGES.get(job_type, ())
    if event.stage not in stages or not event.total_records:
        return 0
    done = min(event.processed_records / event.total_records, 1.0)
    return round(event.total_records * (stages.index(event.stage) + done) / len(stages))


class BatchService:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        instance_factory: Callable[[], Any],
        publish: Callable[..., None] | None = None,
    ) -> None:
        self.settings, self.engine = settings, engine
        self._instance_factory = instance_factory
        self._publish = publish or (lambda *_, **__: None)
        self._instance: Any = None
        self._lock = threading.Lock()
        self._closed = threading.Event()  # set by close(): the watchers stop

    def close(self) -> None:
        """Stop watching the runs this process launched (the runs themselves go on)."""
        self._closed.set()

    @property
    def instance(self) -> Any:
        with self._lock:
            if self._instance is None:
                self._instance = self._instance_factory()
            return self._instance

    # -- launching -----------------------------------------------------------------------
    def launch(self, job_type: str, partition: str | None = None) -> str:
        if job_type not in JOB_STAGES:
            raise InvalidFieldError("job_type", "must be full_match or incremental_match")
        if partition is not None and partition not in self.partitions():
            raise InvalidFieldError("partition", "not a known landing batch")
        if self.settings.batch_launcher == "queue":
            run_id = self._submit_to_queue(job_type, partition)
            self._mirror_new(run_id, job_type, partition)
        else:
            from dagster._core.utils import make_new_run_id

            run_id = make_new_run_id()
            self._mirror_new(run_id, job_type, partition)
            self._start_local(run_id, job_type, partition)
        self._publish("run_started", job_id=run_id, job_type=job_type, partition=partition)
        threading.Thread(
            target=self._watch, args=(run_id,), name=f"watch-{run_id[:8]}", daemon=True
        ).start()
        return run_id

    def _watch(self, run_id: str) -> None:
        """Announce the end of a run this process launched (run_finished on /ws/events),
        unless the service closes first."""
        while not self._closed.is_set():
            try:
                state = self.status(run_id)
            except Exception:  # a storage hiccup: look again
                log.warning("could not read the status of batch job %s", run_id, exc_info=True)
                state = None
            if state is not None and state.status in TERMINAL:
                self._publish(
                    "run_finished", job_id=run_id, job_type=state.job_type, status=state.status
                )
                return
            self._closed.wait(WATCH_S)

    def partitions(self) -> list[str]:
        return list(self.instance.get_dynamic_partitions(PARTITIONS))

    def _start_local(self, run_id: str, job_type: str, partition: str | None) -> None:
        logs = Path(os.environ.get("DAGSTER_HOME", ".medmatch/dagster")) / "launcher"
        logs.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "medmatch", "pipeline", "run",
            "--job", job_type, "--run-id", run_id, "--landing", self.settings.landing_dir,
        ]  # fmt: skip
        if partition is not None:
            command += ["--partition", partition]
        log_file = (logs / f"{run_id}.log").open("wb")
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        threading.Thread(
            target=self._reap, args=(process, run_id), name=f"run-{run_id[:8]}", daemon=True
        ).start()

    def _reap(self, process: subprocess.Popen[bytes], run_id: str) -> None:
        code = process.wait()
        if code != 0 and self.instance.get_run_by_id(run_id) is None:
            self._mirror_failed(
                run_id, f"the launcher exited with code {code} before the run began"
            )

    def _submit_to_queue(self, job_type: str, partition: str | None) -> str:
        from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

        url = urlparse(self.settings.dagster_webserver_url)
        client = DagsterGraphQLClient(
            url.hostname or "localhost",
            port_number=url.port,
            use_https=url.scheme == "https",
        )
        tags = {"dagster/partition": partition} if partition else None
        try:
            return str(client.submit_job_execution(job_type, tags=tags))
        except DagsterGraphQLClientError as exc:
            raise MedMatchError(f"the Dagster webserver refused the run: {exc}") from exc

    # -- reading -------------------------------------------------------------------------
    def status(self, job_id: str) -> BatchStatus:
        run = self.instance.get_run_by_id(job_id)
        mirror = self._mirror(job_id)
        if run is None:
            if mirror is None:
                raise NotFoundError("batch job", job_id)
            state = "failed" if mirror["status"] == "failed" else "pending"
            return BatchStatus(
                job_id=job_id,
                job_type=mirror["job_type"],
                partition=mirror["partition_key"],
                status=state,
                error_message=mirror["error"],
            )
        job_type = run.job_name
        state = _state(run.status.value)
        events, _ = self.progress_after(job_id, None)
        last = events[-1] if events else None
        record = self.instance.get_run_record_by_id(job_id)
        answer = BatchStatus(
            job_id=job_id,
            job_type=job_type,
            partition=run.tags.get("dagster/partition"),
            status=state,
            stage=last.stage if last else None,
            total_records=max((e.total_records for e in events), default=0),
            processed_records=run_progress(job_type, last) if last else 0,
            matched_pairs=max((e.matched_pairs for e in events), default=0),
            error_message=self._error(job_id) if state == "failed" else None,
            started_at=record.start_time and _utc(record.start_time),
            finished_at=record.end_time and _utc(record.end_time),
        )
        if state == "completed":
            answer.processed_records = answer.total_records
        if mirror is not None and mirror["status"] != MIRROR[state]:
            self._mirror_status(job_id, MIRROR[state], answer.error_message)
        return answer

    def progress_after(self, job_id: str, cursor: str | None) -> tuple[list[Progress], str | None]:
        """The run's progress events after `cursor` (None: from the start), and the cursor to
        read on from."""
        from dagster import DagsterEventType

        page = self.instance.get_records_for_run(
            job_id, cursor=cursor, of_type=DagsterEventType.ASSET_OBSERVATION
        )
        out = []
        for record in page.records:
            observation = record.event_log_entry.dagster_event.asset_observation_data
            meta = {
                k: getattr(v, "value", v) for k, v in observation.asset_observation.metadata.items()
            }
            if "stage" in meta:
                out.append(
                    Progress(
                        stage=str(meta["stage"]),
                        total_records=int(meta.get("total_records", 0)),
                        processed_records=int(meta.get("processed_records", 0)),
                        matched_pairs=int(meta.get("matched_pairs", 0)),
                    )
                )
        return out, page.cursor or cursor

    def _error(self, job_id: str) -> str:
        """Where the run failed and the exception's class, never its message: a database
        error's message may quote the row it refused (patient data). The whole error is in
        the run's log in the Dagster UI, for the operators who may read it."""
        from dagster import DagsterEventType

        failures = self.instance.get_records_for_run(
            job_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
        ).records
        for record in failures:
            event = record.event_log_entry.dagster_event
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                while error.cls_name.startswith("Dagster") and error.cause is not None:
                    error = error.cause  # Dagster's wrapper: the class is the step's own error
                where = event.step_key or "run"
                return f"{where}: {error.cls_name} (the run's log in the Dagster UI has the rest)"
        return "run failed (the run's log in the Dagster UI has the reason)"

    # -- the batch_jobs mirror -----------------------------------------------------------
    def _mirror_new(self, run_id: str, job_type: str, partition: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO batch_jobs (job_id, job_type, status, partition_key)"
                    " VALUES (:id, :type, 'queued', :partition) ON CONFLICT (job_id) DO NOTHING"
                ),
                {"id": run_id, "type": job_type, "partition": partition},
            )

    def _mirror(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT job_type, status, partition_key, error FROM batch_jobs"
                    " WHERE job_id = :id"
                ),
                {"id": job_id},
            ).first()
        return dict(row._mapping) if row else None

    def _mirror_status(self, job_id: str, status: str, error: str | None) -> None:
        finished = status in ("succeeded", "failed")
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE batch_jobs SET status = :status, error = :error,"
                    " finished_at = CASE WHEN :finished THEN now() ELSE finished_at END"
                    " WHERE job_id = :id"
                ),
                {"id": job_id, "status": status, "error": error, "finished": finished},
            )

    def _mirror_failed(self, job_id: str, error: str) -> None:
        log.warning("batch job %s failed to start", job_id)
        self._mirror_status(job_id, "failed", error)


def _utc(timestamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)
