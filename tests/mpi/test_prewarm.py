"""Warming the buffer cache with the lookup's tables before the API serves (pg_prewarm)."""

import logging
import time

import psycopg
import pytest

from medmatch.mpi import prewarm as warm
from medmatch.mpi.bulk import load_records
from medmatch.mpi.database import libpq_url


@pytest.fixture
def loaded(engine, uow_factory, synthetic, database_url):
    demo = synthetic.demographics.head(600).reset_index(drop=True)
    medical = synthetic.medical[synthetic.medical["record_id"].isin(demo["record_id"])]
    load_records(engine, demo, medical)
    return database_url


def _relations(url):
    """The lookup's relations in prewarm order, with their size and cached blocks."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
        tables = list(warm.LOOKUP_TABLES)
        rows = conn.execute(warm._RELATIONS, (tables, tables)).fetchall()
        cached = dict(
            conn.execute(
                "SELECT relfilenode, count(*) FROM pg_buffercache"
                " WHERE reldatabase = (SELECT oid FROM pg_database"
                " WHERE datname = current_database()) GROUP BY 1"
            ).fetchall()
        )
        files = dict(conn.execute("SELECT oid, pg_relation_filenode(oid) FROM pg_class"))
    return [(name, blocks, cached.get(files[oid], 0)) for oid, name, blocks in rows]


def _evict(url) -> bool:
    """Out of the buffers with the lookup's relations; False on a server older than
    PostgreSQL 18, whose pg_buffercache cannot (compose's image is 16)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
        if (conn.info.server_version // 10000) < 18:
            return False
        tables = list(warm.LOOKUP_TABLES)
        for oid, _, _ in conn.execute(warm._RELATIONS, (tables, tables)).fetchall():
            conn.execute("SELECT pg_buffercache_evict_relation(%s::regclass)", (oid,))
    return True


def test_every_block_of_the_lookups_tables_is_read_into_the_buffers(loaded):
    if _evict(loaded):
        assert sum(cached for _, _, cached in _relations(loaded)) == 0
    warmed = warm.prewarm(loaded)
    relations = _relations(loaded)
    names = [name for name, _, _ in relations]
    # indexes of each table before the tables themselves, the candidate search's first
    assert names[0].startswith(("pk_blocking_keys", "ix_blocking_keys"))
    assert names.index("source_records") > names.index("pk_source_records")
    assert {"blocking_keys", "source_records", "record_links", "golden_records"} <= set(names)
    assert warmed is not None
    assert warmed.blocks == sum(blocks for _, blocks, _ in relations) > 0
    assert warmed.blocks <= warmed.budget
    assert [(n, b) for n, b, cached in relations if cached < b] == []


def test_no_more_than_the_budget_is_read_and_the_indexes_come_first(loaded, monkeypatch):
    relations = _relations(loaded)
    first = relations[0][1]
    with psycopg.connect(libpq_url(loaded)) as conn:
        (buffers,) = conn.execute(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
    share = (first + 1) / buffers  # the first index and one block of the next
    warmed = warm.prewarm(loaded, share=share)
    assert warmed is not None
    assert warmed.budget == int(buffers * share)
    assert warmed.blocks == warmed.budget < sum(blocks for _, blocks, _ in relations)


def test_without_the_extension_nothing_is_warmed_and_it_says_so(loaded, monkeypatch, caplog):
    monkeypatch.setattr(warm, "EXTENSION", "no_such_extension")
    with caplog.at_level(logging.INFO, logger=warm.__name__):
        assert warm.prewarm(loaded) is None
    assert "no_such_extension unavailable" in caplog.text


def test_warming_stops_at_its_time_limit(loaded):
    assert warm.prewarm(loaded, seconds=0).blocks == 0
    # a first batch run holds golden_records: the warm-up reads what it can, then gives up
    with psycopg.connect(libpq_url(loaded)) as writer:
        writer.execute("LOCK TABLE golden_records IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        warmed = warm.prewarm(loaded, seconds=1.5)
        assert time.monotonic() - started < 10
    assert warmed is not None
    assert warmed.blocks == 0  # what to read could not be listed: nothing was
