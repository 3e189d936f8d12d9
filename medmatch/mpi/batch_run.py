"""Batch matching over the MPI: the steps the pipeline's assets run, without Dagster.

read the records (PostgreSQL -> NDJSON via COPY -> DuckDB -> Arrow) -> Splink predict on
DuckDB and the rules (`medmatch.matching.batch`) -> reviewer constraints -> constrained
clusters -> golden ids planned so they stay stable -> one transaction that writes
match_results, moves links (with link_history), creates, merges or retires golden records,
rebuilds their survivorship and queues the review band.

Golden ids are stable: each cluster keeps the golden id that holds most of its records (ties:
the lowest id), so a re-run over unchanged data changes nothing, and after a model or
threshold change the records that moved are recorded in link_history, never renumbered.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine

from medmatch.config import MatchThresholds, get_settings
from medmatch.data.features import column_values
from medmatch.matching.adjudication import Adjudicator, Tally, lowest_probability_to_score
from medmatch.matching.batch import decide_pairs, predict_pairs
from medmatch.matching.clustering import cluster
from medmatch.matching.model import MatchModel
from medmatch.mpi.bulk import drop_indexes
from medmatch.mpi.survivorship import FIELDS, survive_many

Progress = Callable[[str, int, int], None]
LIST_COLUMNS = ("first_name_group", "conditions", "medications")


@dataclass
class Snapshot:
    """What the MPI holds when a run starts."""

    features: pd.DataFrame  # one row per source record; unique_id = str(source_records.id)
    golden_of: dict[str, str]  # record id -> golden_id of its link
    must_link: list[tuple[str, str]] = field(default_factory=list)
    cannot_link: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Scored:
    pairs: pd.DataFrame  # medmatch.matching.batch.PAIR_COLUMNS
    cannot: list[tuple[str, str]]
    stats: dict[str, int]


@dataclass
class GoldenPlan:
    """Where every record goes: an existing golden id, or a new one for its cluster."""

    target: dict[str, str]  # record id -> golden id, or "new:<cluster label>"
    emptied: dict[str, str | None]  # old golden id -> the golden id most of it went to
    new_clusters: list[str]
    alone: set[str] = field(default_factory=set)  # records of `target` alone in a cluster

    @property
    def moves(self) -> int:
        return len(self.target)


# -- reading ----------------------------------------------------------------------------
def _psycopg(engine: Engine):  # type: ignore[no-untyped-def]
    return engine.raw_connection()


def _feature_columns() -> list[str]:
    """The columns of a snapshot's feature rows, unique_id first."""
    from medmatch.data.features import SPLINK_COLUMNS

    extra = ["middle_name", "source_system", "external_id", "conditions", "medications"]
    return list(dict.fromkeys([*SPLINK_COLUMNS, *extra]))


def read_features(engine: Engine, where: str = "TRUE") -> pd.DataFrame:
    """Feature rows of the records matching `where` (SQL over source_records), bulk: COPY to
    NDJSON, read by DuckDB into Arrow (one JSON parse, in C)."""
    import duckdb

    fd, path = tempfile.mkstemp(suffix=".ndjson")
    try:
        raw = _psycopg(engine)
        try:
            with os.fdopen(fd, "w") as out, raw.cursor() as cur:
                # the row nested under "f" (json: its stored text, not re-printed), its
                # fields lifted beside unique_id when DuckDB reads it
                sql = (
                    "COPY (SELECT json_build_object('unique_id', id::text, 'f', features)"
                    f" FROM source_records WHERE {where} ORDER BY id) TO STDOUT"
                )
                with cur.copy(sql) as copy:
                    for (line,) in copy.rows():
                        out.write(line)
                        out.write("\n")
        finally:
            raw.close()
        names = _feature_columns()
        fields = {n: ("VARCHAR[]" if n in LIST_COLUMNS else "VARCHAR") for n in names[1:]}
        row = ", ".join(f'"{k}" {v}' for k, v in fields.items())
        spec = f"'unique_id': 'VARCHAR', 'f': 'STRUCT({row})'"
        table = duckdb.sql(
            f"SELECT unique_id, f.* FROM read_json('{path}', columns={{{spec}}})"
        ).arrow()
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
        return table.to_pandas(types_mapper=pd.ArrowDtype)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def read_snapshot(engine: Engine, where: str = "TRUE") -> Snapshot:
    features = read_features(engine, where)
    raw = _psycopg(engine)
    try:
        with raw.cursor() as cur:
            cur.execute("SELECT source_record_id::text, golden_id FROM record_links")
            golden_of = dict(cur.fetchall())
            cur.execute("SELECT record_id_1::text, record_id_2::text, kind FROM match_constraints")
            constraints = cur.fetchall()
    finally:
        raw.close()
    return Snapshot(
        features=features,
        golden_of=golden_of,
        must_link=[(a, b) for a, b, k in constraints if k == "must_link"],
        cannot_link=[(a, b) for a, b, k in constraints if k == "cannot_link"],
    )


