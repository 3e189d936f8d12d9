"""Blocking keys: which pairs are worth comparing at all.

Each key is defined once and rendered twice: as a Splink blocking rule for batch prediction,
and as an indexable key string ("sx_ym:S530|1980-03") for real-time candidate search. A
pair is a candidate when it shares at least one key.

The surname-sound keys are split by parts of the birth date rather than one "soundex + birth
year" key: any one mistyped part (year, month or day) or a day/month swap still shares a
key, while blocks stay small when a name is very common (a million-record run compares
about a fifth of the pairs "soundex + year" would).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeyPart:
    """A column, or a slice of it (1-based start, as SQL's substr)."""

    column: str
    start: int = 1
    length: int | None = None

    def sql(self, side: str) -> str:
        col = f"{side}.{self.column}"
        return col if self.length is None else f"substr({col}, {self.start}, {self.length})"

    def value(self, row: Mapping[str, Any]) -> str | None:
        v = row.get(self.column)
        if v is None or v == "":
            return None
        return v if self.length is None else v[self.start - 1 : self.start - 1 + self.length]


@dataclass(frozen=True)
class DayMonthUnordered(KeyPart):
    """Day and month of an ISO date as an unordered pair: 03-04 and 04-03 share it."""

    def sql(self, side: str) -> str:
        c = f"{side}.{self.column}"
        return (
            f"(least(substr({c}, 6, 2), substr({c}, 9, 2)) "
            f"|| greatest(substr({c}, 6, 2), substr({c}, 9, 2)))"
        )

    def value(self, row: Mapping[str, Any]) -> str | None:
        v = row.get(self.column)
        return None if not v else "".join(sorted((v[5:7], v[8:10])))


@dataclass(frozen=True)
class BlockingKey:
    name: str
    parts: tuple[KeyPart, ...]
    description: str

    def sql(self) -> str:
        return " AND ".join(f"{p.sql('l')} = {p.sql('r')}" for p in self.parts)

    def value(self, row: Mapping[str, Any]) -> str | None:
        values = [p.value(row) for p in self.parts]
        if any(v is None or v == "" for v in values):
            return None
        return f"{self.name}:" + "|".join(values)  # type: ignore[arg-type]


def _cols(*names: str) -> tuple[KeyPart, ...]:
    return tuple(KeyPart(n) for n in names)


SOUNDEX = KeyPart("last_soundex")
YEAR = KeyPart("dob", 1, 4)

BLOCKING_KEYS: tuple[BlockingKey, ...] = (
    BlockingKey("sx_ym", (SOUNDEX, KeyPart("dob", 1, 7)), "surname sound + birth year and month"),
    BlockingKey("sx_md", (SOUNDEX, KeyPart("dob", 6, 5)), "surname sound + birth month and day"),
    BlockingKey(
        "sx_yd", (SOUNDEX, YEAR, KeyPart("dob", 9, 2)), "surname sound + birth year and day"
    ),
    BlockingKey(
        "sx_swap",
        (SOUNDEX, YEAR, DayMonthUnordered("dob")),
        "surname sound + birth date, day/month either way",
    ),
    BlockingKey("dob_fi", _cols("dob", "first_initial"), "date of birth + first initial"),
    BlockingKey(
        "dob_pc", _cols("dob", "postal_code"), "date of birth + postcode (nicknames, new surname)"
    ),
    BlockingKey("ph", _cols("phone"), "phone"),
    BlockingKey("ssn", _cols("ssn"), "social security number"),
    BlockingKey("em", _cols("email"), "email"),
)


def splink_blocking_rules(keys: Iterable[BlockingKey] = BLOCKING_KEYS) -> list[str]:
    return [key.sql() for key in keys]


def key_strings(row: Mapping[str, Any], keys: Iterable[BlockingKey] = BLOCKING_KEYS) -> list[str]:
    """The key strings of one feature row, for an index of (key, record) rows."""
    return [v for v in (key.value(row) for key in keys) if v is not None]


def shares_a_key(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    return not set(key_strings(left)).isdisjoint(key_strings(right))
