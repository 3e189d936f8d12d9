"""PostgreSQL adapters of the repositories (`base.py`), over one SQLAlchemy session."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from medmatch.errors import ConflictError, NotFoundError
from medmatch.mpi import base
from medmatch.mpi import schema as t
from medmatch.mpi.domain import (
    MATCH_ENTRY_FIELDS,
    Change,
    Golden,
    Link,
    MatchEntry,
    Review,
    StoredRecord,
    ordered,
)

_RECORD_COLUMNS = (
    t.SourceRecord.id,
    t.SourceRecord.source_system,
    t.SourceRecord.external_id,
    t.SourceRecord.demographics,
    t.SourceRecord.medical_data,
    t.SourceRecord.features,
    t.RecordLink.golden_id,
    t.SourceRecord.received_at,
    t.SourceRecord.updated_at,
)


def _record(row: Any) -> StoredRecord:
    record = StoredRecord(*row)
    record.features = record.features | {"unique_id": str(record.id)}
    return record


def _records_query():  # type: ignore[no-untyped-def]
    return select(*_RECORD_COLUMNS).outerjoin(
        t.RecordLink, t.RecordLink.source_record_id == t.SourceRecord.id
    )


class SqlSourceRecords(base.SourceRecordRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
    ) -> tuple[StoredRecord, bool]:
        stored = {k: v for k, v in features.items() if k != "unique_id"}
        stmt = insert(t.SourceRecord).values(
            source_system=source_system,
            external_id=external_id,
            demographics=demographics,
            medical_data=medical_data,
            features=stored,
        )
        if external_id is not None:
            stmt = stmt.on_conflict_do_update(
                constraint="uq_source_records_source_identity",
                set_={
                    "demographics": stmt.excluded.demographics,
                    "medical_data": stmt.excluded.medical_data,
                    "features": stmt.excluded.features,
                    "updated_at": func.now(),
                },
            )
        # xmax = 0 only on a row this statement inserted: tells a new record from a re-send
        record_id, received, updated, created = self.session.execute(
            stmt.returning(
                t.SourceRecord.id,
                t.SourceRecord.received_at,
                t.SourceRecord.updated_at,
                literal_column("xmax = 0"),
            )
        ).one()
        if created:  # nothing else to read: a new record has no link yet
            features = stored | {"unique_id": str(record_id)}
            return StoredRecord(
                record_id,
                source_system,
                external_id,
                demographics,
                medical_data,
                features,
                None,
                received,
                updated,
            ), True
        record = self.get(record_id)
        assert record is not None
        return record, False

    def get(self, record_id: int) -> StoredRecord | None:
        row = self.session.execute(
            _records_query().where(t.SourceRecord.id == record_id)
        ).one_or_none()
        return _record(row) if row else None

    def find(self, source_system: str, external_id: str) -> StoredRecord | None:
        row = self.session.execute(
            _records_query().where(
                t.SourceRecord.source_system == source_system,
                t.SourceRecord.external_id == external_id,
            )
        ).one_or_none()
        return _record(row) if row else None

    def get_many(self, record_ids: Iterable[int]) -> list[StoredRecord]:
        ids = list(record_ids)
        if not ids:
            return []
        rows = self.session.execute(
            _records_query().where(t.SourceRecord.id.in_(ids)).order_by(t.SourceRecord.id)
        )
        return [_record(r) for r in rows]

    def replace_keys(self, record_id: int, keys: Iterable[str], *, new: bool = False) -> None:
        if not new:  # a new record has no keys to drop
            self.session.execute(
                delete(t.BlockingKey).where(t.BlockingKey.source_record_id == record_id)
            )
        rows = [{"key": k, "source_record_id": record_id} for k in sorted(set(keys))]
        if rows:
            self.session.execute(insert(t.BlockingKey).values(rows).on_conflict_do_nothing())

    def candidates(self, keys: Iterable[str], exclude: int, limit: int) -> list[StoredRecord]:
        keys = list(keys)
        if not keys:
            return []
        ids = (
            select(t.BlockingKey.source_record_id)
            .where(t.BlockingKey.key.in_(keys), t.BlockingKey.source_record_id != exclude)
            .distinct()
            .order_by(t.BlockingKey.source_record_id)
            .limit(limit)
            .subquery()
        )
        rows = self.session.execute(_records_query().where(t.SourceRecord.id.in_(select(ids))))
        return [_record(r) for r in rows]


def _golden(row: t.GoldenRecord) -> Golden:
    return Golden(
        golden_id=row.golden_id,
        status=row.status,
        merged_into=row.merged_into,
        demographics=row.demographics,
        medical_data=row.medical_data,
        source_count=row.source_count,
        version=row.version,
    )


class SqlGoldenRecords(base.GoldenRecordRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self) -> Golden:
        golden_id = self.session.execute(
            insert(t.GoldenRecord).values().returning(t.GoldenRecord.golden_id)
        ).scalar_one()
        return Golden(golden_id)

    def get(self, golden_id: str, *, for_update: bool = False) -> Golden | None:
        query = select(t.GoldenRecord).where(t.GoldenRecord.golden_id == golden_id)
        if for_update:
            query = query.with_for_update()
        row = self.session.execute(query).scalar_one_or_none()
        return _golden(row) if row else None

    def save(self, golden: Golden) -> None:
        result = self.session.execute(
            update(t.GoldenRecord)
            .where(
                t.GoldenRecord.golden_id == golden.golden_id,
                # optimistic concurrency: a writer holding an older version loses
                t.GoldenRecord.version == golden.version,
            )
            .values(
                status=golden.status,
                merged_into=golden.merged_into,
                demographics=golden.demographics,
                medical_data=golden.medical_data,
                source_count=golden.source_count,
                version=t.GoldenRecord.version + 1,
                updated_at=func.now(),
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError(
                f"golden record {golden.golden_id} changed since it was read (or is gone)"
            )
        golden.version += 1

    def set_link(self, link: Link) -> str | None:
        old = self.session.execute(
            select(t.RecordLink.golden_id)
            .where(t.RecordLink.source_record_id == link.source_record_id)
            .with_for_update()
        ).scalar_one_or_none()
        values = {
            "source_record_id": link.source_record_id,
            "golden_id": link.golden_id,
            "link_type": link.link_type,
            "confidence": link.confidence,
            "match_result_id": link.match_result_id,
            "linked_by": link.linked_by,
        }
        stmt = insert(t.RecordLink).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.RecordLink.source_record_id],
            set_={k: v for k, v in values.items() if k != "source_record_id"}
            | {"linked_at": func.now()},
        )
        self.session.execute(stmt)
        return old

    def link_of(self, record_id: int) -> Link | None:
        row = self.session.execute(
            select(t.RecordLink).where(t.RecordLink.source_record_id == record_id)
        ).scalar_one_or_none()
        if row is None:
            return None
        return Link(
            row.source_record_id,
            row.golden_id,
            row.link_type,
            row.confidence,
            row.match_result_id,
            row.linked_by,
        )

    def sources_of(self, golden_id: str) -> list[int]:
        rows = self.session.execute(
            select(t.RecordLink.source_record_id)
            .where(t.RecordLink.golden_id == golden_id)
            .order_by(t.RecordLink.source_record_id)
        )
        return list(rows.scalars())

    def record_change(self, change: Change) -> None:
        values = {k: v for k, v in change.__dict__.items() if k != "created_at"}
        self.session.execute(insert(t.LinkChange).values(values))

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
        rows = [{f: getattr(e, f) for f in MATCH_ENTRY_FIELDS} for e in entries]
        # "insertmanyvalues": one INSERT ... VALUES (...), (...) RETURNING, in row order
        stmt = insert(t.MatchResult).returning(t.MatchResult.id, sort_by_parameter_order=True)
        ids = self.session.execute(stmt, rows).scalars().all()
        for entry, entry_id in zip(entries, ids, strict=True):
            entry.id = entry_id
        return list(ids)

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
        c = t.MatchConstraint
        rows = self.session.execute(
            select(c.record_id_1, c.record_id_2, c.kind).where(
                ((c.record_id_1 == record_id) & c.record_id_2.in_(others))
                | ((c.record_id_2 == record_id) & c.record_id_1.in_(others))
            )
        )
        return {(b if a == record_id else a): kind for a, b, kind in rows}


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