def snapshot_of_load(features: pa.Table) -> Snapshot:
    """The snapshot of an MPI that a bulk load has just filled (`load_records(...,
    features=True)`, without identities): its feature rows as `read_features` would read
    them back, no links and no reviewer constraints yet. It saves the read-back: the step that
    read them took 0.7 s at 100K records and 7.7 s at 1M (stop 27's runs)."""
    frame = features.select(_feature_columns()).to_pandas(types_mapper=pd.ArrowDtype)
    return Snapshot(features=frame, golden_of={})


# -- scoring and clustering ---------------------------------------------------------------
def score(
    snapshot: Snapshot,
    model: MatchModel,
    thresholds: MatchThresholds,
    adjudicators: Sequence[Adjudicator] = (),
) -> Scored:
    """Every blocked pair at or above the floor, decided by rules, model, adjudicators and,
    last, the reviewers' constraints (a human decision wins)."""
    floor = lowest_probability_to_score(thresholds.pair_floor, adjudicators)
    predicted = predict_pairs(snapshot.features, model, floor)
    tally = Tally()
    pairs, cannot = decide_pairs(
        predicted,
        snapshot.features,
        model,
        thresholds,
        adjudicators,
        tally,
        workers=get_settings().batch_decide_workers,
    )
    return constrain(snapshot, pairs, cannot, tally.stats(adjudicators))


def constrain(
    snapshot: Snapshot,
    pairs: pd.DataFrame,
    cannot: list[tuple[str, str]],
    ai_stats: Mapping[str, int],
) -> Scored:
    """Reviewers' cannot-links over the decided pairs: such a pair is never a match."""
    forbidden = {tuple(sorted(p)) for p in snapshot.cannot_link}
    if forbidden and len(pairs):
        keys = [
            tuple(sorted(p)) for p in zip(pairs["record_id_1"], pairs["record_id_2"], strict=True)
        ]
        held = pd.Series([k in forbidden for k in keys], index=pairs.index)
        pairs.loc[held, ["decision", "match_type"]] = ["no_match", "no_match"]
        pairs.loc[held, "explanation"] = pairs.loc[held, "explanation"] + (
            "; a reviewer decided: not the same person"
        )
    stats = {
        "pairs": len(pairs),
        "auto_match": int((pairs["decision"] == "auto_match").sum()),
        "review_required": int((pairs["decision"] == "review_required").sum()),
        "hard_negatives": len(cannot),
        **ai_stats,
    }
    return Scored(pairs=pairs, cannot=cannot + list(snapshot.cannot_link), stats=stats)


def clusters_of(snapshot: Snapshot, scored: Scored) -> dict[str, str]:
    """record id -> cluster label; must-links first (a reviewer's word), then auto-matches."""
    auto = scored.pairs[scored.pairs["decision"] == "auto_match"]
    # .tolist(): iterating Arrow-backed columns value by value costs ~1 us a value
    edges = list(
        zip(
            auto["record_id_1"].tolist(),
            auto["record_id_2"].tolist(),
            auto["confidence"].tolist(),
            strict=True,
        )
    )
    edges += [(a, b, 2.0) for a, b in snapshot.must_link]
    ids = column_values(snapshot.features["unique_id"])
    return cluster(ids, edges, scored.cannot)


