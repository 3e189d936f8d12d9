"""Warm PostgreSQL's buffer cache with what a lookup reads, before the API takes traffic.

After a restart or a bulk load, shared_buffers hold none of the MPI. A lookup's candidate
search then reads its pages from the operating system's cache into buffers never used
before, and the kernel zeroes each buffer page the first time it is touched: on the 1M
benchmark database that was about a fifth of PostgreSQL's CPU per lookup through the first
few thousand lookups (benchmarks/README.md, api.py). `pg_prewarm` reads the relations in one
sequential pass instead, the indexes a lookup searches first, up to a share of the buffers.

Without the pg_prewarm extension (a managed server that does not offer it, or a role that
may not create it) nothing is warmed and the API serves as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg

from medmatch.mpi.database import libpq_url

logger = logging.getLogger(__name__)

EXTENSION = "pg_prewarm"
# what a lookup reads, most read first: a table's indexes before the table
LOOKUP_TABLES = ("blocking_keys", "source_records", "record_links", "golden_records")

# the lookup's relations, indexes first, with their size in blocks
_RELATIONS = """
SELECT c.oid, c.relname, pg_relation_size(c.oid) / current_setting('block_size')::bigint
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
LEFT JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_class t ON t.oid = coalesce(i.indrelid, c.oid)
WHERE t.relname = ANY(%s) AND c.relkind IN ('r', 'i')
ORDER BY c.relkind = 'r', array_position(%s, t.relname::text), c.relname
"""


@dataclass(frozen=True)
class Prewarmed:
    blocks: int  # read into shared buffers
    budget: int  # the most that were allowed (a share of shared_buffers)
    seconds: float


def prewarm(url: str, *, share: float = 0.75, seconds: float = 30.0) -> Prewarmed | None:
    """Read the lookup's relations into shared buffers, up to `share` of them and for at most
    `seconds`: a slow disk, or a run holding a table locked, must not hold the API back (it
    then serves colder). None when the server has no pg_prewarm for us."""
    started = time.perf_counter()
    budget = left = 0
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:

        def time_left() -> bool:
            """Whether time is left; the next statement, the catalog reads too, may take it."""
            ms = int((started + seconds - time.perf_counter()) * 1000)
            if ms > 0:
                conn.execute(f"SET statement_timeout = {ms}")
            return ms > 0

        try:
            if time_left() and not _extension_created(conn):
                return None
            if time_left():
                budget = left = int(_shared_buffers(conn) * share)
                tables = list(LOOKUP_TABLES)
                for oid, _name, blocks in conn.execute(_RELATIONS, (tables, tables)).fetchall():
                    if left <= 0 or not time_left():
                        break
                    take = min(blocks, left)
                    if take:  # the first `take` blocks of the main fork, into shared buffers
                        conn.execute(
                            "SELECT pg_prewarm(%s::regclass, 'buffer', 'main', 0, %s)",
                            (oid, take - 1),
                        )
                        left -= take
        except psycopg.errors.QueryCanceled:
            logger.info("buffer cache warming stopped after %s s", seconds)
    return Prewarmed(budget - left, budget, round(time.perf_counter() - started, 2))


def _extension_created(conn: psycopg.Connection) -> bool:
    """pg_prewarm in this database; False (and a line in the log) when it cannot be."""
    try:
        conn.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
    except psycopg.errors.QueryCanceled:
        raise  # out of time: not the same as unavailable
    except psycopg.Error as exc:
        logger.info("buffer cache not warmed: %s unavailable (%s)", EXTENSION, exc.sqlstate)
        return False
    return True


def _shared_buffers(conn: psycopg.Connection) -> int:
    (buffers,) = conn.execute(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'"
    ).fetchone() or (0,)
    return int(buffers)
