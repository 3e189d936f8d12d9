"""The MPI services on a real PostgreSQL."""

import pytest

from medmatch.data.models import parse_record
from medmatch.errors import ConflictError, NotFoundError
from medmatch.matching import PatientMatcher
from medmatch.mpi.services import GoldenRecordService, MatchingService, ReviewService


def _record(source="EHR", external_id=None, **demo):
    base = {
        "name_first": "Maria",
        "name_last": "Garcia",
        "date_of_birth": "1975-04-12",
        "gender": "F",
        "phone": "617-555-0143",
        "address_line": "12 Main Street",
        "postal_code": "02139",
    }
    record, _ = parse_record(
        {
            "source_system": source,
            "external_id": external_id,
            "demographics": base | demo,
            "medical_data": {"conditions": ["T2DM"]},
        }
    )
    return record


@pytest.fixture
def services(uow_factory, trained):
    matcher = PatientMatcher(trained)
    return (
        MatchingService(uow_factory, matcher),
        GoldenRecordService(uow_factory),
        ReviewService(uow_factory),
    )


def test_lookup_links_the_same_person_and_keeps_others_apart(services):
    matching, golden, _ = services
    first = matching.lookup(_record("EHR", "1"))
    assert first.decision == "new_identity" and first.created
    second = matching.lookup(_record("LAB", "9", name_first="Mria"))
    assert second.decision == "auto_match" and second.golden_record_id == first.golden_record_id
    again = matching.lookup(_record("EHR", "1", phone="617-555-0199"))
    assert not again.created and again.source_record_id == first.source_record_id
    assert again.golden_record_id == first.golden_record_id
    sister = matching.lookup(_record("EHR", "2", name_first="Elena"))
    assert sister.golden_record_id != first.golden_record_id
    view = golden.get(first.golden_record_id)
    assert view.source_count == 2 and view.demographics["name_first"] == "Maria"
    assert "+16175550199" in view.demographics["phones"]


def test_merge_split_undo_and_dry_runs(services):
    matching, golden, _ = services
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Elena", date_of_birth="1980-01-01"))
    assert a.golden_record_id != b.golden_record_id
    dry = golden.merge([a.golden_record_id, b.golden_record_id], actor="clerk", dry_run=True)
    assert dry.dry_run and dry.records_moved == [b.source_record_id]
    assert golden.get(b.golden_record_id).status == "active"  # nothing changed
    assert golden.history(b.golden_record_id)[-1].action == "lookup"
    merged = golden.merge([a.golden_record_id, b.golden_record_id], actor="clerk", reason="same")
    assert merged.field_changes == dry.field_changes and not merged.dry_run
    survivor, loser = golden.get(a.golden_record_id), golden.get(b.golden_record_id)
    assert survivor.source_record_ids == [a.source_record_id, b.source_record_id]
    assert loser.status == "merged" and loser.merged_into == a.golden_record_id
    assert loser.source_count == 0 and survivor.source_count == 2
    with pytest.raises(ConflictError):
        golden.merge([a.golden_record_id, b.golden_record_id], actor="clerk")
    golden.undo(merged.operation_id, actor="clerk")
    assert golden.get(b.golden_record_id).status == "active"
    assert golden.get(b.golden_record_id).source_record_ids == [b.source_record_id]
    assert golden.get(a.golden_record_id).demographics["name_first"] == "Maria"
    # split: the moved record gets a new golden record and the pair becomes cannot-link
    c = matching.lookup(_record("LAB", "3"))
    assert c.golden_record_id == a.golden_record_id
    split = golden.split(a.golden_record_id, [c.source_record_id], actor="clerk")
    fresh = split.golden_ids[1]
    assert golden.sources(fresh)[0].id == c.source_record_id
    # a re-send of the split record respects the cannot-link: it stays apart
    again = matching.lookup(_record("LAB", "3"))
    assert again.golden_record_id == fresh
    with pytest.raises(ConflictError):
        golden.split(a.golden_record_id, [a.source_record_id], actor="clerk")  # nothing left
    with pytest.raises(NotFoundError):
        golden.get("GR-999999")