def plan_golden(golden_of: Mapping[str, str], labels: Mapping[str, str]) -> GoldenPlan:
    """Stable golden ids: a cluster keeps the golden id holding most of its records.

    The biggest claims first (ties: golden id, then cluster label), each golden id to one
    cluster; an emptied golden id is merged into where most of its records went (ties: the
    first such record in cluster order). Dictionaries and one sort of the claims in pandas:
    at a million records a Counter per cluster took ~15 s, this ~3 s."""
    members: dict[str, list[str]] = {}  # clusters by first appearance, records in order
    claimed: dict[tuple[str, str], int] = {}
    for record, label in labels.items():
        members.setdefault(label, []).append(record)
        golden = golden_of.get(record)
        if golden is not None:
            claimed[golden, label] = claimed.get((golden, label), 0) + 1
    claims = pd.DataFrame(
        {
            "n": list(claimed.values()),
            "golden": [g for g, _ in claimed],
            "label": [label for _, label in claimed],
        }
    ).sort_values(["n", "golden", "label"], ascending=[False, True, True], kind="stable")
    owner: dict[str, str] = {}  # cluster label -> golden id
    taken: set[str] = set()
    for golden, label in zip(claims["golden"].tolist(), claims["label"].tolist(), strict=True):
        if label not in owner and golden not in taken:
            owner[label] = golden
            taken.add(golden)
    new_clusters = sorted(label for label in members if label not in owner)
    target: dict[str, str] = {}
    went: dict[str, dict[str, int]] = {}  # emptied golden id -> destination -> records
    for label, records in members.items():
        destination = owner.get(label) or f"new:{label}"
        for record in records:
            old = golden_of.get(record)
            if old != destination:
                target[record] = destination
                if old is not None and old not in taken:
                    counts = went.setdefault(old, {})  # insertion order: the tie-break
                    counts[destination] = counts.get(destination, 0) + 1
    emptied: dict[str, str | None] = {
        golden: max(counts, key=counts.__getitem__) for golden, counts in went.items()
    }
    alone = {rs[0] for rs in members.values() if len(rs) == 1 and rs[0] in target}
    return GoldenPlan(target=target, emptied=emptied, new_clusters=new_clusters, alone=alone)


# -- writing ----------------------------------------------------------------------------
# the joins of a run's temp tables with the MPI's hash in memory, this transaction only
_WORK_MEM = "SET LOCAL work_mem = '256MB'"


def _register_job(cur, job_id: str, job_type: str) -> None:  # type: ignore[no-untyped-def]
    cur.execute(
        "INSERT INTO batch_jobs (job_id, job_type, status, started_at)"
        " VALUES (%s, %s, 'running', now()) ON CONFLICT (job_id) DO NOTHING",
        (job_id, job_type),
    )


def write_match_results(
    engine: Engine,
    job_id: str,
    scored: Scored,
    model: MatchModel,
    thresholds: MatchThresholds,
    *,
    job_type: str = "full_match",
) -> int:
    """Every decided pair of the run at or above the floor, with the model version and the
    thresholds that decided it (one transaction; COPY)."""
    raw = _psycopg(engine)
    try:
        with raw.cursor() as cur:
            cur.execute(_WORK_MEM)
            _register_job(cur, job_id, job_type)
            rebuild = _defer_indexes_if_empty(cur, "match_results")
            written = _write_match_results(cur, job_id, scored.pairs, model, thresholds)
            for statement in rebuild:
                cur.execute(statement)
        raw.commit()
    finally:
        raw.close()
    return written


