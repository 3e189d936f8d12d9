"""`medmatch token create|list|revoke` on the MPI database, and what a revoked token gets."""

from __future__ import annotations

from typer.testing import CliRunner

from medmatch.cli import app

runner = CliRunner()


def test_create_prints_the_token_last_and_revoke_stops_it_at_once(api, api_env):
    made = runner.invoke(app, ["token", "create", "--role", "reviewer", "--name", "cli@x.org"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("mm_")
    with api.client(token) as http:
        assert http.get("/api/v1/review/pending").status_code == 200
        listed = runner.invoke(app, ["token", "list"])
        assert "cli@x.org\treviewer\tlive" in listed.stdout and token not in listed.stdout
        assert runner.invoke(app, ["token", "revoke", "cli@x.org"]).exit_code == 0
        assert http.get("/api/v1/review/pending").status_code == 401
    assert "revoked" in runner.invoke(app, ["token", "list"]).stdout


def test_bad_token_requests_fail_with_a_message(api, api_env):
    twice = ["token", "create", "--role", "admin", "--name", "dup"]
    assert runner.invoke(app, twice).exit_code == 0
    assert runner.invoke(app, twice).exit_code == 2
    wrong = runner.invoke(app, ["token", "create", "--role", "root", "--name", "r"])
    assert wrong.exit_code == 2 and "role" in wrong.output
    bound = ["token", "create", "--role", "reviewer", "--name", "b", "--source-system", "LAB"]
    assert runner.invoke(app, bound).exit_code == 2
    assert runner.invoke(app, ["token", "revoke", "nobody"]).exit_code == 2
