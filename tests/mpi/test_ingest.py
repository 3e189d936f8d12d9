"""`medmatch ingest`: a file through the real-time lookup into PostgreSQL."""

from typer.testing import CliRunner

from medmatch.cli import app
from medmatch.config import get_settings
from medmatch.data.synthetic import generate


def test_ingest_a_generated_file(tmp_path, monkeypatch, database_url, uow_factory, engine):
    from sqlalchemy import text

    data = generate(60, seed=5)
    paths = data.write(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        args = [
            "ingest",
            "--demographics",
            str(paths["demographics"]),
            "--medical",
            str(paths["medical"]),
            "--adjudicator",
            "offline",
        ]
        first = CliRunner().invoke(app, args)
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(app, args)  # the same file again: updates, no new identity
        assert again.exit_code == 0, again.output
        bad = CliRunner().invoke(app, ["ingest", "--demographics", str(tmp_path / "nope.csv")])
        assert bad.exit_code == 2
    finally:
        get_settings.cache_clear()
    with engine.connect() as conn:
        records = conn.execute(text("SELECT count(*) FROM source_records")).scalar_one()
        goldens = conn.execute(
            text("SELECT count(*) FROM golden_records WHERE status = 'active'")
        ).scalar_one()
        people = data.truth["person_id"].nunique()
    assert records == len(data.demographics)
    assert people * 0.9 <= goldens <= people * 1.2
    assert "created" in first.output and "golden records touched" in first.output
