"""Where the full run's time goes, statement by statement (a profiling aid, not a benchmark).

    python benchmarks/profile_writes.py --records 300000 [--work DIR] [--explain]

Stage 1 (once per DIR): generate the population (bench seed), bulk-load it into a fresh
database `mm_profile_base`, train, score, and keep the snapshot, model and scored pairs as
pickles. Stage 2 (every call): clone the loaded database from its template, then time
read_snapshot, write_match_results and write_golden with every SQL statement timed
(`--explain` runs each big INSERT/UPDATE under EXPLAIN (ANALYZE, BUFFERS) instead).
PostgreSQL: DATABASE_URL, else an embedded server in DIR/pg.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

import psycopg
from population import population

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TIMES: list[tuple[float, str]] = []


class TimedCursor:
    """A psycopg cursor that records the wall time of every execute and copy."""

    def __init__(self, cur, explain: bool) -> None:  # type: ignore[no-untyped-def]
        self._cur, self._explain = cur, explain

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self._cur, name)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        return self._cur.__exit__(*exc)

    def execute(self, query, params=None, **kw):  # type: ignore[no-untyped-def]
        text = query if isinstance(query, str) else query.as_string(self._cur)
        if self._explain and text.lstrip().upper().startswith(("INSERT", "UPDATE")):
            self._cur.execute("SAVEPOINT explain")
            self._cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, params, **kw)
            plan = "\n".join(r[0] for r in self._cur.fetchall())
            print(f"--- {text[:160]}\n{plan}\n", flush=True)
            self._cur.execute("ROLLBACK TO SAVEPOINT explain")
        t = time.perf_counter()
        out = self._cur.execute(query, params, **kw)
        TIMES.append((time.perf_counter() - t, text[:140]))
        return out

    def copy(self, statement, *a, **kw):  # type: ignore[no-untyped-def]
        cursor, started = self._cur, time.perf_counter()

        class Timed:
            def __enter__(self_inner):  # type: ignore[no-untyped-def]
                self_inner.copy = cursor.copy(statement, *a, **kw)
                return self_inner.copy.__enter__()

            def __exit__(self_inner, *exc):  # type: ignore[no-untyped-def]
                out = self_inner.copy.__exit__(*exc)
                TIMES.append((time.perf_counter() - started, str(statement)[:140]))
                return out

        return Timed()


class TimedConnection:
    def __init__(self, conn, explain: bool) -> None:  # type: ignore[no-untyped-def]
        self._conn, self._explain = conn, explain

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self._conn, name)

    def cursor(self, *a, **kw):  # type: ignore[no-untyped-def]
        return TimedCursor(self._conn.cursor(*a, **kw), self._explain)


def prepare(work: Path, records: int, url: str) -> None:
    from medmatch.config import get_settings
    from medmatch.matching.training import train_model
    from medmatch.mpi import batch_run, migrate
    from medmatch.mpi.bulk import load_records
    from medmatch.mpi.database import sqlalchemy_url, with_database

    data = population(records)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "mm_profile_base" WITH (FORCE)')
        conn.execute('CREATE DATABASE "mm_profile_base"')
    base = with_database(url, "mm_profile_base")
    migrate.upgrade(sqlalchemy_url(base))
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url(base))
    t = time.perf_counter()
    loaded = load_records(engine, data.demographics, data.medical)
    print("bulk load", round(time.perf_counter() - t, 1), loaded["timings"], flush=True)
    snapshot = batch_run.read_snapshot(engine)
    t = time.perf_counter()
    model = train_model(snapshot.features)
    print("train", round(time.perf_counter() - t, 1), flush=True)
    from medmatch.matching.adjudicators import from_settings

    judges = from_settings("offline", get_settings())
    t = time.perf_counter()
    scored = batch_run.score(snapshot, model, get_settings().thresholds, judges)
    print("score", round(time.perf_counter() - t, 1), len(scored.pairs), flush=True)
    engine.dispose()
    (work / "state.pickle").write_bytes(pickle.dumps((model, scored)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/medmatch-profile"))
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    from sqlalchemy import create_engine

    from medmatch.config import get_settings
    from medmatch.mpi import batch_run
    from medmatch.mpi.database import libpq_url, sqlalchemy_url, start_embedded, with_database

    url = os.environ.get("DATABASE_URL") or start_embedded(args.work / "pg")
    url = libpq_url(url)
    if not (args.work / "state.pickle").exists():
        prepare(args.work, args.records, url)
    model, scored = pickle.loads((args.work / "state.pickle").read_bytes())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "mm_profile_run" WITH (FORCE)')
        t = time.perf_counter()
        conn.execute('CREATE DATABASE "mm_profile_run" TEMPLATE "mm_profile_base"')
        print("clone", round(time.perf_counter() - t, 1))
    engine = create_engine(sqlalchemy_url(with_database(url, "mm_profile_run")))
    plain = batch_run._psycopg
    batch_run._psycopg = lambda e: TimedConnection(plain(e), args.explain)  # type: ignore[assignment]
    settings = get_settings()
    phases = {}
    t = time.perf_counter()
    snapshot = batch_run.read_snapshot(engine)
    phases["read_snapshot"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = batch_run.clusters_of(snapshot, scored)
    plan = batch_run.plan_golden(snapshot.golden_of, labels)
    phases["cluster+plan"] = time.perf_counter() - t
    TIMES.clear()
    t = time.perf_counter()
    batch_run.write_match_results(engine, "profile-job", scored, model, settings.thresholds)
    phases["write_match_results"] = time.perf_counter() - t
    t = time.perf_counter()
    written = batch_run.write_golden(
        engine, "profile-job", snapshot, plan, settings.thresholds, trust=settings.source_trust
    )
    phases["write_golden"] = time.perf_counter() - t
    print({k: round(v, 2) for k, v in phases.items()}, written)
    for seconds, text in TIMES:
        if seconds > 0.2:
            print(f"{seconds:8.2f}s  {text}")
    engine.dispose()


if __name__ == "__main__":
    main()
