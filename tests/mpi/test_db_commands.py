"""`medmatch db start|url|upgrade|stop` against an embedded PostgreSQL of its own."""

import psycopg
from typer.testing import CliRunner

from medmatch.cli import app
from medmatch.config import get_settings


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
        assert tables == 13  # twelve MPI tables (API tokens and access audit too) and alembic_version
        # a second start reuses the running server
        assert runner.invoke(app, ["db", "start"]).exit_code == 0
        assert "stopped" in runner.invoke(app, ["db", "stop"]).output
        assert "no embedded PostgreSQL" in runner.invoke(app, ["db", "stop"]).output
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        assert "nothing to start" in runner.invoke(app, ["db", "start"]).output
    finally:
        get_settings.cache_clear()
