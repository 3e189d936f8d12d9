"""A run made through `medmatch pipeline run` shows in the Dagster webserver (GraphQL)."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from medmatch.cli import app
from medmatch.config import get_settings

ROOT = Path(__file__).resolve().parents[2]
QUERY = """{
  runsOrError { ... on Runs { results { runId jobName status } } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name scheduleState { status } } } } }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_demo_run_is_visible_in_the_ui(tmp_path, monkeypatch, database_url, synthetic):
    home = tmp_path / "dagster"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # models and Dagster's storage land here
    monkeypatch.setenv("MEDMATCH_MIN_RECORDS_TO_TRAIN", "1000000")  # the shipped model
    get_settings.cache_clear()
    landing = tmp_path / "landing"
    landing.mkdir()
    synthetic.demographics.head(500).to_csv(landing / "demographics.csv", index=False)
    try:
        ran = CliRunner().invoke(
            app,
            [
                "pipeline",
                "run",
                "--landing",
                str(tmp_path / "landing"),
                "--adjudicator",
                "offline",
                "--start-incremental-schedule",  # as make demo does
            ],
        )
        assert ran.exit_code == 0, ran.output
        assert "golden records (active)" in ran.output
        env_out = CliRunner().invoke(app, ["pipeline", "env"]).output
    finally:
        get_settings.cache_clear()
    environ = dict(os.environ)
    for line in env_out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        environ[key] = value.strip("'")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-w",
            str(ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = _graphql(port)
                break
            except OSError:
                time.sleep(1)
        assert answer is not None, "the webserver did not answer"
        runs = answer["data"]["runsOrError"]["results"]
        assert any(r["jobName"] == "full_match" and r["status"] == "SUCCESS" for r in runs)
        (repository,) = answer["data"]["repositoriesOrError"]["nodes"]
        status = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
        # on in the demo instance, the nightly full run still off
        assert status == {
            "incremental_every_15_minutes": "RUNNING",
            "nightly_full_match": "STOPPED",
        }
        _queued_through_the_webserver(port, database_url)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _queued_through_the_webserver(port: int, database_url: str) -> None:
    """The API's `queue` launcher submits to the webserver; with no daemon the run waits."""
    import dagster as dg

    from medmatch.config import Settings
    from medmatch.mpi.database import make_engine
    from medmatch_api.batch import BatchService

    settings = Settings(batch_launcher="queue", dagster_webserver_url=f"http://127.0.0.1:{port}")
    engine = make_engine(database_url)
    with dg.DagsterInstance.get() as instance:
        batch = BatchService(settings, engine, lambda: instance)
        job_id = batch.launch("full_match")
        status = batch.status(job_id)
        assert instance.get_run_by_id(job_id).status == dg.DagsterRunStatus.QUEUED
        watcher = next(t for t in threading.enumerate() if t.name == f"watch-{job_id[:8]}")
        batch.close()  # the run waits for ever: its watcher must not outlive the service
        watcher.join(5)
        assert not watcher.is_alive()
    engine.dispose()
    assert status.status == "pending" and status.job_type == "full_match"
