"""The comparisons of MedMatch's Fellegi-Sunter model.

Each comparison is an ordered list of levels (null first, else last), as Splink's comparison
library builds them; each level renders itself for Splink and for the real-time scorer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medmatch.matching import levels as lv


@dataclass(frozen=True)
class Comparison:
    name: str
    description: str
    levels: tuple[lv.Level, ...]
    # People move and change phones and surnames: a disagreement here is weak evidence.
    mutable: bool = False

    def __post_init__(self) -> None:
        if not self.levels or not self.levels[0].is_null_level:
            raise ValueError(f"comparison {self.name}: the first level must be the null level")
        if not self.levels[-1].is_else_level:
            raise ValueError(f"comparison {self.name}: the last level must be the else level")

    def level_index(self, left: lv.Row, right: lv.Row) -> int:
        """Index of the first level the pair reaches (levels are tried in order)."""
        for i, level in enumerate(self.levels):
            if level.matches(left, right):
                return i
        raise AssertionError("unreachable: the else level always matches")

    def gamma(self, index: int) -> int:
        """Splink's comparison vector value for level `index` (-1 null, then descending)."""
        return -1 if index == 0 else len(self.levels) - 1 - index

    def to_splink(self) -> dict[str, Any]:
        return {
            "output_column_name": self.name,
            "comparison_description": self.description,
            "comparison_levels": [level.to_splink() for level in self.levels],
        }


def _name(column: str, other: str, label: str) -> Comparison:
    levels: list[lv.Level] = [
        lv.NullLevel(column),
        lv.ExactLevel(column, "exact", term_frequency=True),
    ]
    if column == "first_name":
        levels.append(lv.ListOverlapLevel("first_name_group", "nickname"))
    levels += [
        lv.JaroWinklerLevel(column, "jaro-winkler >= 0.92", threshold=0.92),
        lv.JaroWinklerLevel(column, "jaro-winkler >= 0.80", threshold=0.80),
        lv.CrossColumnLevel(column, "swapped with " + other.replace("_", " "), other=other),
        lv.ElseLevel(),
    ]
    return Comparison(column, label, tuple(levels), mutable=column == "last_name")


def _digits(column: str, description: str, *, mutable: bool) -> Comparison:
    """A string of digits: exact, or one or two digits mistyped or swapped."""
    return Comparison(
        column,
        description,
        (
            lv.NullLevel(column),
            lv.ExactLevel(column),
            lv.LevenshteinLevel(column, "one or two digits differ", distance=2),
            lv.ElseLevel(),
        ),
        mutable=mutable,
    )


def default_comparisons() -> tuple[Comparison, ...]:
    return (
        _name("first_name", "last_name", "given name (nicknames, typos, swapped fields)"),
        _name("last_name", "first_name", "surname (typos, swapped fields)"),
        Comparison(
            "dob",
            "date of birth (typos, day/month swaps)",
            (
                lv.NullLevel("dob"),
                lv.ExactLevel("dob"),
                lv.DayMonthSwapLevel("dob"),
                lv.DatePartsLevel("dob"),
                lv.ExactLevel("birth_year", "same year"),
                lv.ElseLevel(),
            ),
        ),
        Comparison(
            "sex",
            "administrative sex",
            (lv.NullLevel("sex"), lv.ExactLevel("sex"), lv.ElseLevel()),
        ),
        _digits("phone", "phone number", mutable=True),
        Comparison(
            "email",
            "email address",
            (
                lv.NullLevel("email"),
                lv.ExactLevel("email"),
                lv.EmailLocalPartLevel("email"),
                lv.ElseLevel(),
            ),
            mutable=True,
        ),
        # Street address and postcode describe one home: compared together, so agreeing on
        # both is not counted twice as independent evidence.
        Comparison(
            "address",
            "home address (street and postcode)",
            (
                lv.NullOfAll(columns=("address", "postal_code")),
                lv.AllOf(
                    label="same address and postcode",
                    parts=(lv.ExactLevel("address"), lv.ExactLevel("postal_code")),
                ),
                lv.ExactLevel("address", "same street address"),
                lv.AllOf(
                    label="similar address, same postcode",
                    parts=(
                        lv.JaroWinklerLevel("address", "", threshold=0.90),
                        lv.ExactLevel("postal_code"),
                    ),
                ),
                lv.ExactLevel("postal_code", "same postcode"),
                lv.PrefixLevel("postal_code", "same area (first 3)", length=3),
                lv.ElseLevel(),
            ),
            mutable=True,
        ),
        _digits("ssn", "social security number", mutable=False),
    )
