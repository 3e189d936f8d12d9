"""Matching: blocking keys, rules, the Fellegi-Sunter model, real-time scoring, decisions.

The names below are the promised API; everything else is importable but may change.
Splink and DuckDB are imported only when training or batch scoring runs.
"""

from medmatch.matching.adjudication import Adjudication, Adjudicator, PairSet, Verdict
from medmatch.matching.blocking import BLOCKING_KEYS, BlockingKey, key_strings
from medmatch.matching.comparisons import Comparison, default_comparisons
from medmatch.matching.decisions import Decision, MatchType, Stage, decide
from medmatch.matching.matcher import PatientMatcher
from medmatch.matching.model import MatchModel
from medmatch.matching.realtime import PairScore, RealtimeScorer
from medmatch.matching.result import MatchResult
from medmatch.matching.rules import RuleHit, evaluate_rules

__all__ = [
    "BLOCKING_KEYS",
    "Adjudication",
    "Adjudicator",
    "BlockingKey",
    "Comparison",
    "Decision",
    "MatchModel",
    "MatchResult",
    "MatchType",
    "PairScore",
    "PairSet",
    "PatientMatcher",
    "RealtimeScorer",
    "RuleHit",
    "Stage",
    "Verdict",
    "decide",
    "default_comparisons",
    "evaluate_rules",
    "key_strings",
]
