"""The MPI's ports: abstract repositories and the unit of work that holds them.

Two adapters implement them: PostgreSQL (`repositories.py`, `unit_of_work.py`) and files
(`files.py`, the architecture's "File Adapter (Legacy/Dev)"). One contract test suite
(tests/mpi/test_contract.py) runs against both.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, Self

from medmatch.errors import NotFoundError
from medmatch.mpi.domain import Candidate, Change, Golden, Link, MatchEntry, Review, StoredRecord


class SourceRecordRepository(abc.ABC):
    @abc.abstractmethod
    def upsert(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
    ) -> tuple[StoredRecord, bool]:
        """Store a record; a re-send (same source_system + external_id) updates it.
        Returns the record and whether it is new. Without external_id it is always new."""

    def upsert_if_changed(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
    ) -> tuple[StoredRecord, bool] | None:
        """`upsert`, except that a re-send holding the demographics and medical data already
        stored writes nothing and returns None (one statement where the backend can)."""
        if external_id is not None:
            known = self.find(source_system, external_id)
            if (
                known is not None
                and known.demographics == demographics
                and known.medical_data == medical_data
            ):
                return None
        return self.upsert(source_system, external_id, demographics, medical_data, features)

    @abc.abstractmethod
    def get(self, record_id: int) -> StoredRecord | None: ...

    @abc.abstractmethod
    def find(self, source_system: str, external_id: str) -> StoredRecord | None:
        """The record a source system knows by this id, if stored."""

    @abc.abstractmethod
    def get_many(self, record_ids: Iterable[int]) -> list[StoredRecord]: ...

    @abc.abstractmethod
    def linked_to(self, golden_id: str) -> list[StoredRecord]:
        """The records linked to a golden record now, by id."""

    @abc.abstractmethod
    def replace_keys(self, record_id: int, keys: Iterable[str], *, new: bool = False) -> None:
        """The record's blocking-key strings (`medmatch.matching.key_strings`); `new`: the
        record was just created, so it has none to drop."""

    @abc.abstractmethod
    def candidates(self, keys: Iterable[str], exclude: int, limit: int) -> list[Candidate]:
        """Records sharing a blocking key with `keys` (the indexed real-time search): their
        feature rows and golden_id; at most `limit`, the lowest ids first."""

    def store_and_search(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
        keys: Iterable[str],
        limit: int,
    ) -> tuple[StoredRecord, bool, list[Candidate]] | None:
        """`upsert_if_changed`, then a new record's blocking keys, then its `candidates`
        (None: an unchanged re-send). A re-send's keys are left to `replace_keys`. One round
        trip where the backend can: the real-time lookup's first write and its read."""
        keys = list(keys)
        stored = self.upsert_if_changed(
            source_system, external_id, demographics, medical_data, features
        )
        if stored is None:
            return None
        record, created = stored
        if created:
            self.replace_keys(record.id, keys, new=True)
        return record, created, self.candidates(keys, exclude=record.id, limit=limit)


class GoldenRecordRepository(abc.ABC):
    @abc.abstractmethod
    def create(self) -> Golden: ...

    @abc.abstractmethod
    def get(self, golden_id: str, *, for_update: bool = False) -> Golden | None: ...

    @abc.abstractmethod
    def save(self, golden: Golden) -> None:
        """Write status, merged_into, survivorship and source_count; bumps the version.
        Raises ConflictError when the stored version is not the one read (or it is gone)."""

    @abc.abstractmethod
    def set_link(self, link: Link) -> str | None:
        """Link a source record to a golden record (replacing its link); the old golden_id."""

    @abc.abstractmethod
    def link_of(self, record_id: int) -> Link | None: ...

    @abc.abstractmethod
    def sources_of(self, golden_id: str) -> list[int]: ...

    @abc.abstractmethod
    def record_change(self, change: Change) -> None: ...

    def move_link_locking(self, link: Link, change: Change) -> tuple[str | None, Golden]:
        """`move_link`, and the golden record it links to, read for update (its rebuild
        follows); one round trip where the backend can. NotFoundError if it is gone."""
        old = self.move_link(link, change)
        golden = self.get(link.golden_id, for_update=True)
        if golden is None:
            raise NotFoundError("golden record", link.golden_id)
        return old, golden

    def create_linked(self, golden: Golden, link: Link, change: Change) -> str:
        """A new golden record holding `golden`'s content (its survivorship, computed by the
        caller) and the first link of a record that has none yet, with its change; one
        round trip where the backend can. The new golden_id (also set on all three)."""
        created = self.create()
        golden.golden_id = link.golden_id = change.new_golden_id = created.golden_id
        golden.version = created.version
        self.move_link(link, change)
        self.save(golden)
        return created.golden_id

    def move_link(self, link: Link, change: Change) -> str | None:
        """`set_link` and `record_change` of its change (old_golden_id filled in from the
        link it replaced), one round trip where the backend can; the old golden_id."""
        change.old_golden_id = self.set_link(link)
        self.record_change(change)
        return change.old_golden_id

    @abc.abstractmethod
    def changes(
        self, *, operation_id: str | None = None, golden_id: str | None = None
    ) -> list[Change]:
        """Link history, oldest first: of one operation, or touching one golden record."""


class MatchRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, entry: MatchEntry) -> int: ...

    def add_many(self, entries: list[MatchEntry]) -> list[int]:
        """Several at once (one statement where the backend can); ids in order."""
        return [self.add(e) for e in entries]

    @abc.abstractmethod
    def for_record(self, record_id: int) -> list[MatchEntry]: ...

    @abc.abstractmethod
    def add_constraint(
        self,
        a: int,
        b: int,
        kind: str,
        actor: str,
        reason: str = "",
        operation_id: str | None = None,
    ) -> None:
        """must_link or cannot_link; a later one for the same pair replaces it. A merge or
        split names itself (`operation_id`) so its undo removes what it added, nothing else."""

    @abc.abstractmethod
    def remove_constraint(self, a: int, b: int) -> None: ...

    @abc.abstractmethod
    def remove_constraints_of(self, operation_id: str) -> int:
        """Remove the constraints an operation added; how many."""

    @abc.abstractmethod
    def constraints_for(self, record_id: int, others: Iterable[int]) -> dict[int, str]:
        """other record id -> constraint kind, for the pairs (record_id, other)."""

    @abc.abstractmethod
    def must_linked(self, record_id: int) -> bool:
        """Whether a human tied this record to another (a must-link with any record)."""


class ReviewRepository(abc.ABC):
    @abc.abstractmethod
    def enqueue(self, a: int, b: int, priority: int, match_result_id: int | None) -> Review | None:
        """Queue a pair; None when an open item for the pair exists already."""

    @abc.abstractmethod
    def get(self, review_id: int, *, for_update: bool = False) -> Review | None: ...

    @abc.abstractmethod
    def pending(self, limit: int = 50, offset: int = 0) -> list[Review]:
        """Items waiting for a reviewer (status pending: not assigned, not resolved), highest
        priority first, oldest first within a priority."""

    @abc.abstractmethod
    def claim(self, review_id: int | None, reviewer: str) -> Review | None:
        """Assign a pending item (or the next one) to `reviewer`; never one another reviewer
        holds or is claiming right now."""

    @abc.abstractmethod
    def save(self, review: Review) -> None:
        """Raises NotFoundError for an item that does not exist."""

    @abc.abstractmethod
    def resolved(self) -> list[Review]: ...


class AnswerRepository(abc.ABC):
    """The adjudicators' answers by question key."""

    @abc.abstractmethod
    def get(self, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def put(self, key: str, adjudicator: str, answer: dict[str, Any]) -> None: ...


class AbstractUnitOfWork(abc.ABC):
    """One transaction: `with uow: ...; uow.commit()`. Leaving the block without commit
    rolls back."""

    records: SourceRecordRepository
    golden: GoldenRecordRepository
    matches: MatchRepository
    reviews: ReviewRepository
    answers: AnswerRepository

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...

    @abc.abstractmethod
    def lock(self, names: Iterable[str]) -> None:
        """Hold these names until the transaction ends: writers of one patient's identity
        (their blocking keys, their source identity) take turns."""
