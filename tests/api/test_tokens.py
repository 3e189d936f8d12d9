"""`medmatch token create|list|revoke` on the MPI database, and what a revoked token gets."""

from __future__ import annotations

import time

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
        _refused_soon(http)  # the NOTIFY is heard asynchronously, in milliseconds
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


def test_verified_tokens_are_remembered_for_the_ttl_and_forgotten_on_revocation(
    api_env, database_url
):
    """The cache in front of TokenStore: a known token costs no query until its time is up;
    a revocation (NOTIFY) or the ttl makes the next request ask again; unknown tokens are
    never kept, so a token created after a miss works at once."""
    from medmatch.mpi.access import TokenStore, VerifiedTokens
    from medmatch.mpi.database import make_engine

    engine = make_engine(database_url)
    store = TokenStore(engine)
    now = [100.0]
    cache = VerifiedTokens(store, ttl_s=5.0, clock=lambda: now[0])
    _, secret = store.create("cache@x.org", "reviewer")
    try:
        assert cache.known(secret) is None
        assert cache.verify(secret).name == "cache@x.org"
        assert cache.known(secret).role == "reviewer"
        store.revoke("cache@x.org")
        assert cache.verify(secret) is not None  # within the ttl, nobody told this cache
        now[0] += 5.0
        assert cache.verify(secret) is None  # time is up: asked again, refused
        _, other = store.create("cache2@x.org", "source")
        assert cache.verify(other) is not None
        cache.forget()  # what the event listener does on a revocation
        assert cache.known(other) is None
        assert cache.verify("mm_unknown") is None and cache.known("mm_unknown") is None
        uncached = VerifiedTokens(store, ttl_s=0)
        assert uncached.verify(other) is not None and uncached.known(other) is None
        cache.MAX_ENTRIES = 1  # full: the cache starts over rather than grow
        assert cache.verify(other) is not None
        _, third = store.create("cache3@x.org", "source")
        assert cache.verify(third) is not None
        assert cache.known(other) is None and cache.known(third) is not None
        # a revocation heard while a verify's query runs: that answer is not kept, for it
        # may have been read before the revocation (kept, it would outlive it by the ttl)
        cache.MAX_ENTRIES = 10_000
        _, fourth = store.create("cache4@x.org", "source")
        asking = store.verify

        def revoked_meanwhile(secret):
            principal = asking(secret)
            cache.forget()
            return principal

        store.verify = revoked_meanwhile
        assert cache.verify(fourth) is not None and cache.known(fourth) is None
        store.verify = asking
        assert cache.verify(fourth) is not None and cache.known(fourth) is not None
    finally:
        engine.dispose()


def test_a_revocation_reaches_the_other_api_process_at_once(api, second_api, api_env, tokens):
    made = runner.invoke(app, ["token", "create", "--role", "reviewer", "--name", "far@x.org"])
    token = made.stdout.strip().splitlines()[-1]
    with second_api.client(token) as http:
        assert http.get("/api/v1/review/pending").status_code == 200  # now in its cache
        assert runner.invoke(app, ["token", "revoke", "far@x.org"]).exit_code == 0
        _refused_soon(http)


def _refused_soon(http) -> None:
    deadline = time.monotonic() + 2.0  # far inside the 5 s ttl: the NOTIFY did it
    while http.get("/api/v1/review/pending").status_code != 401:
        assert time.monotonic() < deadline, "the API still trusts the revoked token"
        time.sleep(0.05)
