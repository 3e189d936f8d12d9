"""Matching: the real-time lookup, batch runs (Dagster) and stored comparisons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from medmatch_api.deps import Context, Operator, Reader, Submitter
from medmatch_api.schemas import (
    JOB_ID,
    BatchAccepted,
    BatchIn,
    BatchStatus,
    LookupOut,
    MatchResultOut,
    RecordIn,
)
from medmatch_api.shapes import look_up

router = APIRouter(prefix="/matching", tags=["matching"])
JobId = Annotated[str, Path(pattern=JOB_ID)]


@router.post("/lookup", response_model=LookupOut)
def lookup(body: RecordIn, who: Submitter, context: Context) -> LookupOut:
    """The single-record lookup flow: store (idempotent), find candidates, score, decide,
    and link, queue for review or create a golden record, in one transaction."""
    result = look_up(context, body, who)
    return LookupOut(**result.model_dump())


@router.post("/batch", status_code=status.HTTP_202_ACCEPTED, response_model=BatchAccepted)
def start_batch(body: BatchIn, who: Operator, context: Context) -> BatchAccepted:
    """Launch a Dagster run of full_match, or of incremental_match on one landing batch;
    job_id is the Dagster run id (the run shows in the Dagster UI)."""
    job_id = context.batch.launch(body.job_type, body.partition)
    return BatchAccepted(job_id=job_id, status="pending")


@router.get("/batch/{job_id}", response_model=BatchStatus)
def batch_status(job_id: JobId, who: Reader, context: Context) -> BatchStatus:
    """Status and progress, read from the Dagster run and the progress events it logs."""
    return context.batch.status(job_id)


@router.get("/results/{result_id}", response_model=MatchResultOut)
def match_result(
    result_id: Annotated[int, Path(ge=1, le=2**63 - 1)], who: Reader, context: Context
) -> MatchResultOut:
    """One stored comparison with its evidence (the weight of every comparison)."""
    result = MatchResultOut(**context.views.match_result(result_id))
    context.audit.record(who, "read", "match_result", [result.id])
    return result
