"""`medmatch db start|url|upgrade|stop` against an embedded PostgreSQL of its own."""

import psycopg
from typer.testing import CliRunner

from medmatch.cli import app
from medmatch.config import get_settings
from medmatch.mpi.database import embedded_settings, start_embedded, stop_embedded

GIB = 1024**3


def test_db_lifecycle(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MEDMATCH_PG_DATA_DIR", str(tmp_path / "pg"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        started = runner.invoke(app, ["db", "start"])
        assert started.exit_code == 0, started.output
        assert "PostgreSQL running" in started.output
        url = runner.invoke(app, ["db", "url"]).output.strip()
        assert url.startswith("postgresql://")
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        with psycopg.connect(url) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()[0]
        assert (
            tables == 13
        )  # twelve MPI tables (API tokens and access audit too) and alembic_version
        # a second start reuses the running server
        assert runner.invoke(app, ["db", "start"]).exit_code == 0
        assert "stopped" in runner.invoke(app, ["db", "stop"]).output
        assert "no embedded PostgreSQL" in runner.invoke(app, ["db", "stop"]).output
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        assert "nothing to start" in runner.invoke(app, ["db", "start"]).output
    finally:
        get_settings.cache_clear()


def test_embedded_settings_are_sized_to_the_machine():
    small, big = embedded_settings(2 * GIB), embedded_settings(64 * GIB)
    assert small["shared_buffers"] == "512MB" and big["shared_buffers"] == "4096MB"  # capped
    assert small["maintenance_work_mem"] == "64MB" and big["maintenance_work_mem"] == "1024MB"
    assert small["effective_cache_size"] == "1024MB"
    assert embedded_settings(256 * 1024**2)["shared_buffers"] == "128MB"  # never below initdb's


def _settings(url):
    names = ["shared_buffers", "max_wal_size", "checkpoint_timeout"]
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                [names],
            ).fetchall()
        )


def test_the_embedded_server_runs_tuned_and_pg_tune_off_restores_the_defaults(
    tmp_path, monkeypatch
):
    """Settings that need a restart (shared_buffers) take effect at the first start; the
    socket and URL stay the same across that restart."""
    data = tmp_path / "pg"
    monkeypatch.delenv("MEDMATCH_PG_TUNE", raising=False)
    get_settings.cache_clear()
    try:
        url = start_embedded(data)
        wanted = embedded_settings()
        tuned = _settings(url)
        with psycopg.connect(url) as conn:
            same = conn.execute(
                "SELECT pg_size_bytes(current_setting('shared_buffers')) = pg_size_bytes(%s)",
                [wanted["shared_buffers"]],
            ).fetchone()[0]
        assert same and tuned["shared_buffers"] != "128MB"
        assert tuned["max_wal_size"] == "8GB" and tuned["checkpoint_timeout"] == "15min"
        assert start_embedded(data) == url  # already tuned: no restart, same server

        monkeypatch.setenv("MEDMATCH_PG_TUNE", "false")
        get_settings.cache_clear()
        assert start_embedded(data) == url
        assert _settings(url) == {
            "shared_buffers": "128MB",
            "max_wal_size": "1GB",
            "checkpoint_timeout": "5min",
        }
    finally:
        stop_embedded(data)
        get_settings.cache_clear()
