"""The COPY-based first load of an empty MPI, with and without a golden record per record."""

import threading
import time

import pandas as pd
import pytest
from sqlalchemy import text

from medmatch.config import MatchThresholds
from medmatch.errors import MedMatchError
from medmatch.mpi import batch_run
from medmatch.mpi.bulk import load_records


@pytest.fixture
def records(synthetic):
    demo = synthetic.demographics.head(400).reset_index(drop=True)
    medical = synthetic.medical[synthetic.medical["record_id"].isin(demo["record_id"])]
    return demo, medical


def _counts(engine):
    with engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("source_records", "blocking_keys", "golden_records", "record_links")
        }


def _indexes_and_keys(engine):
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                    " UNION ALL SELECT tablename, indexname, indexdef FROM pg_indexes"
                    " WHERE schemaname = 'public'"
                )
            ).all()
        )


def test_a_load_gives_each_record_its_own_golden_record(engine, uow_factory, records):
    demo, medical = records
    loaded = load_records(engine, demo, medical)
    counts = _counts(engine)
    assert loaded["records"] == counts["source_records"] == 400
    assert counts["golden_records"] == counts["record_links"] == loaded["golden_records"] == 400
    assert counts["blocking_keys"] == loaded["blocking_keys"] > 400
    with engine.connect() as conn:
        kinds = conn.execute(
            text(
                "SELECT l.link_type, g.status, g.source_count, count(*) FROM record_links l"
                " JOIN golden_records g USING (golden_id) GROUP BY 1, 2, 3"
            )
        ).all()
    assert kinds == [("new_identity", "active", 1, 400)]
    # the planner's statistics cover what queries filter on, not the JSONB documents
    with engine.connect() as conn:
        analysed = set(
            conn.execute(
                text(
                    "SELECT tablename || '.' || attname FROM pg_stats"
                    " WHERE tablename IN ('source_records', 'golden_records')"
                )
            ).scalars()
        )
    assert {"source_records.id", "source_records.external_id", "golden_records.golden_id"} <= (
        analysed
    )
    assert not analysed & {"source_records.demographics", "golden_records.medical_data"}
    # a second load into a non-empty MPI is refused, and changes nothing
    with pytest.raises(MedMatchError, match="empty MPI"):
        load_records(engine, demo, medical)
    assert _counts(engine) == counts


def test_a_load_without_identities_leaves_the_linking_to_the_run(
    engine, uow_factory, records, trained
):
    demo, medical = records
    loaded = load_records(engine, demo, medical, identities=False)
    assert loaded["golden_records"] == 0 and loaded["first_golden_number"] is None
    assert "features" not in loaded  # only asked for (features=True)
    counts = _counts(engine)
    assert counts["source_records"] == 400
    assert counts["golden_records"] == counts["record_links"] == 0

    structure = _indexes_and_keys(engine)
    stats = batch_run.run_full(engine, trained, MatchThresholds(), job_id="first-run")
    # the first run fills the empty golden records, links, history and results, then
    # rebuilds what it dropped
    assert _indexes_and_keys(engine) == structure
    assert stats["golden_merged"] == stats["golden_retired"] == 0
    assert stats["links_moved"] == 400  # every record's first link
    with engine.connect() as conn:
        per_record = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE n <> 1) FROM (SELECT s.id, count(l.golden_id) n"
                " FROM source_records s LEFT JOIN record_links l ON l.source_record_id = s.id"
                " JOIN golden_records g ON g.golden_id = l.golden_id AND g.status = 'active'"
                " GROUP BY s.id) x"
            )
        ).scalar_one()
        assert per_record == 0
        assert conn.execute(text("SELECT count(*) FROM record_links")).scalar_one() == 400
        # no golden record was made only to be merged away
        statuses = dict(
            conn.execute(text("SELECT status, count(*) FROM golden_records GROUP BY 1")).all()
        )
        assert set(statuses) == {"active"}
        # alone in its cluster: a new identity; with others: matched
        kinds = conn.execute(
            text(
                "SELECT g.source_count = 1, l.link_type, count(*) FROM record_links l"
                " JOIN golden_records g USING (golden_id) GROUP BY 1, 2 ORDER BY 1, 2"
            )
        ).all()
        assert kinds[0][:2] == (False, "auto_match") and kinds[1][:2] == (True, "new_identity")
        assert len(kinds) == 2
        history = conn.execute(
            text(
                "SELECT reason, old_golden_id IS NULL, count(*) FROM link_history"
                " WHERE job_id = 'first-run' GROUP BY 1, 2"
            )
        ).all()
        assert history == [("first batch match", True, 400)]
    # the first run wrote each golden record once, with its survivors: the same documents
    # as rebuilding them in place (the way of every later run)
    documents = (
        "SELECT golden_id, demographics, medical_data, source_count, status"
        " FROM golden_records ORDER BY 1"
    )
    with engine.connect() as conn:
        written = conn.execute(text(documents)).all()
        ids = [row[0] for row in written]
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute("UPDATE golden_records SET demographics = '{}', source_count = 0")
            assert batch_run._rebuild_survivorship(cur, ids, {}) == len(ids)
            assert cur.execute(documents).fetchall() == [tuple(row) for row in written]
    finally:
        raw.rollback()
        raw.close()
    # the same run again: nothing moves
    again = batch_run.run_full(engine, trained, MatchThresholds(), job_id="second-run")
    assert again["links_moved"] == 0 and again["golden_created"] == 0


