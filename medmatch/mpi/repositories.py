"""PostgreSQL adapters of the repositories (`base.py`), over one SQLAlchemy session.

The statements of the real-time lookup are built once, at import, as SQLAlchemy Core
statements on the tables, compiled once and run on the session's own psycopg connection
(`statements.py`): building an ORM statement per call, and SQLAlchemy's execution path,
cost more than the database did. Lists travel as one array parameter (`= ANY(:ids)`,
`unnest(...)`), so each statement has one SQL text and psycopg prepares it once per
connection. No ORM object is ever added to the session: nothing waits for a flush.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    any_,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.orm import Session

from medmatch.errors import ConflictError, NotFoundError
from medmatch.mpi import base
from medmatch.mpi import schema as t
from medmatch.mpi.database import json_text
from medmatch.mpi.domain import (
    MATCH_ENTRY_FIELDS,
    Candidate,
    Change,
    Golden,
    Link,
    MatchEntry,
    Review,
    StoredRecord,
    ordered,
)
from medmatch.mpi.statements import Statement, execute

_SOURCE = t.SourceRecord.__table__
_LINK = t.RecordLink.__table__
_KEY = t.BlockingKey.__table__
_GOLDEN = t.GoldenRecord.__table__
_MATCH = t.MatchResult.__table__
_HISTORY = t.LinkChange.__table__
_REVIEW = t.ReviewItem.__table__
_CONSTRAINT = t.MatchConstraint.__table__
_IDS = ARRAY(BigInteger)

_RECORD_COLUMNS = (
    _SOURCE.c.id,
    _SOURCE.c.source_system,
    _SOURCE.c.external_id,
    _SOURCE.c.demographics,
    _SOURCE.c.medical_data,
    _SOURCE.c.features,
    _LINK.c.golden_id,
    _SOURCE.c.received_at,
    _SOURCE.c.updated_at,
)
_RECORDS = select(*_RECORD_COLUMNS).select_from(
    _SOURCE.outerjoin(_LINK, _LINK.c.source_record_id == _SOURCE.c.id)
)
_GET_RECORD = _RECORDS.where(_SOURCE.c.id == bindparam("id"))
_FIND_RECORD = _RECORDS.where(
    _SOURCE.c.source_system == bindparam("source_system"),
    _SOURCE.c.external_id == bindparam("external_id"),
)
_GET_RECORDS = _RECORDS.where(_SOURCE.c.id == any_(bindparam("ids", type_=_IDS))).order_by(
    _SOURCE.c.id
)
_RECORDS_OF_GOLDEN = _RECORDS.where(_LINK.c.golden_id == bindparam("golden_id")).order_by(
    _SOURCE.c.id
)


def _record_upsert(*, only_if_changed: bool):  # type: ignore[no-untyped-def]
    """INSERT of a source record; a re-send of its source identity updates the row (or,
    `only_if_changed`, leaves a row holding the same demographics and medical data alone
    and returns nothing). Returns id, times, whether it is new and its golden_id."""
    stmt = insert(_SOURCE).values(
        {
            c: bindparam(c, type_=_SOURCE.c[c].type)
            for c in ("source_system", "external_id", "demographics", "medical_data", "features")
        }
    )
    changed = or_(
        _SOURCE.c.demographics.is_distinct_from(stmt.excluded.demographics),
        _SOURCE.c.medical_data.is_distinct_from(stmt.excluded.medical_data),
    )
    stmt = stmt.on_conflict_do_update(
        constraint="uq_source_records_source_identity",
        set_={
            "demographics": stmt.excluded.demographics,
            "medical_data": stmt.excluded.medical_data,
            "features": stmt.excluded.features,
            "updated_at": func.now(),
        },
        where=changed if only_if_changed else None,
    )
    # Core would not correlate a subquery in RETURNING with the inserted row: spelt out
    golden_id = literal_column(
        "(SELECT golden_id FROM record_links WHERE source_record_id = source_records.id)"
    )
    # xmax = 0 only on a row this statement inserted: tells a new record from a re-send
    return stmt.returning(
        _SOURCE.c.id,
        _SOURCE.c.received_at,
        _SOURCE.c.updated_at,
        literal_column("xmax = 0").label("created"),
        golden_id.label("golden_id"),
    )


_UPSERT_RECORD = _record_upsert(only_if_changed=False)
_UPSERT_CHANGED_RECORD = _record_upsert(only_if_changed=True)
_DROP_KEYS = delete(_KEY).where(_KEY.c.source_record_id == bindparam("id"))
_ADD_KEYS = text(
    "INSERT INTO blocking_keys (key, source_record_id)"
    " SELECT k, :id FROM unnest(CAST(:keys AS text[])) AS k ON CONFLICT DO NOTHING"
)


def _candidates(exclude: Any):  # type: ignore[no-untyped-def]
    """The records sharing a key with :keys, but `exclude`: the lowest :limit ids. A
    candidate is scored on its feature row: its demographics and medical data stay put."""
    ids = (
        select(_KEY.c.source_record_id)
        .where(
            _KEY.c.key == any_(bindparam("keys", type_=ARRAY(Text))),
            _KEY.c.source_record_id != exclude,
        )
        .distinct()
        .order_by(_KEY.c.source_record_id)
        .limit(bindparam("limit", type_=Integer))
        .scalar_subquery()
    )
    return (
        select(_SOURCE.c.id, _SOURCE.c.features, _LINK.c.golden_id)
        .select_from(_SOURCE.outerjoin(_LINK, _LINK.c.source_record_id == _SOURCE.c.id))
        .where(_SOURCE.c.id.in_(ids))
    )


_CANDIDATES = _candidates(bindparam("exclude")).order_by(_SOURCE.c.id)


def _store_and_search():  # type: ignore[no-untyped-def]
    """The lookup's first round trip: the upsert of the record (nothing when a re-send is
    unchanged), a new record's blocking keys, and the candidates. One row per candidate,
    each carrying the stored record's columns; one row with no candidate when none is found;
    no row for an unchanged re-send. All parts share one snapshot: the candidates are the
    records committed before the statement (the lookup's advisory locks were taken before)."""
    stored = _UPSERT_CHANGED_RECORD.cte("stored")
    new_keys = (
        insert(_KEY)
        .from_select(
            ["key", "source_record_id"],
            select(func.unnest(bindparam("keys", type_=ARRAY(Text))), stored.c.id).where(
                stored.c.created
            ),
        )
        .on_conflict_do_nothing()
        .cte("new_keys")
    )
    found = _candidates(select(stored.c.id).scalar_subquery()).cte("found")
    return (
        select(
            stored.c.id,
            stored.c.received_at,
            stored.c.updated_at,
            stored.c.created,
            stored.c.golden_id,
            found.c.id.label("candidate_id"),
            found.c.features.label("candidate_features"),
            found.c.golden_id.label("candidate_golden_id"),
        )
        .select_from(stored.outerjoin(found, literal_column("true")))
        .order_by(found.c.id)
        .add_cte(new_keys)
    )


_STORE_AND_SEARCH = _store_and_search()


def _scalar(rows: Any) -> Any:
    """The first column of the first row, or None when there is no row."""
    row = rows.fetchone()
    return row[0] if row is not None else None


def _record(row: Any) -> StoredRecord:
    record = StoredRecord(*row)
    record.features = record.features | {"unique_id": str(record.id)}
    return record


def _stored_record(
    row: Any,
    source_system: str,
    external_id: str | None,
    demographics: dict[str, Any],
    medical_data: dict[str, Any],
    features: dict[str, Any],
) -> tuple[StoredRecord, bool]:
    """The record an upsert stored, from the (id, received_at, updated_at, created,
    golden_id) it returned first and the values it was given: no second read."""
    record_id, received, updated, created, golden_id = row[:5]
    record = StoredRecord(
        record_id,
        source_system,
        external_id,
        demographics,
        medical_data,
        features | {"unique_id": str(record_id)},
        golden_id,
        received,
        updated,
    )
    return record, created


class SqlSourceRecords(base.SourceRecordRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def _run(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> Any:
        return execute(self.session, stmt, params)

    def upsert(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
    ) -> tuple[StoredRecord, bool]:
        stored = self._store(
            _UPSERT_RECORD, source_system, external_id, demographics, medical_data, features
        )
        assert stored is not None  # this statement always returns its row
        return stored

    def upsert_if_changed(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
    ) -> tuple[StoredRecord, bool] | None:
        return self._store(
            _UPSERT_CHANGED_RECORD, source_system, external_id, demographics, medical_data, features
        )

    def _store(
        self,
        stmt: Any,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
    ) -> tuple[StoredRecord, bool] | None:
        # without external_id nothing conflicts: every call inserts a new record
        stored = {k: v for k, v in features.items() if k != "unique_id"}
        row = self._run(
            stmt,
            {
                "source_system": source_system,
                "external_id": external_id,
                "demographics": demographics,
                "medical_data": medical_data,
                "features": stored,
            },
        ).fetchone()
        if row is None:
            return None
        record, created = _stored_record(
            row, source_system, external_id, demographics, medical_data, stored
        )
        return record, created

    def store_and_search(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
        keys: Iterable[str],
        limit: int,
    ) -> tuple[StoredRecord, bool, list[Candidate]] | None:
        stored = {k: v for k, v in features.items() if k != "unique_id"}
        rows = self._run(
            _STORE_AND_SEARCH,
            {
                "source_system": source_system,
                "external_id": external_id,
                "demographics": demographics,
                "medical_data": medical_data,
                "features": stored,
                "keys": sorted(set(keys)),
                "limit": limit,
            },
        ).fetchall()
        if not rows:
            return None
        record, created = _stored_record(
            rows[0], source_system, external_id, demographics, medical_data, stored
        )
        candidates = [
            Candidate(row[5], row[6] | {"unique_id": str(row[5])}, row[7])
            for row in rows
            if row[5] is not None
        ]
        return record, created, candidates

    def get(self, record_id: int) -> StoredRecord | None:
        row = self._run(_GET_RECORD, {"id": record_id}).fetchone()
        return _record(row) if row else None

    def find(self, source_system: str, external_id: str) -> StoredRecord | None:
        row = self._run(
            _FIND_RECORD, {"source_system": source_system, "external_id": external_id}
        ).fetchone()
        return _record(row) if row else None

    def get_many(self, record_ids: Iterable[int]) -> list[StoredRecord]:
        ids = sorted(set(record_ids))
        if not ids:
            return []
        return [_record(r) for r in self._run(_GET_RECORDS, {"ids": ids})]

    def linked_to(self, golden_id: str) -> list[StoredRecord]:
        return [_record(r) for r in self._run(_RECORDS_OF_GOLDEN, {"golden_id": golden_id})]

    def replace_keys(self, record_id: int, keys: Iterable[str], *, new: bool = False) -> None:
        if not new:  # a new record has no keys to drop
            self._run(_DROP_KEYS, {"id": record_id})
        unique = sorted(set(keys))
        if unique:
            self._run(_ADD_KEYS, {"id": record_id, "keys": unique})

    def candidates(self, keys: Iterable[str], exclude: int, limit: int) -> list[Candidate]:
        keys = list(keys)
        if not keys:
            return []
        rows = self._run(_CANDIDATES, {"keys": keys, "exclude": exclude, "limit": limit})
        return [
            Candidate(record_id, features | {"unique_id": str(record_id)}, golden_id)
            for record_id, features, golden_id in rows
        ]


_GOLDEN_COLUMNS = (
    _GOLDEN.c.golden_id,
    _GOLDEN.c.status,
    _GOLDEN.c.merged_into,
    _GOLDEN.c.demographics,
    _GOLDEN.c.medical_data,
    _GOLDEN.c.source_count,
    _GOLDEN.c.version,
)
_CREATE_GOLDEN = insert(_GOLDEN).values().returning(_GOLDEN.c.golden_id)
_GET_GOLDEN = select(*_GOLDEN_COLUMNS).where(_GOLDEN.c.golden_id == bindparam("golden_id"))
_GET_GOLDEN_FOR_UPDATE = _GET_GOLDEN.with_for_update()
_SAVE_GOLDEN = (
    update(_GOLDEN)
    .where(
        _GOLDEN.c.golden_id == bindparam("key"),
        # optimistic concurrency: a writer holding an older version loses
        _GOLDEN.c.version == bindparam("read_version"),
    )
    .values(
        status=bindparam("status"),
        merged_into=bindparam("merged_into"),
        demographics=bindparam("demographics", type_=JSONB),
        medical_data=bindparam("medical_data", type_=JSONB),
        source_count=bindparam("source_count"),
        version=_GOLDEN.c.version + 1,
        updated_at=func.now(),
    )
)
_LINK_FIELDS = ("golden_id", "link_type", "confidence", "match_result_id", "linked_by")
_OLD_LINK = (
    select(_LINK.c.golden_id)
    .where(_LINK.c.source_record_id == bindparam("source_record_id"))
    .with_for_update()
)
_UPSERT_LINK = insert(_LINK).values({f: bindparam(f) for f in ("source_record_id", *_LINK_FIELDS)})
_UPSERT_LINK = _UPSERT_LINK.on_conflict_do_update(
    index_elements=[_LINK.c.source_record_id],
    set_={f: _UPSERT_LINK.excluded[f] for f in _LINK_FIELDS} | {"linked_at": func.now()},
)
_LINK_OF = select(_LINK.c.source_record_id, *(_LINK.c[f] for f in _LINK_FIELDS)).where(
    _LINK.c.source_record_id == bindparam("id")
)
_SOURCES_OF = (
    select(_LINK.c.source_record_id)
    .where(_LINK.c.golden_id == bindparam("golden_id"))
    .order_by(_LINK.c.source_record_id)
)
_CHANGE_FIELDS = (
    "operation_id",
    "action",
    "actor",
    "source_record_id",
    "old_golden_id",
    "new_golden_id",
    "old_status",
    "match_result_id",
    "reason",
)
_RECORD_CHANGE = insert(_HISTORY).values({f: bindparam(f) for f in _CHANGE_FIELDS})
# a link change and its history row in one statement. The FOR UPDATE reads the latest link
# (as a SELECT ... FOR UPDATE of its own would); the link's INSERT reads old_link first, so
# the lock is held and the old golden_id read before the row is replaced (the sub-statements
# of a WITH otherwise run in no set order)
_MOVE_LINK_WITH = text(
    "WITH old_link AS (SELECT golden_id FROM record_links"
    " WHERE source_record_id = :source_record_id FOR UPDATE),"
    " new_link AS (INSERT INTO record_links"
    " (source_record_id, golden_id, link_type, confidence, match_result_id, linked_by)"
    " SELECT CAST(:source_record_id AS bigint), CAST(:golden_id AS text),"
    " CAST(:link_type AS text), CAST(:confidence AS float8), CAST(:match_result_id AS bigint),"
    " CAST(:linked_by AS text) FROM (SELECT count(*) FROM old_link) AS after_the_lock"
    " ON CONFLICT (source_record_id) DO UPDATE SET golden_id = excluded.golden_id,"
    " link_type = excluded.link_type, confidence = excluded.confidence,"
    " match_result_id = excluded.match_result_id, linked_by = excluded.linked_by,"
    " linked_at = now()),"
    " change AS (INSERT INTO link_history (operation_id, action, actor, source_record_id,"
    " old_golden_id, new_golden_id, old_status, match_result_id, reason)"
    " SELECT CAST(:change_operation_id AS text), CAST(:change_action AS text),"
    " CAST(:change_actor AS text), CAST(:change_source_record_id AS bigint),"
    " (SELECT golden_id FROM old_link), CAST(:change_new_golden_id AS text),"
    " CAST(:change_old_status AS text), CAST(:change_match_result_id AS bigint),"
    " CAST(:change_reason AS text))"
)
_MOVE_LINK = text(_MOVE_LINK_WITH.text + " SELECT golden_id FROM old_link")
# ... and the golden record it links to, read FOR UPDATE (its latest version, the lock held)
# for the rebuild of its survivorship that follows; no row when that golden record is gone
_MOVE_LINK_LOCKING = text(
    _MOVE_LINK_WITH.text
    + ", target AS (SELECT golden_id, status, merged_into, demographics, medical_data,"
    " source_count, version FROM golden_records WHERE golden_id = :golden_id FOR UPDATE)"
    " SELECT (SELECT golden_id FROM old_link), target.* FROM target"
)

# a new identity in one statement: the golden record with its survivorship, the record's
# first link and its history row. Version 2, as a create and a save leave it elsewhere (the
# file adapter, the contract): the version is the same token whichever path wrote the record
_CREATE_LINKED = text(
    "WITH golden AS (INSERT INTO golden_records"
    " (status, merged_into, demographics, medical_data, source_count, version)"
    " VALUES (CAST(:status AS text), CAST(:merged_into AS text), :demographics, :medical_data,"
    " CAST(:source_count AS integer), 2) RETURNING golden_id),"
    " new_link AS (INSERT INTO record_links"
    " (source_record_id, golden_id, link_type, confidence, match_result_id, linked_by)"
    " SELECT CAST(:source_record_id AS bigint), golden_id, CAST(:link_type AS text),"
    " CAST(:confidence AS float8), CAST(:match_result_id AS bigint), CAST(:linked_by AS text)"
    " FROM golden),"
    " change AS (INSERT INTO link_history (operation_id, action, actor, source_record_id,"
    " old_golden_id, new_golden_id, old_status, match_result_id, reason)"
    " SELECT CAST(:change_operation_id AS text), CAST(:change_action AS text),"
    " CAST(:change_actor AS text), CAST(:change_source_record_id AS bigint), NULL, golden_id,"
    " CAST(:change_old_status AS text), CAST(:change_match_result_id AS bigint),"
    " CAST(:change_reason AS text) FROM golden)"
    " SELECT golden_id FROM golden"
).bindparams(bindparam("demographics", type_=JSONB), bindparam("medical_data", type_=JSONB))


class SqlGoldenRecords(base.GoldenRecordRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def _run(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> Any:
        return execute(self.session, stmt, params)

    def create(self) -> Golden:
        return Golden(self._run(_CREATE_GOLDEN).fetchone()[0])

    def get(self, golden_id: str, *, for_update: bool = False) -> Golden | None:
        query = _GET_GOLDEN_FOR_UPDATE if for_update else _GET_GOLDEN
        row = self._run(query, {"golden_id": golden_id}).fetchone()
        return Golden(*row) if row else None

    def save(self, golden: Golden) -> None:
        result = self._run(
            _SAVE_GOLDEN,
            {
                "key": golden.golden_id,
                "read_version": golden.version,
                "status": golden.status,
                "merged_into": golden.merged_into,
                "demographics": golden.demographics,
                "medical_data": golden.medical_data,
                "source_count": golden.source_count,
            },
        )
        if result.rowcount != 1:
            raise ConflictError(
                f"golden record {golden.golden_id} changed since it was read (or is gone)"
            )
        golden.version += 1

    def set_link(self, link: Link) -> str | None:
        params = {"source_record_id": link.source_record_id} | {
            f: getattr(link, f) for f in _LINK_FIELDS
        }
        old = _scalar(self._run(_OLD_LINK, params))
        self._run(_UPSERT_LINK, params)
        return old

    def move_link(self, link: Link, change: Change) -> str | None:
        params = self._move_params(link, change)
        change.old_golden_id = _scalar(self._run(_MOVE_LINK, params))
        return change.old_golden_id

    @staticmethod
    def _move_params(link: Link, change: Change) -> dict[str, Any]:
        params = {"source_record_id": link.source_record_id} | {
            f: getattr(link, f) for f in _LINK_FIELDS
        }
        return params | {
            f"change_{f}": getattr(change, f) for f in _CHANGE_FIELDS if f != "old_golden_id"
        }

    def move_link_locking(self, link: Link, change: Change) -> tuple[str | None, Golden]:
        row = self._run(_MOVE_LINK_LOCKING, self._move_params(link, change)).fetchone()
        if row is None:
            raise NotFoundError("golden record", link.golden_id)
        change.old_golden_id = row[0]
        return row[0], Golden(*row[1:])

    def create_linked(self, golden: Golden, link: Link, change: Change) -> str:
        params = {
            "status": golden.status,
            "merged_into": golden.merged_into,
            "demographics": golden.demographics,
            "medical_data": golden.medical_data,
            "source_count": golden.source_count,
            "source_record_id": link.source_record_id,
            "link_type": link.link_type,
            "confidence": link.confidence,
            "match_result_id": link.match_result_id,
            "linked_by": link.linked_by,
        } | {
            f"change_{f}": getattr(change, f)
            for f in _CHANGE_FIELDS
            if f not in ("old_golden_id", "new_golden_id")
        }
        golden_id = self._run(_CREATE_LINKED, params).fetchone()[0]
        golden.golden_id = link.golden_id = change.new_golden_id = golden_id
        golden.version = 2
        return golden_id

    def link_of(self, record_id: int) -> Link | None:
        row = self._run(_LINK_OF, {"id": record_id}).fetchone()
        return Link(*row) if row else None

    def sources_of(self, golden_id: str) -> list[int]:
        return [row[0] for row in self._run(_SOURCES_OF, {"golden_id": golden_id})]

    def record_change(self, change: Change) -> None:
        self._run(_RECORD_CHANGE, {f: getattr(change, f) for f in _CHANGE_FIELDS})

    def changes(
        self, *, operation_id: str | None = None, golden_id: str | None = None
    ) -> list[Change]:
        query = select(t.LinkChange).order_by(t.LinkChange.id)
        if operation_id is not None:
            query = query.where(t.LinkChange.operation_id == operation_id)
        if golden_id is not None:
            query = query.where(
                (t.LinkChange.old_golden_id == golden_id)
                | (t.LinkChange.new_golden_id == golden_id)
            )
        return [
            Change(
                operation_id=r.operation_id,
                action=r.action,
                actor=r.actor,
                source_record_id=r.source_record_id,
                old_golden_id=r.old_golden_id,
                new_golden_id=r.new_golden_id,
                old_status=r.old_status,
                match_result_id=r.match_result_id,
                reason=r.reason,
                created_at=r.created_at,
            )
            for r in self.session.execute(query).scalars()
        ]


_MATCH_COLUMNS = {
    "source_record_id": "bigint",
    "candidate_record_id": "bigint",
    "is_match": "boolean",
    "confidence": "float8",
    "match_type": "text",
    "decision": "text",
    "stage": "text",
    "explanation": "text",
    "evidence": "jsonb",
    "model_version": "text",
    "thresholds": "jsonb",
    "medical_similarity": "float8",
    "ai_reasoning": "text",
}
assert set(_MATCH_COLUMNS) == set(MATCH_ENTRY_FIELDS)
# the comparisons a lookup keeps, in one statement of one SQL text, whatever their number: the
# rows travel as one JSON array (psycopg would escape JSON inside a text[] char by char)
_ADD_MATCHES = text(
    f"INSERT INTO match_results ({', '.join(_MATCH_COLUMNS)})"
    f" SELECT {', '.join(_MATCH_COLUMNS)} FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb))"
    " AS (" + ", ".join(f"{name} {kind}" for name, kind in _MATCH_COLUMNS.items()) + "))"
    f" WITH ORDINALITY AS m({', '.join(_MATCH_COLUMNS)}, n) ORDER BY n RETURNING id"
)
_ONE, _TWO = _CONSTRAINT.c.record_id_1, _CONSTRAINT.c.record_id_2
_OTHERS = any_(bindparam("others", type_=_IDS))
_CONSTRAINTS_FOR = select(_ONE, _TWO, _CONSTRAINT.c.kind).where(
    ((_ONE == bindparam("record_id")) & (_TWO == _OTHERS))
    | ((_TWO == bindparam("record_id")) & (_ONE == _OTHERS))
)
_MUST_LINKED = select(
    select(_ONE)
    .where(
        (_CONSTRAINT.c.kind == "must_link")
        & ((_ONE == bindparam("record_id")) | (_TWO == bindparam("record_id")))
    )
    .exists()
)


class SqlMatches(base.MatchRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: MatchEntry) -> int:
        values = {f: getattr(entry, f) for f in MATCH_ENTRY_FIELDS}
        entry.id = self.session.execute(
            insert(t.MatchResult).values(values).returning(t.MatchResult.id)
        ).scalar_one()
        return entry.id

    def add_many(self, entries: list[MatchEntry]) -> list[int]:
        if not entries:
            return []
        rows = json_text([{f: getattr(e, f) for f in _MATCH_COLUMNS} for e in entries])
        # ids come from the sequence in the order of the ordered SELECT: ascending = row order
        ids = sorted(row[0] for row in execute(self.session, _ADD_MATCHES, {"rows": rows}))
        for entry, entry_id in zip(entries, ids, strict=True):
            entry.id = entry_id
        return ids

    def for_record(self, record_id: int) -> list[MatchEntry]:
        rows = self.session.execute(
            select(t.MatchResult)
            .where(
                (t.MatchResult.source_record_id == record_id)
                | (t.MatchResult.candidate_record_id == record_id)
            )
            .order_by(t.MatchResult.id)
        ).scalars()
        return [MatchEntry(**{f: getattr(r, f) for f in MATCH_ENTRY_FIELDS}, id=r.id) for r in rows]

    def add_constraint(
        self,
        a: int,
        b: int,
        kind: str,
        actor: str,
        reason: str = "",
        operation_id: str | None = None,
    ) -> None:
        first, second = ordered(a, b)
        values = {
            "record_id_1": first,
            "record_id_2": second,
            "kind": kind,
            "created_by": actor,
            "reason": reason,
            "operation_id": operation_id,
        }
        stmt = insert(t.MatchConstraint).values(values)
        self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["record_id_1", "record_id_2"],
                set_={
                    "kind": kind,
                    "created_by": actor,
                    "reason": reason,
                    "operation_id": operation_id,
                    "created_at": func.now(),
                },
            )
        )

    def remove_constraint(self, a: int, b: int) -> None:
        first, second = ordered(a, b)
        c = t.MatchConstraint
        self.session.execute(delete(c).where(c.record_id_1 == first, c.record_id_2 == second))

    def remove_constraints_of(self, operation_id: str) -> int:
        c = t.MatchConstraint
        result = self.session.execute(delete(c).where(c.operation_id == operation_id))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def constraints_for(self, record_id: int, others: Iterable[int]) -> dict[int, str]:
        others = [o for o in others if o != record_id]
        if not others:
            return {}
        rows = execute(self.session, _CONSTRAINTS_FOR, {"record_id": record_id, "others": others})
        return {(b if a == record_id else a): kind for a, b, kind in rows}

    def must_linked(self, record_id: int) -> bool:
        return bool(self.session.execute(_MUST_LINKED, {"record_id": record_id}).scalar_one())


def _review(row: t.ReviewItem) -> Review:
    return Review(
        id=row.id,
        record_id_1=row.record_id_1,
        record_id_2=row.record_id_2,
        priority=row.priority,
        status=row.status,
        match_result_id=row.match_result_id,
        assigned_to=row.assigned_to,
        resolution=row.resolution,
        resolver_notes=row.resolver_notes,
        resolved_by=row.resolved_by,
        created_at=row.created_at,
    )


class SqlReviews(base.ReviewRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def enqueue(self, a: int, b: int, priority: int, match_result_id: int | None) -> Review | None:
        first, second = ordered(a, b)
        stmt = (
            insert(t.ReviewItem)
            .values(
                record_id_1=first,
                record_id_2=second,
                priority=priority,
                match_result_id=match_result_id,
            )
            .on_conflict_do_nothing(
                index_elements=["record_id_1", "record_id_2"],
                # a literal predicate: a bound parameter (prepared after 5 runs) cannot prove
                # the partial index applies
                index_where=text("status <> 'resolved'"),
            )
            .returning(t.ReviewItem.id)
        )
        review_id = self.session.execute(stmt).scalar_one_or_none()
        return self.get(review_id) if review_id is not None else None

    def get(self, review_id: int, *, for_update: bool = False) -> Review | None:
        query = select(t.ReviewItem).where(t.ReviewItem.id == review_id)
        if for_update:
            query = query.with_for_update()
        row = self.session.execute(query).scalar_one_or_none()
        return _review(row) if row else None

    def pending(self, limit: int = 50, offset: int = 0) -> list[Review]:
        rows = self.session.execute(
            select(t.ReviewItem)
            .where(t.ReviewItem.status == "pending")
            .order_by(t.ReviewItem.priority.desc(), t.ReviewItem.id)
            .limit(limit)
            .offset(offset)
        ).scalars()
        return [_review(r) for r in rows]

    def claim(self, review_id: int | None, reviewer: str) -> Review | None:
        # SKIP LOCKED: an item another reviewer is claiming right now is passed over
        query = (
            select(t.ReviewItem)
            .where(t.ReviewItem.status == "pending")
            .order_by(t.ReviewItem.priority.desc(), t.ReviewItem.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if review_id is not None:
            query = query.where(t.ReviewItem.id == review_id)
        row = self.session.execute(query).scalar_one_or_none()
        if row is None:
            return None
        self.session.execute(
            update(t.ReviewItem)
            .where(t.ReviewItem.id == row.id)
            .values(status="assigned", assigned_to=reviewer, assigned_at=func.now())
        )
        self.session.refresh(row)
        return _review(row)

    def save(self, review: Review) -> None:
        resolved = review.status == "resolved"
        result = self.session.execute(
            update(t.ReviewItem)
            .where(t.ReviewItem.id == review.id)
            .values(
                priority=review.priority,
                status=review.status,
                assigned_to=review.assigned_to,
                resolution=review.resolution,
                resolver_notes=review.resolver_notes,
                resolved_by=review.resolved_by,
                resolved_at=func.now() if resolved else None,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFoundError("review item", review.id)

    def resolved(self) -> list[Review]:
        rows = self.session.execute(
            select(t.ReviewItem).where(t.ReviewItem.status == "resolved").order_by(t.ReviewItem.id)
        ).scalars()
        return [_review(r) for r in rows]


class SqlAnswers(base.AnswerRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> dict[str, Any] | None:
        return self.session.execute(
            select(t.AdjudicationAnswer.answer).where(t.AdjudicationAnswer.key == key)
        ).scalar_one_or_none()

    def put(self, key: str, adjudicator: str, answer: dict[str, Any]) -> None:
        self.session.execute(
            insert(t.AdjudicationAnswer)
            .values(key=key, adjudicator=adjudicator, answer=answer)
            .on_conflict_do_nothing(index_elements=["key"])
        )


# compiled once for psycopg, run on the session's connection (`statements.py`)
_GET_RECORD = Statement(_GET_RECORD)
_FIND_RECORD = Statement(_FIND_RECORD)
_GET_RECORDS = Statement(_GET_RECORDS)
_RECORDS_OF_GOLDEN = Statement(_RECORDS_OF_GOLDEN)
_UPSERT_RECORD = Statement(_UPSERT_RECORD)
_UPSERT_CHANGED_RECORD = Statement(_UPSERT_CHANGED_RECORD)
_DROP_KEYS = Statement(_DROP_KEYS)
_ADD_KEYS = Statement(_ADD_KEYS)
_CANDIDATES = Statement(_CANDIDATES)
_STORE_AND_SEARCH = Statement(_STORE_AND_SEARCH)
_CREATE_GOLDEN = Statement(_CREATE_GOLDEN)
_GET_GOLDEN = Statement(_GET_GOLDEN)
_GET_GOLDEN_FOR_UPDATE = Statement(_GET_GOLDEN_FOR_UPDATE)
_SAVE_GOLDEN = Statement(_SAVE_GOLDEN)
_OLD_LINK = Statement(_OLD_LINK)
_UPSERT_LINK = Statement(_UPSERT_LINK)
_LINK_OF = Statement(_LINK_OF)
_SOURCES_OF = Statement(_SOURCES_OF)
_RECORD_CHANGE = Statement(_RECORD_CHANGE)
_MOVE_LINK = Statement(_MOVE_LINK)
_MOVE_LINK_LOCKING = Statement(_MOVE_LINK_LOCKING)
_CREATE_LINKED = Statement(_CREATE_LINKED)
_ADD_MATCHES = Statement(_ADD_MATCHES)
_CONSTRAINTS_FOR = Statement(_CONSTRAINTS_FOR)
