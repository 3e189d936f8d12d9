"""The initial load: a whole table of source records into an empty MPI, with COPY.

`load_records` normalises the table once (`table_features`, the batch path's normaliser) and
writes, in one transaction, for every record: its `source_records` row (demographics,
medical data and feature row exactly as `MatchingService.lookup` would store them), its
`blocking_keys` rows, one golden record of its own (survivorship of that one record) and a
`record_links` row (link_type `new_identity`). With `identities=False` (the pipeline's
full_match, which clusters the records straight after) no golden record and no link is
written: the run gives each cluster its golden record, instead of one per record made only
to merge half of them away (at a million records, closing those took 19 s of a 292 s run,
besides their load).

It does not match: the initial load creates one identity per record, and the batch pipeline
de-duplicates the loaded population afterwards (the same scorer and rules over every
candidate pair, in bulk; a lookup per record would take hours at a million records).
Lookups after the load see every loaded record as a candidate.

Why it is fast: record ids and golden numbers come from ranges reserved on their sequences
(`setval`), so nothing is read back; the COPY payload (PostgreSQL's text format) is built
column-wise with Arrow kernels, JSON included, while a writer thread streams it to the
server. The four tables are truncated in the loading transaction and loaded with
COPY FREEZE: rows are frozen and all-visible at once (no hint-bit rewrites, index-only
scans of the key index straight away, no vacuum to come); their indexes and the foreign keys
touching them are dropped before and rebuilt after, as a restore does, then the tables are
analysed (all but their JSONB documents, which no query filters on). It is all or nothing:
a failure leaves the database as it was (apart from the sequences, which never roll back).

Records a lookup would refuse (no name at all, no source system) are not loaded and are
counted as `rejected`; a value that cannot be normalised is dropped (lenient, as the file
CLI) and counted in `invalid_values`. A record sent twice (same source_system and
external_id) is one source record holding the later version, as two lookups would leave it
(`resent`). No `link_history` rows are written: a load is not a lookup, and the history of
a golden record starts at its first change.

Before anything is written, a sample of records is rebuilt through the single-record path
(`parse_record`, `record_features`, `key_strings`, `survive`) and compared with what the
load writes for them: the load refuses to run if they differ.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Engine

from medmatch.collector import collector_paused
from medmatch.config import get_settings
from medmatch.data import clinical
from medmatch.data.features import TableFeatures, clean_column, record_features, table_features
from medmatch.data.fields import DEMOGRAPHIC_FIELDS
from medmatch.data.models import parse_record
from medmatch.errors import MedMatchError
from medmatch.matching.blocking import BLOCKING_KEYS, BlockingKey, DayMonthUnordered, KeyPart
from medmatch.matching.blocking import key_strings as row_key_strings
from medmatch.mpi import schema as t
from medmatch.mpi.database import libpq_url
from medmatch.mpi.domain import StoredRecord
from medmatch.mpi.survivorship import FIELDS, MULTI_VALUED, survive

Progress = Callable[[str, float], None]

TABLES = ("source_records", "blocking_keys", "golden_records", "record_links")
# Records per COPY batch: the server parses a batch while the next one is built, so the
# last batch is the only wait. About a tenth of the load, within these bounds (smaller
# batches cost more per record): at 100K records 10K-record batches took the COPY of
# source_records from 4.1 to 2.9 s against 50K; at 10K records, 2K batches 0.66 -> 0.45 s.
CHUNK_RANGE = (2_000, 10_000)
GOLDEN_FORMAT = "GR-%06d"
# Demographics fields whose value is a column of the `table_features` frame already
FROM_FEATURES = {
    "name_suffix": "name_suffix",
    "date_of_birth": "dob",
    "gender": "sex",
    "phone": "phone",
    "email": "email",
    "postal_code": "postal_code",
    "ssn": "ssn",
}
MEDICAL_KINDS = ("conditions", "medications")
NULL = pa.scalar(None, pa.string())


def load_records(
    engine_or_url: Engine | str,
    demographics: pd.DataFrame,
    medical: pd.DataFrame | None = None,
    *,
    progress: Progress | None = None,
    actor: str = "bulk_load",
    phone_region: str | None = None,
    defer_indexes: bool = True,
    verify_sample: int = 200,
    identities: bool = True,
    features: bool = False,
) -> dict[str, Any]:
    """Load `demographics` (and `medical`, joined on record_id) into an empty, migrated MPI.

    `demographics` has the file CLI's columns (record_id, source_system, external_id and the
    demographic fields); `medical` has record_id, conditions and medications. Each record
    becomes its own golden record (none, and no link, with `identities=False`): no matching
    (the batch pipeline de-duplicates later). `progress(stage, fraction)` is called as the
    load goes. Returns the counts (records, blocking_keys, golden_records, rejected, resent,
    invalid_values), the first record id and golden number used, and the timings in
    seconds; with `features`, also the feature rows written (an Arrow table: unique_id, the
    record's id as text, then the stored feature columns), in id order.
    """
    step = progress or (lambda _stage, _fraction: None)
    region = phone_region or get_settings().default_phone_region
    timings: dict[str, float] = {}
    started = time.perf_counter()

    step("normalise", 0.0)
    with collector_paused():  # as table_features: many objects, no cycles
        feats = table_features(demographics, medical, phone_region=region)
        rows = _Rows.build(demographics, medical, feats)
    timings["normalise_s"] = time.perf_counter() - started
    if verify_sample:
        t0 = time.perf_counter()
        _verify(rows, demographics, medical, region, verify_sample)
        timings["verify_s"] = time.perf_counter() - t0
    n = rows.count
    tables = sql.SQL(", ").join(map(sql.Identifier, TABLES))

    with _connect(engine_or_url) as conn:
        cur = conn.cursor()
        t0 = time.perf_counter()
        # sorts of the index builds and the foreign-key checks in memory, this transaction
        cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(tables))
        for table in ("source_records", "golden_records"):
            query = sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(table))
            if _one(cur.execute(query)):
                raise MedMatchError(f"a bulk load needs an empty MPI: {table} has rows")
        first_id = _reserve(cur, sql.SQL("pg_get_serial_sequence('source_records', 'id')"), n)
        first_golden = _reserve(cur, sql.Literal(t.GOLDEN_NUMBER.name), n if identities else 0)
        rebuild = drop_indexes(cur) if defer_indexes else []
        _truncate(cur)  # what lets COPY FREEZE
        timings["prepare_s"] = time.perf_counter() - t0

        def ids(s: slice) -> pa.Array:
            return pa.array(np.arange(first_id + s.start, first_id + s.stop)).cast(pa.string())

        def goldens(s: slice) -> pa.Array:
            return pa.array(
                [GOLDEN_FORMAT % g for g in range(first_golden + s.start, first_golden + s.stop)]
            )

        copies: tuple[tuple[str, str, Callable[[slice], list[pa.Array]]], ...] = (
            (
                "source_records",
                "id, source_system, external_id, demographics, medical_data, features",
                lambda s: [rows.source_lines(s, ids(s))],
            ),
            ("blocking_keys", "key, source_record_id", lambda s: rows.key_lines(s, ids(s))),
            (
                "golden_records",
                "golden_id, demographics, medical_data, source_count",
                lambda s: [rows.golden_lines(s, ids(s), goldens(s))],
            ),
            (
                "record_links",
                "source_record_id, golden_id, link_type, linked_by",
                lambda s: [_link_lines(ids(s), goldens(s), actor)],
            ),
        )
        if not identities:
            copies = copies[:2]  # source_records and blocking_keys
        counts = {"golden_records": 0}
        for i, (table, columns, lines) in enumerate(copies):
            step(f"copy {table}", 0.1 + 0.6 * i / len(copies))
            t0 = time.perf_counter()
            counts[table] = _copy(cur, table, columns, n, lines)
            timings[f"copy_{table}_s"] = time.perf_counter() - t0
        step("indexes", 0.7)
        t0 = time.perf_counter()
        for statement in rebuild:
            cur.execute(statement)
        timings["indexes_s"] = time.perf_counter() - t0
        step("analyze", 0.9)
        t0 = time.perf_counter()
        analyze_without_documents(cur, TABLES)
        timings["analyze_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.commit()
        timings["commit_s"] = time.perf_counter() - t0

    timings["total_s"] = time.perf_counter() - started
    step("done", 1.0)
    written = (
        {"features": pa.table({"unique_id": ids(slice(0, n)), **rows.features})} if features else {}
    )
    return written | {
        "records": n,
        "blocking_keys": counts["blocking_keys"],
        "golden_records": counts["golden_records"],
        "rejected": rows.rejected,
        "resent": rows.resent,
        "invalid_values": dict(feats.warning_counts),
        "first_source_record_id": first_id if n else None,
        "first_golden_number": first_golden if n and identities else None,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


# -- the database side -------------------------------------------------------------------
def _connect(engine_or_url: Engine | str) -> psycopg.Connection:
    """Its own connection (not the pool's): the load is one long transaction."""
    if isinstance(engine_or_url, Engine):
        url = engine_or_url.url.render_as_string(hide_password=False)
    else:
        url = str(engine_or_url)
    return psycopg.connect(libpq_url(url))


def _one(cur: psycopg.Cursor) -> Any:
    row = cur.fetchone()
    assert row is not None
    return row[0]


def _reserve(cur: psycopg.Cursor, sequence: sql.Composable, n: int) -> int:
    """The first of `n` consecutive numbers taken from `sequence` (tables locked meanwhile,
    so no insert draws from it in between)."""
    if n == 0:
        return 0
    first = int(_one(cur.execute(sql.SQL("SELECT nextval({})").format(sequence))))
    if n > 1:
        cur.execute(sql.SQL("SELECT setval({}, %s)").format(sequence), (first + n - 1,))
    return first


def _truncate(cur: psycopg.Cursor) -> None:
    """Truncate the loaded tables, and the (empty) tables whose foreign keys point at them
    if any is left: TRUNCATE wants them in the same statement."""
    truncated = set(TABLES)
    while True:
        referencing = cur.execute(
            """SELECT DISTINCT conrelid::regclass::text FROM pg_constraint
               WHERE contype = 'f' AND confrelid = ANY(%s::regclass[])""",
            (sorted(truncated),),
        ).fetchall()
        more = {r[0] for r in referencing} - truncated
        if not more:
            break
        for table in sorted(more):
            if _one(cur.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.SQL(table)))):
                raise MedMatchError(f"a bulk load needs an empty MPI: {table} has rows")
        truncated |= more
    cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.SQL, sorted(truncated)))))


