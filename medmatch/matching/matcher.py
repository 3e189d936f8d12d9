"""PatientMatcher: the library's front door for pairs and whole tables."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from medmatch.config import MatchThresholds, get_settings
from medmatch.data.features import record_features, table_features
from medmatch.data.models import PatientRecord, parse_record
from medmatch.matching import batch
from medmatch.matching.adjudication import (
    Adjudicator,
    Tally,
    choose,
    decide_after,
    lowest_probability_to_score,
)
from medmatch.matching.decisions import Decision, Stage, decide
from medmatch.matching.explain import sentence, waterfall
from medmatch.matching.model import MatchModel
from medmatch.matching.realtime import RealtimeScorer, weight_to_probability
from medmatch.matching.result import MatchResult
from medmatch.matching.rules import evaluate_rules, exact_rule, rule_decision

RecordInput = PatientRecord | Mapping[str, Any]
Progress = Callable[[str, float], None]


def as_record(data: RecordInput) -> PatientRecord:
    """A PatientRecord, or a dict shaped like the lookup body ({"demographics": {...}, ...})."""
    if isinstance(data, PatientRecord):
        return data
    record, _ = parse_record(data, phone_region=get_settings().default_phone_region)
    return record


class PatientMatcher:
    """Match two records, or dedupe and link whole tables, with one trained model.

    `adjudicator` is the optional `ai` stage, one adjudicator or several in order of
    preference: the first that wants a pair (its `pairs`) judges it, and the verdict's
    weight is added to the model's.
    """

    def __init__(
        self,
        model: MatchModel | str | Path | None = None,
        *,
        thresholds: MatchThresholds | None = None,
        adjudicator: Adjudicator | Sequence[Adjudicator] | None = None,
    ) -> None:
        if model is None:
            model = MatchModel.default()
        elif not isinstance(model, MatchModel):
            model = MatchModel.load(model)
        self.model = model
        self.thresholds = thresholds or get_settings().thresholds
        if adjudicator is None:
            self.adjudicators: tuple[Adjudicator, ...] = ()
        elif hasattr(adjudicator, "adjudicate"):
            self.adjudicators = (adjudicator,)  # type: ignore[assignment]
        else:
            self.adjudicators = tuple(adjudicator)
        self.scorer = RealtimeScorer(model)

    # -- pairs ---------------------------------------------------------------------------
    def match_pair(self, record1: RecordInput, record2: RecordInput) -> MatchResult:
        r1, r2 = as_record(record1), as_record(record2)
        left, right = record_features(r1), record_features(r2)
        return self.match_features(left, right)

    def match_features(
        self,
        left: Mapping[str, Any],
        right: Mapping[str, Any],
        adjudicators: Sequence[Adjudicator] | None = None,
        *,
        floor: float = 0.0,
        explain_below_floor: bool = True,
    ) -> MatchResult:
        """Decide on two feature rows (see `medmatch.data.features`); `adjudicators` replaces
        the matcher's own for this pair (a lookup with a time budget, for instance).

        A pair scored below `floor` (`lowest_probability_to_score`: no verdict could lift it
        to the pair floor) is a non-match whatever a hard negative or an adjudicator would
        say, so neither is asked, as a batch run never scores it: only a re-send or an
        identifier rule can still decide it. With `explain_below_floor=False` such a pair
        comes without its explanation and evidence (empty), which nobody stores or shows:
        most of a lookup's candidates, each spared its waterfall and sentence."""
        score = self.scorer.score(left, right)
        weight = score.match_weight
        probability = score.probability
        worth_deciding = probability >= floor or exact_rule(left, right) is not None
        rule = evaluate_rules(left, right) if worth_deciding else None
        stage = Stage.SCORING
        explained = worth_deciding or explain_below_floor
        evidence: dict[str, Any] = (
            {
                "waterfall": waterfall(score.prior_weight, score.hits),
                "rules": [rule.rule] if rule else [],
                "model_version": self.model.version,
            }
            if explained
            else {}
        )
        medical_similarity = ai_reasoning = None
        if rule is not None:
            stage = Stage.RULES
            decision, match_type, certain = rule_decision(rule)
            probability = certain if certain is not None else probability
        else:
            decision, match_type = decide(probability, self.thresholds)
            judges = self.adjudicators if adjudicators is None else adjudicators
            judge = choose(judges, decision, left, right) if worth_deciding else None
            if judge is not None:
                verdict = judge.adjudicate(left, right)
                if verdict is not None:
                    stage = Stage.AI
                    weight += verdict.match_weight
                    probability = weight_to_probability(weight)
                    medical_similarity, ai_reasoning = verdict.medical_similarity, verdict.reasoning
                    evidence["waterfall"].append(
                        {
                            "comparison": "ai",
                            "level": verdict.verdict.value,
                            "match_weight": verdict.match_weight,
                            "tf_adjustment": 0.0,
                        }
                    )
                    decision, match_type = decide_after(verdict, probability, self.thresholds)
        return MatchResult(
            record_id_1=str(left["unique_id"]),
            record_id_2=str(right["unique_id"]),
            is_match=decision is Decision.AUTO_MATCH,
            confidence=probability,
            decision=decision,
            match_type=match_type,
            stage=stage,
            match_weight=weight,
            explanation=sentence(score.hits, rule) if explained else "",
            evidence=evidence,
            medical_similarity=medical_similarity,
            ai_reasoning=ai_reasoning,
            model_version=self.model.version,
        )

    # -- tables --------------------------------------------------------------------------
    def dedupe(
        self,
        demographics: pd.DataFrame,
        medical: pd.DataFrame | None = None,
        *,
        progress: Progress | None = None,
    ) -> batch.BatchResult:
        """Pairs and clusters of one table (columns: record_id, source_system, fields...)."""
        step = progress or (lambda _stage, _fraction: None)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        step("normalise", 0.0)
        feats = table_features(
            demographics, medical, phone_region=get_settings().default_phone_region
        )
        timings["normalise_s"] = time.perf_counter() - t0
        result = self.dedupe_features(feats.frame, progress=step, timings=timings)
        result.stats["invalid_values"] = sum(feats.warning_counts.values())
        result.warnings = feats.warnings
        return result

    def dedupe_features(
        self,
        features: pd.DataFrame,
        *,
        progress: Progress | None = None,
        timings: dict[str, float] | None = None,
    ) -> batch.BatchResult:
        step = progress or (lambda _stage, _fraction: None)
        timings = dict(timings or {})
        t = time.perf_counter()
        step("score", 0.3)
        # an adjudicator can lift a pair from below the floor: score those too
        floor = lowest_probability_to_score(self.thresholds.pair_floor, self.adjudicators)
        scored = batch.predict_pairs(features, self.model, floor)
        timings["score_s"] = time.perf_counter() - t
        t = time.perf_counter()
        step("decide", 0.7)
        tally = Tally()
        pairs, cannot = batch.decide_pairs(
            scored, features, self.model, self.thresholds, self.adjudicators, tally
        )
        timings["decide_s"] = time.perf_counter() - t
        t = time.perf_counter()
        step("cluster", 0.9)
        clusters = batch.clusters_from_pairs(list(features["unique_id"]), pairs, cannot)
        timings["cluster_s"] = time.perf_counter() - t
        step("done", 1.0)
        counts = pairs["decision"].value_counts()
        stats: dict[str, float | int | str] = {
            "records": len(features),
            "pairs_scored": len(pairs),
            "auto_match": int(counts.get("auto_match", 0)),
            "review_required": int(counts.get("review_required", 0)),
            "no_match": int(counts.get("no_match", 0)),
            "hard_negatives": len(cannot),
            "clusters": int(clusters["cluster_id"].nunique()),
            "model_version": self.model.version,
            **tally.stats(self.adjudicators),
            **{k: round(v, 3) for k, v in timings.items()},
        }
        return batch.BatchResult(pairs=pairs, clusters=clusters, model=self.model, stats=stats)

    def link(self, left: pd.DataFrame, right: pd.DataFrame, **kwargs: Any) -> batch.BatchResult:
        """Link two tables: pairs across them only; clusters span both."""
        both = pd.concat([left, right], ignore_index=True)
        if both["record_id"].astype(str).duplicated().any():
            raise ValueError("record_id must be unique across the two tables")
        result = self.dedupe(both, **kwargs)
        left_ids = set(left["record_id"].astype(str))
        crosses = result.pairs["record_id_1"].isin(left_ids) != result.pairs["record_id_2"].isin(
            left_ids
        )
        result.pairs = result.pairs[crosses].reset_index(drop=True)
        return result
