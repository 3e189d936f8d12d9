"""Real-time lookup: one record in, a decision and its golden record out, in one transaction.

store the source record (idempotent) -> its blocking keys -> candidates from the key index
-> the real-time scorer, rules, reviewer constraints, adjudicators (within a time budget)
-> link (auto_match), queue for review (review_required) or a new golden record
(new_identity) -> the decided pairs and the comparisons at or above the pair floor in
match_results (as a batch run keeps them) -> survivorship of the touched record.

Writers of one identity take turns: the lookup holds advisory locks on the record's blocking
keys and source identity until it commits, so 60 systems sending one new patient at once
leave one golden record, and a record re-sent 40 times at once stays one source record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from medmatch.config import MatchThresholds, Settings, get_settings
from medmatch.data.features import record_features
from medmatch.data.models import PatientRecord
from medmatch.matching import PatientMatcher, key_strings
from medmatch.matching.adjudication import (
    Adjudication,
    Adjudicator,
    PairSet,
    Verdict,
    lowest_probability_to_score,
)
from medmatch.matching.decisions import Decision, Stage
from medmatch.matching.result import MatchResult
from medmatch.mpi.base import AbstractUnitOfWork
from medmatch.mpi.domain import Candidate, Change, Golden, Link, MatchEntry, StoredRecord
from medmatch.mpi.services.golden import move, move_and_lock, new_operation_id, rebuild
from medmatch.mpi.survivorship import survive

UowFactory = Callable[[], AbstractUnitOfWork]
DB_DECISION = {
    Decision.AUTO_MATCH: "auto_match",
    Decision.REVIEW_REQUIRED: "review_required",
    Decision.NO_MATCH: "new_identity",
}
# the links a human made (a merge, a split, a confirmed review): a re-send does not undo them
HUMAN_LINKS = frozenset({"manual_match", "manual_split"})


class LookupResult(BaseModel):
    decision: str  # auto_match | review_required | new_identity
    source_record_id: int
    golden_record_id: str
    confidence: float
    match_type: str
    stage: str
    explanation: str
    created: bool  # a new source record (False: a re-send updated it)
    candidates_scored: int
    review_ids: list[int]
    model_version: str


class _Budgeted:
    """An adjudicator that stops answering once the lookup's time budget is spent: the pair
    then goes to review (a failed answer), the lookup never waits past it."""

    def __init__(self, inner: Adjudicator, deadline: float) -> None:
        self.inner, self.deadline = inner, deadline
        self.name: str = inner.name
        self.pairs: frozenset[PairSet] = inner.pairs
        self.weights: Mapping[Verdict, float] = inner.weights

    def adjudicate(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> Adjudication | None:
        if time.monotonic() > self.deadline:
            return Adjudication(
                Verdict.UNSURE,
                0.0,
                "AI adjudication skipped: lookup time budget spent",
                0.0,
                self.name,
                failed=True,
            )
        return self.inner.adjudicate(left, right)


def review_priority(confidence: float, thresholds: MatchThresholds) -> int:
    """1-10: the closer to the auto-match threshold, the sooner a human should look."""
    span = max(thresholds.auto_match - thresholds.review, 1e-9)
    share = min(max((confidence - thresholds.review) / span, 0.0), 1.0)
    return 1 + round(9 * share)


class MatchingService:
    def __init__(
        self,
        uow_factory: UowFactory,
        matcher: PatientMatcher | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.settings = settings or get_settings()
        self.matcher = matcher or PatientMatcher()
        self.thresholds = self.matcher.thresholds
        self._thresholds_row = self.thresholds.model_dump()  # stored with every comparison
        self._floor = lowest_probability_to_score(
            self.thresholds.pair_floor, self.matcher.adjudicators
        )

    def lookup(self, record: PatientRecord, *, actor: str = "lookup") -> LookupResult:
        features = record_features(record.model_copy(update={"record_id": "new"}))
        keys = key_strings(features)
        demographics = record.demographics.model_dump(mode="json", exclude_none=True)
        medical = record.medical_data.model_dump(mode="json")
        identity = (
            [f"source:{record.source_system}\x1f{record.external_id}"] if record.external_id else []
        )
        limit = self.settings.lookup_max_candidates
        with self.uow_factory() as uow:
            # the locks first, in a statement of their own: the candidate search must run on
            # a snapshot taken after them, or it would miss a writer it waited for
            uow.lock([f"key:{k}" for k in keys] + identity)
            found = uow.records.store_and_search(
                record.source_system,
                record.external_id,
                demographics,
                medical,
                features,
                keys,
                limit,
            )
            if found is None:
                # the same record sent again, unchanged: its decision stands, nothing new
                assert record.external_id is not None  # only a known identity is a re-send
                known = uow.records.find(record.source_system, record.external_id)
                if known is not None and known.golden_id is not None:
                    return self._unchanged(uow, known)
                stored, created = uow.records.upsert(
                    record.source_system, record.external_id, demographics, medical, features
                )
                uow.records.replace_keys(stored.id, keys, new=created)
                candidates = uow.records.candidates(keys, exclude=stored.id, limit=limit)
            else:
                stored, created, candidates = found
                if not created:  # a new record's keys were stored with it
                    uow.records.replace_keys(stored.id, keys)
            result = self._decide(uow, stored, created, candidates, actor)
            uow.commit()
            return result

    # -- the decision --------------------------------------------------------------------
    def _decide(
        self,
        uow: AbstractUnitOfWork,
        stored: StoredRecord,
        created: bool,
        candidates: list[Candidate],
        actor: str,
    ) -> LookupResult:
        thresholds = self.thresholds
        # a new record cannot be under a reviewer's constraint yet
        constraints = (
            uow.matches.constraints_for(stored.id, [c.id for c in candidates])
            if candidates and not created
            else {}
        )
        current = None if created else uow.golden.link_of(stored.id)
        # a human's link (a merge, a split, a confirmed review, a must-link) holds: a re-send
        # may join records to it, never take the record elsewhere, as batch runs keep it
        held = (
            current.golden_id
            if current is not None
            and (current.link_type in HUMAN_LINKS or uow.matches.must_linked(stored.id))
            else None
        )
        deadline = time.monotonic() + self.settings.lookup_ai_budget_s
        judges = [_Budgeted(a, deadline) for a in self.matcher.adjudicators]
        scored: list[tuple[Candidate, MatchResult, Decision]] = []
        for candidate in candidates:
            outcome = self.matcher.match_features(
                stored.features,
                candidate.features,
                judges,
                floor=self._floor,
                # a constrained pair is stored whatever its score; the others below the
                # floor are not (one may still be shown: explained then, below)
                explain_below_floor=candidate.id in constraints,
            )
            decision = outcome.decision
            kind = constraints.get(candidate.id)
            if kind == "cannot_link":
                decision = Decision.NO_MATCH
            elif kind == "must_link":
                decision = Decision.AUTO_MATCH
            if held and decision is Decision.AUTO_MATCH and candidate.golden_id != held:
                decision = Decision.REVIEW_REQUIRED  # a human decides between the two
            scored.append((candidate, outcome, decision))
        # as in a batch run: every decided pair, and every comparison at or above the floor
        kept = [
            (c, r, d)
            for c, r, d in scored
            if d is not Decision.NO_MATCH
            or r.confidence >= thresholds.pair_floor
            or c.id in constraints
        ]
        ids = uow.matches.add_many([self._entry(stored, c, r, d) for c, r, d in kept])
        entries = {c.id: i for (c, _, _), i in zip(kept, ids, strict=True)}
        target, best = self._target(scored, current.golden_id if current else None)
        reviews: list[int] = []
        operation = new_operation_id()
        touched = {current.golden_id} if current else set()
        built = None  # a golden record written with its survivorship: no rebuild
        locked = None  # the target, when it was read for update with its link
        if target is not None:
            decision, confidence = Decision.AUTO_MATCH, best[1].confidence
            how: dict[str, Any] = {
                "operation_id": operation,
                "action": "lookup",
                "actor": actor,
                "reason": "matched on lookup",
                "link_type": "auto_match",
                "confidence": confidence,
                "match_result_id": entries[best[0].id],
            }
            if current is None:
                # the only golden record this lookup touches: locked with the link
                locked = move_and_lock(uow, stored.id, target, **how)
            elif current.golden_id != target:
                move(uow, stored.id, target, **how)
        elif current is not None:
            # a re-send that no longer matches anyone keeps its identity: only a human splits
            decision, confidence = Decision.NO_MATCH, 1.0
            target = current.golden_id
        else:
            # a new identity of this one record: its survivorship is known before the write
            demographics, medical = survive([stored], self.settings.source_trust)
            target = uow.golden.create_linked(
                Golden("", demographics=demographics, medical_data=medical, source_count=1),
                Link(stored.id, "", "new_identity", None, None, linked_by=actor),
                Change(
                    operation_id=operation,
                    action="lookup",
                    actor=actor,
                    source_record_id=stored.id,
                    reason="no match: new identity",
                ),
            )
            decision, confidence = Decision.NO_MATCH, 1.0
            built = target
        touched.add(target)
        for candidate, outcome, cand_decision in scored:
            if cand_decision is Decision.REVIEW_REQUIRED and candidate.golden_id != target:
                item = uow.reviews.enqueue(
                    stored.id,
                    candidate.id,
                    review_priority(outcome.confidence, thresholds),
                    entries[candidate.id],
                )
                if item is not None:
                    reviews.append(item.id)
        if reviews and decision is Decision.NO_MATCH:
            decision = Decision.REVIEW_REQUIRED
        for golden_id in sorted(touched - {built}):
            mine = locked if locked is not None and locked.golden_id == golden_id else None
            rebuild(uow, golden_id, self.settings.source_trust, locked=mine)
        shown = best[1] if best else self._closest(stored, scored)
        return LookupResult(
            decision=DB_DECISION[decision],
            source_record_id=stored.id,
            golden_record_id=target,
            confidence=confidence if best else (shown.confidence if shown else 0.0),
            match_type=best[1].match_type.value if best else "no_match",
            stage=shown.stage.value if shown else "scoring",
            explanation=shown.explanation if shown else "No candidate shares a blocking key",
            created=created,
            candidates_scored=len(scored),
            review_ids=reviews,
            model_version=self.matcher.model.version,
        )

    def _closest(
        self, stored: StoredRecord, scored: Sequence[tuple[Candidate, MatchResult, Decision]]
    ) -> MatchResult | None:
        """The closest candidate's result, explained (scored below the floor, it was not)."""
        if not scored:
            return None
        candidate, outcome, _ = max(scored, key=lambda s: s[1].confidence)
        if outcome.explanation:
            return outcome
        return self.matcher.match_features(
            stored.features, candidate.features, (), floor=self._floor
        )

    def _unchanged(self, uow: AbstractUnitOfWork, known: StoredRecord) -> LookupResult:
        link = uow.golden.link_of(known.id)
        assert link is not None and known.golden_id is not None
        return LookupResult(
            decision=DB_DECISION[Decision.NO_MATCH]
            if link.link_type == "new_identity"
            else "auto_match",
            source_record_id=known.id,
            golden_record_id=known.golden_id,
            confidence=link.confidence if link.confidence is not None else 1.0,
            match_type="exact",
            stage="rules",
            explanation="Rule same_source_record: sent again unchanged; its link stands",
            created=False,
            candidates_scored=0,
            review_ids=[],
            model_version=self.matcher.model.version,
        )

    @staticmethod
    def _target(
        scored: Sequence[tuple[Candidate, MatchResult, Decision]], current: str | None
    ) -> tuple[str | None, tuple[Candidate, MatchResult] | None]:
        """The golden record to link to: the best auto-match whose golden record holds no
        record this one must be kept apart from (a hard-negative rule or a cannot-link)."""
        apart = {
            c.golden_id
            for c, r, d in scored
            if d is Decision.NO_MATCH and (r.stage is Stage.RULES or r.decision is not d)
        }
        best: tuple[Candidate, MatchResult] | None = None
        for candidate, outcome, decision in scored:
            if decision is not Decision.AUTO_MATCH or candidate.golden_id is None:
                continue
            if candidate.golden_id in apart:
                continue
            if best is None or outcome.confidence > best[1].confidence:
                best = (candidate, outcome)
        if best is None:
            return None, None
        return best[0].golden_id, best

    def _entry(
        self,
        stored: StoredRecord,
        candidate: Candidate,
        outcome: MatchResult,
        decision: Decision,
    ) -> MatchEntry:
        return MatchEntry(
            source_record_id=stored.id,
            candidate_record_id=candidate.id,
            is_match=decision is Decision.AUTO_MATCH,
            confidence=outcome.confidence,
            match_type=outcome.match_type.value,
            decision=DB_DECISION[decision],
            stage=outcome.stage.value,
            explanation=outcome.explanation,
            evidence=outcome.evidence,
            model_version=outcome.model_version,
            thresholds=self._thresholds_row,
            medical_similarity=outcome.medical_similarity,
            ai_reasoning=outcome.ai_reasoning,
        )