def write_golden(
    engine: Engine,
    job_id: str,
    snapshot: Snapshot,
    plan: GoldenPlan,
    thresholds: MatchThresholds,
    *,
    job_type: str = "full_match",
    actor: str = "pipeline",
    trust: Mapping[str, float] | None = None,
    progress: Progress | None = None,
    before_commit: Callable[[], None] | None = None,
) -> dict[str, int | float]:
    """Links, golden records, survivorship and the review band, in ONE transaction: a run
    killed half-way leaves the MPI as it was, and running it again starts from there."""
    step = progress or (lambda _stage, _done, _total: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}  # seconds per part: where a large run's time goes
    mark = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[f"{part}_s"] = round(now - mark, 3)
        mark = now

    raw = _psycopg(engine)
    folder = tempfile.TemporaryDirectory(prefix="medmatch-golden-")
    pool = ThreadPoolExecutor(1)
    try:
        with raw.cursor() as cur:
            # one writer of links at a time: lookups of the same records wait for the run
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('batch-run', 0))")
            cur.execute(_WORK_MEM)
            _register_job(cur, job_id, job_type)
            # a first run after a load without identities makes every golden record: their
            # ids are drawn now, their rows written once with their survivors, and their keys
            # built after
            rebuild_golden = _defer_indexes_if_empty(cur, "golden_records")
            first = bool(rebuild_golden)
            new_ids = _create_golden(cur, len(plan.new_clusters), insert=not first)
            lap("create")
            fresh = dict(zip(plan.new_clusters, new_ids, strict=True))
            destination = {
                r: fresh[g[4:]] if g.startswith("new:") else g for r, g in plan.target.items()
            }
            placed = _placement(destination)
            # a first run's survivors are worked out beside the links being written
            reading = threading.Event()
            survivors = (
                pool.submit(_first_run_survivors, engine, placed, trust or {}, folder.name, reading)
                if first and destination
                else None
            )
            if survivors is not None:
                # its export holds source_records before the links lock it (or it failed
                # first: the run meets its error in result())
                survivors.add_done_callback(lambda _: reading.set())
                reading.wait()
            moved = _move_links(cur, job_id, placed, plan.alone, actor)
            lap("move_links")
            step("golden_records", moved, len(destination))
            emptied = {
                g: (fresh[d[4:]] if d and d.startswith("new:") else d)
                for g, d in plan.emptied.items()
            }
            _close_golden(cur, job_id, emptied, actor)
            lap("close_emptied")
            touched = set(destination.values()) | {
                snapshot.golden_of[r] for r in destination if r in snapshot.golden_of
            }
            touched -= set(emptied)
            rebuilt = _rebuild_survivorship(
                cur,
                sorted(touched),
                trust or {},
                insert=first,
                survived=survivors.result() if survivors is not None else None,
            )
            for statement in rebuild_golden:
                cur.execute(statement)
            lap("survivorship")
            queued = _queue_reviews(cur, job_id, thresholds)
            lap("reviews")
            if before_commit is not None:
                before_commit()
        raw.commit()
        lap("commit")
    except BaseException:
        raw.rollback()
        raise
    finally:
        pool.shutdown(cancel_futures=True)  # (waits for a survivors' task still running)
        raw.close()
        folder.cleanup()
    return {
        "golden_created": len(new_ids),
        "links_moved": moved,
        "golden_merged": sum(1 for d in emptied.values() if d),
        "golden_retired": sum(1 for d in emptied.values() if not d),
        "golden_rebuilt": rebuilt,
        "reviews_queued": queued,
        **timings,
        "write_s": round(time.perf_counter() - started, 3),
    }


_DB_DECISION = {
    "auto_match": "auto_match",
    "review_required": "review_required",
    "no_match": "new_identity",
}


def _write_match_results(cur, job_id, pairs, model, thresholds) -> int:  # type: ignore[no-untyped-def]
    rules = pairs["rule"].astype(object).where(pairs["rule"].notna(), None)
    evidence = {r: json.dumps({"rule": r} if r else {}) for r in set(rules.tolist())}
    n = len(pairs)
    columns = {
        "source_record_id": pa.array(pairs["record_id_1"].astype("int64").to_numpy()),
        "candidate_record_id": pa.array(pairs["record_id_2"].astype("int64").to_numpy()),
        "is_match": pa.array((pairs["decision"] == "auto_match").to_numpy(dtype=bool)),
        "confidence": pa.array(pairs["confidence"].astype(float).clip(0.0, 1.0).to_numpy()),
        "match_type": pa.array(pairs["match_type"].astype(str).tolist(), pa.string()),
        "decision": pa.array(pairs["decision"].map(_DB_DECISION).tolist(), pa.string()),
        "evidence": pa.array(rules.map(evidence).tolist(), pa.string()),
        "stage": pa.array(pairs["stage"].astype(str).tolist(), pa.string()),
        "explanation": pa.array(pairs["explanation"].astype(str).tolist(), pa.string()),
        "model_version": pa.array([model.version] * n, pa.string()),
        "thresholds": pa.array([json.dumps(thresholds.model_dump())] * n, pa.string()),
        "job_id": pa.array([job_id] * n, pa.string()),
    }
    # in record order: the foreign-key checks and the index inserts then walk source_records
    # and the indexes page by page instead of at random (the tables outgrow shared_buffers)
    rows = pa.table(columns).sort_by(
        [("source_record_id", "ascending"), ("candidate_record_id", "ascending")]
    )
    return _copy_arrow(cur, "match_results", rows)