def analyze_without_documents(cur: psycopg.Cursor, names: Sequence[str]) -> None:
    """ANALYZE the tables' columns but their JSONB documents. Queries filter, join and sort
    on ids, keys and times, never on a document's contents, while the documents were most of
    ANALYZE's work: source_records took 0.94 s with them and 0.19 s without, at 100K (its
    sample is 30K rows at any size)."""
    rows = cur.execute(
        """SELECT attrelid::regclass::text, array_agg(attname::text ORDER BY attnum)
           FROM pg_attribute
           WHERE attrelid = ANY(%s::regclass[]) AND attnum > 0 AND NOT attisdropped
             AND atttypid <> 'jsonb'::regtype
           GROUP BY attrelid ORDER BY 1""",
        (list(names),),
    ).fetchall()
    targets = [
        sql.SQL("{} ({})").format(sql.SQL(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        for table, columns in rows
    ]
    if targets:
        cur.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(targets)))


def drop_indexes(cur: psycopg.Cursor, names: Sequence[str] = TABLES) -> list[sql.Composable]:
    """Drop the tables' indexes and every foreign key touching them; return the statements
    that recreate them in order: keys, other indexes, foreign keys. Filling a table and then
    building its indexes and checking its foreign keys in one pass each is several times
    faster than maintaining them row by row (a row's foreign-key check locks the row it
    references)."""
    tables = {"t": list(names)}
    fks = cur.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint
           WHERE contype = 'f'
             AND (conrelid = ANY(%(t)s::regclass[]) OR confrelid = ANY(%(t)s::regclass[]))
           ORDER BY 1, 2""",
        tables,
    ).fetchall()
    keys = cur.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint
           WHERE contype IN ('p', 'u', 'x') AND conrelid = ANY(%(t)s::regclass[])
           ORDER BY 1, 2""",
        tables,
    ).fetchall()
    indexes = cur.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i
           WHERE i.indrelid = ANY(%(t)s::regclass[])
             AND NOT EXISTS (SELECT FROM pg_constraint c
                             WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                               AND c.contype IN ('p', 'u', 'x'))
           ORDER BY 1""",
        tables,
    ).fetchall()

    def constraint(table: str, verb: str, name: str, definition: str = "") -> sql.Composable:
        return sql.SQL("ALTER TABLE {} {} CONSTRAINT {} {}").format(
            sql.SQL(table), sql.SQL(verb), sql.Identifier(name), sql.SQL(definition)
        )

    for table, name, _ in fks + keys:
        cur.execute(constraint(table, "DROP", name))
    for index, _ in indexes:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(index)))
    return (
        [constraint(table, "ADD", name, d) for table, name, d in keys]
        + [sql.SQL(d) for _, d in indexes]
        + [constraint(table, "ADD", name, d) for table, name, d in fks]
    )


def _copy(
    cur: psycopg.Cursor,
    table: str,
    columns: str,
    n: int,
    lines: Callable[[slice], list[pa.Array]],
) -> int:
    """COPY ... FREEZE in the text format, in batches of records; rows written."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
        sql.Identifier(table), sql.SQL(columns)
    )
    written = 0
    chunk = min(max(n // 10, CHUNK_RANGE[0]), CHUNK_RANGE[1])
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for start in range(0, n, chunk):
            for array in lines(slice(start, min(start + chunk, n))):
                written += len(array)
                for block in _buffers(array):
                    copy.write(block)
    return written


def _buffers(lines: pa.Array) -> Iterator[memoryview]:
    """The bytes of a string array of whole lines, as they lie in its buffer (no copy)."""
    if len(lines) == 0:
        return
    if lines.null_count:  # pragma: no cover - every line is made of non-null parts
        raise MedMatchError("bulk load: an empty COPY line")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    offsets = offsets[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(lines.buffers()[2])  # type: ignore[arg-type]
    yield data[int(offsets[0]) : int(offsets[-1])]


# -- the payload, column-wise ------------------------------------------------------------
# Only the default null handling of binary_join_element_wise is used: "skip" drops the rows
# whose parts are all null (pyarrow 26), so absent parts become "" explicitly instead.


def _concat(*parts: Any) -> pa.Array:
    """Element-wise concatenation; null where any part is null."""
    return pc.binary_join_element_wise(*parts, "")


def _json_string(values: pa.Array) -> pa.Array:
    """JSON string literals (null stays null)."""
    if not len(values) or not pc.any(pc.match_substring_regex(values, _TO_ESCAPE)).as_py():
        return _concat('"', values, '"')  # most columns: nothing to escape
    if pc.any(pc.match_substring_regex(values, "[\\x00-\\x1f]")).as_py():
        # control characters need \\u escapes: rare, so the plain way
        return pa.array([None if v is None else json.dumps(v) for v in values.to_pylist()])
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return _concat('"', escaped, '"')


_TO_ESCAPE = '[\\x00-\\x1f"\\\\]'  # what a JSON string literal escapes


def _relist(like: pa.Array, values: pa.Array) -> pa.Array:
    """`values` (one per element of the list column `like`) back into like's lists."""
    lengths = pc.fill_null(pc.list_value_length(like), 0).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    mask = like.is_null() if like.null_count else None
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def _json_list(values: pa.Array) -> pa.Array:
    """JSON arrays of a list<string> column (a null list stays null)."""
    items = pc.coalesce(_json_string(pc.list_flatten(values)), "null")
    return _concat("[", pc.binary_join(_relist(values, items), ","), "]")


def _object(fields: Sequence[tuple[str, pa.Array]], *, nulls: bool) -> pa.Array:
    """JSON objects from (key, JSON value) columns; a null value is written as `null` when
    `nulls`, else its key is left out (model_dump's exclude_none)."""
    if nulls:  # every key present: the whole object is one concatenation
        pieces: list[Any] = ["{"]
        for i, (key, value) in enumerate(fields):
            pieces += [("," if i else "") + json.dumps(key) + ":", pc.coalesce(value, "null")]
        return _concat(*pieces, "}")
    # each present member with a leading comma ("" when absent), the first comma dropped:
    # one pass per field and three in all (Arrow's string kernels dominate a load's COPY)
    members = [pc.coalesce(_concat("," + json.dumps(key) + ":", v), "") for key, v in fields]
    joined = _concat(*members) if len(members) > 1 else members[0]
    return _concat("{", pc.utf8_slice_codeunits(joined, 1), "}")


def _copy_text(values: pa.Array, null: str | None = "\\N") -> pa.Array:
    """A text column in COPY's text format: backslash, tab, newline and CR escaped."""
    out = pc.replace_substring(values, "\\", "\\\\")
    for char, escape in (("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        out = pc.replace_substring(out, char, escape)
    return out if null is None else pc.coalesce(out, null)


def _copy_json(json_text: pa.Array) -> pa.Array:
    """JSON in COPY's text format: JSON holds no raw tab or newline, only the backslashes of
    its escapes need doubling. Most loads have none: a search is a third of a replace."""
    if not pc.any(pc.match_substring(json_text, "\\")).as_py():
        return json_text
    return pc.replace_substring(json_text, "\\", "\\\\")


def _lines(columns: Sequence[Any]) -> pa.Array:
    """COPY lines; null where a column is null (key lines: the record has no such key)."""
    return _concat(pc.binary_join_element_wise(*columns, "\t"), "\n")


def _blank_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), NULL, values)


class _Rows:
    """The records to load, as Arrow columns in input order: the Demographics values, the
    medical terms and the feature row."""

    demo: dict[str, pa.Array]
    terms: dict[str, pa.Array]
    repeated_terms: np.ndarray  # records that name one term twice
    features: dict[str, pa.Array]
    source_system: pa.Array
    external_id: pa.Array
    positions: np.ndarray  # their rows in the input
    count: int
    rejected: int
    resent: int

    @classmethod
    def build(
        cls,
        demographics: pd.DataFrame,
        medical: pd.DataFrame | None,
        feats: TableFeatures,
    ) -> _Rows:
        self = cls()
        frame = feats.frame
        # normalised by table_features already (a suffix sent inside a name split off)
        demo = {
            name: feats.fields[name] for name in DEMOGRAPHIC_FIELDS if name not in FROM_FEATURES
        }
        columns = {name: pa.array(values, pa.string()) for name, values in demo.items()}
        columns |= {name: _arrow(frame[col]) for name, col in FROM_FEATURES.items()}
        systems = [None if _missing(v) else str(v) for v in demographics["source_system"].tolist()]
        external = clean_column(demographics, "external_id")

        firsts, lasts = demo["name_first"], demo["name_last"]
        named = np.fromiter(
            (a is not None or b is not None for a, b in zip(firsts, lasts, strict=True)),
            bool,
            len(demographics),
        )
        valid = named & np.fromiter((bool(s) for s in systems), bool, len(systems))
        identity = pd.DataFrame({"s": systems, "e": external})[valid]
        resent = (identity["e"].notna() & identity.duplicated(keep="last")).to_numpy()
        keep = np.flatnonzero(valid)[~resent]
        self.rejected = int(len(demographics) - valid.sum())
        self.resent = int(resent.sum())
        self.count = len(keep)
        self.positions = keep

        take = pa.array(keep, pa.int64())
        self.demo = {name: columns[name].take(take) for name in DEMOGRAPHIC_FIELDS}
        self.source_system = pa.array(systems, pa.string()).take(take)
        self.external_id = pa.array(external, pa.string()).take(take)
        self.features = {
            name: _arrow(frame[name]).take(take) for name in frame.columns if name != "unique_id"
        }
        record_ids = [str(v) for v in demographics["record_id"].tolist()]
        self.terms, self.repeated_terms = _medical_terms([record_ids[i] for i in keep], medical)
        return self

    def subset(self, indices: Sequence[int]) -> _Rows:
        """These records only (the check rebuilds a sample)."""
        take = pa.array(indices, pa.int64())
        out = _Rows()
        out.demo = {k: v.take(take) for k, v in self.demo.items()}
        out.terms = {k: v.take(take) for k, v in self.terms.items()}
        out.repeated_terms = self.repeated_terms[list(indices)]
        out.features = {k: v.take(take) for k, v in self.features.items()}
        out.source_system = self.source_system.take(take)
        out.external_id = self.external_id.take(take)
        out.positions = self.positions[list(indices)]
        out.count, out.rejected, out.resent = len(indices), 0, 0
        return out

    # -- source_records ------------------------------------------------------------------
    def source_lines(self, s: slice, ids: pa.Array) -> pa.Array:
        return _lines(
            [
                ids,
                _copy_text(self.source_system[s]),
                _copy_text(self.external_id[s]),
                _copy_json(self.demographics_json(s)),
                _copy_json(self.medical_json(s)),
                _copy_json(self.features_json(s)),
            ]
        )

    def demographics_json(self, s: slice) -> pa.Array:
        """Demographics.model_dump(mode="json", exclude_none=True)."""
        fields = [(name, _json_string(self.demo[name][s])) for name in DEMOGRAPHIC_FIELDS]
        return _object(fields, nulls=False)

    def medical_json(self, s: slice) -> pa.Array:
        """MedicalData.model_dump(mode="json"): both lists, empty when nothing was sent."""
        return _object([(k, _json_list(self.terms[k][s])) for k in MEDICAL_KINDS], nulls=True)

    def features_json(self, s: slice) -> pa.Array:
        """The feature row without unique_id, every key present (null when missing)."""
        fields = []
        for name, column in self.features.items():
            part = column[s]
            fields.append(
                (name, _json_list(part) if pa.types.is_list(part.type) else _json_string(part))
            )
        return _object(fields, nulls=True)

    # -- golden_records ------------------------------------------------------------------
    def golden_lines(self, s: slice, ids: pa.Array, goldens: pa.Array) -> pa.Array:
        return _lines(
            [
                _copy_text(goldens),
                _copy_json(self.golden_demographics_json(s)),
                _copy_json(self.golden_medical_json(s, ids)),
                "1",
            ]
        )

    def golden_demographics_json(self, s: slice) -> pa.Array:
        """survive() of one record: its present (non-empty) values, and its phone and
        address also as the lists of every distinct one."""
        present = {name: _json_string(_blank_to_null(self.demo[name][s])) for name in FIELDS}
        fields = [(name, present[name]) for name in FIELDS]
        fields += [
            (plural, _concat("[", present[name], "]")) for name, plural in MULTI_VALUED.items()
        ]
        return _object(fields, nulls=False)

    def golden_medical_json(self, s: slice, ids: pa.Array) -> pa.Array:
        """survive()'s medical union of one record: each term with [the record's id]."""
        kinds = []
        for kind in MEDICAL_KINDS:
            terms = self.terms[kind][s]
            owner = pc.take(ids, pc.list_parent_indices(terms))
            entries = _concat(
                '{"term":',
                _json_string(pc.list_flatten(terms)),
                ',"source_record_ids":[',
                owner,
                "]}",
            )
            value = _concat("[", pc.binary_join(_relist(terms, entries), ","), "]")
            empty = pc.equal(pc.list_value_length(terms), 0)
            kinds.append((kind, pc.if_else(empty, NULL, value)))
        out = _object(kinds, nulls=False)
        repeated = np.flatnonzero(self.repeated_terms[s])
        if len(repeated):  # one term twice in a record: survive() itself says what it keeps
            values = out.to_pylist()
            for i in repeated:
                medical_data = {kind: self.terms[kind][s][i].as_py() for kind in MEDICAL_KINDS}
                record = StoredRecord(int(ids[i].as_py()), "", None, {}, medical_data, {})
                values[i] = json.dumps(survive([record])[1])
            out = pa.array(values, pa.string())
        return out

    # -- blocking_keys -------------------------------------------------------------------
    def key_columns(self, s: slice) -> list[pa.Array]:
        """Per blocking key, the records' key strings (null: the record has none)."""
        return [_key_column(key, self.features, s) for key in BLOCKING_KEYS]

    def key_lines(self, s: slice, ids: pa.Array) -> list[pa.Array]:
        out, seen = [], set()
        for key, column in zip(BLOCKING_KEYS, self.key_columns(s), strict=True):
            if key.name not in seen:  # a key listed twice would give the same rows twice
                seen.add(key.name)
                out.append(pc.drop_null(_lines([_copy_text(column, null=None), ids])))
        return out


def _link_lines(ids: pa.Array, goldens: pa.Array, actor: str) -> pa.Array:
    actor_text = _copy_text(pa.array([actor]))[0].as_py()
    return _lines([ids, _copy_text(goldens), "new_identity", actor_text])


def _part_column(part: KeyPart, features: dict[str, pa.Array], s: slice) -> pa.Array | None:
    """KeyPart.value, column-wise; None for a kind of part this code does not know."""
    if part.column not in features:
        return pa.nulls(s.stop - s.start, pa.string())
    column = _blank_to_null(features[part.column][s])
    if type(part) is DayMonthUnordered:
        month = pc.utf8_slice_codeunits(column, 5, 7)
        day = pc.utf8_slice_codeunits(column, 8, 10)
        either = pc.if_else(pc.less_equal(month, day), _concat(month, day), _concat(day, month))
        return _blank_to_null(either)
    if type(part) is not KeyPart:
        return None
    if part.length is None:
        return column
    start = part.start - 1
    return _blank_to_null(pc.utf8_slice_codeunits(column, start, start + part.length))


def _key_column(key: BlockingKey, features: dict[str, pa.Array], s: slice) -> pa.Array:
    parts = [_part_column(p, features, s) for p in key.parts]
    if any(p is None for p in parts):  # an unknown kind of part: it says, row by row
        columns = list(features)
        rows = zip(*(features[c][s].to_pylist() for c in columns), strict=True)
        return pa.array([key.value(dict(zip(columns, r, strict=True))) for r in rows], pa.string())
    return _concat(key.name + ":", pc.binary_join_element_wise(*parts, "|"))


# -- input columns -----------------------------------------------------------------------
def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _arrow(series: pd.Series) -> pa.Array:
    if hasattr(series.array, "__arrow_array__"):
        array = series.array.__arrow_array__()
        return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return pa.array(series.tolist())  # pragma: no cover - table_features makes Arrow columns


def _medical_terms(
    record_ids: list[str], medical: pd.DataFrame | None
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """MedicalData's term lists of each record ([] when it sent none), and which records
    name one term twice."""
    n = len(record_ids)
    repeated = np.zeros(n, dtype=bool)
    if medical is None or medical.empty:
        empty = pa.array([[]] * n, pa.list_(pa.string()))
        return dict.fromkeys(MEDICAL_KINDS, empty), repeated
    medical = medical.assign(record_id=medical["record_id"].astype(str))
    medical = medical.drop_duplicates("record_id", keep="last")  # a later row of a record wins
    row_of = pd.Index(medical["record_id"]).get_indexer(record_ids)  # -1: no medical row
    out = {}
    for kind in MEDICAL_KINDS:
        codes, texts = pd.factorize(pd.Series(clean_column(medical, kind), dtype=object))
        lists = [clinical.split_terms(text) for text in texts] + [[]]  # the last: no text
        twice = np.array([len(set(x)) != len(x) for x in lists], dtype=bool)
        codes = np.where(codes < 0, len(texts), codes)
        per_record = np.where(row_of < 0, len(texts), codes[row_of])
        out[kind] = pa.array(lists, pa.list_(pa.string())).take(pa.array(per_record))
        repeated |= twice[per_record]
    return out, repeated


# -- the check ---------------------------------------------------------------------------
_COPY_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def _from_copy_text(field: str) -> str | None:
    """A field of a COPY text line, as the server reads it."""
    if field == "\\N":
        return None
    return re.sub(r"\\(.)", lambda m: _COPY_ESCAPES.get(m.group(1), m.group(1)), field)


def _from_copy(field: str) -> Any:
    return json.loads(_from_copy_text(field) or "null")


def _verify(
    rows: _Rows,
    demographics: pd.DataFrame,
    medical: pd.DataFrame | None,
    region: str,
    sample: int,
) -> None:
    """Rebuild a sample through the single-record path; raise if the load would differ."""
    if rows.count == 0:
        return
    picked = sorted(random.Random(rows.count).sample(range(rows.count), min(sample, rows.count)))
    few = rows.subset(picked)
    everything = slice(0, few.count)
    ids = pa.array([str(i + 1) for i in range(few.count)])
    lines = few.source_lines(everything, ids).to_pylist()
    golden_lines = few.golden_lines(everything, ids, pa.array(["GR-x"] * few.count)).to_pylist()
    key_columns = [c.to_pylist() for c in few.key_columns(everything)]
    inputs = demographics.iloc[few.positions]
    medical_rows: dict[str, dict[str, Any]] = {}
    if medical is not None and not medical.empty:
        wanted = set(inputs["record_id"].astype(str))
        for row in medical[medical["record_id"].astype(str).isin(wanted)].to_dict("records"):
            medical_rows[str(row["record_id"])] = row
    for i, raw in enumerate(inputs.to_dict("records")):
        raw = {k: None if _missing(v) else v for k, v in raw.items()}
        body = {k: raw.pop(k, None) for k in ("record_id", "source_system", "external_id")}
        med = medical_rows.get(str(body["record_id"]), {})
        body |= {
            "demographics": raw,
            "medical_data": {k: None if _missing(med.get(k)) else med[k] for k in MEDICAL_KINDS},
        }
        record, _ = parse_record(body, lenient=True, phone_region=region)
        demo = record.demographics.model_dump(mode="json", exclude_none=True)
        medical_data = record.medical_data.model_dump(mode="json")
        feats = record_features(record)
        keys = sorted(row_key_strings(feats))
        del feats["unique_id"]
        stored = StoredRecord(i + 1, record.source_system, None, demo, medical_data, feats)
        golden = survive([stored])

        line = lines[i].rstrip("\n").split("\t")
        golden_line = golden_lines[i].rstrip("\n").split("\t")
        identity = [_from_copy_text(v) for v in line[1:3]]
        loaded_keys = sorted(c[i] for c in key_columns if c[i] is not None)
        for what, expected, actual in (
            ("source identity", [record.source_system, record.external_id], identity),
            ("demographics", demo, _from_copy(line[3])),
            ("medical_data", medical_data, _from_copy(line[4])),
            ("features", feats, _from_copy(line[5])),
            ("blocking keys", keys, loaded_keys),
            ("golden demographics", golden[0], _from_copy(golden_line[1])),
            ("golden medical_data", golden[1], _from_copy(golden_line[2])),
        ):
            if expected != actual:
                raise MedMatchError(
                    f"bulk load: the {what} of input row {few.positions[i]} would differ from "
                    "what a lookup stores"
                )