def test_review_queue_assign_resolve_and_labels(services, trained):
    from medmatch.config import MatchThresholds

    _, golden, review = services
    matching = MatchingService(
        services[0].uow_factory,
        PatientMatcher(trained, thresholds=MatchThresholds(auto_match=0.999999999, review=0.2)),
    )
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Mary", phone=None, postal_code="02140"))
    assert b.decision == "review_required" and b.review_ids
    item = review.pending()[0]
    assert {item.record_id_1, item.record_id_2} == {a.source_record_id, b.source_record_id}
    mine = review.assign("alice", item.id)
    assert mine.assigned_to == "alice"
    with pytest.raises(ConflictError):
        review.assign("bob", item.id)
    with pytest.raises(ConflictError):
        review.resolve(item.id, "bob", "confirmed_match")
    done = review.resolve(item.id, "alice", "confirmed_match", notes="same patient")
    assert done.status == "resolved" and done.change.action == "merge"
    assert golden.get(a.golden_record_id).source_count == 2
    assert review.labelled_pairs() == [(item.record_id_1, item.record_id_2, True)]
    with pytest.raises(NotFoundError):
        review.assign("alice")  # the queue is empty


def test_defer_and_non_match(services, trained):
    from medmatch.config import MatchThresholds

    _, golden, review = services
    matching = MatchingService(
        services[0].uow_factory,
        PatientMatcher(trained, thresholds=MatchThresholds(auto_match=0.999999999, review=0.2)),
    )
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Mary", phone=None, postal_code="02140"))
    item = review.get(b.review_ids[0])
    deferred = review.resolve(item.id, "alice", "defer")
    assert deferred.status == "pending" and deferred.priority == max(1, item.priority - 2)
    no = review.resolve(item.id, "bob", "confirmed_non_match")
    assert no.status == "resolved" and no.change is None  # they were apart already
    assert golden.get(a.golden_record_id).source_count == 1


def test_undo_of_a_split_retires_the_new_record_and_guards_against_later_moves(services):
    matching, golden, _ = services
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2"))
    c = matching.lookup(_record("ER", "3"))
    gid = a.golden_record_id
    assert b.golden_record_id == c.golden_record_id == gid
    split = golden.split(gid, [b.source_record_id], actor="clerk")
    fresh = split.golden_ids[1]
    golden.undo(split.operation_id, actor="clerk")
    assert golden.get(fresh).status == "retired" and golden.get(gid).source_count == 3
    # the cannot-link went with the undo: a re-send links back to the original
    assert matching.lookup(_record("LAB", "2")).golden_record_id == gid
    lookup_op = golden.history(gid)[0].operation_id
    with pytest.raises(ConflictError):
        golden.undo(lookup_op, actor="clerk")  # a lookup is not undone, it is split
    with pytest.raises(NotFoundError):
        golden.undo("no-such-operation", actor="clerk")
    second = golden.split(gid, [c.source_record_id], actor="clerk")
    elsewhere = matching.lookup(_record("LAB", "8", name_first="Elena", date_of_birth="1980-01-01"))
    golden.merge([elsewhere.golden_record_id, second.golden_ids[1]], actor="clerk")
    with pytest.raises(ConflictError):
        golden.undo(second.operation_id, actor="clerk")  # c moved again since


def test_a_non_match_confirmed_on_linked_records_splits_them(services, trained, uow_factory):
    _, golden, review = services
    matching = services[0]
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Mary"))
    assert a.golden_record_id == b.golden_record_id
    with uow_factory() as uow:
        item = uow.reviews.enqueue(a.source_record_id, b.source_record_id, 5, None)
        uow.commit()
    done = review.resolve(item.id, "alice", "confirmed_non_match")
    assert done.change.action == "split"
    assert golden.get(a.golden_record_id).source_record_ids == [a.source_record_id]
    # sticky: the re-sent record stays apart
    assert matching.lookup(_record("LAB", "2", name_first="Mary")).golden_record_id != (
        a.golden_record_id
    )
    with pytest.raises(ConflictError):
        review.resolve(item.id, "alice", "confirmed_match")  # resolved already


