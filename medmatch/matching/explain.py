"""Explanations: a waterfall of match weights, the rules triggered, and a readable sentence."""

from __future__ import annotations

from collections.abc import Sequence

from medmatch.matching.realtime import LevelHit
from medmatch.matching.rules import RuleHit

_READABLE = {
    "first_name": "first name",
    "last_name": "surname",
    "dob": "DOB",
    "sex": "sex",
    "phone": "phone",
    "email": "email",
    "address": "address",
    "ssn": "SSN",
}


_EXACT = ("exact", "same address and postcode")


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def sentence(hits: Sequence[LevelHit], rule: RuleHit | None = None) -> str:
    """'Exact first name, surname and DOB match; phone differs' style summary."""
    exact = [_READABLE[h.comparison] for h in hits if h.level in _EXACT]
    partial = [f"{_READABLE[h.comparison]} {h.level}" for h in hits
               if h.level not in _EXACT and h.level not in ("all other", "null")]
    differ = [_READABLE[h.comparison] for h in hits if h.level == "all other"]
    parts = []
    if exact:
        parts.append(f"Exact {_join(exact)} match")
    if partial:
        parts.append(_join(partial))
    if differ:
        parts.append(f"{_join(differ)} {'differs' if len(differ) == 1 else 'differ'}")
    text = "; ".join(parts) or "No comparable fields"
    text = text[0].upper() + text[1:]
    if rule is not None:
        text = f"Rule {rule.rule}: {rule.reason}. {text}"
    return text


def waterfall(prior_weight: float, hits: Sequence[LevelHit]) -> list[dict[str, object]]:
    """One bar per comparison, starting from the prior; the bars sum to the match weight."""
    bars: list[dict[str, object]] = [{"comparison": "prior", "level": "", "match_weight": prior_weight}]
    for h in hits:
        bars.append(
            {
                "comparison": h.comparison,
                "level": h.level,
                "gamma": h.gamma,
                "match_weight": round(h.match_weight, 6),
                "tf_adjustment": round(h.tf_adjustment, 6),
            }
        )
    return bars
