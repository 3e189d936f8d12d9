"""Golden records: survivorship, merge, split, undo, and the sources behind each one.

Every change of links writes `link_history` (who, when, why, old and new golden record) and
rebuilds the survivorship of each golden record it touched, in the same transaction. A dry
run does the same work and rolls it back, so what it reports is exactly what a real run does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from medmatch.errors import ConflictError, NotFoundError
from medmatch.mpi.base import AbstractUnitOfWork
from medmatch.mpi.domain import Change, Golden, Link, StoredRecord
from medmatch.mpi.survivorship import survive

UowFactory = Callable[[], AbstractUnitOfWork]


class GoldenView(BaseModel):
    golden_id: str
    status: str
    merged_into: str | None
    demographics: dict[str, Any]
    medical_data: dict[str, Any]
    source_count: int
    version: int
    source_record_ids: list[int]


class FieldChange(BaseModel):
    golden_id: str
    field: str
    before: Any
    after: Any


class ChangeReport(BaseModel):
    """What a merge, split or undo changed (or, on a dry run, would change)."""

    operation_id: str
    action: str
    dry_run: bool
    golden_ids: list[str]
    records_moved: list[int]
    field_changes: list[FieldChange]


def _check_version(golden: Golden, expected: int | None) -> None:
    """Optimistic concurrency for a human's change: the golden record (read under its row
    lock) must still be the version they looked at."""
    if expected is not None and golden.version != expected:
        raise ConflictError(
            f"golden record {golden.golden_id} is at version {golden.version}, not {expected}:"
            " it changed since it was read; read it again"
        )


def new_operation_id() -> str:
    return uuid.uuid4().hex


def rebuild(
    uow: AbstractUnitOfWork,
    golden_id: str,
    trust: Mapping[str, float],
    *,
    locked: Golden | None = None,
) -> Golden:
    """Survivorship of one golden record from the records linked to it now; `locked`: the
    golden record as this transaction already read it for update."""
    golden = locked or uow.golden.get(golden_id, for_update=True)
    if golden is None:
        raise NotFoundError("golden record", golden_id)
    records = uow.records.linked_to(golden_id)
    golden.demographics, golden.medical_data = survive(records, trust)
    golden.source_count = len(records)
    if not records and golden.status == "active":
        golden.status = "retired"  # every record moved away: nothing left to identify
    elif records and golden.status == "retired":
        golden.status = "active"
    uow.golden.save(golden)
    return golden


def move(
    uow: AbstractUnitOfWork,
    record_id: int,
    to: str,
    *,
    operation_id: str,
    action: str,
    actor: str,
    reason: str,
    link_type: str,
    confidence: float | None = None,
    match_result_id: int | None = None,
) -> str | None:
    """Link a record to golden record `to`, and keep the change; the old golden_id."""
    link, change = _link_change(
        record_id, to, operation_id, action, actor, reason, link_type, confidence, match_result_id
    )
    return uow.golden.move_link(link, change)


def move_and_lock(
    uow: AbstractUnitOfWork,
    record_id: int,
    to: str,
    *,
    operation_id: str,
    action: str,
    actor: str,
    reason: str,
    link_type: str,
    confidence: float | None = None,
    match_result_id: int | None = None,
) -> Golden:
    """`move`, and golden record `to` read for update for the `rebuild` that follows, in
    one round trip where the backend can. Only for a caller locking no other golden record
    in this transaction (several are locked in golden_id order, as `merge` does)."""
    link, change = _link_change(
        record_id, to, operation_id, action, actor, reason, link_type, confidence, match_result_id
    )
    return uow.golden.move_link_locking(link, change)[1]


def _link_change(
    record_id: int,
    to: str,
    operation_id: str,
    action: str,
    actor: str,
    reason: str,
    link_type: str,
    confidence: float | None,
    match_result_id: int | None,
) -> tuple[Link, Change]:
    return Link(record_id, to, link_type, confidence, match_result_id, linked_by=actor), Change(
        operation_id=operation_id,
        action=action,
        actor=actor,
        source_record_id=record_id,
        new_golden_id=to,
        match_result_id=match_result_id,
        reason=reason,
    )


class GoldenRecordService:
    def __init__(self, uow_factory: UowFactory, trust: Mapping[str, float] | None = None) -> None:
        self.uow_factory = uow_factory
        self.trust = dict(trust or {})

    # -- reads ---------------------------------------------------------------------------
    def get(self, golden_id: str) -> GoldenView:
        with self.uow_factory() as uow:
            return self._view(uow, golden_id)

    def with_sources(self, golden_id: str) -> tuple[GoldenView, list[StoredRecord]]:
        """The golden record and its source records, read in one transaction (consistent)."""
        with self.uow_factory() as uow:
            view = self._view(uow, golden_id)
            return view, uow.records.get_many(view.source_record_ids)

    def sources(self, golden_id: str) -> list[StoredRecord]:
        with self.uow_factory() as uow:
            self._require(uow, golden_id)
            return uow.records.get_many(uow.golden.sources_of(golden_id))

    def history(self, golden_id: str) -> list[Change]:
        with self.uow_factory() as uow:
            self._require(uow, golden_id)
            return uow.golden.changes(golden_id=golden_id)

    # -- changes -------------------------------------------------------------------------
    def merge(
        self,
        golden_ids: Iterable[str],
        *,
        actor: str,
        reason: str = "",
        dry_run: bool = False,
        expected_versions: Mapping[str, int] | None = None,
    ) -> ChangeReport:
        """`expected_versions`: the versions the caller read; a merge of a golden record that
        changed since is refused (ConflictError), not made on a view the caller never saw."""
        ids = list(dict.fromkeys(golden_ids))
        if len(ids) < 2:
            raise ConflictError("a merge needs at least two distinct golden records")
        with self.uow_factory() as uow:
            report = self.merge_in(
                uow, ids, actor=actor, reason=reason, expected_versions=expected_versions
            )
            return self._finish(uow, report, dry_run)

    def merge_in(
        self,
        uow: AbstractUnitOfWork,
        ids: list[str],
        *,
        actor: str,
        reason: str,
        expected_versions: Mapping[str, int] | None = None,
        tie: bool = True,
    ) -> ChangeReport:
        """Merge inside a caller's unit of work (the review service resolves through it).
        `tie`: every moved record gets a must-link to the survivor (a clerk's merge says
        the golden records are one person). A review passes False: its reviewer judged one
        pair, which it ties itself; the rest of the two clusters stays the model's call."""
        goldens = [self._require(uow, g, for_update=True) for g in sorted(ids)]
        for golden in goldens:
            if golden.status != "active":
                raise ConflictError(f"golden record {golden.golden_id} is {golden.status}")
            _check_version(golden, (expected_versions or {}).get(golden.golden_id))
        before = {g: self._view(uow, g) for g in ids}
        self._refuse_kept_apart(uow, [before[g].source_record_ids for g in ids])
        # the survivor is the first given; the others point to it
        survivor, others = ids[0], ids[1:]
        operation = new_operation_id()
        moved: list[int] = []
        anchor = next(iter(before[survivor].source_record_ids), None)
        for other in others:
            sources = before[other].source_record_ids  # none has moved yet
            for record_id in sources:
                move(
                    uow,
                    record_id,
                    survivor,
                    operation_id=operation,
                    action="merge",
                    actor=actor,
                    reason=reason,
                    link_type="manual_match",
                )
                moved.append(record_id)
            if anchor is not None and tie:
                # a human decision is sticky: later runs keep every moved record with the
                # survivor (a must-link each). A pair already tied keeps its own row, so the
                # merge's undo removes only what the merge added
                tied = uow.matches.constraints_for(anchor, sources)
                for record_id in (r for r in sources if r not in tied):
                    uow.matches.add_constraint(
                        anchor, record_id, "must_link", actor, reason, operation_id=operation
                    )
            golden = self._require(uow, other, for_update=True)
            uow.golden.record_change(
                Change(
                    operation_id=operation,
                    action="merge",
                    actor=actor,
                    old_golden_id=other,
                    new_golden_id=survivor,
                    old_status=golden.status,
                    reason=reason,
                )
            )
            golden.status, golden.merged_into = "merged", survivor
            uow.golden.save(golden)
        rebuild(uow, survivor, self.trust)
        for other in others:
            self._rebuild_merged(uow, other)
        return self._report(uow, operation, "merge", ids, moved, before)

    @staticmethod
    def _refuse_kept_apart(uow: AbstractUnitOfWork, members: list[list[int]]) -> None:
        """A merge never overrides a human's cannot-link between the records it joins (the
        source records of each golden record, in `members`): the constraint would contradict
        the merge, and undoing the merge could not restore it."""
        for i, records in enumerate(members[:-1]):
            later = [r for rs in members[i + 1 :] for r in rs]
            for record_id in records:
                kinds = uow.matches.constraints_for(record_id, later)
                apart = next((o for o, k in kinds.items() if k == "cannot_link"), None)
                if apart is not None:
                    raise ConflictError(
                        f"record {record_id} is kept apart from record {apart} by a"
                        " cannot-link (a reviewer's non-match or a split): a merge would"
                        " contradict it"
                    )

    def split(
        self,
        golden_id: str,
        record_ids: Iterable[int],
        *,
        actor: str,
        reason: str = "",
        dry_run: bool = False,
        expected_version: int | None = None,
    ) -> ChangeReport:
        """`expected_version`: as merge's `expected_versions`, for the one golden record."""
        with self.uow_factory() as uow:
            report = self.split_in(
                uow,
                golden_id,
                list(record_ids),
                actor=actor,
                reason=reason,
                expected_version=expected_version,
            )
            return self._finish(uow, report, dry_run)

    def split_in(
        self,
        uow: AbstractUnitOfWork,
        golden_id: str,
        record_ids: list[int],
        *,
        actor: str,
        reason: str,
        expected_version: int | None = None,
        keep_apart: bool = True,
    ) -> ChangeReport:
        """Split inside a caller's unit of work. `keep_apart`: a cannot-link between every
        moved and every staying record (a clerk's split says the two groups are different
        people). A review passes False, as merge_in's `tie`."""
        golden = self._require(uow, golden_id, for_update=True)
        if golden.status != "active":
            raise ConflictError(f"golden record {golden_id} is {golden.status}")
        _check_version(golden, expected_version)
        linked = uow.golden.sources_of(golden_id)
        moving = sorted(set(record_ids))
        strangers = [r for r in moving if r not in linked]
        if strangers or not moving:
            raise ConflictError(f"records {strangers or moving} are not linked to {golden_id}")
        staying = [r for r in linked if r not in moving]
        if not staying:
            raise ConflictError("a split must leave at least one record behind")
        before = {golden_id: self._view(uow, golden_id)}
        operation = new_operation_id()
        fresh = uow.golden.create()
        for record_id in moving:
            move(
                uow,
                record_id,
                fresh.golden_id,
                operation_id=operation,
                action="split",
                actor=actor,
                reason=reason,
                link_type="manual_split",
            )
            for other in staying if keep_apart else ():
                uow.matches.add_constraint(
                    record_id, other, "cannot_link", actor, reason, operation_id=operation
                )
        rebuild(uow, golden_id, self.trust)
        rebuild(uow, fresh.golden_id, self.trust)
        return self._report(uow, operation, "split", [golden_id, fresh.golden_id], moving, before)

    def undo(self, operation_id: str, *, actor: str, reason: str = "") -> ChangeReport:
        """Undo a merge or split from its link history: every change replayed backwards."""
        with self.uow_factory() as uow:
            changes = uow.golden.changes(operation_id=operation_id)
            if not changes:
                raise NotFoundError("operation", operation_id)
            if changes[0].action not in ("merge", "split"):
                raise ConflictError(f"a {changes[0].action} cannot be undone")
            touched = sorted({g for c in changes for g in (c.old_golden_id, c.new_golden_id) if g})
            before = {g: self._view(uow, g) for g in touched}
            for golden_id in touched:
                self._require(uow, golden_id, for_update=True)
            undo = new_operation_id()
            moved: list[int] = []
            for change in reversed(changes):
                if change.source_record_id is not None:
                    current = uow.golden.link_of(change.source_record_id)
                    if current is None or current.golden_id != change.new_golden_id:
                        raise ConflictError(
                            f"record {change.source_record_id} moved again since; undo those first"
                        )
                    target = change.old_golden_id
                    if target is None:  # pragma: no cover - merges and splits move linked records
                        raise ConflictError("this change has no earlier golden record")
                    move(
                        uow,
                        change.source_record_id,
                        target,
                        operation_id=undo,
                        action="undo",
                        actor=actor,
                        reason=reason or f"undo {operation_id}",
                        link_type="manual_match",
                    )
                    moved.append(change.source_record_id)
                elif change.old_status is not None and change.old_golden_id is not None:
                    golden = self._require(uow, change.old_golden_id, for_update=True)
                    golden.status, golden.merged_into = change.old_status, None
                    uow.golden.save(golden)
                    uow.golden.record_change(
                        Change(
                            operation_id=undo,
                            action="undo",
                            actor=actor,
                            old_golden_id=change.new_golden_id,
                            new_golden_id=change.old_golden_id,
                            old_status="merged",
                            reason=reason or f"undo {operation_id}",
                        )
                    )
            uow.matches.remove_constraints_of(operation_id)
            for golden_id in touched:
                golden = self._require(uow, golden_id)
                if golden.status != "merged":
                    rebuild(uow, golden_id, self.trust)
            report = self._report(uow, undo, "undo", touched, moved, before)
            return self._finish(uow, report, dry_run=False)

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _rebuild_merged(uow: AbstractUnitOfWork, golden_id: str) -> None:
        golden = uow.golden.get(golden_id, for_update=True)
        assert golden is not None
        golden.demographics, golden.medical_data, golden.source_count = {}, {}, 0
        uow.golden.save(golden)

    @staticmethod
    def _require(uow: AbstractUnitOfWork, golden_id: str, *, for_update: bool = False) -> Golden:
        golden = uow.golden.get(golden_id, for_update=for_update)
        if golden is None:
            raise NotFoundError("golden record", golden_id)
        return golden

    def _view(self, uow: AbstractUnitOfWork, golden_id: str) -> GoldenView:
        golden = self._require(uow, golden_id)
        return GoldenView(**golden.__dict__, source_record_ids=uow.golden.sources_of(golden_id))

    def _report(
        self,
        uow: AbstractUnitOfWork,
        operation: str,
        action: str,
        ids: list[str],
        moved: list[int],
        before: dict[str, GoldenView],
    ) -> ChangeReport:
        changes: list[FieldChange] = []
        for golden_id in ids:
            after = self._view(uow, golden_id).demographics
            old = before[golden_id].demographics if golden_id in before else {}
            for name in sorted(set(old) | set(after)):
                if old.get(name) != after.get(name):
                    changes.append(
                        FieldChange(
                            golden_id=golden_id,
                            field=name,
                            before=old.get(name),
                            after=after.get(name),
                        )
                    )
        return ChangeReport(
            operation_id=operation,
            action=action,
            dry_run=False,
            golden_ids=ids,
            records_moved=moved,
            field_changes=changes,
        )

    @staticmethod
    def _finish(uow: AbstractUnitOfWork, report: ChangeReport, dry_run: bool) -> ChangeReport:
        if dry_run:
            uow.rollback()
            return report.model_copy(update={"dry_run": True})
        uow.commit()
        return report
