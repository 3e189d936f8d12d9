"""The Dagster instance on the MPI's PostgreSQL: DAGSTER_HOME and DAGSTER_PG_URL, set up.

Dagster keeps runs, event logs and schedules in a database of its own (`dagster`) on the
same server as the MPI; `prepare()` creates it if needed, copies the repo's dagster.yaml
into DAGSTER_HOME and exports both variables, so `dagster dev -w workspace.yaml` in the same
environment shows the same runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg

from medmatch.mpi.database import database_url, libpq_url, with_database

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = Path(".medmatch/dagster")
DATABASE = "dagster"


def prepare(home: Path | None = None) -> tuple[Path, str]:
    """DAGSTER_HOME and the Dagster storage URL, created and exported."""
    home = Path(os.environ.get("DAGSTER_HOME") or home or DEFAULT_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    mpi = libpq_url(database_url())
    with psycopg.connect(mpi, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    # dagster-postgres speaks psycopg2 (its NOTIFY needs client-side parameters); SQLAlchemy
    # 2.1 would pick psycopg 3 for a bare postgresql:// URL
    url = os.environ.get("DAGSTER_PG_URL") or with_database(mpi, DATABASE).replace(
        "postgresql://", "postgresql+psycopg2://", 1
    )
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DAGSTER_PG_URL"] = url
    return home, url
