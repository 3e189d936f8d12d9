"""Golden records: read (each survivor value with its sources), sources, merge, split."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from medmatch.errors import ConflictError
from medmatch_api.deps import Context, Curator, Reader
from medmatch_api.schemas import GOLDEN_ID, ChangeOut, GoldenOut, MergeIn, PatientOut, SplitIn
from medmatch_api.shapes import change_out, golden_out, patient_out

router = APIRouter(prefix="/golden-records", tags=["golden records"])
# the sources of one golden record in one answer; past this, the answer says to page them
# (GET /patients?golden_record_id=...) instead of leaving some out
MAX_SOURCES = 10_000
GoldenIdPath = Annotated[str, Path(pattern=GOLDEN_ID, examples=["GR-000001"])]


@router.get("/{golden_id}", response_model=GoldenOut)
def get_golden(golden_id: GoldenIdPath, who: Reader, context: Context) -> GoldenOut:
    golden = golden_out(context, golden_id)
    context.audit.record(who, "read", "golden_record", [golden_id])
    return golden


@router.get("/{golden_id}/sources", response_model=list[PatientOut])
def golden_sources(golden_id: GoldenIdPath, who: Reader, context: Context) -> list[PatientOut]:
    """Every source record of the golden record (409 past MAX_SOURCES: page them instead)."""
    context.mpi.golden.get(golden_id)  # 404 for an unknown golden record
    rows = context.views.patients(golden_id=golden_id, limit=MAX_SOURCES + 1)
    if len(rows) > MAX_SOURCES:
        raise ConflictError(
            f"golden record {golden_id} has more than {MAX_SOURCES} source records: page them"
            f" with GET /api/v1/patients?golden_record_id={golden_id}"
        )
    context.audit.record(who, "read", "source_record", [r["id"] for r in rows])
    return [patient_out(r) for r in rows]


@router.post("/merge", response_model=ChangeOut)
def merge(body: MergeIn, who: Curator, context: Context) -> ChangeOut:
    """Merge into one survivor (the first id, or survivor_id); the others become merged and
    point to it. dry_run: what would change, nothing changed."""
    ids = list(dict.fromkeys(body.golden_record_ids))
    if body.survivor_id:
        ids.remove(body.survivor_id)
        ids.insert(0, body.survivor_id)
    report = context.mpi.golden.merge(
        ids,
        actor=who.name,
        reason=body.reason,
        dry_run=body.dry_run,
        expected_versions=body.expected_versions,
    )
    context.audit.record(who, "merge", "golden_record", ids)
    if body.dry_run:
        return change_out(report)
    context.events.publish(
        "merge", operation_id=report.operation_id, golden_ids=ids, survivor_id=ids[0]
    )
    return change_out(report, golden_out(context, ids[0]))


@router.post("/split", response_model=ChangeOut)
def split(body: SplitIn, who: Curator, context: Context) -> ChangeOut:
    """Move source records to a new golden record; the pair becomes cannot-link.
    dry_run: what would change, nothing changed."""
    report = context.mpi.golden.split(
        body.golden_record_id,
        body.source_record_ids,
        actor=who.name,
        reason=body.reason,
        dry_run=body.dry_run,
        expected_version=body.expected_version,
    )
    context.audit.record(who, "split", "golden_record", [body.golden_record_id])
    if body.dry_run:
        return change_out(report)
    new_id = report.golden_ids[-1]
    context.events.publish(
        "split",
        operation_id=report.operation_id,
        golden_id=body.golden_record_id,
        new_golden_id=new_id,
        source_record_ids=report.records_moved,
    )
    return change_out(report, golden_out(context, new_id))
