"""The review queue: pending pairs by priority, one reviewer per item, sticky resolutions.

confirmed_match merges the two golden records (and records a must-link), confirmed_non_match
records a cannot-link (and splits the pair apart if a run had linked them), defer returns
the item to the queue with a lower priority. Resolutions are exported as labelled pairs for
training (`medmatch.matching.training.train_model(labels=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import BaseModel

from medmatch.errors import ConflictError, NotFoundError
from medmatch.mpi.base import AbstractUnitOfWork
from medmatch.mpi.domain import Review
from medmatch.mpi.services.golden import ChangeReport, GoldenRecordService

UowFactory = Callable[[], AbstractUnitOfWork]
Resolution = Literal["confirmed_match", "confirmed_non_match", "defer"]
DEFER_BY = 2


class Resolved(BaseModel):
    review_id: int
    resolution: str
    status: str
    priority: int
    change: ChangeReport | None = None


class ReviewService:
    def __init__(self, uow_factory: UowFactory, trust: Mapping[str, float] | None = None) -> None:
        self.uow_factory = uow_factory
        self.golden = GoldenRecordService(uow_factory, trust)

    def pending(self, limit: int = 50, offset: int = 0) -> list[Review]:
        with self.uow_factory() as uow:
            return uow.reviews.pending(limit, offset)

    def get(self, review_id: int) -> Review:
        with self.uow_factory() as uow:
            return self._require(uow, review_id)

    def assign(self, reviewer: str, review_id: int | None = None) -> Review:
        """Hand an item (or the next one) to `reviewer`; two reviewers never hold one item."""
        with self.uow_factory() as uow:
            item = uow.reviews.claim(review_id, reviewer)
            if item is None:
                if review_id is None:
                    raise NotFoundError("pending review item", "(queue empty)")
                existing = self._require(uow, review_id)
                raise ConflictError(f"review item {review_id} is {existing.status}")
            uow.commit()
            return item

    def resolve(
        self, review_id: int, reviewer: str, resolution: Resolution, notes: str | None = None
    ) -> Resolved:
        with self.uow_factory() as uow:
            item = self._require(uow, review_id, for_update=True)
            if item.status == "resolved":
                raise ConflictError(f"review item {review_id} is resolved already")
            if item.status == "assigned" and item.assigned_to != reviewer:
                raise ConflictError(f"review item {review_id} is assigned to another reviewer")
            change = None
            a, b = item.record_id_1, item.record_id_2
            reason = f"review {review_id}: {resolution}"
            if resolution == "defer":
                item.status, item.assigned_to = "pending", None
                item.priority = max(1, item.priority - DEFER_BY)
            else:
                item.status = "resolved"
                change = self._apply(uow, a, b, resolution, reviewer, reason)
            item.resolution, item.resolver_notes, item.resolved_by = resolution, notes, reviewer
            uow.reviews.save(item)
            uow.commit()
            return Resolved(
                review_id=review_id,
                resolution=resolution,
                status=item.status,
                priority=item.priority,
                change=change,
            )

    def labelled_pairs(self) -> list[tuple[int, int, bool]]:
        """Reviewers' decisions as (record_id_1, record_id_2, is_match) for training."""
        with self.uow_factory() as uow:
            return [
                (r.record_id_1, r.record_id_2, r.resolution == "confirmed_match")
                for r in uow.reviews.resolved()
            ]

    # -- helpers -------------------------------------------------------------------------
    def _apply(
        self,
        uow: AbstractUnitOfWork,
        a: int,
        b: int,
        resolution: str,
        reviewer: str,
        reason: str,
    ) -> ChangeReport | None:
        link_a, link_b = uow.golden.link_of(a), uow.golden.link_of(b)
        if link_a is None or link_b is None:
            raise ConflictError("a record of this pair is not linked to a golden record")
        if resolution == "confirmed_match":
            uow.matches.add_constraint(a, b, "must_link", reviewer, reason)
            if link_a.golden_id == link_b.golden_id:
                return None
            # the reviewer judged this pair: its must-link is the human decision, the rest
            # of the two clusters stays the model's
            return self.golden.merge_in(
                uow, [link_a.golden_id, link_b.golden_id], actor=reviewer, reason=reason, tie=False
            )
        uow.matches.add_constraint(a, b, "cannot_link", reviewer, reason)
        if link_a.golden_id != link_b.golden_id:
            return None
        return self.golden.split_in(
            uow, link_b.golden_id, [b], actor=reviewer, reason=reason, keep_apart=False
        )

    @staticmethod
    def _require(uow: AbstractUnitOfWork, review_id: int, *, for_update: bool = False) -> Review:
        item = uow.reviews.get(review_id, for_update=for_update)
        if item is None:
            raise NotFoundError("review item", review_id)
        return item
