"""Patients: submit a source record (stored and matched at once), read one, list them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status

from medmatch.mpi.access import Principal
from medmatch_api.deps import Context, Submitter, authenticate
from medmatch_api.schemas import (
    LookupOut,
    PatientCreated,
    PatientOut,
    PatientPage,
    PrintableQuery,
    RecordIn,
)
from medmatch_api.shapes import look_up, may_read_patient, patient_out

router = APIRouter(prefix="/patients", tags=["patients"])
Caller = Annotated[Principal, Depends(authenticate)]
PatientId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the source record's id")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PatientCreated)
def submit_patient(
    body: RecordIn, who: Submitter, context: Context, response: Response
) -> PatientCreated:
    """Store a source record and match it (the real-time lookup flow). Re-sending the same
    source_system + external_id updates that record; it never makes a second identity."""
    result = look_up(context, body, who)
    patient = patient_out(context.views.patient(result.source_record_id))
    context.audit.record(who, "submit", "source_record", [patient.id])
    response.headers["Location"] = f"/api/v1/patients/{patient.id}"
    return PatientCreated(patient=patient, match=LookupOut(**result.model_dump()))


@router.get("/{patient_id}", response_model=PatientOut)
def get_patient(patient_id: PatientId, who: Caller, context: Context) -> PatientOut:
    """One source record with its golden record link. Staff read every record; a source
    token reads only records of its own source system."""
    patient = patient_out(context.views.patient(patient_id))
    if not may_read_patient(who, patient.source_system):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {who.role} may not read this record")
    context.audit.record(who, "read", "source_record", [patient.id])
    return patient


@router.get("", response_model=PatientPage)
def list_patients(
    who: Caller,
    context: Context,
    cursor: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="next_cursor of the previous page")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    source_system: Annotated[
        str | None, Query(min_length=1, max_length=100), PrintableQuery
    ] = None,
    external_id: Annotated[str | None, Query(min_length=1, max_length=200), PrintableQuery] = None,
    golden_record_id: Annotated[str | None, Query(pattern=r"^GR-\d{6,12}$")] = None,
    updated_since: Annotated[datetime | None, Query()] = None,
) -> PatientPage:
    """Source records in id order, a stable cursor, filtered. A source token sees only its
    own system's records."""
    if not who.may("read"):
        if who.role != "source" or not who.source_system:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {who.role} may not list records")
        if source_system not in (None, who.source_system):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"source_system: this token reads only {who.source_system}",
            )
        source_system = who.source_system
    rows = context.views.patients(
        after=cursor,
        limit=limit,
        source_system=source_system,
        external_id=external_id,
        golden_id=golden_record_id,
        updated_since=updated_since,
    )
    items = [patient_out(r) for r in rows]
    context.audit.record(who, "list", "source_record", [p.id for p in items])
    return PatientPage(items=items, next_cursor=items[-1].id if len(items) == limit else None)
