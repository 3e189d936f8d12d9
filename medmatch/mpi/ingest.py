"""Feeding a file's records into the MPI one by one, through the real-time lookup.

This is the incremental path (each record matched against everything stored before it);
`bulk.load_records` is the fast first load of an empty MPI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
from pydantic import BaseModel

from medmatch.data.fields import DEMOGRAPHIC_FIELDS
from medmatch.data.models import parse_record
from medmatch.errors import MedMatchError
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


def ingest(
    matching: MatchingService,
    demographics: pd.DataFrame,
    medical: pd.DataFrame | None = None,
    *,
    phone_region: str = "US",
    progress: Progress | None = None,
) -> IngestSummary:
    """Look up every row (its external_id, else its record_id, is its id in the source)."""
    history: dict[str, dict[str, str | None]] = {}
    if medical is not None:
        for row in medical.to_dict("records"):
            history[str(row["record_id"])] = {
                k: _text(row.get(k)) for k in ("conditions", "medications")
            }
    decisions: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    created = invalid = reviews = 0
    goldens: set[str] = set()
    rows = demographics.to_dict("records")
    for i, row in enumerate(rows):
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
        except MedMatchError as exc:  # a record without a name or source: counted, not stored
            rejected[getattr(exc, "field", "record")] += 1
            continue
        invalid += len(warnings)
        result = matching.lookup(record, actor="ingest")
        decisions[result.decision] += 1
        created += result.created
        reviews += len(result.review_ids)
        goldens.add(result.golden_record_id)
        if progress is not None:
            progress(i + 1, len(rows))
    stored = sum(decisions.values())
    return IngestSummary(
        records=len(rows),
        decisions=dict(decisions),
        created=created,
        updated=stored - created,
        rejected=sum(rejected.values()),
        rejected_fields=dict(rejected),
        invalid_values=invalid,
        reviews_queued=reviews,
        golden_records_touched=len(goldens),
    )
