"""/health when parts are down, bodies streamed past the limit, events that cannot be sent."""

from __future__ import annotations

import dataclasses

import httpx

from medmatch.config import Settings
from medmatch.mpi.database import make_engine
from medmatch_api.routers.health import health
from tests.api.conftest import free_port, record


def test_health_says_which_part_is_down(api):
    context = api.app.state.context
    closed = f"http://127.0.0.1:{free_port()}"
    no_ollama = dataclasses.replace(context, settings=Settings(ollama_base_url=closed))
    answer = health(no_ollama)
    assert (answer.status, answer.database, answer.ollama) == ("degraded", "up", "down")
    dead = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    no_database = dataclasses.replace(context, mpi=dataclasses.replace(context.mpi, engine=dead))
    assert health(no_database).database == "down"


def test_a_chunked_body_past_the_limit_is_refused(api, tokens):
    limit = api.app.state.context.settings.api_max_body_bytes

    def chunks():
        yield b'{"source_system": "EHR", "demographics": {"name_first": "'
        for _ in range(limit // 1000 + 1):
            yield b"a" * 1000
        yield b'"}}'

    with api.client(tokens["source"]) as http:
        answer = http.post(
            "/api/v1/matching/lookup",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 413


def test_a_lost_event_never_fails_the_change(api, tokens):
    context = api.app.state.context
    bus = context.events
    url = bus.libpq_url
    bus.flush()  # the publisher's connection closed: the next one connects to nowhere
    bus.libpq_url = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    try:
        with api.client(tokens["source"]) as http:
            answer = http.post("/api/v1/matching/lookup", json=record("EHR", "lost-1"))
        assert answer.status_code == 200
        bus.flush()
    finally:
        bus.libpq_url = url


def test_unexpected_errors_are_a_500_without_details(api, tokens):
    context = api.app.state.context
    views = context.views

    class Broken:
        def patient(self, record_id):
            raise RuntimeError("Garcia, Maria 1975-04-12")  # what an exception may carry

    context.views = Broken()
    try:
        answer = httpx.get(
            f"{api.base}/api/v1/patients/1",
            headers={"Authorization": f"Bearer {tokens['reviewer']}"},
        )
    finally:
        context.views = views
    assert answer.status_code == 500 and "Garcia" not in answer.text
    assert "incident" in answer.json()["detail"]


def test_crossed_writers_are_a_409_to_retry_other_database_errors_an_incident(api, tokens):
    import psycopg
    from sqlalchemy.exc import DBAPIError

    context = api.app.state.context
    views = context.views

    class Crossed:
        def __init__(self, orig):
            self.orig = orig

        def patient(self, record_id):
            raise DBAPIError("SELECT", {}, self.orig)

    answers = []
    try:
        for orig in (psycopg.errors.DeadlockDetected("x"), psycopg.errors.DiskFull("y")):
            context.views = Crossed(orig)
            answers.append(
                httpx.get(
                    f"{api.base}/api/v1/patients/1",
                    headers={"Authorization": f"Bearer {tokens['reviewer']}"},
                )
            )
    finally:
        context.views = views
    assert [a.status_code for a in answers] == [409, 500]
    assert "retry" in answers[0].json()["detail"]
