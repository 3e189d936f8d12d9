"""Full batch re-matching over the MPI on a real PostgreSQL."""

import random
from collections import Counter, defaultdict

import pytest
from sqlalchemy import text

from medmatch.config import MatchThresholds
from medmatch.data.features import record_features
from medmatch.data.models import parse_record
from medmatch.evaluation import cluster_pairwise
from medmatch.matching.blocking import key_strings
from medmatch.mpi import batch_run
from medmatch.mpi.domain import Link
from medmatch.mpi.services import GoldenRecordService
from medmatch.mpi.survivorship import survive


@pytest.fixture
def landed(uow_factory, synthetic):
    """Every generated record stored as its own identity (like a first bulk load)."""
    demo = synthetic.demographics.head(600)
    med = synthetic.medical.set_index("record_id")
    ids = {}
    with uow_factory() as uow:
        for row in demo.to_dict("records"):
            body = {
                "source_system": row["source_system"],
                "external_id": row["record_id"],
                "demographics": {
                    k: v
                    for k, v in row.items()
                    if k not in ("record_id", "source_system") and v == v
                },
                "medical_data": med.loc[row["record_id"]].to_dict()
                if row["record_id"] in med.index
                else {},
            }
            record, _ = parse_record(body, lenient=True)
            feats = record_features(record.model_copy(update={"record_id": "x"}))
            stored, _ = uow.records.upsert(
                record.source_system,
                record.external_id,
                record.demographics.model_dump(mode="json", exclude_none=True),
                record.medical_data.model_dump(mode="json"),
                feats,
            )
            uow.records.replace_keys(stored.id, key_strings(feats))
            golden = uow.golden.create()
            uow.golden.set_link(Link(stored.id, golden.golden_id, "new_identity"))
            ids[str(stored.id)] = row["record_id"]
        uow.commit()
    truth = dict(zip(synthetic.truth["record_id"], synthetic.truth["person_id"], strict=True))
    return {sid: truth[rid] for sid, rid in ids.items()}


def _links(engine):
    with engine.connect() as conn:
        return dict(
            conn.execute(text("SELECT source_record_id::text, golden_id FROM record_links")).all()
        )


def test_full_run_matches_and_a_rerun_changes_nothing(engine, landed, trained):
    thresholds = MatchThresholds()
    stats = batch_run.run_full(engine, trained, thresholds, job_id="run-1")
    assert stats["records"] == 600 and stats["links_moved"] > 20
    links = _links(engine)
    f1 = cluster_pairwise(links, landed).f1
    assert f1 > 0.95
    again = batch_run.run_full(engine, trained, thresholds, job_id="run-2")
    assert again["links_moved"] == 0 and again["golden_created"] == 0
    assert _links(engine) == links  # golden ids are stable
    with engine.connect() as conn:
        active = conn.execute(
            text("SELECT count(*) FROM golden_records WHERE status = 'active'")
        ).scalar_one()
        assert active == len(set(links.values()))
        merged = conn.execute(
            text(
                "SELECT count(*) FROM golden_records WHERE status = 'merged'"
                " AND merged_into IS NOT NULL"
            )
        ).scalar_one()
        assert merged == 600 - active
        batch = conn.execute(
            text("SELECT count(*) FROM link_history WHERE action = 'batch' AND job_id = 'run-1'")
        ).scalar_one()
        assert batch >= stats["links_moved"]


def test_golden_records_written_in_bulk_are_what_survive_gives(
    engine, landed, trained, uow_factory
):
    trust = {"LAB_NET": 0.5, "GENERAL_HOSPITAL": 3.0}
    batch_run.run_full(engine, trained, MatchThresholds(), job_id="run-1", trust=trust)
    by_golden: dict[str, list[int]] = {}
    for record, golden in _links(engine).items():
        by_golden.setdefault(golden, []).append(int(record))
    # the clusters the run formed (the fixture's single-record golden records never had
    # survivorship: it creates them empty)
    formed = {g: ids for g, ids in by_golden.items() if len(ids) > 1}
    with uow_factory() as uow:
        systems = set()
        for golden_id, record_ids in formed.items():
            golden = uow.golden.get(golden_id)
            records = uow.records.get_many(record_ids)
            systems |= {r.source_system for r in records}
            demographics, medical = survive(records, trust)
            assert (golden.demographics, golden.medical_data) == (demographics, medical)
            assert golden.source_count == len(records) and golden.status == "active"
    assert set(trust) <= systems  # the trust above applies to records of the test
    assert len(formed) > 50


