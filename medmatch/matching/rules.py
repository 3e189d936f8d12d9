"""Deterministic rules, applied before the model's score and recorded as `rules` decisions.

Exact rules say two records are one person; hard negatives say they are two people, whatever
the score: a different generational suffix, a father and son at one address, twins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from medmatch.data.clinical import implied_conditions

Row = Mapping[str, Any]
# A parent and child are at least this many years apart; a typo in the year is one edit.
GENERATION_YEARS = 14


class RuleKind(StrEnum):
    EXACT = "exact"
    HARD_NEGATIVE = "hard_negative"


@dataclass(frozen=True)
class RuleHit:
    rule: str
    kind: RuleKind
    reason: str


def _both(left: Row, right: Row, col: str) -> bool:
    return left.get(col) is not None and right.get(col) is not None


def _same(left: Row, right: Row, col: str) -> bool:
    return _both(left, right, col) and left[col] == right[col]


def _similar(left: Row, right: Row, col: str, at_least: float = 0.92) -> bool:
    """Equal, or a typo apart (Jaro-Winkler): rules must survive a misspelt surname."""
    return _both(left, right, col) and (
        left[col] == right[col] or JaroWinkler.similarity(left[col], right[col]) >= at_least
    )


def _dob_close(left: Row, right: Row) -> bool:
    """The same date of birth, give or take one typo."""
    return _both(left, right, "dob") and (
        DamerauLevenshtein.distance(left["dob"], right["dob"]) <= 1
    )


def _given_names_related(left: Row, right: Row) -> bool:
    """Both given names present and the same name: equal, close, a nickname, or swapped."""
    return _both(left, right, "first_name") and not _given_names_differ(left, right, below=0.8)


def _given_names_differ(left: Row, right: Row, below: float) -> bool:
    """Given names that are neither close, nor nicknames of each other, nor swapped fields."""
    if not _both(left, right, "first_name"):
        return False
    if set(left.get("first_name_group") or ()) & set(right.get("first_name_group") or ()):
        return False
    if left["first_name"] == right.get("last_name") or right["first_name"] == left.get("last_name"):
        return False
    return JaroWinkler.similarity(left["first_name"], right["first_name"]) < below


def medical_histories_conflict(left: Row, right: Row) -> bool:
    """Both records carry a history and they share no condition, drug or implied condition."""
    lc, rc = set(left.get("conditions") or ()), set(right.get("conditions") or ())
    lm, rm = set(left.get("medications") or ()), set(right.get("medications") or ())
    if not (lc or lm) or not (rc or rm):
        return False
    lall = lc | lm | implied_conditions(frozenset(lm))
    rall = rc | rm | implied_conditions(frozenset(rm))
    return not (lall & rall)


def exact_rule(left: Row, right: Row) -> RuleHit | None:
    if _same(left, right, "source_system") and _same(left, right, "external_id"):
        return RuleHit("same_source_record", RuleKind.EXACT, "same source system and record id")
    if _same(left, right, "ssn") and _same(left, right, "dob"):
        return RuleHit("same_identifier_and_dob", RuleKind.EXACT, "same SSN and date of birth")
    return None


def hard_negative(left: Row, right: Row) -> RuleHit | None:
    if _both(left, right, "name_suffix") and left["name_suffix"] != right["name_suffix"]:
        return RuleHit("different_suffix", RuleKind.HARD_NEGATIVE, "different name suffix (Jr/Sr)")
    if _both(left, right, "dob") and _similar(left, right, "last_name"):
        years = abs(int(left["dob"][:4]) - int(right["dob"][:4]))
        if (
            years >= GENERATION_YEARS
            and DamerauLevenshtein.distance(left["dob"], right["dob"]) > 1
            and not _given_names_differ(left, right, below=0.9)
        ):
            return RuleHit(
                "generational",
                RuleKind.HARD_NEGATIVE,
                "same name a generation apart (parent and child)",
            )
    if (
        _dob_close(left, right)
        and any(_same(left, right, c) for c in ("address", "phone", "postal_code"))
        and not _given_names_related(left, right)
    ):
        unrelated = _given_names_differ(left, right, below=0.6)
        sex_differs = _both(left, right, "sex") and left["sex"] != right["sex"]
        # twin sisters may no longer share a surname: an unrelated given name is enough then
        surname_ok = (
            _similar(left, right, "last_name") or not _both(left, right, "last_name") or unrelated
        )
        if surname_ok and (sex_differs or unrelated or medical_histories_conflict(left, right)):
            return RuleHit(
                "twins",
                RuleKind.HARD_NEGATIVE,
                "same birth date and home, different given names or sex (twins)",
            )
    return None


# A cheap SQL superset of "some rule below may fire" (same source record aside, which the
# batch finds by grouping). Batch scoring evaluates the Python rules only where it holds;
# a test holds it true wherever a rule fires.
CANDIDATE_SQL = (
    "(ssn_l = ssn_r AND dob_l = dob_r)"
    " OR name_suffix_l <> name_suffix_r"
    f" OR (abs(CAST(birth_year_l AS INTEGER) - CAST(birth_year_r AS INTEGER)) >= {GENERATION_YEARS}"
    " AND jaro_winkler_similarity(last_name_l, last_name_r) >= 0.92)"
    " OR (levenshtein(dob_l, dob_r) <= 2"
    " AND (address_l = address_r OR phone_l = phone_r OR postal_code_l = postal_code_r)"
    " AND (first_name_l IS NULL OR first_name_r IS NULL OR first_name_l <> first_name_r))"
)


def evaluate_rules(left: Row, right: Row) -> RuleHit | None:
    """The first rule that fires. A re-sent source record wins over everything; otherwise
    hard negatives win over the identifier rule (Jr and Sr sharing an SSN is a data error)."""
    hit = exact_rule(left, right)
    if hit is not None and hit.rule == "same_source_record":
        return hit
    return hard_negative(left, right) or hit
