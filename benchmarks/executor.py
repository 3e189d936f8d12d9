"""full_match launched as a Dagster run (`execute_job`, as the daemon, a schedule or the UI
start one), on the same generated records, three ways: as deployed (in process, outputs in
the run's memory), as before stop 29 (in process, outputs pickled by Dagster's default IO
manager) and as before stop 28 (Dagster's defaults: a process per step, pickled outputs).

    python benchmarks/executor.py --records 10000

Each run is a process of its own (as a run worker), with a fresh migrated database on one
PostgreSQL (DATABASE_URL, else an embedded server in a temporary folder) and a temporary
Dagster instance. Results go to benchmarks/results/executor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from population import population

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def job_as_deployed():  # type: ignore[no-untyped-def]
    """full_match with the code location's executor."""
    from medmatch_pipeline.definitions import make_definitions

    return make_definitions().resolve_job_def("full_match")


def _with_dagster_defaults(executor):  # type: ignore[no-untyped-def]
    """full_match with Dagster's default IO manager (pickles in the instance's storage) and
    `executor`."""
    import dagster as dg

    from medmatch_pipeline.definitions import make_definitions

    defs = make_definitions(io_manager=dg.fs_io_manager)
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        resources=defs.resources,
        executor=executor,
    ).resolve_job_def("full_match")


def job_with_pickled_outputs():  # type: ignore[no-untyped-def]
    """In process, each output pickled and read back (stop 28)."""
    import dagster as dg

    return _with_dagster_defaults(dg.in_process_executor)


def job_process_per_step():  # type: ignore[no-untyped-def]
    """Dagster's defaults: a process per step (multiprocess executor), pickled outputs."""
    import dagster as dg

    return _with_dagster_defaults(dg.multiprocess_executor)


def child(job: str, out: Path) -> None:
    """One run of `job` on DATABASE_URL, as a run worker would start it; step times to out."""
    import dagster as dg

    from medmatch.mpi import migrate

    migrate.upgrade(os.environ["DATABASE_URL"])
    with tempfile.TemporaryDirectory() as dagster_home:
        with dg.instance_for_test(temp_dir=dagster_home) as instance:
            target = dg.build_reconstructable_job(
                "benchmarks.executor", job, reconstructor_working_directory=str(ROOT)
            )
            result = dg.execute_job(target, instance=instance)
            steps = {
                s.step_key: round((s.end_time or 0) - (s.start_time or 0), 2)
                for s in instance.get_run_step_stats(result.run_id)
            }
    out.write_text(json.dumps({"success": result.success, "steps_s": steps}))


def run(job: str, server_url: str, home: Path) -> dict:
    """`job` in a process of its own on a fresh database: its wall time and step times."""
    import psycopg

    from medmatch.mpi.database import with_database

    name = f"mm_exec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    out = home / f"{name}.json"
    env = dict(
        os.environ,
        DATABASE_URL=with_database(server_url, name),
        MEDMATCH_MODELS_DIR=str(home / f"models-{name}"),
    )
    try:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--child", job, str(out)],
            env=env,
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - started
        return {"job": job, "process_s": round(seconds, 2), **json.loads(out.read_text())}
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/executor.json")
    parser.add_argument("--child", nargs=2, metavar=("JOB", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    from medmatch.mpi.database import libpq_url, start_embedded, stop_embedded

    home = Path(tempfile.mkdtemp(prefix="medmatch-executor-"))
    external = os.environ.get("DATABASE_URL")
    server = external or start_embedded(home / "pg")
    landing = home / "landing"
    landing.mkdir()
    data = population(args.records)
    data.demographics.to_csv(landing / "demographics.csv", index=False)
    data.medical.to_csv(landing / "medical.csv", index=False)
    os.environ["MEDMATCH_LANDING_DIR"] = str(landing)
    os.environ.pop("MEDMATCH_OLLAMA_BASE_URL", None)  # the offline adjudicator
    try:
        runs = [
            run(job, libpq_url(server), home)
            for job in ("job_as_deployed", "job_with_pickled_outputs", "job_process_per_step")
        ]
    finally:
        if not external:
            stop_embedded(home / "pg")
        shutil.rmtree(home, ignore_errors=True)
    results = {
        "command": f"python benchmarks/executor.py --records {args.records}",
        "records": len(data.demographics),
        "runs": runs,
    }
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
