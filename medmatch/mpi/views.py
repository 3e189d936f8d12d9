"""Read models for the API: one query per screen, no unit of work, no domain objects.

The services own every change; what a client only reads (a page of patients, a stored
comparison, a review item with both records beside it) is answered here with one SELECT,
the "views" of Architecture Patterns with Python (chapter 12).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from medmatch.errors import NotFoundError
from medmatch.mpi import schema as t

_PATIENT_COLUMNS = (
    t.SourceRecord.id,
    t.SourceRecord.source_system,
    t.SourceRecord.external_id,
    t.SourceRecord.demographics,
    t.SourceRecord.medical_data,
    t.SourceRecord.received_at,
    t.SourceRecord.updated_at,
    t.RecordLink.golden_id,
    t.RecordLink.link_type,
    t.RecordLink.confidence,
)


def _patients():  # type: ignore[no-untyped-def]
    return select(*_PATIENT_COLUMNS).outerjoin(
        t.RecordLink, t.RecordLink.source_record_id == t.SourceRecord.id
    )


class MpiViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def patient(self, record_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(_patients().where(t.SourceRecord.id == record_id)).first()
        if row is None:
            raise NotFoundError("patient", record_id)
        return dict(row._mapping)

    def patients(
        self,
        *,
        after: int = 0,
        limit: int = 50,
        source_system: str | None = None,
        external_id: str | None = None,
        golden_id: str | None = None,
        updated_since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """A page in id order, after the cursor `after` (the last id of the previous page):
        a stable cursor, rows inserted meanwhile never shift a page."""
        query = _patients().where(t.SourceRecord.id > after)
        if source_system is not None:
            query = query.where(t.SourceRecord.source_system == source_system)
        if external_id is not None:
            query = query.where(t.SourceRecord.external_id == external_id)
        if golden_id is not None:
            query = query.where(t.RecordLink.golden_id == golden_id)
        if updated_since is not None:
            query = query.where(t.SourceRecord.updated_at >= updated_since)
        query = query.order_by(t.SourceRecord.id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def match_result(self, result_id: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            row = session.get(t.MatchResult, result_id)
            if row is None:
                raise NotFoundError("match result", result_id)
            return _columns(row)

    def review_items(self, review_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Review items with both records and the comparison that queued them, by id."""
        if not review_ids:
            return {}
        query = (
            select(t.ReviewItem, t.MatchResult)
            .outerjoin(t.MatchResult, t.MatchResult.id == t.ReviewItem.match_result_id)
            .where(t.ReviewItem.id.in_(review_ids))
        )
        with Session(self.engine) as session:
            rows = session.execute(query).all()
            record_ids = {r[0].record_id_1 for r in rows} | {r[0].record_id_2 for r in rows}
            records = {
                r.id: dict(r._mapping)
                for r in session.execute(_patients().where(t.SourceRecord.id.in_(record_ids)))
            }
            return {
                item.id: {
                    "item": _columns(item),
                    "left": records.get(item.record_id_1),
                    "right": records.get(item.record_id_2),
                    "match": _columns(match) if match is not None else None,
                }
                for item, match in rows
            }


def _columns(row: Any) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in row.__table__.columns}
