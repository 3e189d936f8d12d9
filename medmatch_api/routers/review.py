"""The review queue: pending items with both records beside each other, assign, resolve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from medmatch.errors import ConflictError
from medmatch_api.deps import Context, Reviewer
from medmatch_api.schemas import AssignIn, ResolvedOut, ResolveIn, ReviewItemOut, ReviewPage
from medmatch_api.shapes import change_out, review_out

router = APIRouter(prefix="/review", tags=["review"])
ReviewId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _item(context: Context, review_id: int) -> ReviewItemOut:
    entries = context.views.review_items([review_id])
    return review_out(entries[review_id])


@router.get("/pending", response_model=ReviewPage)
def pending(
    who: Reviewer,
    context: Context,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> ReviewPage:
    """Open items (pending, then assigned ones are not listed), highest priority first."""
    items = context.mpi.review.pending(limit=size, offset=(page - 1) * size)
    entries = context.views.review_items([i.id for i in items])
    out = [review_out(entries[i.id]) for i in items if i.id in entries]
    context.audit.record(
        who, "review", "source_record", sorted({p.id for o in out for p in (o.left, o.right)})
    )
    return ReviewPage(items=out, page=page, size=size)


@router.post("/{review_id}/assign", response_model=ReviewItemOut)
def assign(review_id: ReviewId, body: AssignIn, who: Reviewer, context: Context) -> ReviewItemOut:
    """Take an item (409 when someone else holds it). A reviewer takes items for themselves
    (their token's name); an operator may hand one to anyone."""
    if body.assigned_to != who.name and not who.may("curate"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "assigned_to: a reviewer takes items only for themselves"
        )
    try:
        context.mpi.review.assign(body.assigned_to, review_id)
    except ConflictError:
        held = context.mpi.review.get(review_id)
        if held.status != "assigned" or held.assigned_to != body.assigned_to:
            raise
    context.events.publish("review_assigned", review_id=review_id, assigned_to=body.assigned_to)
    item = _item(context, review_id)
    context.audit.record(who, "review", "source_record", [item.left.id, item.right.id])
    return item


@router.post("/{review_id}/resolve", response_model=ResolvedOut)
def resolve(review_id: ReviewId, body: ResolveIn, who: Reviewer, context: Context) -> ResolvedOut:
    """confirmed_match links the two records, confirmed_non_match keeps them apart (both
    sticky for every later run), defer puts the item back in the queue."""
    resolved = context.mpi.review.resolve(review_id, who.name, body.resolution, body.resolver_notes)
    context.events.publish(
        "review_resolved",
        review_id=review_id,
        resolution=resolved.resolution,
        golden_ids=resolved.change.golden_ids if resolved.change else [],
    )
    return ResolvedOut(
        **resolved.model_dump(exclude={"change"}),
        change=change_out(resolved.change) if resolved.change else None,
    )
