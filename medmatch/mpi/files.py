"""The file adapter of the MPI's repositories (`base.py`): the architecture's "File Adapter
(Legacy/Dev)", used by the file CLI and to develop without PostgreSQL.

The whole MPI state lives in one JSON file. A unit of work holds the file exclusively from
`__enter__` to `__exit__` (a per-path lock between threads, `fcntl.flock` on `<path>.lock`
between processes), works on the state in memory and, on `commit()`, rewrites the file
atomically (a temporary file in the same folder, then `os.replace`).

Its semantics are those of the PostgreSQL adapters (`repositories.py`), the contract tests
(tests/mpi/test_contract.py) run against both. Its limits: one writer at a time, the whole
file is read per unit of work and rewritten per commit, searches are linear scans. It is
meant for development and file runs, not for a million records. Unlike PostgreSQL
sequences, id counters roll back with the transaction (ids still only increase).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Self

from medmatch.errors import ConflictError, NotFoundError
from medmatch.mpi import base
from medmatch.mpi.domain import (
    MATCH_ENTRY_FIELDS,
    Candidate,
    Change,
    Golden,
    Link,
    MatchEntry,
    Review,
    StoredRecord,
    ordered,
)

FORMAT = 1
_TABLES = ("records", "keys", "golden", "links", "matches", "constraints", "reviews", "answers")
_REVIEW_FIELDS = (
    "priority",
    "status",
    "assigned_to",
    "resolution",
    "resolver_notes",
    "resolved_by",
)


def _empty() -> dict[str, Any]:
    counters = {"record": 0, "golden": 0, "match": 0, "review": 0, "change": 0}
    return {"format": FORMAT, "last_id": counters, "changes": []} | {t: {} for t in _TABLES}


def _plain(value: Any) -> Any:
    """A JSON copy: what JSONB would store, never shared with the caller."""
    return json.loads(json.dumps(value))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _pair_key(a: int, b: int) -> str:
    return "{}:{}".format(*ordered(a, b))


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


class _PathLock:
    """One path's lock: a thread lock, plus the file lock while any thread of ours holds it."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self.thread_lock = threading.RLock()
        self.depth = 0  # changed only under thread_lock
        self.handle: IO[bytes] | None = None
        self.generation = 0  # commits in this process: a nested unit of work cannot lose one

    def acquire(self) -> None:
        self.thread_lock.acquire()
        try:
            if self.depth == 0:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                self.handle = open(self.lock_path, "ab")  # held until release()
                fcntl.flock(self.handle, fcntl.LOCK_EX)
            self.depth += 1
        except BaseException:
            self.thread_lock.release()
            raise

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
        self.thread_lock.release()


_LOCKS: dict[str, _PathLock] = {}
_LOCKS_GUARD = threading.Lock()


def _path_lock(path: Path) -> _PathLock:
    key = str(path.resolve())
    with _LOCKS_GUARD:
        if key not in _LOCKS:
            _LOCKS[key] = _PathLock(Path(key + ".lock"))
        return _LOCKS[key]


class _Repository:
    def __init__(self, uow: FileUnitOfWork) -> None:
        self.uow = uow

    @property
    def s(self) -> dict[str, Any]:
        return self.uow.state

    def _next_id(self, counter: str) -> int:
        self.s["last_id"][counter] += 1
        return self.s["last_id"][counter]

    def _require(self, table: str, *ids: int | str | None) -> None:
        """The foreign keys PostgreSQL enforces (no patient data in the message)."""
        for i in ids:
            if i is not None and str(i) not in self.s[table]:
                raise ValueError(f"integrity: no row {i} in {table}")

    def _pair(self, a: int, b: int) -> tuple[int, int]:
        """The ordered pair; both records must exist and differ (PostgreSQL's checks)."""
        self._require("records", a, b)
        if a == b:
            raise ValueError("integrity: a pair needs two different records")
        return ordered(a, b)

    def _record(self, row: dict[str, Any]) -> StoredRecord:
        link = self.s["links"].get(str(row["id"]))
        return StoredRecord(
            id=row["id"],
            source_system=row["source_system"],
            external_id=row["external_id"],
            demographics=_plain(row["demographics"]),
            medical_data=_plain(row["medical_data"]),
            features=_plain(row["features"]) | {"unique_id": str(row["id"])},
            golden_id=link["golden_id"] if link else None,
            received_at=_time(row["received_at"]),
            updated_at=_time(row["updated_at"]),
        )