def _copy_arrow(cur, table: str, rows: pa.Table) -> int:  # type: ignore[no-untyped-def]
    """COPY an Arrow table (its column names are the table's) into `table`, as CSV written
    by Arrow in C: no Python object per row."""
    import pyarrow.csv as pacsv

    if rows.num_rows == 0:
        return 0
    sink = pa.BufferOutputStream()
    pacsv.write_csv(rows, sink, pacsv.WriteOptions(include_header=False))
    payload = memoryview(sink.getvalue())  # type: ignore[arg-type]
    columns = ", ".join(rows.column_names)
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        for start in range(0, len(payload), 1 << 20):
            copy.write(payload[start : start + (1 << 20)])
    return rows.num_rows


def _defer_indexes_if_empty(cur, table: str) -> list:  # type: ignore[no-untyped-def]
    """A first run fills empty tables: then their indexes and foreign keys are dropped and
    the returned statements rebuild them after the insert, one pass each (the bulk load's
    way; row by row, each row's foreign-key check locks the row it references). Only then
    is the table locked, until the run commits (lookups wait); later runs lock nothing."""
    check = f"SELECT EXISTS (SELECT FROM {table})"
    if cur.execute(check).fetchone()[0]:
        return []
    cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    if cur.execute(check).fetchone()[0]:  # filled meanwhile
        return []
    return drop_indexes(cur, (table,))


def _create_golden(cur, n: int, *, insert: bool = True) -> list[str]:  # type: ignore[no-untyped-def]
    """`n` new golden ids, inserted as empty active golden records; or, in a first run
    (`insert=False`), only drawn, as the column's default does: that run inserts each golden
    record once, with its survivors (an UPDATE would write every row a second time)."""
    if n == 0:
        return []
    if insert:
        cur.execute(
            "INSERT INTO golden_records (status) SELECT 'active' FROM generate_series(1, %s)"
            " RETURNING golden_id",
            (n,),
        )
    else:
        cur.execute("SELECT next_golden_id() FROM generate_series(1, %s)", (n,))
    return [row[0] for row in cur.fetchall()]  # which new id goes to which cluster is free


def _placement(destination: Mapping[str, str]) -> pa.Table:
    """record id -> golden id of every record the run places, as a table (record_id,
    golden_id)."""
    return pa.table(
        {
            "record_id": pa.array(list(destination), pa.string()).cast(pa.int64()),
            "golden_id": pa.array(list(destination.values()), pa.string()),
        }
    )


