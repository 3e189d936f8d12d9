"""Explanations: a waterfall of match weights, the rules triggered, and a readable sentence."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

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
    return with_rule(levels_sentence(tuple((h.comparison, h.level) for h in hits)), rule)


def with_rule(text: str, rule: RuleHit | None) -> str:
    return text if rule is None else f"Rule {rule.rule}: {rule.reason}. {text}"


@lru_cache(maxsize=65_536)
def levels_sentence(levels: tuple[tuple[str, str], ...]) -> str:
    """The sentence for (comparison, level label) pairs; cached, as level vectors repeat."""
    exact = [_READABLE[c] for c, level in levels if level in _EXACT]
    partial = [
        f"{_READABLE[c]} {level}"
        for c, level in levels
        if level not in _EXACT and level not in ("all other", "null")
    ]
    differ = [_READABLE[c] for c, level in levels if level == "all other"]
    parts = []
    if exact:
        parts.append(f"Exact {_join(exact)} match")
    if partial:
        parts.append(_join(partial))
    if differ:
        parts.append(f"{_join(differ)} {'differs' if len(differ) == 1 else 'differ'}")
    text = "; ".join(parts) or "No comparable fields"
    return text[0].upper() + text[1:]


def waterfall(prior_weight: float, hits: Sequence[LevelHit]) -> list[dict[str, object]]:
    """One bar per comparison, starting from the prior; the bars sum to the match weight."""
    return [{"comparison": "prior", "level": "", "match_weight": prior_weight}] + [
        _bar(h) for h in hits
    ]


@lru_cache(maxsize=4_096)
def _bar(hit: LevelHit) -> dict[str, object]:
    """A hit's bar. Cached, as hits repeat (a level's weight is the model's; only name levels
    carry a term-frequency adjustment): the same dict then serves many waterfalls, which is
    why nothing may change a bar in place."""
    return {
        "comparison": hit.comparison,
        "level": hit.level,
        "gamma": hit.gamma,
        "match_weight": round(hit.match_weight, 6),
        "tf_adjustment": round(hit.tf_adjustment, 6),
    }
