"""From services' and views' values to response bodies (and one request to a record)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status

from medmatch.data.models import PatientRecord, parse_record
from medmatch.mpi.access import Principal
from medmatch.mpi.services import ChangeReport, LookupResult
from medmatch.mpi.survivorship import provenance
from medmatch_api.context import ApiContext
from medmatch_api.schemas import (
    ChangeOut,
    GoldenOut,
    MatchResultOut,
    PatientOut,
    RecordIn,
    ReviewItemOut,
    SurvivorValue,
)


def record_of(body: RecordIn, who: Principal, context: ApiContext) -> PatientRecord:
    """The request as a normalised record; a source token submits only as its own system."""
    if who.source_system and body.source_system != who.source_system:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"source_system: this token submits only as {who.source_system}",
        )
    record, _ = parse_record(
        body.model_dump(exclude_none=True, exclude={"record_id"}),
        phone_region=context.settings.default_phone_region,
    )
    return record


def look_up(context: ApiContext, body: RecordIn, who: Principal) -> LookupResult:
    """The real-time lookup of one submitted record, announced on /ws/events."""
    result = context.matching.lookup(record_of(body, who, context), actor=who.name)
    context.events.publish(
        "lookup",
        source_record_id=result.source_record_id,
        golden_record_id=result.golden_record_id,
        decision=result.decision,
    )
    return result


def patient_out(row: dict[str, Any]) -> PatientOut:
    return PatientOut(**{**row, "golden_record_id": row["golden_id"]})


def may_read_patient(who: Principal, source_system: str) -> bool:
    """Staff read every record; a source system reads only what it sent itself."""
    if who.may("read"):
        return True
    return who.role == "source" and who.source_system == source_system


def golden_out(context: ApiContext, golden_id: str) -> GoldenOut:
    view, sources = context.mpi.golden.with_sources(golden_id)
    origin = provenance(sources, view.demographics, context.settings.source_trust)
    return GoldenOut(
        golden_id=view.golden_id,
        status=view.status,
        merged_into=view.merged_into,
        version=view.version,
        source_count=view.source_count,
        source_record_ids=view.source_record_ids,
        demographics={
            name: SurvivorValue(value=value, source_record_ids=origin.get(name, []))
            for name, value in view.demographics.items()
        },
        medical_data=view.medical_data,
    )


def change_out(report: ChangeReport, golden: GoldenOut | None = None) -> ChangeOut:
    return ChangeOut(**report.model_dump(), golden_record=golden)


def review_out(entry: dict[str, Any]) -> ReviewItemOut:
    item, match = entry["item"], entry["match"]
    return ReviewItemOut(
        **{k: item[k] for k in ReviewItemOut.model_fields if k in item},
        left=patient_out(entry["left"]),
        right=patient_out(entry["right"]),
        match=MatchResultOut(**match) if match else None,
    )