def _move_links(cur, job_id, placed: pa.Table, alone, actor) -> int:  # type: ignore[no-untyped-def]
    """Link each placed record (`_placement`) to its golden id (a record alone in its
    cluster as a new identity, the others as matched), each change in link_history."""
    if not placed.num_rows:
        return 0
    cur.execute(
        "CREATE TEMP TABLE moves (record_id bigint PRIMARY KEY, golden_id text, link_type text)"
        " ON COMMIT DROP"
    )
    lone = pc.is_in(placed["record_id"], value_set=pa.array([int(r) for r in alone], pa.int64()))
    moves = placed.append_column(
        "link_type", pc.if_else(lone, "new_identity", "auto_match").cast(pa.string())
    )
    _copy_arrow(cur, "moves", moves)
    cur.execute("ANALYZE moves")
    # the first run after a load without identities links every record, and writes the
    # first history rows
    rebuild = _defer_indexes_if_empty(cur, "record_links")
    rebuild_history = _defer_indexes_if_empty(cur, "link_history")
    # in record order (both): the foreign-key checks walk source_records and golden_records
    # page by page, not at random
    cur.execute(
        "INSERT INTO link_history (operation_id, action, source_record_id, old_golden_id,"
        " new_golden_id, actor, reason, job_id)"
        " SELECT %s, 'batch', m.record_id, l.golden_id, m.golden_id, %s,"
        " CASE WHEN l.golden_id IS NULL THEN 'first batch match' ELSE 'batch re-match' END, %s"
        " FROM moves m LEFT JOIN record_links l ON l.source_record_id = m.record_id"
        " ORDER BY m.record_id",
        (job_id, actor, job_id),
    )
    upsert = (
        " ON CONFLICT (source_record_id) DO UPDATE SET golden_id = EXCLUDED.golden_id,"
        " link_type = EXCLUDED.link_type, linked_by = EXCLUDED.linked_by, linked_at = now()"
    )
    cur.execute(
        "INSERT INTO record_links (source_record_id, golden_id, link_type, linked_by)"
        " SELECT record_id, golden_id, link_type, %s FROM moves ORDER BY record_id"
        + ("" if rebuild else upsert),
        (actor,),
    )
    for statement in rebuild + rebuild_history:
        cur.execute(statement)
    return placed.num_rows


def _close_golden(cur, job_id, emptied, actor) -> None:  # type: ignore[no-untyped-def]
    """Golden records no cluster kept: merged into where most of their records went, else
    retired; set-based (a first full run merges about half the golden records)."""
    if not emptied:
        return
    cur.execute(
        "CREATE TEMP TABLE emptied (golden_id text PRIMARY KEY, into_id text) ON COMMIT DROP"
    )
    ordered = sorted(emptied.items())
    _copy_arrow(
        cur,
        "emptied",
        pa.table(
            {
                "golden_id": pa.array([g for g, _ in ordered], pa.string()),
                "into_id": pa.array([d for _, d in ordered], pa.string()),
            }
        ),
    )
    cur.execute("ANALYZE emptied")
    cur.execute(
        "INSERT INTO link_history (operation_id, action, old_golden_id, new_golden_id,"
        " old_status, actor, reason, job_id)"
        " SELECT %s, 'batch', g.golden_id, e.into_id, g.status, %s,"
        " CASE WHEN e.into_id IS NULL THEN 'no record left' ELSE 'merged by batch re-match' END,"
        " %s FROM emptied e JOIN golden_records g ON g.golden_id = e.golden_id"
        " ORDER BY g.golden_id",
        (job_id, actor, job_id),
    )
    cur.execute(
        "UPDATE golden_records g SET status = CASE WHEN e.into_id IS NULL THEN 'retired'"
        " ELSE 'merged' END, merged_into = e.into_id, demographics = '{}',"
        " medical_data = '{}', source_count = 0, version = g.version + 1, updated_at = now()"
        " FROM emptied e WHERE g.golden_id = e.golden_id"
    )


# a record's values as survive_many reads them (its RECORD_COLUMNS after golden_id)
_RECORD_VALUES = (
    "s.id, s.source_system,"
    " (extract(epoch FROM coalesce(s.updated_at, s.received_at)) * 1000000)::bigint,"
    + "".join(f" s.demographics ->> '{name}'," for name in FIELDS)
    + " s.medical_data -> 'conditions', s.medical_data -> 'medications'"
)
# the touched golden records' records, through their links (this transaction's)
_SURVIVORSHIP_INPUT = (
    f"COPY (SELECT l.golden_id, {_RECORD_VALUES}"
    " FROM touched t JOIN record_links l ON l.golden_id = t.golden_id"
    " JOIN source_records s ON s.id = l.source_record_id) TO STDOUT (FORMAT csv)"
)
# every record, its golden id joined from the run's plan in DuckDB (a first run)
_EVERY_RECORD = f"COPY (SELECT {_RECORD_VALUES} FROM source_records s) TO STDOUT (FORMAT csv)"
_RECORD_TYPES = {
    "id": "BIGINT",
    "source_system": "VARCHAR",
    "seen_us": "BIGINT",
    **dict.fromkeys(FIELDS, "VARCHAR"),
    "conditions": "VARCHAR",
    "medications": "VARCHAR",
}


