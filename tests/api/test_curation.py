"""Review, merge and split over real HTTP, with the events they publish."""

from __future__ import annotations

import json

from websockets.sync.client import connect

from medmatch_api.routers import golden as golden_router
from tests.api.conftest import record


def _review_pair(http, tag):
    a = http.post("/api/v1/patients", json=record("EHR", f"{tag}-a")).json()
    b = http.post(
        "/api/v1/patients",
        json=record(
            "LAB",
            f"{tag}-b",
            name_first="Mary",
            phone=None,
            postal_code="02140",
            date_of_birth="1975-04-21",
            address_line="40 Elm Road",
        ),
    ).json()
    assert b["match"]["decision"] == "review_required", b["match"]
    return a, b


def test_review_item_shows_both_records_and_is_resolved_once(api, tokens):
    with api.client(tokens["operator"]) as operator:
        a, b = _review_pair(operator, "R1")
    with api.client(tokens["reviewer"]) as alice, api.client(tokens["reviewer2"]) as bob:
        pending = alice.get("/api/v1/review/pending").json()["items"]
        item = next(i for i in pending if i["id"] in b["match"]["review_ids"])
        assert {item["left"]["id"], item["right"]["id"]} == {
            a["patient"]["id"],
            b["patient"]["id"],
        }
        assert item["match"]["evidence"] and item["left"]["demographics"]["name_last"] == "Garcia"
        path = f"/api/v1/review/{item['id']}"
        # a reviewer takes items for themselves only
        assert alice.post(f"{path}/assign", json={"assigned_to": "x@y.org"}).status_code == 403
        took = alice.post(f"{path}/assign", json={"assigned_to": "reviewer@example.org"})
        assert took.status_code == 200 and took.json()["status"] == "assigned"
        again = alice.post(f"{path}/assign", json={"assigned_to": "reviewer@example.org"})
        assert again.status_code == 200  # taking it twice is harmless
        held = bob.post(f"{path}/assign", json={"assigned_to": "reviewer2@example.org"})
        assert held.status_code == 409
        refused = bob.post(f"{path}/resolve", json={"resolution": "confirmed_match"})
        assert refused.status_code == 409
        assert alice.post(f"{path}/resolve", json={"resolution": "maybe"}).status_code == 422
        done = alice.post(
            f"{path}/resolve", json={"resolution": "confirmed_match", "resolver_notes": "same DOB"}
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "resolved" and done.json()["change"]["action"] == "merge"
        twice = alice.post(f"{path}/resolve", json={"resolution": "confirmed_non_match"})
        assert twice.status_code == 409
        after = alice.get(f"/api/v1/patients/{b['patient']['id']}").json()
    assert after["golden_record_id"] == a["patient"]["golden_record_id"]


def test_merge_and_split_with_dry_runs_and_provenance(api, tokens, monkeypatch):
    with api.client(tokens["operator"]) as http:
        a = http.post("/api/v1/patients", json=record("EHR", "M-a", name_first="Zoe")).json()
        b = http.post(
            "/api/v1/patients",
            json=record(
                "LAB",
                "M-b",
                name_first="Quinn",
                name_last="Baxter",
                date_of_birth="1990-06-30",
                phone="212-555-0100",
                address_line="9 Oak Avenue",
                postal_code="10001",
            ),
        ).json()
        ga, gb = a["patient"]["golden_record_id"], b["patient"]["golden_record_id"]
        assert ga != gb
        body = {"golden_record_ids": [ga, gb], "survivor_id": gb, "reason": "same person"}
        preview = http.post("/api/v1/golden-records/merge", json=body | {"dry_run": True})
        assert preview.status_code == 200 and preview.json()["dry_run"]
        assert preview.json()["records_moved"] == [a["patient"]["id"]]
        assert http.get(f"/api/v1/golden-records/{ga}").json()["status"] == "active"
        read = {g: http.get(f"/api/v1/golden-records/{g}").json()["version"] for g in (ga, gb)}
        stale = body | {"expected_versions": {ga: read[ga] + 1, gb: read[gb]}}
        refused = http.post("/api/v1/golden-records/merge", json=stale)
        assert refused.status_code == 409 and ga in refused.json()["detail"]
        stray = body | {"expected_versions": {"GR-999999": 1}}
        assert http.post("/api/v1/golden-records/merge", json=stray).status_code == 422
        merged = http.post(
            "/api/v1/golden-records/merge", json=body | {"expected_versions": read}
        ).json()
        assert merged["golden_record"]["golden_id"] == gb
        assert http.get(f"/api/v1/golden-records/{ga}").json()["merged_into"] == gb
        golden = http.get(f"/api/v1/golden-records/{gb}").json()
        assert sorted(golden["source_record_ids"]) == sorted(
            [a["patient"]["id"], b["patient"]["id"]]
        )
        for value in golden["demographics"].values():
            assert set(value["source_record_ids"]) <= set(golden["source_record_ids"])
            assert value["source_record_ids"]
        sources = http.get(f"/api/v1/golden-records/{gb}/sources").json()
        assert {s["id"] for s in sources} == set(golden["source_record_ids"])
        with monkeypatch.context() as patch:  # more sources than one answer holds: refused
            patch.setattr(golden_router, "MAX_SOURCES", 1)
            over = http.get(f"/api/v1/golden-records/{gb}/sources")
            assert over.status_code == 409
            assert f"/api/v1/patients?golden_record_id={gb}" in over.json()["detail"]
        split_body = {"golden_record_id": gb, "source_record_ids": [a["patient"]["id"]]}
        dry = http.post("/api/v1/golden-records/split", json=split_body | {"dry_run": True})
        assert dry.status_code == 200 and dry.json()["golden_record"] is None
        stale_split = split_body | {"expected_version": read[gb]}  # the merge changed it
        assert http.post("/api/v1/golden-records/split", json=stale_split).status_code == 409
        split = http.post(
            "/api/v1/golden-records/split",
            json=split_body | {"expected_version": golden["version"]},
        ).json()
        new = split["golden_record"]
        assert new["source_record_ids"] == [a["patient"]["id"]] and new["golden_id"] not in (ga, gb)
        bad = http.post("/api/v1/golden-records/merge", json={"golden_record_ids": [gb, "x"]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == [
            "body",
            "golden_record_ids",
        ]
        missing = http.post(
            "/api/v1/golden-records/merge", json={"golden_record_ids": [gb, "GR-999999"]}
        )
        assert missing.status_code == 404
        assert http.get("/api/v1/golden-records/GR-999998").status_code == 404


def test_roles_are_refused_where_they_must_be(api, tokens):
    gid = "GR-000001"
    with api.client(tokens["source"]) as source, api.client(tokens["reviewer"]) as reviewer:
        assert source.get(f"/api/v1/golden-records/{gid}").status_code == 403
        assert source.get("/api/v1/review/pending").status_code == 403
        assert (
            source.post("/api/v1/review/1/resolve", json={"resolution": "defer"}).status_code == 403
        )
        merge = {"golden_record_ids": [gid, "GR-000002"]}
        assert reviewer.post("/api/v1/golden-records/merge", json=merge).status_code == 403
        split = {"golden_record_id": gid, "source_record_ids": [1]}
        assert reviewer.post("/api/v1/golden-records/split", json=split).status_code == 403
        batch = {"job_type": "full_match"}
        assert reviewer.post("/api/v1/matching/batch", json=batch).status_code == 403
        assert source.post("/api/v1/matching/batch", json=batch).status_code == 403
        assert reviewer.post("/api/v1/matching/lookup", json=record()).status_code == 403
        assert source.get("/api/v1/matching/batch/abc").status_code == 403
        assert source.get("/api/v1/matching/results/1").status_code == 403


def test_events_from_one_process_reach_clients_of_another(api, second_api, tokens):
    url = f"{second_api.ws}/ws/events"
    with connect(url, additional_headers={"Authorization": f"Bearer {tokens['reviewer']}"}) as ws:
        with api.client(tokens["source"]) as http:
            made = http.post("/api/v1/matching/lookup", json=record("EHR", "E-1", name_first="Ida"))
        event = json.loads(ws.recv(timeout=20))
    assert event["type"] == "lookup"
    assert event["source_record_id"] == made.json()["source_record_id"]
    assert "Ida" not in json.dumps(event)


def test_a_process_listens_for_events_only_while_a_client_is_subscribed(api, tokens):
    import time

    from sqlalchemy import text

    engine = api.app.state.context.mpi.engine

    def listeners() -> int:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN medmatch_events'")
            ).scalar_one()

    def settles(expected: int) -> bool:
        deadline = time.monotonic() + 10
        while listeners() != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return listeners() == expected

    assert settles(0)  # every lookup's NOTIFY used to wake each process for nobody
    url = f"{api.ws}/ws/events?token={tokens['reviewer']}"
    with connect(url) as first, connect(url):
        assert listeners() == 1  # listening before the handshake completed, once per process
        with api.client(tokens["source"]) as http:
            http.post("/api/v1/matching/lookup", json=record("EHR", "L-1", name_first="Una"))
        assert json.loads(first.recv(timeout=20))["type"] == "lookup"
    assert settles(0)


def test_websockets_refuse_a_missing_or_weak_token(api, tokens):
    import pytest
    from websockets.exceptions import InvalidStatus

    for query in ("", f"?token={tokens['source']}", "?token=mm_forged"):
        with pytest.raises(InvalidStatus):
            with connect(f"{api.ws}/ws/events{query}"):
                pass
    with connect(f"{api.ws}/ws/events?token={tokens['reviewer']}"):
        pass


def test_provenance_skips_values_no_linked_record_holds():
    from medmatch.mpi.domain import StoredRecord
    from medmatch.mpi.survivorship import provenance

    holder = StoredRecord(7, "EHR", "1", {"name_first": "Ann"}, {}, {})
    stale = {"name_first": "Ann", "name_last": "Moved-away", "phones": ["+16175550143"]}
    assert provenance([holder], stale) == {"name_first": [7]}
    assert provenance([], stale) == {}
