"""Files into the MPI: `ingest` looks each record up through the real-time path (matched
against everything stored before it); `land` only stores them, for the batch pipeline to
match in bulk. `bulk.load_records` is the COPY-based first load of an empty MPI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from pydantic import BaseModel

from medmatch.data.features import record_features
from medmatch.data.fields import DEMOGRAPHIC_FIELDS
from medmatch.data.models import PatientRecord, parse_record
from medmatch.errors import MedMatchError
from medmatch.matching.blocking import key_strings
from medmatch.mpi.base import AbstractUnitOfWork
from medmatch.mpi.services.matching import MatchingService

Progress = Callable[[int, int], None]


class IngestSummary(BaseModel):
    records: int
    decisions: dict[str, int]
    created: int
    updated: int
    rejected: int
    rejected_fields: dict[str, int]
    invalid_values: int
    reviews_queued: int
    golden_records_touched: int


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


def table_records(
    demographics: pd.DataFrame, medical: pd.DataFrame | None, *, phone_region: str = "US"
) -> Iterator[tuple[PatientRecord | None, int, str | None]]:
    """Each row as (record, invalid values dropped, rejected field): its external_id, else
    its record_id, is its id in the source system. A row without a name or source is
    rejected (record None), never stored."""
    history: dict[str, dict[str, str | None]] = {}
    if medical is not None:
        for row in medical.to_dict("records"):
            history[str(row["record_id"])] = {
                k: _text(row.get(k)) for k in ("conditions", "medications")
            }
    for row in demographics.to_dict("records"):
        record_id = _text(row.get("record_id"))
        body = {
            "source_system": _text(row.get("source_system")),
            "external_id": _text(row.get("external_id")) or record_id,
            "demographics": {f: _text(row.get(f)) for f in DEMOGRAPHIC_FIELDS if f in row},
            "medical_data": {
                k: v for k, v in history.get(record_id or "", {}).items() if v is not None
            },
        }
        try:
            record, warnings = parse_record(body, lenient=True, phone_region=phone_region)
        except MedMatchError as exc:
            yield None, 0, getattr(exc, "field", "record")
            continue
        yield record, len(warnings), None


def ingest(
    matching: MatchingService,
    demographics: pd.DataFrame,
    medical: pd.DataFrame | None = None,
    *,
    phone_region: str = "US",
    progress: Progress | None = None,
) -> IngestSummary:
    """Look up every row through the real-time path."""
    decisions: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    created = invalid = reviews = 0
    goldens: set[str] = set()
    total = len(demographics)
    rows = table_records(demographics, medical, phone_region=phone_region)
    for i, (record, dropped, bad_field) in enumerate(rows):
        if record is None:
            rejected[bad_field or "record"] += 1
            continue
        invalid += dropped
        result = matching.lookup(record, actor="ingest")
        decisions[result.decision] += 1
        created += result.created
        reviews += len(result.review_ids)
        goldens.add(result.golden_record_id)
        if progress is not None:
            progress(i + 1, total)
    stored = sum(decisions.values())
    return IngestSummary(
        records=total,
        decisions=dict(decisions),
        created=created,
        updated=stored - created,
        rejected=sum(rejected.values()),
        rejected_fields=dict(rejected),
        invalid_values=invalid,
        reviews_queued=reviews,
        golden_records_touched=len(goldens),
    )


def land(
    uow_factory: Callable[[], AbstractUnitOfWork],
    demographics: pd.DataFrame,
    medical: pd.DataFrame | None = None,
    *,
    phone_region: str = "US",
) -> dict[str, int]:
    """Store a landing file's records without matching them (the pipeline matches in
    bulk): idempotent on source_system + external_id, one transaction per file."""
    counts: Counter[str] = Counter()
    with uow_factory() as uow:
        for record, dropped, _ in table_records(demographics, medical, phone_region=phone_region):
            if record is None:
                counts["rejected"] += 1
                continue
            counts["invalid_values"] += dropped
            features = record_features(record.model_copy(update={"record_id": "new"}))
            stored, created = uow.records.upsert(
                record.source_system,
                record.external_id,
                record.demographics.model_dump(mode="json", exclude_none=True),
                record.medical_data.model_dump(mode="json"),
                features,
            )
            uow.records.replace_keys(stored.id, key_strings(features))
            counts["new" if created else "updated"] += 1
        uow.commit()
    return {k: counts.get(k, 0) for k in ("new", "updated", "rejected", "invalid_values")}