def _survivors_csv(  # type: ignore[no-untyped-def]
    cur,
    export: str,
    folder: str,
    trust: Mapping[str, float],
    golden_of: pa.Table | None,
    exported: Callable[[], None] = lambda: None,
) -> str:
    """Run `export` (a COPY of records as CSV), survive_many over its rows, and write the
    survivors (golden_id, demographics, medical_data, source_count) as CSV; returns its path.
    Without `golden_of` the export's first column is the golden id; with it (record_id,
    golden_id), the export holds every record and the table says where each one goes.
    `exported` is called once the rows are out."""
    import duckdb
    import pyarrow.csv as pacsv

    path = os.path.join(folder, "records.csv")
    with open(path, "wb") as out, cur.copy(export) as copy:
        for block in copy:
            out.write(block)
    exported()
    types = _RECORD_TYPES if golden_of is not None else {"golden_id": "VARCHAR", **_RECORD_TYPES}
    spec = ", ".join(f"'{k}': '{v}'" for k, v in types.items())
    terms = "from_json({0}, '[\"VARCHAR\"]') AS {0}"
    columns = f"* REPLACE ({terms.format('conditions')}, {terms.format('medications')})"
    source = f"read_csv('{path}', header = false, columns = {{{spec}}})"
    with duckdb.connect() as con:
        if golden_of is None:
            query = f"SELECT {columns} FROM {source}"
        else:
            con.register("golden_of", golden_of)
            query = (
                f"SELECT g.golden_id, r.{columns} FROM {source} r"
                " JOIN golden_of g ON g.record_id = r.id"
            )
        records = con.sql(query).arrow()
        if isinstance(records, pa.RecordBatchReader):
            records = records.read_all()
    survived = survive_many(records, trust)
    del records
    payload = os.path.join(folder, "survived.csv")
    pacsv.write_csv(survived, payload, pacsv.WriteOptions(include_header=False))
    return payload


def _first_run_survivors(  # type: ignore[no-untyped-def]
    engine: Engine,
    placed: pa.Table,
    trust: Mapping[str, float],
    folder: str,
    reading: threading.Event,
) -> str:
    """The survivors of a first run, on a connection of its own while the run's transaction
    writes the links: in a first run every record goes where the plan (`placed`) says, so
    its golden record's survivors need no link read back. (source_records is committed data
    the run does not change.)

    `reading` is set once this side holds source_records for its export: the run's
    transaction must not take the table first (dropping the links' foreign key locks it
    exclusively), or this export would wait for that transaction, which waits for it. The
    lock goes with the export's commit, before the survivors are worked out."""
    raw = _psycopg(engine)
    try:
        with raw.cursor() as cur:
            cur.execute("LOCK TABLE source_records IN ACCESS SHARE MODE")
            reading.set()
            return _survivors_csv(cur, _EVERY_RECORD, folder, trust, placed, exported=raw.commit)
    finally:
        raw.close()