def test_a_first_run_whose_survivors_fail_leaves_the_mpi_as_it_was(
    engine, uow_factory, records, trained, monkeypatch
):
    """A first run works out its survivors on a connection of its own while it writes the
    links: when that side fails, the run's transaction rolls back whole."""
    demo, medical = records
    load_records(engine, demo, medical, identities=False)
    structure = _indexes_and_keys(engine)
    before = _counts(engine)

    def fails(*_args, **_kwargs):
        raise RuntimeError("survivors failed")

    with monkeypatch.context() as patched:
        patched.setattr(batch_run, "_first_run_survivors", fails)
        with pytest.raises(RuntimeError, match="survivors failed"):
            batch_run.run_full(engine, trained, MatchThresholds(), job_id="failing-run")
    assert _counts(engine) == before  # no link, no golden record
    assert _indexes_and_keys(engine) == structure
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM link_history")).scalar_one() == 0
    # and the next run starts from there
    stats = batch_run.run_full(engine, trained, MatchThresholds(), job_id="next-run")
    assert stats["links_moved"] == 400
    assert _counts(engine)["record_links"] == 400


def test_a_first_runs_survivors_starting_late_do_not_deadlock_its_links(
    engine, uow_factory, records, trained, monkeypatch
):
    """The survivors' export must hold source_records before the run's transaction locks it
    (dropping the links' foreign key): a late export used to wait for that transaction, which
    waited for the export. CI once hung there for minutes."""
    demo, medical = records
    load_records(engine, demo, medical, identities=False)
    original = batch_run._first_run_survivors

    def late(*args):
        time.sleep(1.5)  # a busy machine schedules the survivors' thread late
        return original(*args)

    monkeypatch.setattr(batch_run, "_first_run_survivors", late)
    outcome: dict = {}
    run = threading.Thread(
        target=lambda: outcome.update(
            batch_run.run_full(engine, trained, MatchThresholds(), job_id="late-survivors")
        ),
        daemon=True,
    )
    run.start()
    run.join(60)
    if run.is_alive():  # deadlocked: free the run's connections, then fail
        with engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        pytest.fail("the first run's links and survivors waited for each other")
    assert outcome["links_moved"] == 400
    assert _counts(engine)["record_links"] == 400


def test_quotes_backslashes_and_accents_survive_the_copy(engine, uow_factory, records):
    # a JSON escape's backslash is doubled for COPY's text format; without one the load skips that
    demo, medical = records
    demo = demo.head(3).copy()
    demo.loc[0, "name_last"] = 'O"Brien\\Smith'
    demo.loc[1, "address_line"] = "Flat 2\\B, 12 Élan Street"
    medical = medical[medical["record_id"].isin(demo["record_id"])]
    assert load_records(engine, demo, medical, identities=False)["records"] == 3
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                text("SELECT external_id, demographics FROM source_records ORDER BY id")
            ).all()
        )
    assert stored[demo.loc[0, "external_id"]]["name_last"] == 'O"Brien\\Smith'
    assert stored[demo.loc[1, "external_id"]]["address_line"] == "Flat 2\\B, 12 Élan Street"
    assert stored[demo.loc[2, "external_id"]]["name_last"] == demo.loc[2, "name_last"]


def test_the_rows_a_load_returns_are_the_rows_read_back(engine, uow_factory, records):
    """match_snapshot takes a bulk load's own rows instead of reading them back: they must be
    the same, to the dtype, with a refused record and a re-sent one among them."""
    demo, medical = records
    refused = demo.iloc[[0]].assign(record_id="no-name", name_first=None, name_last=None)
    resent = demo.iloc[[1]].assign(record_id="resent", name_first="Changed")
    demo = pd.concat([demo, refused, resent], ignore_index=True)
    loaded = load_records(engine, demo, medical, identities=False, features=True)
    assert loaded["rejected"] == 1 and loaded["resent"] == 1
    ours = batch_run.snapshot_of_load(loaded["features"])
    stored = batch_run.read_snapshot(engine)
    pd.testing.assert_frame_equal(ours.features, stored.features)
    assert ours.golden_of == stored.golden_of == {}
    assert ours.must_link == stored.must_link == [] and ours.cannot_link == stored.cannot_link
