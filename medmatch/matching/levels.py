"""Comparison levels, each described once and rendered for two engines.

`sql_condition` is what Splink runs in DuckDB (batch); `matches(left, right)` is the same
predicate in plain Python (real-time). They follow SQL semantics: a comparison with a null
operand is false, so null handling lives in the null level alone. The parity tests hold the
two renderings equal pair by pair.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import JaroWinkler, Levenshtein

from medmatch.data.dates import iso_day_month_swapped

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Level(ABC):
    column: str
    label: str = ""

    @property
    @abstractmethod
    def sql_condition(self) -> str: ...

    @abstractmethod
    def matches(self, left: Row, right: Row) -> bool: ...

    is_null_level = False
    is_else_level = False

    @property
    def tf_column(self) -> str | None:
        """The column whose term frequencies adjust this level's weight, if any."""
        return None

    def to_splink(self) -> dict[str, Any]:
        level: dict[str, Any] = {
            "sql_condition": self.sql_condition,
            "label_for_charts": self.label,
        }
        if self.is_null_level:
            level["is_null_level"] = True
        if self.tf_column:
            level["tf_adjustment_column"] = self.tf_column
            level["tf_adjustment_weight"] = 1.0
        return level


@dataclass(frozen=True)
class NullLevel(Level):
    label: str = "null"
    is_null_level = True

    @property
    def sql_condition(self) -> str:
        return f"{self.column}_l IS NULL OR {self.column}_r IS NULL"

    def matches(self, left: Row, right: Row) -> bool:
        return left.get(self.column) is None or right.get(self.column) is None


@dataclass(frozen=True)
class ExactLevel(Level):
    label: str = "exact"
    term_frequency: bool = False

    @property
    def tf_column(self) -> str | None:
        return self.column if self.term_frequency else None

    @property
    def sql_condition(self) -> str:
        return f"{self.column}_l = {self.column}_r"

    def matches(self, left: Row, right: Row) -> bool:
        lv = left.get(self.column)
        return lv is not None and lv == right.get(self.column)


@dataclass(frozen=True)
class ListOverlapLevel(Level):
    """Two lists share a member: nickname groups ('bill' and 'william')."""

    label: str = "overlap"

    @property
    def sql_condition(self) -> str:
        return f"list_has_any({self.column}_l, {self.column}_r)"

    def matches(self, left: Row, right: Row) -> bool:
        lv, rv = left.get(self.column), right.get(self.column)
        return lv is not None and rv is not None and not set(lv).isdisjoint(rv)


@dataclass(frozen=True)
class JaroWinklerLevel(Level):
    threshold: float = 0.9

    @property
    def sql_condition(self) -> str:
        return f"jaro_winkler_similarity({self.column}_l, {self.column}_r) >= {self.threshold}"

    def matches(self, left: Row, right: Row) -> bool:
        lv, rv = left.get(self.column), right.get(self.column)
        if lv is None or rv is None:
            return False
        # no score_cutoff: rapidfuzz 3.14 answers 0 for 'rowe'/'rogers' (0.8) at cutoff 0.8
        return JaroWinkler.similarity(lv, rv) >= self.threshold


@dataclass(frozen=True)
class LevenshteinLevel(Level):
    """At most `distance` edits. (DuckDB's Damerau-Levenshtein costs six times as much per
    pair; a swap of two digits is two Levenshtein edits, so levels allow two.)"""

    distance: int = 1

    @property
    def sql_condition(self) -> str:
        return f"levenshtein({self.column}_l, {self.column}_r) <= {self.distance}"

    def matches(self, left: Row, right: Row) -> bool:
        lv, rv = left.get(self.column), right.get(self.column)
        if lv is None or rv is None:
            return False
        # score_cutoff: rapidfuzz stops early and answers cutoff + 1 above it
        return Levenshtein.distance(lv, rv, score_cutoff=self.distance) <= self.distance


