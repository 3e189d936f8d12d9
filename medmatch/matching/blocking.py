"""Blocking keys: which pairs are worth comparing at all.

Each key is defined once and rendered twice: as a Splink blocking rule for batch prediction,
and as an indexable key string ("dob_fi:1980-03-04|j") for real-time candidate search.
A pair is a candidate when it shares at least one key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BlockingKey:
    name: str
    columns: tuple[str, ...]
    description: str

    def sql(self) -> str:
        return " AND ".join(f"l.{c} = r.{c}" for c in self.columns)

    def value(self, row: Mapping[str, Any]) -> str | None:
        parts = [row.get(c) for c in self.columns]
        if any(p is None or p == "" for p in parts):
            return None
        return f"{self.name}:" + "|".join(str(p) for p in parts)


BLOCKING_KEYS: tuple[BlockingKey, ...] = (
    BlockingKey("sx_by", ("last_soundex", "birth_year"), "surname sound + birth year"),
    BlockingKey("dob_fi", ("dob", "first_initial"), "date of birth + first initial"),
    BlockingKey(
        "dob_pc", ("dob", "postal_code"), "date of birth + postcode (nicknames, new surname)"
    ),
    BlockingKey("fn_ln", ("first_name", "last_name"), "full name (wrong date of birth)"),
    BlockingKey("ph", ("phone",), "phone"),
    BlockingKey("ssn", ("ssn",), "social security number"),
    BlockingKey("em", ("email",), "email"),
)


def splink_blocking_rules(keys: Iterable[BlockingKey] = BLOCKING_KEYS) -> list[str]:
    return [key.sql() for key in keys]


def key_strings(row: Mapping[str, Any], keys: Iterable[BlockingKey] = BLOCKING_KEYS) -> list[str]:
    """The key strings of one feature row, for an index of (key, record) rows."""
    return [v for v in (key.value(row) for key in keys) if v is not None]


def shares_a_key(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    return not set(key_strings(left)).isdisjoint(key_strings(right))
