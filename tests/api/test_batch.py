"""Batch runs through the API: launched as Dagster runs, followed over /ws/jobs to the end."""

from __future__ import annotations

import json

import dagster as dg
from websockets.sync.client import connect


def _follow(api, job_id, token):
    messages = []
    with connect(f"{api.ws}/ws/jobs/{job_id}?token={token}", open_timeout=30) as ws:
        for raw in ws:
            messages.append(json.loads(raw))
    return messages


def _run_events(events, job_id):
    seen = []
    while "run_finished" not in seen:
        event = json.loads(events.recv(timeout=60))
        if event.get("job_id") == job_id:
            seen.append(event["type"])
    return seen


def test_a_full_run_is_a_dagster_run_followed_to_completion(api, tokens):
    events = connect(f"{api.ws}/ws/events?token={tokens['reviewer']}")
    with api.client(tokens["operator"]) as http, events:
        started = http.post("/api/v1/matching/batch", json={"job_type": "full_match"})
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]
        messages = _follow(api, job_id, tokens["reviewer"])
        status = http.get(f"/api/v1/matching/batch/{job_id}").json()
        assert _run_events(events, job_id) == ["run_started", "run_finished"]
    final = messages[-1]
    assert final["status"] == "completed", final
    assert status["status"] == "completed" and status["total_records"] > 100
    assert status["processed_records"] == status["total_records"]
    progress = [m["processed_records"] for m in messages]
    assert progress == sorted(progress) and len(set(progress)) >= 3
    stages = [m["stage"] for m in messages[:-1]]
    assert stages[0] == "source_records" and "golden_records" in stages
    assert set(final) >= {"total_records", "processed_records", "matched_pairs", "stage"}
    with dg.DagsterInstance.get() as instance:  # the run is in the instance the UI reads
        run = instance.get_run_by_id(job_id)
    assert run is not None and run.job_name == "full_match"
    # a client connecting after the end still reads the whole run
    late = _follow(api, job_id, tokens["reviewer"])
    assert [m["processed_records"] for m in late] == progress


def test_incremental_runs_need_a_known_partition(api, tokens, landing):
    with api.client(tokens["operator"]) as http:
        missing = http.post("/api/v1/matching/batch", json={"job_type": "incremental_match"})
        assert missing.status_code == 422
        unknown = http.post(
            "/api/v1/matching/batch",
            json={"job_type": "incremental_match", "partition": "nope.csv"},
        )
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == [
            "body",
            "partition",
        ]
        both = http.post(
            "/api/v1/matching/batch", json={"job_type": "full_match", "partition": "x"}
        )
        assert both.status_code == 422
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("landing_batches", ["demographics.csv"])
        ok = http.post(
            "/api/v1/matching/batch",
            json={"job_type": "incremental_match", "partition": "demographics.csv"},
        )
        assert ok.status_code == 202
        messages = _follow(api, ok.json()["job_id"], tokens["operator"])
    assert messages[-1]["status"] == "completed", messages[-1]
    assert messages[-1]["partition"] == "demographics.csv"


def test_unknown_jobs_are_404_over_http_and_websocket(api, tokens):
    with api.client(tokens["reviewer"]) as http:
        assert http.get("/api/v1/matching/batch/no-such-run").status_code == 404
    with connect(f"{api.ws}/ws/jobs/no-such-run?token={tokens['reviewer']}") as ws:
        assert "error" in json.loads(ws.recv(timeout=10))
    # a malformed id (a NUL, a quote) is no job either, and never reaches Dagster's storage
    for bad in ("bad%00id", "x'%3B--", "a" * 65):
        with connect(f"{api.ws}/ws/jobs/{bad}?token={tokens['reviewer']}") as ws:
            assert json.loads(ws.recv(timeout=10)) == {"error": "no such batch job"}