def test_a_review_constrains_only_the_pair_its_reviewer_judged(services, uow_factory):
    """A clerk's merge or split speaks for whole groups; a review speaks for one pair:
    the other records of the clusters it joins or parts get no constraint from it."""
    matching, golden, review = services
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Mary"))
    c = matching.lookup(_record("ER", "3"))
    assert a.golden_record_id == b.golden_record_id == c.golden_record_id
    ids = [a.source_record_id, b.source_record_id, c.source_record_id]
    with uow_factory() as uow:
        apart = uow.reviews.enqueue(ids[0], ids[1], 5, None)
        uow.commit()
    review.resolve(apart.id, "alice", "confirmed_non_match")
    x = matching.lookup(_stranger())  # a golden record of its own
    assert x.golden_record_id != a.golden_record_id
    with uow_factory() as uow:
        assert uow.matches.constraints_for(ids[1], [ids[0], ids[2]]) == {ids[0]: "cannot_link"}
        together = uow.reviews.enqueue(ids[2], x.source_record_id, 5, None)
        uow.commit()
    done = review.resolve(together.id, "alice", "confirmed_match")  # c and x: one person
    assert done.change is not None and done.change.action == "merge"
    with uow_factory() as uow:
        # the survivor's first record (a) is not tied to x: only the pair judged
        assert uow.matches.constraints_for(x.source_record_id, [ids[0], ids[2]]) == {
            ids[2]: "must_link"
        }
        assert uow.golden.link_of(x.source_record_id).golden_id == a.golden_record_id


def test_an_unchanged_resend_changes_nothing(services, engine):
    from sqlalchemy import text

    matching, _, _ = services
    first = matching.lookup(_record("EHR", "1"))
    matching.lookup(_record("LAB", "2"))

    def rows():
        with engine.connect() as conn:
            return [
                conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("match_results", "link_history", "golden_records")
            ]

    before = rows()
    again = matching.lookup(_record("EHR", "1"))
    assert again.golden_record_id == first.golden_record_id and not again.created
    assert again.candidates_scored == 0 and rows() == before


def test_undo_removes_only_the_constraints_its_operation_added(services, uow_factory):
    matching, golden, _ = services
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2"))
    c = matching.lookup(_record("ER", "3"))
    gid = a.golden_record_id
    with uow_factory() as uow:  # a reviewer said earlier: b and c are one person
        uow.matches.add_constraint(b.source_record_id, c.source_record_id, "must_link", "ann")
        uow.commit()
    split = golden.split(gid, [b.source_record_id, c.source_record_id], actor="clerk")
    golden.undo(split.operation_id, actor="clerk")
    with uow_factory() as uow:
        kept = uow.matches.constraints_for(
            b.source_record_id, [a.source_record_id, c.source_record_id]
        )
    assert kept == {c.source_record_id: "must_link"}  # the split's cannot-links are gone


def test_a_merge_never_overrides_a_cannot_link(services, engine):
    matching, golden, _ = services
    a = matching.lookup(_record("EHR", "1"))
    c = matching.lookup(_record("ER", "3"))
    gid = a.golden_record_id
    fresh = golden.split(gid, [c.source_record_id], actor="clerk").golden_ids[1]
    kept_apart = f"record {a.source_record_id} is kept apart from record {c.source_record_id}"
    with pytest.raises(ConflictError, match=kept_apart):
        golden.merge([gid, fresh], actor="clerk")
    assert golden.get(fresh).source_record_ids == [c.source_record_id]
    assert golden.get(gid).status == golden.get(fresh).status == "active"


def test_merge_and_split_refuse_a_golden_record_changed_since_it_was_read(services):
    matching, golden, _ = services
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Elena", date_of_birth="1980-01-01"))
    ga, gb = a.golden_record_id, b.golden_record_id
    seen = {g: golden.get(g).version for g in (ga, gb)}
    with pytest.raises(ConflictError, match=f"{gb} is at version {seen[gb]}, not"):
        golden.merge([ga, gb], actor="clerk", expected_versions={gb: seen[gb] - 1})
    assert golden.get(gb).status == "active"  # refused: nothing changed
    golden.merge([ga, gb], actor="clerk", expected_versions=seen)
    with pytest.raises(ConflictError, match="changed since it was read"):
        golden.split(ga, [b.source_record_id], actor="clerk", expected_version=seen[ga])
    now = golden.get(ga).version
    split = golden.split(ga, [b.source_record_id], actor="clerk", expected_version=now)
    assert golden.get(split.golden_ids[1]).source_record_ids == [b.source_record_id]


