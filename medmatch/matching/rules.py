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
from medmatch.data.dates import iso_day_month_swapped
from medmatch.data.names import metaphone, name_group
from medmatch.matching.decisions import Decision, MatchType

Row = Mapping[str, Any]
# A parent and child are at least this many years apart; a typo in the year is one edit.
GENERATION_YEARS = 14
# Given names this far apart (Jaro-Winkler) are different names, not a typo of one:
# a single typo keeps short names above 0.8 ('lafra'/'laura' 0.89, 'cdrl'/'carl' 0.85).
UNRELATED_BELOW = 0.7
NICKNAME_TYPO_AT_LEAST = 0.88


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
    if not _both(left, right, col):
        return False
    a, b = left[col], right[col]
    return (
        a == b or JaroWinkler.similarity(a, b) >= at_least or DamerauLevenshtein.distance(a, b) <= 1
    )


def _dob_close(left: Row, right: Row) -> bool:
    """The same date of birth, give or take one typo or a day/month swap."""
    if not _both(left, right, "dob"):
        return False
    a, b = left["dob"], right["dob"]
    return iso_day_month_swapped(a, b) or DamerauLevenshtein.distance(a, b) <= 1


def _household(left: Row, right: Row) -> bool:
    """One home: the same street address, phone or postcode."""
    return (
        _same(left, right, "address")
        or _same(left, right, "phone")
        or _same(left, right, "postal_code")
    )


def _same_given_name(left: Row, right: Row) -> bool:
    """Strictly the same given name: equal, or nicknames of each other (no fuzzy match)."""
    if not _both(left, right, "first_name"):
        return False
    if left["first_name"] == right["first_name"]:
        return True
    return bool(set(left.get("first_name_group") or ()) & set(right.get("first_name_group") or ()))


