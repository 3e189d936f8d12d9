"""Patients and the real-time lookup over real HTTP: auth, roles, validation, audit."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from medmatch.mpi.database import make_engine
from tests.api.conftest import record


def test_health_needs_no_token_and_names_each_part(api):
    with api.client() as http:
        body = http.get("/health").json()
    assert body == {"status": "ok", "database": "up", "dagster": "up", "ollama": "not_configured"}


@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "/api/v1/matching/lookup"),
        ("get", "/api/v1/patients/1"),
        ("get", "/api/v1/patients"),
        ("get", "/api/v1/golden-records/GR-000001"),
        ("get", "/api/v1/review/pending"),
        ("post", "/api/v1/matching/batch"),
    ],
)
def test_every_endpoint_but_health_needs_a_valid_token(api, method, path):
    with api.client() as anonymous, api.client("mm_not-a-token") as forged:
        assert getattr(anonymous, method)(path).status_code == 401
        answer = getattr(forged, method)(path)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_lookup_links_the_same_person_and_resends_update(api, tokens):
    with api.client(tokens["source"]) as http:
        first = http.post("/api/v1/matching/lookup", json=record("EHR", "L-1"))
        assert first.status_code == 200, first.text
        first = first.json()
        assert first["decision"] == "new_identity" and first["golden_record_id"].startswith("GR-")
        again = http.post(
            "/api/v1/matching/lookup", json=record("EHR", "L-1", phone="617-555-0199")
        ).json()
    assert again["source_record_id"] == first["source_record_id"] and not again["created"]
    assert again["golden_record_id"] == first["golden_record_id"]
    assert set(first) >= {"source_record_id", "golden_record_id", "confidence", "explanation"}


def test_submit_read_and_list_patients_with_a_stable_cursor(api, tokens, database_url):
    with api.client(tokens["operator"]) as http:
        made = [
            http.post(
                "/api/v1/patients",
                json=record("CLINIC", f"P-{i}", name_first=name, date_of_birth=f"19{50 + i}-01-02"),
            )
            for i, name in enumerate(["Ann", "Bob", "Cy", "Dee", "Eve"])
        ]
        assert all(m.status_code == 201 for m in made), made[0].text
        first = made[0].json()
        assert made[0].headers["location"] == f"/api/v1/patients/{first['patient']['id']}"
        assert first["patient"]["golden_record_id"] == first["match"]["golden_record_id"]
    with api.client(tokens["reviewer"]) as http:
        one = http.get(f"/api/v1/patients/{first['patient']['id']}").json()
        assert one["demographics"]["name_first"] == "Ann" and one["source_system"] == "CLINIC"
        page1 = http.get("/api/v1/patients", params={"source_system": "CLINIC", "limit": 3}).json()
        page2 = http.get(
            "/api/v1/patients",
            params={"source_system": "CLINIC", "limit": 3, "cursor": page1["next_cursor"]},
        ).json()
        assert http.get("/api/v1/patients/999999").status_code == 404
    ids = [p["id"] for p in page1["items"] + page2["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 5 and page2["next_cursor"] is None
    engine = make_engine(database_url)
    with engine.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT actor, action FROM access_audit"
                " WHERE resource = 'source_record' AND resource_id = :id ORDER BY id"
            ),
            {"id": str(first["patient"]["id"])},
        ).all()
    engine.dispose()
    assert [tuple(a) for a in audited] == [
        ("operator@example.org", "submit"),
        ("reviewer@example.org", "read"),
        ("reviewer@example.org", "list"),
    ]


def test_a_bound_source_token_submits_and_reads_only_as_its_system(api, tokens):
    with api.client(tokens["lab"]) as http:
        assert http.post("/api/v1/matching/lookup", json=record("EHR", "X")).status_code == 403
        mine = http.post("/api/v1/patients", json=record("LAB", "B-1", name_first="Lu")).json()
        assert http.get(f"/api/v1/patients/{mine['patient']['id']}").status_code == 200
        listed = http.get("/api/v1/patients").json()["items"]
        assert {p["source_system"] for p in listed} == {"LAB"}
        assert http.get("/api/v1/patients", params={"source_system": "EHR"}).status_code == 403
    with api.client(tokens["source"]) as unbound:
        other = unbound.post("/api/v1/patients", json=record("EHR", "U-1", name_first="Ty"))
        assert unbound.get(f"/api/v1/patients/{other.json()['patient']['id']}").status_code == 403
    with api.client(tokens["lab"]) as http:
        assert http.get(f"/api/v1/patients/{other.json()['patient']['id']}").status_code == 403


@pytest.mark.parametrize(
    "body, field",
    [
        (record(date_of_birth="1975-13-45"), ["body", "demographics", "date_of_birth"]),
        (record(favourite_colour="crimson"), ["body", "demographics", "favourite_colour"]),
        ({**record(), "source_system": ""}, ["body", "source_system"]),
        ({"source_system": "EHR"}, ["body", "demographics"]),
        (record(name_first=None, name_last=None), ["body", "demographics"]),
        (record(phone="not a phone"), ["body", "demographics", "phone"]),
        (record(name_first="Ma\x00ria"), ["body", "demographics", "name_first"]),
        (record(city="Boston\x1b[2J"), ["body", "demographics", "city"]),
        (
            {**record(), "medical_data": {"conditions": ["x" * 201]}},
            ["body", "medical_data", "conditions", 0],
        ),
    ],
)
def test_bad_input_is_a_422_naming_the_field_never_the_value(api, tokens, body, field):
    with api.client(tokens["source"]) as http:
        answer = http.post("/api/v1/matching/lookup", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == field
    for secret in ("1975-13-45", "crimson", "not a phone"):
        assert secret not in answer.text


def test_oversized_and_malformed_bodies_are_refused(api, tokens):
    with api.client(tokens["source"]) as http:
        huge = record(name_first="A" * 100)
        huge["medical_data"] = {"conditions": ["x" * 1000] * 1500}
        assert http.post("/api/v1/matching/lookup", json=huge).status_code == 413
        bad = http.post(
            "/api/v1/matching/lookup",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 422


def test_control_characters_and_lone_surrogates_are_a_422_anywhere(api, tokens):
    """PostgreSQL stores no NUL in text and UTF-8 has no lone surrogate: refused as input,
    never a 500 from the database."""
    conditions = json.dumps({**record(), "medical_data": {"conditions": ["asthma\ud800"]}})
    with api.client(tokens["operator"]) as http:
        lookup = http.post(
            "/api/v1/matching/lookup",
            content=conditions.encode(),
            headers={"content-type": "application/json"},
        )
        assert lookup.status_code == 422, lookup.text
        assert lookup.json()["detail"][0]["loc"] == ["body", "medical_data", "conditions", 0]
        listed = http.get("/api/v1/patients", params={"external_id": "E\x00"})
        assert listed.status_code == 422 and listed.json()["detail"][0]["loc"] == [
            "query",
            "external_id",
        ]
        merge = http.post(
            "/api/v1/golden-records/merge",
            json={"golden_record_ids": ["GR-000001", "GR-000002"], "reason": "same\x00"},
        )
        assert merge.status_code == 422 and merge.json()["detail"][0]["loc"] == ["body", "reason"]
        notes = http.post(
            "/api/v1/review/1/resolve",
            json={"resolution": "defer", "resolver_notes": "line one\nline two\x00"},
        )
        assert notes.status_code == 422
        assert notes.json()["detail"][0]["loc"] == ["body", "resolver_notes"]


def test_nothing_was_stored_by_refused_requests(api, tokens, database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        systems = set(
            conn.execute(text("SELECT DISTINCT source_system FROM source_records")).scalars()
        )
    engine.dispose()
    assert "X" not in systems and systems <= {"EHR", "CLINIC", "LAB"}


def test_lookups_switch_to_the_model_the_pipeline_promotes(api, tokens, api_env):
    import copy
    from pathlib import Path

    from medmatch.matching import MatchModel

    shipped = MatchModel.default()
    settings = copy.deepcopy(shipped.splink_settings)
    settings["probability_two_random_records_match"] = 0.0005
    promoted = MatchModel(settings, shipped.term_frequencies)
    current = Path(api_env["MEDMATCH_MODELS_DIR"]) / "current.json"
    current.parent.mkdir(parents=True, exist_ok=True)
    with api.client(tokens["source"]) as http:
        before = http.post("/api/v1/matching/lookup", json=record("EHR", "V-1")).json()
        promoted.save(current)
        after = http.post("/api/v1/matching/lookup", json=record("EHR", "V-2")).json()
        current.unlink()
        back = http.post("/api/v1/matching/lookup", json=record("EHR", "V-3")).json()
    assert before["model_version"] == shipped.version == back["model_version"]
    assert after["model_version"] == promoted.version != shipped.version