def test_a_resent_record_a_human_placed_stays_where_they_put_it(services, trained, uow_factory):
    """A merge's records (the survivor's, tied by a must-link; the moved one, by its manual
    link) are not taken elsewhere by a re-send that matches another golden record better:
    that pair goes to a human, as a batch run would keep them together."""
    from medmatch.config import MatchThresholds

    matching, golden, review = services
    a = matching.lookup(_record("EHR", "1"))
    b = matching.lookup(_record("LAB", "2", name_first="Elena", date_of_birth="1980-01-01"))
    gid = a.golden_record_id
    golden.merge([gid, b.golden_record_id], actor="clerk", reason="one patient")
    strict = MatchingService(
        uow_factory,
        PatientMatcher(trained, thresholds=MatchThresholds(auto_match=1.0, review=1.0)),
    )
    c = strict.lookup(_record("ER", "3", name_first="Mria"))  # Maria again, kept apart
    assert c.golden_record_id != gid and not c.review_ids
    again = matching.lookup(_record("EHR", "1", phone="617-555-0199"))
    assert again.golden_record_id == gid and again.decision == "review_required"
    (item,) = (review.get(i) for i in again.review_ids)
    assert {item.record_id_1, item.record_id_2} == {a.source_record_id, c.source_record_id}
    moved = matching.lookup(_record("LAB", "2", name_first="Maria"))  # now looks like c
    assert moved.golden_record_id == gid and not moved.created
    assert golden.get(gid).source_record_ids == [a.source_record_id, b.source_record_id]
    # a record a lookup placed follows its best match: c is not held
    assert (
        matching.lookup(
            _record("ER", "3", name_first="Mria", phone="617-555-0199")
        ).golden_record_id
        == gid
    )


def _stranger():
    """Maria's birth date and postcode (a shared key), nothing else in common."""
    return _record(
        "EHR",
        "2",
        name_first="Oluwaseun",
        name_last="Abernathy-Quist",
        gender="M",
        phone="212-555-0987",
        address_line="400 Elm Road",
    )


def test_a_lookup_stores_the_comparisons_a_batch_run_would(services, engine):
    """Every decided pair and every comparison at or above the pair floor, as a batch run:
    a candidate that only shares a blocking key is scored but leaves no row."""
    from sqlalchemy import text

    matching, _, _ = services
    maria = matching.lookup(_record("EHR", "1"))
    stranger = matching.lookup(_stranger())
    assert stranger.decision == "new_identity" and stranger.candidates_scored == 1
    # below the floor, so scored unexplained; the answer shows it explained all the same
    assert "differ" in stranger.explanation and stranger.stage == "scoring"
    same = matching.lookup(_record("LAB", "3", name_first="Mria"))
    assert same.decision == "auto_match" and same.candidates_scored == 2
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT source_record_id, candidate_record_id, confidence FROM match_results")
        ).all()
    floor = matching.thresholds.pair_floor
    assert {(a, b) for a, b, _ in stored} == {(same.source_record_id, maria.source_record_id)}
    assert all(confidence >= floor for _, _, confidence in stored)


def test_a_constrained_pair_is_stored_explained_whatever_its_score(services, engine):
    """A pair under a reviewer's decision is kept in match_results even below the floor,
    with its explanation and waterfall like every stored comparison."""
    from sqlalchemy import text

    from medmatch.data.models import MedicalData

    matching, golden, _ = services
    maria = matching.lookup(_record("EHR", "1"))
    stranger = _stranger()
    other = matching.lookup(stranger)
    golden.merge([maria.golden_record_id, other.golden_record_id], actor="clerk", reason="same")
    # sent again, changed: looked up again, under the merge's must-link
    changed = stranger.model_copy(update={"medical_data": MedicalData(conditions=["asthma"])})
    again = matching.lookup(changed)
    assert again.decision == "auto_match"
    with engine.connect() as conn:
        explanation, evidence = conn.execute(
            text(
                "SELECT explanation, evidence FROM match_results"
                " WHERE source_record_id = :a AND candidate_record_id = :b"
            ),
            {"a": other.source_record_id, "b": maria.source_record_id},
        ).one()
    assert "differ" in explanation and evidence["waterfall"][0]["comparison"] == "prior"