class FileSourceRecords(_Repository, base.SourceRecordRepository):
    def upsert(
        self,
        source_system: str,
        external_id: str | None,
        demographics: dict[str, Any],
        medical_data: dict[str, Any],
        features: dict[str, Any],
    ) -> tuple[StoredRecord, bool]:
        values = {
            "demographics": _plain(demographics),
            "medical_data": _plain(medical_data),
            "features": _plain({k: v for k, v in features.items() if k != "unique_id"}),
        }
        records = self.s["records"]
        row = None
        if external_id is not None:
            row = next(
                (
                    r
                    for r in records.values()
                    if r["source_system"] == source_system and r["external_id"] == external_id
                ),
                None,
            )
        if row is not None:
            row |= values | {"updated_at": _now()}
            return self._record(row), False
        record_id = self._next_id("record")
        now = _now()
        row = {"id": record_id, "source_system": source_system, "external_id": external_id}
        records[str(record_id)] = row | values | {"received_at": now, "updated_at": now}
        return self._record(records[str(record_id)]), True

    def get(self, record_id: int) -> StoredRecord | None:
        row = self.s["records"].get(str(record_id))
        return self._record(row) if row else None

    def find(self, source_system: str, external_id: str) -> StoredRecord | None:
        row = next(
            (
                r
                for r in self.s["records"].values()
                if r["source_system"] == source_system and r["external_id"] == external_id
            ),
            None,
        )
        return self._record(row) if row else None

    def get_many(self, record_ids: Iterable[int]) -> list[StoredRecord]:
        rows = (self.s["records"].get(str(i)) for i in sorted(set(record_ids)))
        return [self._record(r) for r in rows if r]

    def linked_to(self, golden_id: str) -> list[StoredRecord]:
        return self.get_many(
            int(r) for r, link in self.s["links"].items() if link["golden_id"] == golden_id
        )

    def replace_keys(self, record_id: int, keys: Iterable[str], *, new: bool = False) -> None:
        self._require("records", record_id)
        self.s["keys"][str(record_id)] = sorted(set(keys))

    def candidates(self, keys: Iterable[str], exclude: int, limit: int) -> list[Candidate]:
        wanted = set(keys)
        ids = sorted(
            int(rid)
            for rid, own in self.s["keys"].items()
            if int(rid) != exclude and wanted.intersection(own)
        )
        records = self.get_many(ids[: max(limit, 0)])
        return [Candidate(r.id, r.features, r.golden_id) for r in records]


def _golden(row: dict[str, Any]) -> Golden:
    fields = ("golden_id", "status", "merged_into", "source_count", "version")
    return Golden(
        **{f: row[f] for f in fields},
        demographics=_plain(row["demographics"]),
        medical_data=_plain(row["medical_data"]),
    )


