"""A real uvicorn server on a real PostgreSQL and a real Dagster instance, per test module.

The server runs in a thread of the test process (so coverage sees the API's code), on an
ephemeral port; a second server, where a test needs one, is a real subprocess. Batch runs
are launched the way `medmatch serve` launches them: `medmatch pipeline run` subprocesses
on the same Dagster instance.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn

from medmatch.config import MatchThresholds, Settings, get_settings
from medmatch.data.synthetic import generate
from medmatch.mpi.access import TokenStore
from medmatch.mpi.database import libpq_url, make_engine, with_database
from tests.mpi.conftest import database_url, server_url  # noqa: F401

ROLES = ("source", "reviewer", "operator", "admin")
# a wide review band: ordinary near-duplicates land in the review queue
THRESHOLDS = MatchThresholds(auto_match=0.999999, review=0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the API did not come up")


@pytest.fixture(scope="module")
def api_env(database_url, server_url, tmp_path_factory):  # noqa: F811
    """The environment a `medmatch serve` process would have: DATABASE_URL, a Dagster
    instance on its own database, a landing folder with one generated batch."""
    root = tmp_path_factory.mktemp("api")
    dagster_db = f"mm_dagster_{uuid.uuid4().hex[:8]}"
    plain = libpq_url(server_url)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dagster_db}"')
    landing = root / "landing"
    generate(120, seed=5).write(landing)
    env = {
        "DATABASE_URL": libpq_url(database_url),
        "DAGSTER_HOME": str(root / "dagster"),
        "DAGSTER_PG_URL": with_database(plain, dagster_db).replace(
            "postgresql://", "postgresql+psycopg2://", 1
        ),
        "MEDMATCH_LANDING_DIR": str(landing),
        "MEDMATCH_MODELS_DIR": str(root / "models"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{dagster_db}" WITH (FORCE)')


class Server:
    def __init__(self, base: str, app=None) -> None:
        self.base, self.app = base, app
        self.ws = base.replace("http://", "ws://")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def api(api_env):
    """The API served by uvicorn in a thread of this process."""
    from medmatch_api.context import ApiContext
    from medmatch_api.main import create_app

    settings = Settings(thresholds=THRESHOLDS)
    app = create_app(lambda: ApiContext.create(settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base)
    yield Server(base, app)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def second_api(api_env, api):
    """Another API process on the same database: `medmatch serve` in a subprocess."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "medmatch", "serve", "--port", str(port)],
        env={**os.environ, **api_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        yield Server(base)
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def tokens(api_env, database_url):  # noqa: F811
    """One token per role, plus a source token bound to the LAB system."""
    engine = make_engine(database_url)
    store = TokenStore(engine)
    made = {role: store.create(f"{role}@example.org", role)[1] for role in ROLES}
    made["lab"] = store.create("lab-feed", "source", "LAB")[1]
    made["reviewer2"] = store.create("reviewer2@example.org", "reviewer")[1]
    yield made
    engine.dispose()


def record(source="EHR", external_id=None, **demographics):
    base = {
        "name_first": "Maria",
        "name_last": "Garcia",
        "date_of_birth": "1975-04-12",
        "gender": "F",
        "phone": "617-555-0143",
        "address_line": "12 Main Street",
        "postal_code": "02139",
    }
    return {
        "source_system": source,
        "external_id": external_id,
        "demographics": base | demographics,
        "medical_data": {"conditions": ["T2DM"]},
    }


@pytest.fixture(scope="module")
def landing(api_env) -> Path:
    return Path(api_env["MEDMATCH_LANDING_DIR"])