def _close(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return a == b or JaroWinkler.similarity(a, b) >= 0.9 or DamerauLevenshtein.distance(a, b) <= 1


def _same_given(a: str | None, b: str | None) -> bool:
    """Close, or nicknames of each other."""
    if a is None or b is None:
        return False
    return _close(a, b) or bool(set(name_group(a) or ()) & set(name_group(b) or ()))


def _known_given_name(token: str) -> bool:
    """A name the nicknames dataset knows as a given name ('sharon', not 'vaughan')."""
    return len(name_group(token) or ()) > 1


def _names_swapped(left: Row, right: Row) -> bool:
    """One side sent given name and surname the other way round.

    Both ways, typos allowed: 'Regina McPherson' and 'McPhershon Regna'. One way, when the
    swapped side's given name is a known given name matching the other's (the surname may
    have changed since): 'Garcia Sharon' and 'Sharon Brown', 'Lewis Mae' and 'Mary Graham'.
    A surname in the given-name field is a relative's record: 'Vaughan Sandra' and
    'Helen Vaughan' are sisters."""
    lf, ll = left.get("first_name"), left.get("last_name")
    rf, rl = right.get("first_name"), right.get("last_name")
    if _close(lf, rl) and _close(ll, rf):
        return True
    for given, other in ((ll, rf), (rl, lf)):  # left swapped, right swapped
        if given is not None and _known_given_name(given) and _same_given(given, other):
            return True
    return False


class _GivenNames:
    """The given-name tests of one pair. Several rules ask them with other thresholds: each
    part is computed once, the costliest last and only when asked for."""

    def __init__(self, left: Row, right: Row) -> None:
        self.left, self.right = left, right
        self.first = left.get("first_name"), right.get("first_name")
        self.both = self.first[0] is not None and self.first[1] is not None
        self._alike: bool | None = None  # equal, spelt by ear, or one typo apart
        self._similarity: float | None = None
        self._related: bool | None = None  # nicknames (even mistyped) or swapped fields
        self._unrelated: bool | None = None

    def differ(self, below: float) -> bool:
        """Both present, and neither close (Jaro-Winkler `below`), nor nicknames of each
        other (even mistyped: 'Caroyln' and 'Carrie'), nor spelt by ear, nor swapped with
        the surname."""
        if not self.both:
            return False
        lf, rf = self.first
        if self._alike is None:
            # spelt by ear: Chris and Kris, Jeff and Geoff; one typo: 'amy' and 'may'
            self._alike = (
                lf == rf
                or metaphone(lf) == metaphone(rf)
                or DamerauLevenshtein.distance(lf, rf) <= 1
            )
        if self._alike:
            return False
        if self._similarity is None:
            self._similarity = JaroWinkler.similarity(lf, rf)
        if self._similarity >= below:
            return False
        if self._related is None:
            self._related = self._nicknames_or_swapped(lf, rf)
        return not self._related

    def _nicknames_or_swapped(self, lf: str, rf: str) -> bool:
        left, right = self.left, self.right
        left_names = set(left.get("first_name_group") or ()) | {lf}
        right_names = set(right.get("first_name_group") or ()) | {rf}
        if left_names & right_names:
            return True
        # a nickname on one side and a typo on the other: one side's own name against the
        # other's nicknames (group against group would relate Rick and Aaron through Eric and
        # Erin)
        if any(JaroWinkler.similarity(lf, b) >= NICKNAME_TYPO_AT_LEAST for b in right_names) or any(
            JaroWinkler.similarity(a, rf) >= NICKNAME_TYPO_AT_LEAST for a in left_names
        ):
            return True
        return _names_swapped(left, right)  # the costliest test last

    def related(self) -> bool:
        """Both present and the same name: equal, close, a nickname, or swapped."""
        return self.both and not self.differ(below=0.8)

    def unrelated(self) -> bool:
        """Different given names, and neither goes by the other's middle name."""
        if self._unrelated is None:
            self._unrelated = self.differ(below=UNRELATED_BELOW) and not _goes_by_middle_name(
                self.left, self.right
            )
        return self._unrelated


def _goes_by_middle_name(left: Row, right: Row) -> bool:
    """One record's given name is the other's middle name ('James Robert' known as 'Robert')."""
    lf, rf = left.get("first_name"), right.get("first_name")
    return (lf is not None and lf == right.get("middle_name")) or (
        rf is not None and rf == left.get("middle_name")
    )


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
    ls, rs = left.get("name_suffix"), right.get("name_suffix")
    if ls is not None and rs is not None and ls != rs:
        return RuleHit("different_suffix", RuleKind.HARD_NEGATIVE, "different name suffix (Jr/Sr)")
    # cheapest tests first, and each at most once: this runs on every candidate of a lookup
    # and on every candidate pair of a batch
    names = _GivenNames(left, right)
    ld, rd = left.get("dob"), right.get("dob")
    both_dob = ld is not None and rd is not None
    if (
        both_dob
        and abs(int(ld[:4]) - int(rd[:4])) >= GENERATION_YEARS
        and _similar(left, right, "last_name")
    ):
        if DamerauLevenshtein.distance(ld, rd) > 1 and not names.differ(below=0.9):
            return RuleHit(
                "generational",
                RuleKind.HARD_NEGATIVE,
                "same name a generation apart (parent and child)",
            )
    dob_close = _dob_close(left, right)
    household: bool | None = None  # asked for at most once below, in two places
    sex_l, sex_r = left.get("sex"), right.get("sex")
    if sex_l is not None and sex_r is not None and sex_l != sex_r:
        household = _household(left, right)
        if household and not _same_given_name(left, right):
            # a brother and sister, or a couple: a wrong sex code *and* another name is unlikely
            if dob_close:
                return RuleHit(
                    "twins",
                    RuleKind.HARD_NEGATIVE,
                    "same birth date and home, different sex and given name (twins)",
                )
            return RuleHit(
                "household_member",
                RuleKind.HARD_NEGATIVE,
                "same home, different sex and given name (another member of the household)",
            )
    if dob_close and not names.related():
        unrelated = names.unrelated()
        surname = _similar(left, right, "last_name")
        if household is None:
            household = _household(left, right)
        # twin sisters may no longer share a surname: an unrelated given name is enough then
        if (
            household
            and (surname or not _both(left, right, "last_name") or unrelated)
            and (unrelated or medical_histories_conflict(left, right))
        ):
            return RuleHit(
                "twins",
                RuleKind.HARD_NEGATIVE,
                "same birth date and home, different given names (twins)",
            )
        # one of twins who moved away, or a namesake born the same day
        if surname and unrelated:
            return RuleHit(
                "different_given_name",
                RuleKind.HARD_NEGATIVE,
                "same birth date and surname, unrelated given names (twins or namesakes)",
            )
    if not names.unrelated():
        return None  # both rules below need unrelated given names
    # two stable facts contradict: another given name and another birth date
    if both_dob and not dob_close and not _same(left, right, "ssn"):
        return RuleHit(
            "different_person",
            RuleKind.HARD_NEGATIVE,
            "unrelated given names and birth dates (two people)",
        )
    # a brother, sister or parent at home whose birth date is missing or different
    if household is None:
        household = _household(left, right)
    if household and (_similar(left, right, "last_name") or not _both(left, right, "last_name")):
        return RuleHit(
            "household_member",
            RuleKind.HARD_NEGATIVE,
            "same home and surname, unrelated given names (another member of the household)",
        )
    return None


# A cheap SQL superset of "some rule below may fire" (same source record aside, which the
# batch finds by grouping). Batch scoring evaluates the Python rules only where it holds;
# a test holds it true wherever a rule fires.
_HOUSEHOLD_SQL = "(address_l = address_r OR phone_l = phone_r OR postal_code_l = postal_code_r)"
# given names of one nickname group never fire a rule that needs different given names
_NOT_NICKNAMES_SQL = "NOT coalesce(list_has_any(first_name_group_l, first_name_group_r), FALSE)"
CANDIDATE_SQL = (
    "(ssn_l = ssn_r AND dob_l = dob_r)"
    " OR name_suffix_l <> name_suffix_r"
    f" OR (abs(CAST(birth_year_l AS INTEGER) - CAST(birth_year_r AS INTEGER)) >= {GENERATION_YEARS}"
    " AND (jaro_winkler_similarity(last_name_l, last_name_r) >= 0.92"
    " OR levenshtein(last_name_l, last_name_r) <= 2))"
    " OR (sex_l <> sex_r"
    f" AND {_HOUSEHOLD_SQL} AND {_NOT_NICKNAMES_SQL}"
    " AND (first_name_l IS NULL OR first_name_r IS NULL OR first_name_l <> first_name_r))"
    f" OR ({_HOUSEHOLD_SQL} AND {_NOT_NICKNAMES_SQL} AND first_name_l <> first_name_r)"
    f" OR (jaro_winkler_similarity(first_name_l, first_name_r) < {UNRELATED_BELOW}"
    " AND levenshtein(dob_l, dob_r) > 1)"
    " OR ((levenshtein(dob_l, dob_r) <= 2 OR substr(dob_l, 1, 4) = substr(dob_r, 1, 4))"
    f" AND ({_HOUSEHOLD_SQL}"
    " OR jaro_winkler_similarity(last_name_l, last_name_r) >= 0.92"
    " OR levenshtein(last_name_l, last_name_r) <= 2)"
    f" AND {_NOT_NICKNAMES_SQL}"
    " AND (first_name_l IS NULL OR first_name_r IS NULL OR first_name_l <> first_name_r))"
)


def evaluate_rules(left: Row, right: Row) -> RuleHit | None:
    """The first rule that fires. A re-sent source record wins over everything; otherwise
    hard negatives win over the identifier rule (Jr and Sr sharing an SSN is a data error)."""
    hit = exact_rule(left, right)
    if hit is not None and hit.rule == "same_source_record":
        return hit
    return hard_negative(left, right) or hit


def rule_decision(rule: RuleHit) -> tuple[Decision, MatchType, float | None]:
    """What a fired rule decides: an exact rule is a certain match, a hard negative a non-match
    (its probability stays the model's, for the record)."""
    if rule.kind is RuleKind.EXACT:
        return Decision.AUTO_MATCH, MatchType.EXACT, 1.0
    return Decision.NO_MATCH, MatchType.NO_MATCH, None