class FileGoldenRecords(_Repository, base.GoldenRecordRepository):
    def create(self) -> Golden:
        golden = Golden(f"GR-{self._next_id('golden'):06d}")
        now = _now()
        self.s["golden"][golden.golden_id] = _plain(golden.__dict__) | {
            "created_at": now,
            "updated_at": now,
        }
        return golden

    def get(self, golden_id: str, *, for_update: bool = False) -> Golden | None:
        # for_update needs nothing: the unit of work holds the whole file
        row = self.s["golden"].get(golden_id)
        return _golden(row) if row else None

    def save(self, golden: Golden) -> None:
        row = self.s["golden"].get(golden.golden_id)
        if row is None or row["version"] != golden.version:
            raise ConflictError(
                f"golden record {golden.golden_id} changed since it was read (or is gone)"
            )
        self._require("golden", golden.merged_into)
        row |= {
            "status": golden.status,
            "merged_into": golden.merged_into,
            "demographics": _plain(golden.demographics),
            "medical_data": _plain(golden.medical_data),
            "source_count": golden.source_count,
            "version": row["version"] + 1,
            "updated_at": _now(),
        }
        golden.version += 1

    def set_link(self, link: Link) -> str | None:
        self._require("records", link.source_record_id)
        self._require("golden", link.golden_id)
        self._require("matches", link.match_result_id)
        key = str(link.source_record_id)
        old = self.s["links"].get(key)
        row = _plain(link.__dict__) | {"confidence": _float(link.confidence), "linked_at": _now()}
        self.s["links"][key] = row
        return old["golden_id"] if old else None

    def link_of(self, record_id: int) -> Link | None:
        row = self.s["links"].get(str(record_id))
        if row is None:
            return None
        return Link(**{k: v for k, v in row.items() if k != "linked_at"})

    def sources_of(self, golden_id: str) -> list[int]:
        return sorted(
            int(r) for r, link in self.s["links"].items() if link["golden_id"] == golden_id
        )

    def record_change(self, change: Change) -> None:
        # an audit row: it may name what is gone (no reference checks, as migration 0006)
        row = _plain({k: v for k, v in change.__dict__.items() if k != "created_at"})
        self.s["changes"].append(row | {"id": self._next_id("change"), "created_at": _now()})

    def changes(
        self, *, operation_id: str | None = None, golden_id: str | None = None
    ) -> list[Change]:
        rows = self.s["changes"]  # appended in id order: oldest first
        if operation_id is not None:
            rows = [r for r in rows if r["operation_id"] == operation_id]
        if golden_id is not None:
            rows = [r for r in rows if golden_id in (r["old_golden_id"], r["new_golden_id"])]
        return [
            Change(
                **{k: v for k, v in r.items() if k not in ("id", "created_at")},
                created_at=_time(r["created_at"]),
            )
            for r in rows
        ]


class FileMatches(_Repository, base.MatchRepository):
    def add(self, entry: MatchEntry) -> int:
        # an audit row: it may name what is gone (no reference checks, as migration 0006)
        row = _plain({f: getattr(entry, f) for f in MATCH_ENTRY_FIELDS})
        row["confidence"] = float(row["confidence"])
        row["medical_similarity"] = _float(row["medical_similarity"])
        entry.id = self._next_id("match")
        self.s["matches"][str(entry.id)] = row | {"id": entry.id, "created_at": _now()}
        return entry.id

    def for_record(self, record_id: int) -> list[MatchEntry]:
        rows = sorted(
            (
                r
                for r in self.s["matches"].values()
                if record_id in (r["source_record_id"], r["candidate_record_id"])
            ),
            key=lambda r: r["id"],
        )
        return [
            MatchEntry(**{f: _plain(r[f]) for f in MATCH_ENTRY_FIELDS}, id=r["id"]) for r in rows
        ]

    def add_constraint(
        self,
        a: int,
        b: int,
        kind: str,
        actor: str,
        reason: str = "",
        operation_id: str | None = None,
    ) -> None:
        self.s["constraints"][_pair_key(*self._pair(a, b))] = {
            "kind": kind,
            "created_by": actor,
            "reason": reason,
            "operation_id": operation_id,
            "created_at": _now(),
        }

    def remove_constraint(self, a: int, b: int) -> None:
        self.s["constraints"].pop(_pair_key(a, b), None)

    def remove_constraints_of(self, operation_id: str) -> int:
        constraints = self.s["constraints"]
        mine = [k for k, v in constraints.items() if v.get("operation_id") == operation_id]
        for key in mine:
            del constraints[key]
        return len(mine)

    def constraints_for(self, record_id: int, others: Iterable[int]) -> dict[int, str]:
        found = {}
        for other in others:
            row = self.s["constraints"].get(_pair_key(record_id, other))
            if row is not None and other != record_id:
                found[other] = row["kind"]
        return found

    def must_linked(self, record_id: int) -> bool:
        return any(
            row["kind"] == "must_link" and str(record_id) in key.split(":")
            for key, row in self.s["constraints"].items()
        )


def _review(row: dict[str, Any]) -> Review:
    return Review(
        id=row["id"],
        record_id_1=row["record_id_1"],
        record_id_2=row["record_id_2"],
        match_result_id=row["match_result_id"],
        **{f: row[f] for f in _REVIEW_FIELDS},
        created_at=_time(row["created_at"]),
    )