@dataclass(frozen=True)
class DatePartsLevel(Level):
    """ISO dates agreeing on at least two of year, month and day: one part mistyped."""

    label: str = "two of year, month, day agree"

    @property
    def sql_condition(self) -> str:
        c = self.column
        parts = [(1, 4), (6, 2), (9, 2)]
        terms = [
            f"CAST(substr({c}_l, {a}, {n}) = substr({c}_r, {a}, {n}) AS INTEGER)" for a, n in parts
        ]
        return f"({' + '.join(terms)}) >= 2"

    def matches(self, left: Row, right: Row) -> bool:
        a, b = left.get(self.column), right.get(self.column)
        if a is None or b is None:
            return False
        return (a[:4] == b[:4]) + (a[5:7] == b[5:7]) + (a[8:10] == b[8:10]) >= 2


@dataclass(frozen=True)
class PrefixLevel(Level):
    length: int = 3

    @property
    def sql_condition(self) -> str:
        n = self.length
        return f"substr({self.column}_l, 1, {n}) = substr({self.column}_r, 1, {n})"

    def matches(self, left: Row, right: Row) -> bool:
        lv, rv = left.get(self.column), right.get(self.column)
        return lv is not None and rv is not None and lv[: self.length] == rv[: self.length]


@dataclass(frozen=True)
class CrossColumnLevel(Level):
    """Two fields sent the other way round: first name on the left is surname on the right."""

    other: str = ""

    @property
    def sql_condition(self) -> str:
        c, o = self.column, self.other
        return f"{c}_l = {o}_r AND {o}_l = {c}_r"

    def matches(self, left: Row, right: Row) -> bool:
        lc, lo = left.get(self.column), left.get(self.other)
        if lc is None or lo is None:
            return False
        rc, ro = right.get(self.column), right.get(self.other)
        return rc is not None and ro is not None and lc == ro and lo == rc


@dataclass(frozen=True)
class DayMonthSwapLevel(Level):
    """ISO dates whose day and month are exchanged (a US/European format mix-up)."""

    label: str = "day and month swapped"

    @property
    def sql_condition(self) -> str:
        c = self.column
        return (
            f"substr({c}_l, 1, 4) = substr({c}_r, 1, 4) "
            f"AND substr({c}_l, 6, 2) = substr({c}_r, 9, 2) "
            f"AND substr({c}_l, 9, 2) = substr({c}_r, 6, 2)"
        )

    def matches(self, left: Row, right: Row) -> bool:
        lv, rv = left.get(self.column), right.get(self.column)
        return lv is not None and rv is not None and iso_day_month_swapped(lv, rv)


@dataclass(frozen=True)
class EmailLocalPartLevel(Level):
    label: str = "same user, other domain"

    @property
    def sql_condition(self) -> str:
        c = self.column
        return f"split_part({c}_l, '@', 1) = split_part({c}_r, '@', 1)"

    def matches(self, left: Row, right: Row) -> bool:
        lv, rv = left.get(self.column), right.get(self.column)
        return lv is not None and rv is not None and lv.split("@")[0] == rv.split("@")[0]


@dataclass(frozen=True)
class AllOf(Level):
    """Every part holds (SQL AND): e.g. same street address and same postcode."""

    column: str = ""
    parts: tuple[Level, ...] = ()

    @property
    def sql_condition(self) -> str:
        return " AND ".join(f"({p.sql_condition})" for p in self.parts)

    def matches(self, left: Row, right: Row) -> bool:
        return all(p.matches(left, right) for p in self.parts)


@dataclass(frozen=True)
class NullOfAll(Level):
    """Null level of a comparison over several columns: none of them can be compared."""

    column: str = ""
    label: str = "null"
    columns: tuple[str, ...] = ()
    is_null_level = True

    @property
    def sql_condition(self) -> str:
        return " AND ".join(f"({c}_l IS NULL OR {c}_r IS NULL)" for c in self.columns)

    def matches(self, left: Row, right: Row) -> bool:
        for c in self.columns:  # a loop, not all(): it runs for every candidate of a lookup
            if left.get(c) is not None and right.get(c) is not None:
                return False
        return True


@dataclass(frozen=True)
class ElseLevel(Level):
    column: str = ""
    label: str = "all other"
    is_else_level = True

    @property
    def sql_condition(self) -> str:
        return "ELSE"

    def matches(self, left: Row, right: Row) -> bool:
        return True
