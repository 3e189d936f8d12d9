"""One contract for the MPI's adapters: every test runs on PostgreSQL and on the JSON file."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy.exc import IntegrityError

from medmatch.errors import ConflictError, NotFoundError
from medmatch.mpi.domain import Change, Golden, Link, MatchEntry, Review
from medmatch.mpi.files import FileUnitOfWork


@pytest.fixture(params=["postgres", "files"])
def backend(request, tmp_path):
    """A factory of units of work on an empty MPI."""
    if request.param == "postgres":
        return request.getfixturevalue("uow_factory")
    return lambda: FileUnitOfWork(tmp_path / "mpi.json")


def _add(uow, source="EHR", external_id=None, last="Garcia"):
    record, _ = uow.records.upsert(
        source, external_id, {"name_last": last}, {"conditions": ["T2DM"]}, {"last_name": last}
    )
    return record


def _entry(a, b, **changes):
    values = {
        "source_record_id": a,
        "candidate_record_id": b,
        "is_match": True,
        "confidence": 0.97,
        "match_type": "exact",
        "decision": "auto_match",
        "stage": "scoring",
        "explanation": "same name and birth date",
        "evidence": {"name": 0.9, "dob": {"agree": True}},
        "model_version": "m-1",
        "thresholds": {"auto": 0.95, "review": 0.7},
    }
    return MatchEntry(**(values | changes))


def _aware(value):
    return isinstance(value, datetime) and value.utcoffset() is not None


# -- source records -----------------------------------------------------------------------


def test_upsert_new_then_resend_updates_the_same_record(backend):
    with backend() as uow:
        first, created = uow.records.upsert(
            "EHR", "1", {"name_last": "Garcia"}, {"a": 1}, {"last_name": "garcia", "unique_id": "x"}
        )
        assert created and first.external_id == "1" and first.source_system == "EHR"
        assert first.features == {"last_name": "garcia", "unique_id": str(first.id)}
        assert first.golden_id is None
        assert _aware(first.received_at) and _aware(first.updated_at)
        again, created = uow.records.upsert(
            "EHR", "1", {"name_last": "Garcia-Lopez"}, {"b": 2}, {"last_name": "lopez"}
        )
        assert not created and again.id == first.id
        assert again.demographics == {"name_last": "Garcia-Lopez"}
        assert again.medical_data == {"b": 2}
        assert again.features == {"last_name": "lopez", "unique_id": str(first.id)}
        assert again.received_at == first.received_at and again.updated_at >= first.updated_at
        other_source, created = uow.records.upsert("LAB", "1", {}, {}, {})
        assert created and other_source.id > first.id
        uow.commit()


def test_record_without_external_id_is_always_new(backend):
    with backend() as uow:
        ids = []
        for _ in range(3):
            record, created = uow.records.upsert("EHR", None, {"name_last": "Garcia"}, {}, {})
            assert created and record.external_id is None
            ids.append(record.id)
        assert ids == sorted(set(ids))


def test_values_are_copies(backend):
    with backend() as uow:
        demographics = {"name_last": "Garcia", "phones": ["1"]}
        record, _ = uow.records.upsert("EHR", "1", demographics, {}, {})
        demographics["phones"].append("2")
        record.demographics["name_last"] = "changed"
        assert uow.records.get(record.id).demographics == {"name_last": "Garcia", "phones": ["1"]}


def test_get_and_get_many_with_golden_id(backend):
    with backend() as uow:
        a, b = _add(uow, external_id="a"), _add(uow, external_id="b")
        assert uow.records.get(a.id + b.id + 100) is None
        assert uow.records.get_many([]) == []
        assert [r.id for r in uow.records.get_many([b.id, a.id, a.id, 10_000])] == [a.id, b.id]
        golden = uow.golden.create()
        uow.golden.set_link(Link(a.id, golden.golden_id, "new_identity", 1.0))
        assert uow.records.get(a.id).golden_id == golden.golden_id
        assert uow.records.get(a.id).features["unique_id"] == str(a.id)
        many = uow.records.get_many([a.id, b.id])
        assert [r.golden_id for r in many] == [golden.golden_id, None]
        assert many[0].demographics == {"name_last": "Garcia"}
        assert many[0].medical_data == {"conditions": ["T2DM"]}


def test_upsert_if_changed_writes_nothing_for_an_unchanged_resend(backend):
    demo, medical, features = {"name_last": "Garcia"}, {"conditions": ["T2DM"]}, {"x": 1}
    with backend() as uow:
        first, created = uow.records.upsert_if_changed("EHR", "1", demo, medical, features)
        assert created and first.golden_id is None
        golden = uow.golden.create()
        uow.golden.set_link(Link(first.id, golden.golden_id, "new_identity", 1.0))
        assert uow.records.upsert_if_changed("EHR", "1", demo, medical, {"x": 2}) is None
        assert uow.records.get(first.id).features["x"] == 1  # nothing was written
        changed, created = uow.records.upsert_if_changed(
            "EHR", "1", {"name_last": "Garcia-Lopez"}, medical, {"x": 3}
        )
        assert not created and changed.id == first.id and changed.golden_id == golden.golden_id
        assert uow.records.get(first.id).demographics == {"name_last": "Garcia-Lopez"}
        # without external_id nothing is a re-send: every call stores a new record
        a = uow.records.upsert_if_changed("EHR", None, demo, medical, features)
        b = uow.records.upsert_if_changed("EHR", None, demo, medical, features)
        assert a[1] and b[1] and a[0].id != b[0].id


def test_linked_to_lists_the_records_of_a_golden_record(backend):
    with backend() as uow:
        a, b, c = (_add(uow, external_id=x) for x in "abc")
        golden, other = uow.golden.create(), uow.golden.create()
        for record, target in ((b, golden), (a, golden), (c, other)):
            uow.golden.set_link(Link(record.id, target.golden_id, "auto_match", 0.95))
        linked = uow.records.linked_to(golden.golden_id)
        assert [r.id for r in linked] == [a.id, b.id]
        assert {r.golden_id for r in linked} == {golden.golden_id}
        assert linked[0].demographics == {"name_last": "Garcia"}
        assert uow.records.linked_to("GR-999999") == []


def test_replace_keys_and_candidates(backend):
    with backend() as uow:
        a, b, c = (_add(uow, external_id=x) for x in "abc")
        uow.records.replace_keys(a.id, ["k1", "k2", "k2"])
        uow.records.replace_keys(b.id, ["k2", "k3"])
        uow.records.replace_keys(c.id, ["k9"])
        golden = uow.golden.create()
        uow.golden.set_link(Link(b.id, golden.golden_id, "new_identity", 1.0))
        found = uow.records.candidates(["k2", "k7"], exclude=a.id, limit=10)
        assert [r.id for r in found] == [b.id]
        assert found[0].golden_id == golden.golden_id
        assert found[0].features["unique_id"] == str(b.id)
        both = uow.records.candidates(["k1", "k3"], exclude=c.id, limit=10)
        assert sorted(r.id for r in both) == [a.id, b.id]
        one = uow.records.candidates(["k1", "k2", "k3"], exclude=c.id, limit=1)
        assert len(one) == 1 and one[0].id in (a.id, b.id)
        assert uow.records.candidates([], exclude=c.id, limit=10) == []
        uow.records.replace_keys(a.id, ["k9"])
        assert uow.records.candidates(["k1"], exclude=c.id, limit=10) == []
        assert [r.id for r in uow.records.candidates(["k9"], exclude=c.id, limit=10)] == [a.id]
        uow.records.replace_keys(a.id, [])
        assert uow.records.candidates(["k9"], exclude=c.id, limit=10) == []


def test_store_and_search_stores_a_new_record_with_its_keys_and_finds_candidates(backend):
    with backend() as uow:
        a, b = _add(uow, external_id="a"), _add(uow, external_id="b")
        uow.records.replace_keys(a.id, ["k1"])
        uow.records.replace_keys(b.id, ["k2"])
        golden = uow.golden.create()
        uow.golden.set_link(Link(a.id, golden.golden_id, "new_identity"))
        demographics, medical = {"name_last": "Lee"}, {"conditions": []}
        stored, created, found = uow.records.store_and_search(
            "LAB", "n1", demographics, medical, {"last_name": "lee"}, ["k1", "k2", "k1"], 10
        )
        assert created and stored.golden_id is None and stored.external_id == "n1"
        assert stored.features == {"last_name": "lee", "unique_id": str(stored.id)}
        assert [(c.id, c.golden_id) for c in found] == [(a.id, golden.golden_id), (b.id, None)]
        assert found[0].features["unique_id"] == str(a.id)
        # its keys were stored with it: a later search finds it
        assert stored.id in [c.id for c in uow.records.candidates(["k2"], exclude=b.id, limit=9)]
        assert (
            uow.records.store_and_search(
                "LAB", "n1", demographics, medical, {"last_name": "lee"}, ["k1"], 10
            )
            is None
        )  # unchanged re-send
        again, created, found = uow.records.store_and_search(
            "LAB", "n1", {"name_last": "Li"}, medical, {"last_name": "li"}, ["k1"], 1
        )
        assert not created and again.id == stored.id and [c.id for c in found] == [a.id]
        assert uow.records.get(stored.id).demographics == {"name_last": "Li"}
        alone, created, found = uow.records.store_and_search(
            "LAB", None, demographics, medical, {}, ["nothing-shares-this"], 10
        )
        assert created and found == [] and alone.id != stored.id


def test_move_link_and_create_linked_keep_the_change(backend):
    with backend() as uow:
        a = _add(uow, external_id="a")
        b = _add(uow, external_id="b")
        match_id = uow.matches.add(_entry(b.id, a.id))
        golden = Golden("", demographics={"name_last": "Garcia"}, medical_data={"x": 1})
        golden.source_count = 1
        link = Link(a.id, "", "new_identity", None, None, "lookup")
        change = Change("op-1", "lookup", "lookup", source_record_id=a.id, reason="new")
        made = uow.golden.create_linked(golden, link, change)
        assert made == golden.golden_id == link.golden_id == change.new_golden_id
        stored = uow.golden.get(made)
        assert (stored.status, stored.source_count, stored.version) == ("active", 1, 2)
        assert stored.demographics == {"name_last": "Garcia"} and stored.medical_data == {"x": 1}
        assert uow.golden.link_of(a.id) == Link(a.id, made, "new_identity", None, None, "lookup")
        other = uow.golden.create()
        moved = Change("op-2", "lookup", "lookup", b.id, None, made, match_result_id=match_id)
        assert uow.golden.move_link(Link(b.id, made, "auto_match", 0.97, match_id), moved) is None
        back = Change(
            "op-3", "merge", "clerk", source_record_id=a.id, new_golden_id=other.golden_id
        )
        assert uow.golden.move_link(Link(a.id, other.golden_id, "manual_match"), back) == made
        assert back.old_golden_id == made
        assert uow.golden.sources_of(made) == [b.id]
        assert uow.golden.link_of(b.id) == Link(b.id, made, "auto_match", 0.97, match_id, "system")
        history = [
            (
                c.operation_id,
                c.source_record_id,
                c.old_golden_id,
                c.new_golden_id,
                c.match_result_id,
            )
            for c in uow.golden.changes(golden_id=made)
        ]
        assert history == [
            ("op-1", a.id, None, made, None),
            ("op-2", b.id, None, made, match_id),
            ("op-3", a.id, made, other.golden_id, None),
        ]


def test_move_link_locking_returns_the_old_link_and_the_target(backend):
    with backend() as uow:
        a = _add(uow, external_id="a")
        first, second = uow.golden.create(), uow.golden.create()
        uow.golden.set_link(Link(a.id, first.golden_id, "new_identity"))
        change = Change("op", "lookup", "lookup", a.id, None, second.golden_id)
        old, golden = uow.golden.move_link_locking(
            Link(a.id, second.golden_id, "auto_match", 0.95), change
        )
        assert old == change.old_golden_id == first.golden_id
        assert golden == uow.golden.get(second.golden_id)
        assert uow.golden.sources_of(second.golden_id) == [a.id]
        # a golden record that does not exist: refused (the file's integrity is a ValueError)
        with pytest.raises((NotFoundError, IntegrityError, ValueError)):
            uow.golden.move_link_locking(
                Link(a.id, "GR-999999", "auto_match"), Change("op", "lookup", "lookup", a.id)
            )


# -- golden records -----------------------------------------------------------------------


def test_golden_create_get_save(backend):
    with backend() as uow:
        first, second = uow.golden.create(), uow.golden.create()
        assert (first.golden_id, second.golden_id) == ("GR-000001", "GR-000002")
        assert uow.golden.get("GR-999999") is None
        got = uow.golden.get(first.golden_id)
        assert (got.status, got.merged_into, got.source_count) == ("active", None, 0)
        assert got.version == 1
        assert got.demographics == {} and got.medical_data == {}
        got.demographics, got.medical_data, got.source_count = {"name_last": "Garcia"}, {"x": 1}, 2
        uow.golden.save(got)
        assert got.version == 2
        again = uow.golden.get(first.golden_id, for_update=True)
        assert again.version == 2 and again.source_count == 2
        assert again.demographics == {"name_last": "Garcia"} and again.medical_data == {"x": 1}
        merged = uow.golden.get(second.golden_id)
        merged.status, merged.merged_into = "merged", first.golden_id
        uow.golden.save(merged)
        uow.golden.save(merged)
        stored = uow.golden.get(second.golden_id)
        assert (stored.status, stored.merged_into, stored.version) == ("merged", first.golden_id, 3)
        # a writer holding an older version loses; so does one saving what does not exist
        stale = uow.golden.get(first.golden_id)
        stale.version -= 1
        with pytest.raises(ConflictError):
            uow.golden.save(stale)
        with pytest.raises(ConflictError):
            uow.golden.save(Golden("GR-999999"))
        uow.commit()


def test_set_link_returns_the_old_golden_id(backend):
    with backend() as uow:
        a, b = _add(uow, external_id="a"), _add(uow, external_id="b")
        first, second = uow.golden.create(), uow.golden.create()
        match_id = uow.matches.add(_entry(a.id, b.id))
        assert uow.golden.link_of(a.id) is None
        assert uow.golden.set_link(Link(a.id, first.golden_id, "new_identity", 1)) is None
        assert uow.golden.set_link(Link(b.id, first.golden_id, "auto_match", 0.9, match_id)) is None
        assert uow.golden.sources_of(first.golden_id) == [a.id, b.id]
        old = uow.golden.set_link(
            Link(a.id, second.golden_id, "manual_split", None, None, "reviewer-1")
        )
        assert old == first.golden_id
        assert uow.golden.link_of(a.id) == Link(
            a.id, second.golden_id, "manual_split", None, None, "reviewer-1"
        )
        assert uow.golden.link_of(b.id) == Link(
            b.id, first.golden_id, "auto_match", 0.9, match_id, "system"
        )
        assert uow.golden.link_of(a.id + b.id + 100) is None
        assert uow.golden.sources_of(first.golden_id) == [b.id]
        assert uow.golden.sources_of(second.golden_id) == [a.id]
        assert uow.golden.sources_of("GR-999999") == []
        assert isinstance(uow.golden.link_of(b.id).confidence, float)


def test_changes_are_filtered_and_oldest_first(backend):
    with backend() as uow:
        a, b = _add(uow, external_id="a"), _add(uow, external_id="b")
        g1, g2, g3 = (uow.golden.create().golden_id for _ in range(3))
        match_id = uow.matches.add(_entry(a.id, b.id))
        history = [
            Change("op-1", "lookup", "system", a.id, None, g1, match_result_id=match_id),
            Change("op-2", "merge", "alice", a.id, g1, g2, "active", reason="same person"),
            Change("op-2", "merge", "alice", b.id, g3, g2, "active"),
            Change("op-3", "split", "bob", None, g2, None),
        ]
        for change in history:
            uow.golden.record_change(change)
        every = uow.golden.changes()
        assert [(c.operation_id, c.source_record_id) for c in every] == [
            ("op-1", a.id),
            ("op-2", a.id),
            ("op-2", b.id),
            ("op-3", None),
        ]
        assert all(_aware(c.created_at) for c in every)
        assert [(c.action, c.actor, c.old_status, c.reason) for c in every][1] == (
            "merge",
            "alice",
            "active",
            "same person",
        )
        assert every[0].match_result_id == match_id and every[1].match_result_id is None
        assert [c.source_record_id for c in uow.golden.changes(operation_id="op-2")] == [a.id, b.id]
        assert [c.operation_id for c in uow.golden.changes(golden_id=g1)] == ["op-1", "op-2"]
        touching_g2 = uow.golden.changes(golden_id=g2)
        assert [c.operation_id for c in touching_g2] == ["op-2", "op-2", "op-3"]
        both = uow.golden.changes(operation_id="op-2", golden_id=g3)
        assert [c.source_record_id for c in both] == [b.id]
        assert uow.golden.changes(operation_id="op-9") == []


# -- matches and constraints --------------------------------------------------------------


def test_matches_add_and_for_record(backend):
    with backend() as uow:
        a, b, c = (_add(uow, external_id=x) for x in "abc")
        entry = _entry(a.id, b.id, medical_similarity=0.5, ai_reasoning="same history")
        first = uow.matches.add(entry)
        assert entry.id == first
        second = uow.matches.add(
            _entry(c.id, a.id, is_match=False, confidence=0.2, match_type="no_match", stage="ai")
        )
        lonely = uow.matches.add(_entry(c.id, None, decision="new_identity", stage="rules"))
        assert first < second < lonely
        assert [m.id for m in uow.matches.for_record(a.id)] == [first, second]
        assert [m.id for m in uow.matches.for_record(b.id)] == [first]
        assert [m.id for m in uow.matches.for_record(c.id)] == [second, lonely]
        assert uow.matches.for_record(a.id)[0] == entry
        stored = uow.matches.for_record(c.id)[1]
        assert stored.candidate_record_id is None and stored.medical_similarity is None
        assert stored.evidence == {"name": 0.9, "dob": {"agree": True}}
        assert stored.thresholds == {"auto": 0.95, "review": 0.7}


def test_constraints_replace_remove_and_both_directions(backend):
    with backend() as uow:
        a, b, c = (_add(uow, external_id=x) for x in "abc")
        uow.matches.add_constraint(b.id, a.id, "must_link", "alice", "same person")
        assert uow.matches.constraints_for(a.id, [b.id, c.id]) == {b.id: "must_link"}
        assert uow.matches.constraints_for(b.id, [a.id]) == {a.id: "must_link"}
        uow.matches.add_constraint(a.id, b.id, "cannot_link", "bob")
        uow.matches.add_constraint(c.id, a.id, "cannot_link", "bob")
        assert uow.matches.constraints_for(a.id, [a.id, b.id, c.id]) == {
            b.id: "cannot_link",
            c.id: "cannot_link",
        }
        assert uow.matches.constraints_for(c.id, [b.id]) == {}
        assert uow.matches.constraints_for(a.id, []) == {}
        uow.matches.remove_constraint(b.id, a.id)
        uow.matches.remove_constraint(b.id, c.id)  # none: nothing happens
        assert uow.matches.constraints_for(a.id, [b.id, c.id]) == {c.id: "cannot_link"}
        assert uow.matches.constraints_for(b.id, [a.id]) == {}


def test_must_linked_names_records_a_human_tied_either_way(backend):
    with backend() as uow:
        a, b, c, d = (_add(uow, external_id=x) for x in "abcd")
        uow.matches.add_constraint(b.id, a.id, "must_link", "alice", "same person")
        uow.matches.add_constraint(c.id, d.id, "cannot_link", "bob")
        assert uow.matches.must_linked(a.id) and uow.matches.must_linked(b.id)
        assert not uow.matches.must_linked(c.id)  # kept apart is not tied
        assert not uow.matches.must_linked(d.id)
        uow.matches.remove_constraint(a.id, b.id)
        assert not uow.matches.must_linked(a.id)


# -- review queue -------------------------------------------------------------------------


def test_enqueue_one_open_item_per_pair(backend):
    with backend() as uow:
        a, b = _add(uow, external_id="a"), _add(uow, external_id="b")
        match_id = uow.matches.add(_entry(a.id, b.id, decision="review_required"))
        item = uow.reviews.enqueue(b.id, a.id, 7, match_id)
        assert (item.record_id_1, item.record_id_2) == (a.id, b.id)
        assert (item.priority, item.status, item.match_result_id) == (7, "pending", match_id)
        assert item.assigned_to is None and item.resolution is None and _aware(item.created_at)
        assert uow.reviews.enqueue(a.id, b.id, 3, None) is None
        claimed = uow.reviews.claim(item.id, "alice")
        assert uow.reviews.enqueue(b.id, a.id, 3, None) is None  # assigned is still open
        claimed.status, claimed.resolution = "resolved", "confirmed_match"
        uow.reviews.save(claimed)
        again = uow.reviews.enqueue(a.id, b.id, 3, None)
        assert again is not None and again.id > item.id and again.status == "pending"
        assert uow.reviews.get(again.id) == again
        assert uow.reviews.get(again.id + 100) is None


def test_pending_order_limit_offset(backend):
    with backend() as uow:
        records = [_add(uow, external_id=str(i)) for i in range(5)]
        first = records[0].id
        priorities = {records[1].id: 5, records[2].id: 9, records[3].id: 5, records[4].id: 1}
        ids = {
            other: uow.reviews.enqueue(first, other, p, None).id for other, p in priorities.items()
        }
        expected = [ids[records[i].id] for i in (2, 1, 3, 4)]
        assert [r.id for r in uow.reviews.pending()] == expected
        assert [r.id for r in uow.reviews.pending(limit=2)] == expected[:2]
        assert [r.id for r in uow.reviews.pending(limit=2, offset=1)] == expected[1:3]
        assert uow.reviews.pending(offset=10) == []


def test_claim_specific_and_next(backend):
    with backend() as uow:
        a, b, c, d = (_add(uow, external_id=x) for x in "abcd")
        low = uow.reviews.enqueue(a.id, b.id, 2, None)
        high = uow.reviews.enqueue(a.id, c.id, 8, None)
        mid = uow.reviews.enqueue(a.id, d.id, 5, None)
        claimed = uow.reviews.claim(low.id, "alice")
        assert (claimed.id, claimed.status, claimed.assigned_to) == (low.id, "assigned", "alice")
        assert uow.reviews.claim(low.id, "bob") is None
        assert uow.reviews.claim(high.id + mid.id + low.id, "bob") is None
        assert uow.reviews.claim(None, "bob").id == high.id
        assert uow.reviews.get(high.id).assigned_to == "bob"
        assert [r.id for r in uow.reviews.pending()] == [mid.id]
        assert uow.reviews.claim(None, "carol").id == mid.id
        assert uow.reviews.claim(None, "carol") is None
        assert uow.reviews.pending() == []
        uow.commit()
    with backend() as uow:
        assert uow.reviews.claim(None, "dave") is None
        assert uow.reviews.get(mid.id).assigned_to == "carol"


def test_save_defer_and_resolved(backend):
    with backend() as uow:
        a, b, c = (_add(uow, external_id=x) for x in "abc")
        first = uow.reviews.claim(uow.reviews.enqueue(a.id, b.id, 5, None).id, "alice")
        second = uow.reviews.claim(uow.reviews.enqueue(a.id, c.id, 5, None).id, "alice")
        first.status, first.resolution, first.resolved_by = "resolved", "confirmed_non_match", "al"
        first.resolver_notes = "different mothers' names"
        uow.reviews.save(first)
        second.status, second.resolution, second.assigned_to, second.priority = (
            "pending",
            "defer",
            None,
            9,
        )
        uow.reviews.save(second)
        assert uow.reviews.resolved() == [first]
        assert uow.reviews.get(first.id).resolver_notes == "different mothers' names"
        deferred = uow.reviews.pending()
        assert [(r.id, r.resolution, r.priority) for r in deferred] == [(second.id, "defer", 9)]
        assert deferred[0].assigned_to is None
        uow.commit()
    with backend() as uow:
        assert [r.id for r in uow.reviews.resolved()] == [first.id]


# -- adjudication answers -----------------------------------------------------------------


def test_answers_get_put_keeps_the_first(backend):
    with backend() as uow:
        assert uow.answers.get("q1") is None
        uow.answers.put("q1", "ollama", {"same": True, "why": ["dob"]})
        uow.answers.put("q1", "other", {"same": False})
        assert uow.answers.get("q1") == {"same": True, "why": ["dob"]}
        uow.commit()
    with backend() as uow:
        assert uow.answers.get("q1") == {"same": True, "why": ["dob"]}


# -- the unit of work ---------------------------------------------------------------------


def test_commit_persists_across_units_of_work(backend):
    with backend() as uow:
        uow.lock(["key:garcia", "source:EHR\x1f1"])
        record = _add(uow, external_id="1")
        uow.records.replace_keys(record.id, ["k1"])
        golden = uow.golden.create()
        uow.golden.set_link(Link(record.id, golden.golden_id, "new_identity", 1.0))
        uow.golden.record_change(
            Change("op-1", "lookup", "system", record.id, None, golden.golden_id)
        )
        uow.matches.add(_entry(record.id, None, decision="new_identity"))
        uow.commit()
    with backend() as uow:
        stored = uow.records.get(record.id)
        assert stored.golden_id == golden.golden_id and stored.demographics == record.demographics
        assert stored.received_at == record.received_at
        assert [r.id for r in uow.records.candidates(["k1"], exclude=0, limit=5)] == [record.id]
        assert uow.golden.get(golden.golden_id).version == 1
        assert len(uow.golden.changes(golden_id=golden.golden_id)) == 1
        assert len(uow.matches.for_record(record.id)) == 1
        again, created = uow.records.upsert("EHR", "1", {}, {}, {})
        assert not created and again.id == record.id
    with backend() as uow:
        assert uow.golden.create().golden_id == "GR-000002"


def test_leaving_without_commit_rolls_back(backend):
    with backend() as uow:
        kept = _add(uow, external_id="kept")
        uow.commit()
    with backend() as uow:
        lost = _add(uow, external_id="lost")
        golden = uow.golden.create()
        uow.golden.set_link(Link(kept.id, golden.golden_id, "new_identity", 1.0))
        uow.answers.put("q1", "ollama", {"same": True})
    with backend() as uow:
        assert uow.records.get(lost.id) is None
        assert uow.records.get(kept.id).golden_id is None
        assert uow.golden.get(golden.golden_id) is None
        assert uow.answers.get("q1") is None


def test_rollback_inside_the_block_discards_and_goes_on(backend):
    with backend() as uow:
        lost = _add(uow, external_id="lost")
        uow.rollback()
        assert uow.records.get(lost.id) is None
        kept = _add(uow, external_id="kept")
        uow.commit()
    with backend() as uow:  # the file reuses a rolled-back id, PostgreSQL does not
        assert [r.external_id for r in uow.records.get_many([lost.id, kept.id])] == ["kept"]


def test_a_nested_unit_of_work_sees_only_committed_state(backend):
    with backend() as uow:
        committed = _add(uow, external_id="committed")
        uow.commit()
        pending = _add(uow, external_id="pending")
        with backend() as inner:
            assert inner.records.get(committed.id) is not None
            assert inner.records.get(pending.id) is None
        uow.commit()
    with backend() as uow:
        assert uow.records.get(pending.id) is not None


def test_writers_of_one_golden_record_take_turns(backend):
    with backend() as uow:
        golden_id = uow.golden.create().golden_id
        uow.commit()
    errors = []

    def write():
        try:
            for _ in range(5):
                with backend() as uow:
                    golden = uow.golden.get(golden_id, for_update=True)
                    golden.source_count += 1
                    uow.golden.save(golden)
                    uow.commit()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with backend() as uow:
        golden = uow.golden.get(golden_id)
        assert (golden.source_count, golden.version) == (20, 21)


@pytest.mark.parametrize(
    "write",
    [
        lambda uow, r: uow.records.replace_keys(r + 100, ["k"]),
        lambda uow, r: uow.golden.set_link(Link(r + 100, "GR-000001", "new_identity")),
        lambda uow, r: uow.golden.set_link(Link(r, "GR-999999", "new_identity")),
        lambda uow, r: uow.matches.add_constraint(r, r + 100, "must_link", "x"),
        lambda uow, r: uow.matches.add_constraint(r, r, "must_link", "x"),
        lambda uow, r: uow.reviews.enqueue(r, r, 5, None),
        lambda uow, r: uow.reviews.enqueue(r, r + 100, 5, None),
        lambda uow, r: uow.reviews.enqueue(r, r - 1, 5, 12345),
    ],
)
def test_references_must_exist(backend, write):
    with backend() as uow:
        _add(uow, external_id="a")
        record = _add(uow, external_id="b")
        uow.golden.create()
        uow.commit()
    with backend() as uow, pytest.raises((ValueError, IntegrityError)):
        write(uow, record.id)
        uow.commit()  # PostgreSQL may only check at the end


def test_audit_rows_may_name_what_no_longer_exists(backend):
    """link_history and match_results are the record of decisions: they are written with ids
    from the same transaction and kept when what they name is gone (migration 0006)."""
    with backend() as uow:
        record = _add(uow, external_id="a")
        uow.golden.record_change(Change("op", "merge", "x", record.id + 100, "GR-999999"))
        uow.matches.add(_entry(record.id, record.id + 100))
        uow.commit()
    with backend() as uow:
        assert [c.old_golden_id for c in uow.golden.changes(operation_id="op")] == ["GR-999999"]
        assert [m.candidate_record_id for m in uow.matches.for_record(record.id)] == [
            record.id + 100
        ]


def test_saving_a_review_item_that_does_not_exist_fails(backend):
    with backend() as uow, pytest.raises(NotFoundError):
        uow.reviews.save(Review(id=999, record_id_1=1, record_id_2=2, priority=5, status="pending"))


def test_find_by_source_identity(backend):
    with backend() as uow:
        record, _ = uow.records.upsert("EHR", "7", {"name_last": "Garcia"}, {}, {})
        assert uow.records.find("EHR", "7").id == record.id
        assert uow.records.find("EHR", "8") is None and uow.records.find("LAB", "7") is None


def test_enqueue_survives_prepared_statements(backend):
    """psycopg prepares a statement run 5 times; the open-pair conflict must still be found."""
    with backend() as uow:
        ids = [uow.records.upsert("EHR", str(i), {}, {}, {})[0].id for i in range(16)]
        for a, b in zip(ids[::2], ids[1::2], strict=True):
            assert uow.reviews.enqueue(a, b, 5, None) is not None
            assert uow.reviews.enqueue(a, b, 5, None) is None
        uow.commit()


def test_constraints_of_an_operation_are_removed_together(backend):
    with backend() as uow:
        a, b, c = (uow.records.upsert("EHR", str(i), {}, {}, {})[0].id for i in range(3))
        uow.matches.add_constraint(a, b, "cannot_link", "clerk", operation_id="op-1")
        uow.matches.add_constraint(a, c, "cannot_link", "clerk", operation_id="op-1")
        uow.matches.add_constraint(b, c, "must_link", "ann")
        assert uow.matches.remove_constraints_of("op-1") == 2
        assert uow.matches.constraints_for(a, [b, c]) == {}
        assert uow.matches.constraints_for(b, [c]) == {c: "must_link"}