def _rebuild_survivorship(  # type: ignore[no-untyped-def]
    cur,
    golden_ids: list[str],
    trust: Mapping[str, float],
    *,
    insert: bool = False,
    survived: str | None = None,
) -> int:
    """Survivorship of every touched golden record in bulk: their records out by COPY (CSV),
    the rules in one DuckDB query over Arrow (survive_many), the results in by COPY and one
    UPDATE; or, `insert` (a first run: none of them exists yet), straight into golden_records
    by COPY. `survived`: the survivors' CSV, computed already (`_first_run_survivors`)."""
    if not golden_ids:
        return 0
    with tempfile.TemporaryDirectory(prefix="medmatch-survive-") as folder:
        if survived is None or not insert:  # what the export and the UPDATE join on
            cur.execute("CREATE TEMP TABLE touched (golden_id text PRIMARY KEY) ON COMMIT DROP")
            _copy_arrow(cur, "touched", pa.table({"golden_id": pa.array(golden_ids, pa.string())}))
            cur.execute("ANALYZE touched")
        if survived is None:
            survived = _survivors_csv(cur, _SURVIVORSHIP_INPUT, folder, trust, None)
        if not insert:
            cur.execute(
                "CREATE TEMP TABLE survived (golden_id text PRIMARY KEY, demographics jsonb,"
                " medical_data jsonb, source_count int) ON COMMIT DROP"
            )
        # (a golden record of a first run without records would be left out, and its links
        # would fail the foreign key rebuilt after: every new golden record has records)
        target = "golden_records" if insert else "survived"
        with (
            open(survived, "rb") as source,
            cur.copy(
                f"COPY {target} (golden_id, demographics, medical_data, source_count)"
                " FROM STDIN (FORMAT csv)"
            ) as copy,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
    if insert:
        return len(golden_ids)
    cur.execute("ANALYZE survived (golden_id)")  # the join key; the documents cost 0.5 s at 100K
    # a touched golden record left without records: emptied, and retired if it was active
    cur.execute(
        "UPDATE golden_records g SET demographics = coalesce(s.demographics, '{}'),"
        " medical_data = coalesce(s.medical_data, '{}'),"
        " source_count = coalesce(s.source_count, 0),"
        " status = CASE WHEN s.golden_id IS NULL AND g.status = 'active' THEN 'retired'"
        " ELSE g.status END, version = g.version + 1, updated_at = now()"
        " FROM touched t LEFT JOIN survived s ON s.golden_id = t.golden_id"
        " WHERE g.golden_id = t.golden_id"
    )
    return len(golden_ids)


def _queue_reviews(cur, job_id: str, thresholds: MatchThresholds) -> int:  # type: ignore[no-untyped-def]
    """The review band of this run, for pairs the run left in two golden records and no
    reviewer has decided: one open item per pair."""
    span = max(thresholds.auto_match - thresholds.review, 1e-9)
    cur.execute(
        "INSERT INTO review_queue (match_result_id, record_id_1, record_id_2, priority)"
        " SELECT m.id, least(m.source_record_id, m.candidate_record_id),"
        " greatest(m.source_record_id, m.candidate_record_id),"
        " 1 + round(9 * least(greatest((m.confidence - %s) / %s, 0), 1))::int"
        " FROM match_results m"
        " JOIN record_links a ON a.source_record_id = m.source_record_id"
        " JOIN record_links b ON b.source_record_id = m.candidate_record_id"
        " WHERE m.job_id = %s AND m.decision = 'review_required' AND a.golden_id <> b.golden_id"
        " AND NOT EXISTS (SELECT 1 FROM match_constraints c"
        "   WHERE c.record_id_1 = least(m.source_record_id, m.candidate_record_id)"
        "   AND c.record_id_2 = greatest(m.source_record_id, m.candidate_record_id))"
        " ON CONFLICT (record_id_1, record_id_2) WHERE status <> 'resolved' DO NOTHING",
        (thresholds.review, span, job_id),
    )
    return cur.rowcount


def run_full(
    engine: Engine,
    model: MatchModel,
    thresholds: MatchThresholds,
    adjudicators: Sequence[Adjudicator] = (),
    *,
    job_id: str,
    trust: Mapping[str, float] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Re-match everything: the pipeline's full_match job, as one call."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    snapshot = read_snapshot(engine)
    timings["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    scored = score(snapshot, model, thresholds, adjudicators)
    timings["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = plan_golden(snapshot.golden_of, clusters_of(snapshot, scored))
    timings["cluster_s"] = time.perf_counter() - t
    results = write_match_results(engine, job_id, scored, model, thresholds)
    written = write_golden(
        engine, job_id, snapshot, plan, thresholds, trust=trust, progress=progress
    )
    return {
        "records": len(snapshot.features),
        **scored.stats,
        "match_results": results,
        **written,
        **{k: round(v, 3) for k, v in timings.items()},
    }