def test_reviewer_decisions_survive_a_full_rerun(engine, landed, trained, uow_factory):
    batch_run.run_full(engine, trained, MatchThresholds(), job_id="run-1")
    links = _links(engine)
    by_golden = {}
    for record, golden in links.items():
        by_golden.setdefault(golden, []).append(record)
    big = next(g for g, rs in by_golden.items() if len(rs) >= 2)
    moved = int(by_golden[big][0])
    others = [g for g in by_golden if g != big][:2]
    golden = GoldenRecordService(uow_factory)
    split = golden.split(big, [moved], actor="clerk")
    merged = golden.merge(others, actor="clerk")
    batch_run.run_full(engine, trained, MatchThresholds(), job_id="run-2")
    after = _links(engine)
    assert after[str(moved)] != after[by_golden[big][1]]  # the split holds
    first, second = (by_golden[g][0] for g in others)
    assert after[first] == after[second]  # the merge holds
    assert split.golden_ids and merged.golden_ids


def test_a_run_killed_before_commit_changes_nothing(engine, landed, trained, uow_factory):
    # a reviewer decision made before the run: two records kept apart
    first, second = sorted(landed, key=int)[:2]
    with uow_factory() as uow:
        uow.matches.add_constraint(int(first), int(second), "cannot_link", "clerk")
        uow.commit()
    before = _links(engine)
    snapshot = batch_run.read_snapshot(engine)
    scored = batch_run.score(snapshot, trained, MatchThresholds())
    plan = batch_run.plan_golden(snapshot.golden_of, batch_run.clusters_of(snapshot, scored))

    def die():
        raise KeyboardInterrupt  # the process is stopped while writing golden records

    with pytest.raises(KeyboardInterrupt):
        batch_run.write_golden(
            engine, "run-x", snapshot, plan, MatchThresholds(), before_commit=die
        )
    assert _links(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM link_history")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM batch_jobs")).scalar_one() == 0
    stats = batch_run.run_full(engine, trained, MatchThresholds(), job_id="run-y")
    assert stats["links_moved"] > 0
    after = _links(engine)
    assert after[first] != after[second]  # the reviewer's decision holds
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM match_constraints")).scalar_one() == 1
        unlinked = conn.execute(
            text(
                "SELECT count(*) FROM source_records s LEFT JOIN record_links l"
                " ON l.source_record_id = s.id WHERE l.golden_id IS NULL"
            )
        ).scalar_one()
        assert unlinked == 0


def test_plan_keeps_the_golden_id_holding_most_records():
    golden_of = {"1": "GR-1", "2": "GR-1", "3": "GR-2", "4": "GR-3"}
    plan = batch_run.plan_golden(golden_of, {"1": "a", "2": "a", "3": "a", "4": "b"})
    assert plan.target == {"3": "GR-1"} and plan.emptied == {"GR-2": "GR-1"}
    split = batch_run.plan_golden(golden_of, {"1": "a", "2": "c", "3": "b", "4": "b"})
    assert split.new_clusters == ["c"] and split.target == {"2": "new:c", "4": "GR-2"}
    assert split.emptied == {"GR-3": "GR-2"}


def _plan_by_loop(golden_of, labels):
    """The loop plan_golden replaced (the rule, written the plain way): the reference."""
    members: dict[str, list[str]] = defaultdict(list)
    for record, label in labels.items():
        members[label].append(record)
    # biggest claims first: a golden id goes to the cluster holding most of its records
    claims = []
    for label, records in members.items():
        counts = Counter(golden_of[r] for r in records if r in golden_of)
        for golden, n in counts.items():
            claims.append((-n, golden, label))
    claims.sort()
    owner: dict[str, str] = {}  # cluster label -> golden id
    taken: set[str] = set()
    for _, golden, label in claims:
        if label not in owner and golden not in taken:
            owner[label] = golden
            taken.add(golden)
    new_clusters = sorted(label for label in members if label not in owner)
    target: dict[str, str] = {}
    for label, records in members.items():
        destination = owner.get(label, f"new:{label}")
        for record in records:
            if golden_of.get(record) != destination:
                target[record] = destination
    # golden ids no cluster kept: merged into where most of their records went, else retired
    went: dict[str, Counter[str]] = defaultdict(Counter)
    for record, destination in target.items():
        if record in golden_of:
            went[golden_of[record]][destination] += 1
    emptied = {
        g: (c.most_common(1)[0][0] if c else None) for g, c in went.items() if g not in taken
    }
    return target, emptied, new_clusters


def test_the_plan_decides_as_the_plain_loop_did():
    """Ties included: claims of equal size, emptied golden ids split evenly."""
    rnd = random.Random(3)
    for trial in range(200):
        records = [str(i) for i in rnd.sample(range(1000), rnd.randint(1, 40))]
        goldens = [f"GR-{i}" for i in range(rnd.randint(1, 12))]
        golden_of = {r: rnd.choice(goldens) for r in records if rnd.random() < 0.85}
        labels = {r: rnd.choice("abcdefgh") for r in records}
        plan = batch_run.plan_golden(golden_of, labels)
        target, emptied, new = _plan_by_loop(golden_of, labels)
        assert (plan.target, plan.emptied, plan.new_clusters) == (target, emptied, new), trial
        assert list(plan.target) == list(target), trial  # the same order too