class FileReviews(_Repository, base.ReviewRepository):
    def enqueue(self, a: int, b: int, priority: int, match_result_id: int | None) -> Review | None:
        first, second = self._pair(a, b)
        self._require("matches", match_result_id)
        for row in self.s["reviews"].values():
            if (row["record_id_1"], row["record_id_2"]) == (first, second):
                if row["status"] != "resolved":
                    return None
        review_id = self._next_id("review")
        self.s["reviews"][str(review_id)] = {
            "id": review_id,
            "record_id_1": first,
            "record_id_2": second,
            "match_result_id": match_result_id,
            **dict.fromkeys(_REVIEW_FIELDS),
            "priority": priority,
            "status": "pending",
            "assigned_at": None,
            "resolved_at": None,
            "created_at": _now(),
        }
        return self.get(review_id)

    def get(self, review_id: int, *, for_update: bool = False) -> Review | None:
        row = self.s["reviews"].get(str(review_id))
        return _review(row) if row else None

    def _pending(self) -> list[dict[str, Any]]:
        rows = (r for r in self.s["reviews"].values() if r["status"] == "pending")
        return sorted(rows, key=lambda r: (-r["priority"], r["id"]))

    def pending(self, limit: int = 50, offset: int = 0) -> list[Review]:
        return [_review(r) for r in self._pending()[offset : offset + limit]]

    def claim(self, review_id: int | None, reviewer: str) -> Review | None:
        # no other reviewer can be claiming: the unit of work holds the whole file
        rows = [r for r in self._pending() if review_id is None or r["id"] == review_id]
        if not rows:
            return None
        rows[0] |= {"status": "assigned", "assigned_to": reviewer, "assigned_at": _now()}
        return _review(rows[0])

    def save(self, review: Review) -> None:
        row = self.s["reviews"].get(str(review.id))
        if row is None:
            raise NotFoundError("review item", review.id)
        row |= {f: getattr(review, f) for f in _REVIEW_FIELDS}
        row["resolved_at"] = _now() if review.status == "resolved" else None

    def resolved(self) -> list[Review]:
        rows = sorted(self.s["reviews"].values(), key=lambda r: r["id"])
        return [_review(r) for r in rows if r["status"] == "resolved"]


class FileAnswers(_Repository, base.AnswerRepository):
    def get(self, key: str) -> dict[str, Any] | None:
        row = self.s["answers"].get(key)
        return _plain(row["answer"]) if row else None

    def put(self, key: str, adjudicator: str, answer: dict[str, Any]) -> None:
        if key not in self.s["answers"]:  # the first answer stays, like ON CONFLICT DO NOTHING
            self.s["answers"][key] = {
                "adjudicator": adjudicator,
                "answer": _plain(answer),
                "created_at": _now(),
            }


class FileUnitOfWork(base.AbstractUnitOfWork):
    """One transaction on the MPI file at `path`: exclusive from `__enter__` to `__exit__`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records = FileSourceRecords(self)
        self.golden = FileGoldenRecords(self)
        self.matches = FileMatches(self)
        self.reviews = FileReviews(self)
        self.answers = FileAnswers(self)
        self._state: dict[str, Any] | None = None

    @property
    def state(self) -> dict[str, Any]:
        if self._state is None:
            raise RuntimeError("the unit of work is not open: use it in a with block")
        return self._state

    def __enter__(self) -> Self:
        self._lock = _path_lock(self.path)
        self._lock.acquire()
        try:
            self._load()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._state = None  # leaving without commit discards the changes
        self._lock.release()

    def _load(self) -> None:
        self._generation = self._lock.generation
        if not self.path.exists():
            self._state = _empty()
            return
        with open(self.path, encoding="utf-8") as f:
            state = json.load(f)
        if state.get("format") != FORMAT:
            raise ValueError(f"unsupported MPI file format: {state.get('format')!r}")
        self._state = state

    def commit(self) -> None:
        if self._generation != self._lock.generation:
            # a nested unit of work on this path committed meanwhile: do not overwrite it
            raise RuntimeError("the MPI file changed since this unit of work loaded it")
        data = json.dumps(self.state, ensure_ascii=False, separators=(",", ":"))
        # mkstemp creates the file private (0600): it holds patient data
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
        self._lock.generation += 1
        self._generation = self._lock.generation

    def rollback(self) -> None:
        self._load()  # the file holds what was last committed: we hold its lock

    def lock(self, names: Iterable[str]) -> None:
        # nothing to do: the unit of work already holds the whole file exclusively
        return None
